#include "engine/tensor.h"

#include <limits>
#include <sstream>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/backend.h"

namespace engine {

std::string to_string(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }
std::string to_string(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

std::string to_string(const Shape& shape) {
  std::ostringstream out;
  out << '(';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ')';
  return out.str();
}

size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 8; }

// Refuses shapes whose non-zero dimensions multiply past int64 (a 0 elsewhere
// does not make (0, 2^62, 4) sane: such a shape comes from a corrupt header).
int64_t shape_numel(const Shape& shape) {
  int64_t nonzero = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + to_string(shape));
    if (d == 0) {
      empty = true;
    } else if (nonzero > std::numeric_limits<int64_t>::max() / d) {
      throw std::invalid_argument("shape " + to_string(shape) +
                                  " has more elements than an int64 can count");
    } else {
      nonzero *= d;
    }
  }
  return empty ? 0 : nonzero;
}

Storage::Storage(size_t bytes_, Device device_) : bytes(bytes_), device(device_) {
  data = bytes ? backend(device).allocate(bytes) : nullptr;
}

Storage::~Storage() {
  if (data) backend(device).deallocate(data, bytes);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  const int64_t numel = shape_numel(shape);
  if (static_cast<uint64_t>(numel) > std::numeric_limits<size_t>::max() / dtype_size(dtype))
    throw std::invalid_argument("shape " + to_string(shape) + " of " + to_string(dtype) +
                                " needs more bytes than a size_t can count");
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(numel) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  dispatch_dtype(dtype, [&]<class T>() {
    backend(device).kernels<T>().fill(t.data<T>(), t.numel(), static_cast<T>(value));
  });
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, std::span<const float> values) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    shape_error("from_vector", std::to_string(values.size()) + " values for shape " +
                                   to_string(shape));
  Tensor t = empty(shape, DType::f32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, std::span<const double> values) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    shape_error("from_vector", std::to_string(values.size()) + " values for shape " +
                                   to_string(shape));
  Tensor t = empty(shape, DType::f64);
  std::copy(values.begin(), values.end(), t.data<double>());
  return t;
}

static TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  if (!impl) throw std::logic_error("use of an undefined Tensor");
  return *impl;
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device; }

int64_t Tensor::dim(int64_t i) const {
  const int64_t n = ndim();
  const int64_t j = i < 0 ? i + n : i;
  if (j < 0 || j >= n)
    throw std::out_of_range("dim " + std::to_string(i) + " of a tensor of shape " +
                            to_string(shape()));
  return shape()[j];
}

template <class T>
T* Tensor::data() {
  if (dtype() != dtype_of<T>())
    throw std::invalid_argument("data<" + to_string(dtype_of<T>()) + ">() on a " +
                                to_string(dtype()) + " tensor of shape " + to_string(shape()));
  return static_cast<T*>(impl_->storage->data);
}

template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

void* Tensor::raw_data() { return checked(impl_).storage->data; }
const void* Tensor::raw_data() const { return checked(impl_).storage->data; }

std::vector<double> Tensor::to_double_vector() const {
  const Tensor host = to(Device::cpu);
  return dispatch_dtype(dtype(), [&]<class T>() {
    const T* p = host.data<T>();
    return std::vector<double>(p, p + numel());
  });
}

std::vector<float> Tensor::to_float_vector() const {
  const Tensor host = to(Device::cpu);
  return dispatch_dtype(dtype(), [&]<class T>() {
    const T* p = host.data<T>();
    return std::vector<float>(p, p + numel());
  });
}

double Tensor::item() const {
  if (numel() != 1)
    throw std::invalid_argument("item() on a tensor of shape " + to_string(shape()) +
                                " (needs exactly one element)");
  return to_double_vector()[0];
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(shape(), dtype(), target);
  if (target == Device::cpu)
    backend(device()).copy_to_host(out.raw_data(), raw_data(), nbytes());
  else
    backend(target).copy_from_host(out.raw_data(), raw_data(), nbytes());
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  const Tensor host = to(Device::cpu);
  Tensor out = empty(shape(), target, Device::cpu);
  dispatch_dtype(dtype(), [&]<class S>() {
    dispatch_dtype(target, [&]<class D>() {
      const S* src = host.data<S>();
      D* dst = out.data<D>();
      const int64_t n = numel();  // not in the loop's test: it walks the shape
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]);
    });
  });
  return out.to(device());
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape();
  impl->dtype = dtype();
  impl->storage = impl_->storage;
  return Tensor(std::move(impl));
}

void Tensor::copy_(const Tensor& src) {
  check_same_shape("copy_", *this, src);
  check_same_dtype_device("copy_", *this, src);
  dispatch_dtype(dtype(), [&]<class T>() {
    backend(device()).kernels<T>().copy(data<T>(), src.data<T>(), numel());
  });
  bump_version("copy_");
}

void Tensor::bump_version(const char* op) {
  Storage& storage = *checked(impl_).storage;
  ++storage.version;
  storage.last_writer = op;
}

uint64_t Tensor::version() const { return checked(impl_).storage->version; }

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  TensorImpl& impl = checked(impl_);
  impl.requires_grad = requires_grad;
  if (!requires_grad) impl.spare_grad.reset();  // no backward will want it
  return *this;
}

Tensor Tensor::grad() const { return Tensor(checked(impl_).grad); }

void Tensor::zero_grad() {
  TensorImpl& impl = checked(impl_);
  if (!impl.grad) return;
  if (impl.requires_grad)
    impl.spare_grad = std::move(impl.grad);
  else
    impl.grad.reset();  // frozen: no backward will want the buffer
}

bool Tensor::same_storage(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}

void shape_error(const std::string& op, const std::string& message) {
  throw std::invalid_argument(op + ": " + message);
}

void check_same_shape(const std::string& op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    shape_error(op, "shapes differ: " + to_string(a.shape()) + " vs " + to_string(b.shape()));
}

void check_same_dtype_device(const std::string& op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    shape_error(op, "dtypes differ: " + to_string(a.dtype()) + " " + to_string(a.shape()) +
                        " vs " + to_string(b.dtype()) + " " + to_string(b.shape()));
  if (a.device() != b.device())
    shape_error(op, "devices differ: " + to_string(a.device()) + " vs " + to_string(b.device()));
}

void check_ndim(const std::string& op, const std::string& arg, const Tensor& t, int64_t ndim) {
  if (t.ndim() != ndim)
    shape_error(op, arg + " must have " + std::to_string(ndim) + " dimensions, got shape " +
                        to_string(t.shape()));
}

}  // namespace engine
