// dropout: inverted dropout with a counter-based mask, forward and backward.
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

// x (any) -> y (same shape) = x * mask, mask = keep ? 1/(1-p) : 0
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t counter) {
  if (!(p >= 0 && p < 1))
    throw std::invalid_argument("dropout: p must be in [0, 1), got " + std::to_string(p) +
                                " for x " + to_string(x.shape()));
  if (!training || p == 0) return x;
  // Nothing is kept for the backward: y is linear in x, dy/dx = mask, and the
  // backward draws the mask again from (seed, counter).
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().dropout_forward(x.numel(), static_cast<T>(p), seed, counter,
                                                     x.data<T>(), y.data<T>());
  });
  if (needs_grad({&x})) {
    record(y, "dropout", {x}, {}, [x, p, seed, counter](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {  // dx += dy * mask
        backend(dy.device()).kernels<T>().dropout_backward(dy.numel(), static_cast<T>(p), seed, counter,
                                                           dy.data<T>(), grad_buffer(x).data<T>());
      });
    });
  }
  return y;
}

}  // namespace engine
