// Tensor: an N-dimensional, contiguous, row-major array on a device.
//
// Layout conventions used everywhere in the project (defined once, here):
//   N batch, C channels, H height, W width, OC output channels,
//   KH/KW kernel height/width, OH/OW output height/width, K classes.
//   Images are NCHW; a matrix (M,K) is row-major with leading dimension K.
//
// A Tensor is a cheap handle (shared pointer) to a TensorImpl. Copying a Tensor
// aliases the same storage, like torch.Tensor; use clone() for a deep copy.
// The element type is chosen at run time: float32 for training, float64 for
// gradient checks. Typed access goes through data<T>(), which checks the dtype.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace engine {

enum class DType { f32, f64 };
enum class Device { cpu, cuda };

using Shape = std::vector<int64_t>;

std::string to_string(DType dtype);
std::string to_string(Device device);
std::string to_string(const Shape& shape);  // "(2, 3, 4)"
size_t dtype_size(DType dtype);
int64_t shape_numel(const Shape& shape);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }

// Raw bytes owned by one device's allocator; freed through the same allocator.
// `version` counts in-place writes (Tensor::bump_version) to these bytes, seen
// through any alias (reshape, detach): backward refuses to read a tensor
// written after its forward saved it.
struct Storage {
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  uint64_t version = 0;
  const char* last_writer = "";  // the in-place op that last bumped version
};

struct Node;  // autograd.h
class Tensor;

struct TensorImpl {
  Shape shape;
  DType dtype = DType::f32;
  std::shared_ptr<Storage> storage;
  // Autograd state. grad is allocated lazily by the first backward that reaches
  // this tensor; grad_fn is set on outputs of recorded ops and released once
  // backward has run it, leaving its op's name in released_op so that a second
  // backward through this tensor is refused rather than treating it as a leaf.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  // The gradient zero_grad took away, kept for the next backward to zero and
  // reuse (grad_buffer) when no one else holds it. A parameter's gradient is
  // then allocated once, not anew among each step's activations, where the
  // blocks malloc keeps for the activations freed around it raised a step's
  // peak resident memory (VGG19-BN compact, batch 64: by about 60 MiB).
  std::shared_ptr<TensorImpl> spare_grad;
  std::shared_ptr<Node> grad_fn;
  std::string released_op;
  // Set by the backward walk on the output gradient it hands to a node: the
  // walk drops it when the node returns, so the node may pass it on as an
  // input's gradient (pass_gradient in autograd.h) instead of copying it.
  bool handed_to_node = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories. Contents of empty() are uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu);
  // Copies host values into a new CPU tensor of the matching dtype.
  static Tensor from_vector(const Shape& shape, std::span<const float> values);
  static Tensor from_vector(const Shape& shape, std::span<const double> values);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t ndim() const { return static_cast<int64_t>(shape().size()); }
  int64_t dim(int64_t i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  DType dtype() const;
  Device device() const;

  // Typed pointer to the first element. Throws if T does not match dtype().
  // Valid for any device; dereference only on the CPU.
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  // Host copies of the contents, converted to the requested type.
  std::vector<float> to_float_vector() const;
  std::vector<double> to_double_vector() const;
  double item() const;  // the value of a one-element tensor

  // Deep copies and conversions; they are not recorded by autograd.
  Tensor clone() const;
  Tensor to(Device device) const;  // returns *this when already there
  Tensor to(DType dtype) const;    // returns *this when already that dtype
  // Same storage, no autograd history, requires_grad false.
  Tensor detach() const;
  // Overwrites this tensor's contents with src's (same shape and dtype).
  void copy_(const Tensor& src);
  // Every in-place write calls this (copy_, optimiser steps, batch norm's
  // running statistics): `op` names the writer in autograd's error message.
  void bump_version(const char* op);
  uint64_t version() const;

  // Autograd.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool requires_grad = true);
  Tensor grad() const;  // undefined Tensor when no gradient has been accumulated
  // Drops the gradient: grad() is undefined until the next backward, which
  // reuses the dropped buffer, zeroed, where nothing else holds it. A tensor
  // that does not require grad (frozen) keeps no buffer.
  void zero_grad();
  void backward() const;  // this must be a one-element tensor: d(this)/d(this) = 1
  // Backward from this tensor with `gradient` (same shape, dtype and device) as
  // d(loss)/d(this), the vector of a vector-Jacobian product: what a network's
  // later layers would send back, for timing or checking one part of a graph.
  void backward(const Tensor& gradient) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_storage(const Tensor& other) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Throws std::invalid_argument("<op>: <message>") with the shapes formatted.
[[noreturn]] void shape_error(const std::string& op, const std::string& message);
void check_same_shape(const std::string& op, const Tensor& a, const Tensor& b);
void check_same_dtype_device(const std::string& op, const Tensor& a, const Tensor& b);
void check_ndim(const std::string& op, const std::string& arg, const Tensor& t, int64_t ndim);

// Calls f.template operator()<T>() with T = float or double matching dtype.
template <class F>
decltype(auto) dispatch_dtype(DType dtype, F&& f) {
  if (dtype == DType::f32) return f.template operator()<float>();
  return f.template operator()<double>();
}

}  // namespace engine
