// The device seam. Every op in engine/ops/ is written once, device-agnostic,
// as a composition of the primitive kernels below; each device provides them.
// The CPU backend (engine/cpu/) uses OpenBLAS and threaded loops and is part
// of the engine. Other devices' backends are plugins that the engine loads
// when the device is first asked for, and that register themselves here
// (register_backend, at the end of this file): the CUDA backend (cuda/,
// cuBLAS and kernels) is built when the `cuda` option finds nvcc, and the
// engine never includes it.
//
// All pointers are device pointers of the backend's device, except `labels`
// and `mask` of the loss kernels, which are host arrays (small; the CUDA backend
// uploads them). All arrays are contiguous and row-major (see tensor.h for the shape letters). Kernels that
// produce gradients of parameters *accumulate* (+=) into their output, so that
// several uses of one parameter sum their contributions; the comment on each
// kernel says whether it overwrites or accumulates.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace engine {

// Geometry of a 2-D window op (convolution, pooling) over one NCHW tensor.
struct Window2d {
  int64_t channels = 0;           // C
  int64_t height = 0, width = 0;  // H, W of the input
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t out_height() const { return (height + 2 * pad_h - kernel_h) / stride_h + 1; }
  int64_t out_width() const { return (width + 2 * pad_w - kernel_w) / stride_w + 1; }
};

enum class BinaryOp { add, sub, mul, div };

// Broadcast geometry of out = a (op) b: every shape padded to the same rank,
// with stride 0 along broadcast dimensions. Rank at most kMaxDims.
constexpr int kMaxDims = 6;
struct Broadcast {
  int ndim = 0;
  int64_t out_shape[kMaxDims] = {};
  int64_t a_strides[kMaxDims] = {};
  int64_t b_strides[kMaxDims] = {};
  int64_t numel() const;
  // The same mapping with fewer dimensions: size-1 dimensions dropped, and a
  // dimension merged into the one outside it wherever both operands step
  // through the pair as through one (two same-shape tensors become one run).
  Broadcast coalesced() const;
};

template <class T>
class Kernels {
 public:
  virtual ~Kernels() = default;

  // ---- memory -------------------------------------------------------------
  virtual void fill(T* x, int64_t n, T value) const = 0;
  virtual void copy(T* dst, const T* src, int64_t n) const = 0;
  // Strided block copy: for i < count, dst[i*dst_stride + j] = src[i*src_stride + j]
  // for j < block. Serves concat, slice and per-task batch gathers.
  virtual void copy_blocks(T* dst, int64_t dst_stride, const T* src, int64_t src_stride,
                           int64_t block, int64_t count) const = 0;
  // out (cols, rows) = transpose of x (rows, cols). Overwrites.
  virtual void transpose2d(T* out, const T* x, int64_t rows, int64_t cols) const = 0;
  // out (J,I,K) = x (I,J,K) with its two leading axes swapped: the I blocks
  // (J,K) of x side by side in out's rows. Overwrites.
  virtual void swap_leading_axes(T* out, const T* x, int64_t size_i, int64_t size_j,
                                 int64_t size_k) const = 0;

  // ---- BLAS -----------------------------------------------------------------
  // C (m,n) = alpha * op(A) * op(B) + beta * C, row-major; op(A) is (m,k),
  // op(B) is (k,n). A is stored (m,k), or (k,m) when trans_a; likewise B.
  virtual void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* a, const T* b, T beta, T* c) const = 0;
  // Same for `batch` independent products at the given element strides.
  virtual void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                    T alpha, const T* a, int64_t stride_a, const T* b,
                                    int64_t stride_b, T beta, T* c, int64_t stride_c,
                                    int64_t batch) const = 0;
  // C (m,n) += alpha * sum over i < batch of op(A_i) op(B_i), with A_i at
  // a + i*stride_a and B_i at b + i*stride_b (stored as for gemm; stride 0
  // shares one operand among all products): a weight gradient summed over
  // images. Accumulates. The CPU adds the products one by one, in order; CUDA
  // lays them side by side along k for one product of depth batch*k.
  virtual void gemm_batched_sum(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                T alpha, const T* a, int64_t stride_a, const T* b,
                                int64_t stride_b, T* c, int64_t batch) const = 0;

  // ---- element-wise -----------------------------------------------------------
  // out = a (op) b with broadcasting. Overwrites; out may alias a when a has
  // the output's shape (in-place accumulation).
  virtual void binary(BinaryOp op, const Broadcast& geometry, const T* a, const T* b,
                      T* out) const = 0;
  // out (out_shape) += sum of x (x_shape) over the dimensions where out has
  // size 1 (the reverse of broadcasting). Both padded to rank `ndim`. Accumulates.
  virtual void sum_to(const T* x, const int64_t* x_shape, T* out, const int64_t* out_shape,
                      int ndim) const = 0;
  // y = alpha * x + y  (n elements). Accumulates.
  virtual void axpy(int64_t n, T alpha, const T* x, T* y) const = 0;
  // y = alpha * x (n elements); y may be x (in place). Overwrites.
  virtual void scale(int64_t n, T alpha, const T* x, T* y) const = 0;
  // y = max(x, 0). Overwrites.
  virtual void relu_forward(int64_t n, const T* x, T* y) const = 0;
  // dx += dy * (x > 0). Accumulates.
  virtual void relu_backward(int64_t n, const T* x, const T* dy, T* dx) const = 0;

  // ---- convolution by im2col ---------------------------------------------------
  // x (C,H,W) of one image -> cols (C*KH*KW, OH*OW); zero outside the padding. Overwrites.
  virtual void im2col(const Window2d& g, const T* x, T* cols) const = 0;
  // cols (C*KH*KW, OH*OW) -> dx (C,H,W), summing overlapping windows. Accumulates.
  virtual void col2im(const Window2d& g, const T* cols, T* dx) const = 0;

  // ---- pooling (over a batch of `batch` images, geometry g per image) ----------
  // x (N,C,H,W) -> y (N,C,OH,OW), argmax (N,C,OH,OW) = flat index into H*W of the
  // chosen input (first maximum; padding never wins). Overwrites.
  virtual void max_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y,
                                int32_t* argmax) const = 0;
  // dx (N,C,H,W) += dy routed to argmax. Accumulates.
  virtual void max_pool_backward(const Window2d& g, int64_t batch, const T* dy,
                                 const int32_t* argmax, T* dx) const = 0;
  // Average over the window; padding counts as zeros (count_include_pad, as
  // PyTorch's default). Overwrites / accumulates.
  virtual void avg_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y) const = 0;
  virtual void avg_pool_backward(const Window2d& g, int64_t batch, const T* dy, T* dx) const = 0;
  // Adaptive average pooling to (OH,OW): window of output i spans input rows
  // [floor(i*H/OH), ceil((i+1)*H/OH)), as PyTorch. g.kernel_*/stride_*/pad_* unused.
  virtual void adaptive_avg_pool_forward(const Window2d& g, int64_t out_h, int64_t out_w,
                                         int64_t batch, const T* x, T* y) const = 0;
  virtual void adaptive_avg_pool_backward(const Window2d& g, int64_t out_h, int64_t out_w,
                                          int64_t batch, const T* dy, T* dx) const = 0;

  // ---- batch norm over (N,C,HW) --------------------------------------------------
  // Training: per-channel batch mean and biased variance -> save_mean (C),
  // save_invstd (C) = 1/sqrt(var + eps); y = (x - mean) * invstd * gamma + beta;
  // running = (1 - momentum) * running + momentum * stat (unbiased variance),
  // skipped when running_mean is null. gamma/beta may be null (affine off).
  // With relu, y = max(that, 0): a ReLU after batch norm in the same pass.
  virtual void batch_norm_forward_train(int64_t n, int64_t c, int64_t hw, const T* x,
                                        const T* gamma, const T* beta, T eps, T momentum,
                                        T* running_mean, T* running_var, T* save_mean,
                                        T* save_invstd, bool relu, T* y) const = 0;
  // Evaluation: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta,
  // then max(y, 0) with relu.
  virtual void batch_norm_forward_eval(int64_t n, int64_t c, int64_t hw, const T* x,
                                       const T* gamma, const T* beta, T eps,
                                       const T* running_mean, const T* running_var, bool relu,
                                       T* y) const = 0;
  // Backward of the training forward. dx accumulates when non-null; dgamma and
  // dbeta accumulate when non-null. relu_output, when non-null, is the output
  // of a forward with relu, and dy its gradient: batch norm's own output then
  // receives dy where relu_output > 0 (ReLU's backward, folded in).
  virtual void batch_norm_backward(int64_t n, int64_t c, int64_t hw, const T* x, const T* dy,
                                   const T* relu_output, const T* gamma, const T* save_mean,
                                   const T* save_invstd, T* dx, T* dgamma, T* dbeta) const = 0;

  // ---- loss ----------------------------------------------------------------------
  // Cross-entropy of logits (N,K) against labels (N) with an optional class
  // mask (K, 1 = allowed, 0 = excluded from the softmax; null = all allowed).
  // Writes log_probs (N,K) (excluded classes get -inf) and the mean loss into
  // loss (one element in the device's memory: the host does not wait for it).
  // A label that is masked out or out of range throws. Labels and mask are host arrays.
  virtual void cross_entropy_forward(int64_t n, int64_t k, const T* logits,
                                     const int64_t* labels, const uint8_t* mask, T* log_probs,
                                     T* loss) const = 0;
  // dlogits += (dy / N) * (softmax - onehot), zero for masked classes, dy being
  // the loss's gradient (one element in the device's memory). Accumulates.
  virtual void cross_entropy_backward(int64_t n, int64_t k, const T* log_probs,
                                      const int64_t* labels, const T* dy, T* dlogits) const = 0;

  // ---- dropout (counter-based: the same seed and counter give the same mask on
  // every device and thread count) ------------------------------------------------
  // mask[i] = keep ? 1/(1-p) : 0 from hash(seed, counter, i), drawn anew by each call.
  // y = x * mask. Overwrites.
  virtual void dropout_forward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* x,
                               T* y) const = 0;
  // dx += dy * mask, the forward's mask of the same (p, seed, counter). Accumulates.
  virtual void dropout_backward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* dy,
                                T* dx) const = 0;

  // ---- optimisers (PyTorch semantics; see engine/optim.h) ---------------------------
  // SGD: g = grad + wd*param; buf = momentum*buf + (1-dampening)*g (buf = g on the
  // first step when `first`); step = nesterov ? g + momentum*buf : buf;
  // param -= lr * step. momentum_buf unused when momentum == 0.
  virtual void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, T lr, T momentum,
                        T dampening, T weight_decay, bool nesterov, bool first) const = 0;
  // Adam / AdamW. decoupled = false: g = grad + wd*param (torch.optim.Adam);
  // decoupled = true: param *= 1 - lr*wd first (torch.optim.AdamW).
  // m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; step counts from 1;
  // param -= lr/(1-b1^step) * m / (sqrt(v/(1-b2^step)) + eps).
  virtual void adam_step(int64_t n, T* param, const T* grad, T* m, T* v, T lr, T beta1,
                         T beta2, T eps, T weight_decay, bool decoupled, int64_t step) const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;  // "cpu (OpenBLAS, 2 threads)", "cuda:0 (NVIDIA H100)"

  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  // Copies between this device and host memory.
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) const = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t bytes) const = 0;
  // Waits until all queued work has finished (for timing; no-op on the CPU).
  virtual void synchronize() const = 0;
  // Most device memory held at once (tensors and scratch, not the allocator's
  // cache) since the last reset; 0 on the CPU, where the process's resident
  // set size tells.
  virtual int64_t peak_memory_bytes() { return 0; }
  virtual void reset_peak_memory() {}
  // TF32: float32 matrix products (gemm, gemm_strided_batched) on tensor
  // cores, each input cut to 10 mantissa bits (a relative error below 2^-10,
  // about 1e-3), products summed in float32. Faster and less exact, so off
  // unless asked for. Only CUDA backends have it: the default refuses to turn
  // it on (std::invalid_argument naming the backend).
  virtual void set_tf32(bool on);
  virtual bool tf32() const { return false; }
  // conv2d lowers images in chunks whose cols (C*KH*KW, OH*OW per image) hold
  // at most this many elements, unless one image alone needs more. Each device
  // says what suits it (a cache on the CPU, launch count on a GPU).
  virtual int64_t conv_chunk_elements() const = 0;

  virtual const Kernels<float>& f32() const = 0;
  virtual const Kernels<double>& f64() const = 0;

  template <class T> const Kernels<T>& kernels() const;
};

template <> inline const Kernels<float>& Backend::kernels<float>() const { return f32(); }
template <> inline const Kernels<double>& Backend::kernels<double>() const { return f64(); }

// ---- the registry of backends ----------------------------------------------------
// A device other than the CPU has its backend in a plugin, a shared library
// built beside the engine (the CUDA backend: cuda/, built as
// BUILD/cuda/libengine_cuda.so when the `cuda` option finds nvcc). The engine
// loads it with dlopen on the device's first use, and its static initialiser
// registers the backend here. A program that never asks for the GPU thus never
// maps cuBLAS and the CUDA runtime (about 150 MiB of resident memory).
//
// A factory creates a device's backend, or returns null with the reason in
// *why_not when the device cannot be used here (no GPU, driver too old, ...).
// It runs once, on the device's first use, so a program that never touches
// the device never initialises its runtime. `index` says which device of the
// kind to run on (the N of cuda:N; see set_device_index).
using BackendFactory = std::unique_ptr<Backend> (*)(int index, std::string* why_not);

// Registers the backend of a device other than the CPU (whose backend is built
// in). Throws std::logic_error for the CPU, or when the device already has one.
// A plugin calls it while it is loaded (cuda/register_backend.cpp).
void register_backend(Device device, BackendFactory factory);
// True when the program was built with a backend for `device` (always for the
// CPU), without loading it: what --version reports.
bool backend_built(Device device);
// Loads the device's plugin, once, where the program has one (nothing for the
// CPU): its backend (and device communicator, engine/distributed.h) register
// then. A failure is not thrown but kept as backend_unavailable_reason.
void load_backend_plugin(Device device);
// True when a backend of `device` is registered (always for the CPU), loading
// its plugin first if there is one; false when there is none or it failed to
// load (backend_unavailable_reason says why).
bool backend_registered(Device device);

// The backend of a device, created on first use. Throws a clear error naming
// the device when its backend was not built into this program, or when it
// cannot run here (a binary built with CUDA runs on a machine without a GPU,
// on the CPU: only asking for the GPU fails).
Backend& backend(Device device);
// True when the device can be used (CUDA: built with it and a GPU found).
bool backend_available(Device device);
// Why the device cannot be used ("" when it can).
std::string backend_unavailable_reason(Device device);

// Which device of a kind the process computes on: the N of cuda:N, 0 unless
// chosen. One per kind and process (every CUDA tensor lives on that GPU), so
// it is chosen before the device's first use, whose backend is then made on
// it; choosing the same index again does nothing. Throws
// std::invalid_argument for a negative index or a CPU index other than 0, and
// std::logic_error when the backend already runs on another index.
void set_device_index(Device device, int index);
int device_index(Device device);

}  // namespace engine
