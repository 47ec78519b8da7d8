// Pooling ops: max, average (count_include_pad) and adaptive average, with
// PyTorch's window rules (no ceil mode). Forward and backward side by side.
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

std::string pair(int64_t a, int64_t b) { return std::to_string(a) + "x" + std::to_string(b); }

// x must be (N,C,H,W) with at least one pixel per map.
void check_image(const char* op, const Tensor& x) {
  check_ndim(op, "x", x, 4);
  if (x.dim(2) < 1 || x.dim(3) < 1)
    shape_error(op, "x (N,C,H,W)=" + to_string(x.shape()) + " has an empty map");
}

// The per-image window of a pooling op on x (N,C,H,W), after checking it.
Window2d pool_window(const char* op, const Tensor& x, const Pool2dOptions& o) {
  check_image(op, x);
  if (o.kernel_h < 1 || o.kernel_w < 1 || o.stride_h < 1 || o.stride_w < 1)
    shape_error(op, "kernel and stride must be >= 1, got kernel " + pair(o.kernel_h, o.kernel_w) +
                        ", stride " + pair(o.stride_h, o.stride_w));
  // As PyTorch: a window must never lie wholly in the padding.
  if (o.pad_h < 0 || o.pad_w < 0 || 2 * o.pad_h > o.kernel_h || 2 * o.pad_w > o.kernel_w)
    shape_error(op, "padding must be in [0, kernel/2], got padding " + pair(o.pad_h, o.pad_w) +
                        " for kernel " + pair(o.kernel_h, o.kernel_w));
  Window2d g;
  g.channels = x.dim(1);
  g.height = x.dim(2), g.width = x.dim(3);
  g.kernel_h = o.kernel_h, g.kernel_w = o.kernel_w;
  g.stride_h = o.stride_h, g.stride_w = o.stride_w;
  g.pad_h = o.pad_h, g.pad_w = o.pad_w;
  if (o.kernel_h > g.height + 2 * o.pad_h || o.kernel_w > g.width + 2 * o.pad_w)
    shape_error(op, "kernel " + pair(o.kernel_h, o.kernel_w) + " is larger than the padded input " +
                        pair(g.height + 2 * o.pad_h, g.width + 2 * o.pad_w) + " of x (N,C,H,W)=" +
                        to_string(x.shape()));
  return g;
}

Shape pooled_shape(const Tensor& x, int64_t out_h, int64_t out_w) {
  return {x.dim(0), x.dim(1), out_h, out_w};
}

}  // namespace

// x (N,C,H,W) -> y (N,C,OH,OW): the maximum of each window.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options) {
  const Window2d g = pool_window("max_pool2d", x, options);
  if (g.height * g.width > std::numeric_limits<int32_t>::max())
    shape_error("max_pool2d", "a plane of x (N,C,H,W)=" + to_string(x.shape()) +
                                  " has more than 2^31-1 pixels, past the int32 argmax");
  const int64_t batch = x.dim(0);
  Tensor y = Tensor::empty(pooled_shape(x, g.out_height(), g.out_width()), x.dtype(), x.device());
  // Cache for backward: argmax (N,C,OH,OW), the flat H*W index each output
  // took its value from, kept on x's device as int32 (half int64's memory).
  auto argmax = std::make_shared<Storage>(static_cast<size_t>(y.numel()) * sizeof(int32_t),
                                          x.device());
  auto* argmax_data = static_cast<int32_t*>(argmax->data);
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().max_pool_forward(g, batch, x.data<T>(), y.data<T>(),
                                                      argmax_data);
  });
  if (needs_grad({&x})) {
    record(y, "max_pool2d", {x}, {}, [x, g, batch, argmax](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        backend(dy.device()).kernels<T>().max_pool_backward(
            g, batch, dy.data<T>(), static_cast<const int32_t*>(argmax->data),
            grad_buffer(x).data<T>());
      });
    });
  }
  return y;
}

// x (N,C,H,W) -> y (N,C,OH,OW): the mean of each window, padding counted as zeros.
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options) {
  const Window2d g = pool_window("avg_pool2d", x, options);
  const int64_t batch = x.dim(0);
  Tensor y = Tensor::empty(pooled_shape(x, g.out_height(), g.out_width()), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().avg_pool_forward(g, batch, x.data<T>(), y.data<T>());
  });
  if (needs_grad({&x})) {
    record(y, "avg_pool2d", {x}, {}, [x, g, batch](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        backend(dy.device()).kernels<T>().avg_pool_backward(g, batch, dy.data<T>(),
                                                            grad_buffer(x).data<T>());
      });
    });
  }
  return y;
}

// x (N,C,H,W) -> y (N,C,out_h,out_w): the mean of each adaptive window.
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_image("adaptive_avg_pool2d", x);
  if (out_h < 1 || out_w < 1)
    shape_error("adaptive_avg_pool2d", "output size must be >= 1, got " + pair(out_h, out_w));
  Window2d g;
  g.channels = x.dim(1);
  g.height = x.dim(2), g.width = x.dim(3);
  const int64_t batch = x.dim(0);
  Tensor y = Tensor::empty(pooled_shape(x, out_h, out_w), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().adaptive_avg_pool_forward(g, out_h, out_w, batch,
                                                               x.data<T>(), y.data<T>());
  });
  if (needs_grad({&x})) {
    record(y, "adaptive_avg_pool2d", {x}, {}, [x, g, out_h, out_w, batch](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        backend(dy.device()).kernels<T>().adaptive_avg_pool_backward(
            g, out_h, out_w, batch, dy.data<T>(), grad_buffer(x).data<T>());
      });
    });
  }
  return y;
}

}  // namespace engine
