// Reductions: sum and mean over everything, and sum over one dimension.
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

// grad_buffer(x) += dy broadcast over x's shape; dy has x's rank with size 1
// along the reduced dimensions (or is a one-element tensor).
void accumulate_broadcast(const Tensor& x, const Tensor& dy) {
  Tensor dx = grad_buffer(x);
  Broadcast g;
  g.ndim = static_cast<int>(x.ndim());
  int64_t x_stride = 1, dy_stride = 1;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const int64_t dy_size = dy.numel() == 1 ? 1 : dy.shape()[d];
    g.out_shape[d] = x.shape()[d];
    g.a_strides[d] = x_stride;
    g.b_strides[d] = dy_size == 1 ? 0 : dy_stride;
    x_stride *= x.shape()[d];
    dy_stride *= dy_size;
  }
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().binary(BinaryOp::add, g, dx.data<T>(), dy.data<T>(),
                                            dx.data<T>());
  });
}

// x summed down to out_shape (x's rank, size 1 where reduced).
Tensor reduce_to(const Tensor& x, const Shape& out_shape) {
  Tensor out = Tensor::zeros(out_shape, x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().sum_to(x.data<T>(), x.shape().data(), out.data<T>(),
                                            out_shape.data(), static_cast<int>(x.ndim()));
  });
  return out;
}

}  // namespace

// x (any) -> {} = sum of all elements
Tensor sum(const Tensor& x) {
  if (x.ndim() > kMaxDims)
    shape_error("sum", "at most " + std::to_string(kMaxDims) + " dimensions, got " + to_string(x.shape()));
  Tensor y = reshape(reduce_to(x, Shape(x.shape().size(), 1)).detach(), {});
  if (needs_grad({&x}))
    record(y, "sum", {x}, {}, [x](const Tensor& dy) { accumulate_broadcast(x, dy); });
  return y;
}

// x (any) -> {} = mean of all elements
Tensor mean(const Tensor& x) {
  if (x.numel() == 0) shape_error("mean", "empty tensor of shape " + to_string(x.shape()));
  return mul_scalar(sum(x), 1.0 / static_cast<double>(x.numel()));
}

// x (..., D, ...) -> (..., 1, ...) with keepdim, else (..., ...)
Tensor sum(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = dim < 0 ? dim + x.ndim() : dim;
  if (d < 0 || d >= x.ndim())
    shape_error("sum", "dim " + std::to_string(dim) + " out of range for shape " + to_string(x.shape()));
  if (x.ndim() > kMaxDims)
    shape_error("sum", "at most " + std::to_string(kMaxDims) + " dimensions, got " + to_string(x.shape()));
  Shape kept = x.shape();
  kept[d] = 1;
  Tensor y = reduce_to(x, kept);
  if (needs_grad({&x}))
    record(y, "sum_dim", {x}, {}, [x](const Tensor& dy) { accumulate_broadcast(x, dy); });
  if (keepdim) return y;
  Shape squeezed = x.shape();
  squeezed.erase(squeezed.begin() + d);
  return reshape(y, squeezed);
}

}  // namespace engine
