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
  // The mask is kept for the backward: y is linear in x, dy/dx = mask.
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().dropout_forward(x.numel(), static_cast<T>(p), seed, counter,
                                                     x.data<T>(), mask.data<T>(), y.data<T>());
  });
  if (needs_grad({&x})) {
    record(y, "dropout", {x}, {}, [x, mask](const Tensor& dy) {
      const Tensor masked = mul(dy, mask);  // dx += dy * mask
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        backend(dy.device()).kernels<T>().axpy(masked.numel(), T(1), masked.data<T>(),
                                               grad_buffer(x).data<T>());
      });
    });
  }
  return y;
}

}  // namespace engine
