// Bodies of the optimiser updates, element by element: the CPU backend
// (engine/cpu/optim_kernels.cpp) calls them in its OpenMP loops and the CUDA
// backend (cuda/update_kernels.cu) in its grid-stride kernels.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/host_device.h"

namespace engine::kernels {

// SGD with momentum, dampening, weight decay and Nesterov (torch.optim.SGD).
template <class T>
struct SgdStep {
  T* param;
  const T* grad;
  T* momentum_buf;
  T lr, momentum, dampening, weight_decay;
  bool nesterov, first;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    T g = grad[i] + weight_decay * param[i];
    if (momentum != T(0)) {
      // The first step seeds the buffer with g itself (no dampening), as PyTorch.
      const T buf = first ? g : momentum * momentum_buf[i] + (T(1) - dampening) * g;
      momentum_buf[i] = buf;
      g = nesterov ? g + momentum * buf : buf;
    }
    param[i] -= lr * g;
  }
};

// Adam (L2 in the gradient) or AdamW (decoupled decay). The bias corrections
// are computed once per call on the host (make_adam_step): step_size =
// lr / (1 - beta1^step), correction2_sqrt = sqrt(1 - beta2^step),
// decay_factor = 1 - lr * weight_decay.
template <class T>
struct AdamStep {
  T* param;
  const T* grad;
  T* m;
  T* v;
  T beta1, beta2, eps, weight_decay;
  bool decoupled;
  T step_size, correction2_sqrt, decay_factor;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    T g = grad[i];
    if (decoupled)
      param[i] *= decay_factor;  // AdamW: decay the weight itself, outside the moments
    else
      g += weight_decay * param[i];  // Adam: L2 penalty folded into the gradient
    m[i] = beta1 * m[i] + (T(1) - beta1) * g;
    v[i] = beta2 * v[i] + (T(1) - beta2) * g * g;
    const T denom = std::sqrt(v[i]) / correction2_sqrt + eps;
    param[i] -= step_size * (m[i] / denom);
  }
};

// The body of one adam_step call. The bias corrections are computed in double,
// once per call, as PyTorch computes them on the host.
template <class T>
AdamStep<T> make_adam_step(T* param, const T* grad, T* m, T* v, T lr, T beta1, T beta2, T eps,
                           T weight_decay, bool decoupled, int64_t step) {
  const double correction1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double correction2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  return {param, grad, m, v, beta1, beta2, eps, weight_decay, decoupled,
          static_cast<T>(static_cast<double>(lr) / correction1),
          static_cast<T>(std::sqrt(correction2)), T(1) - lr * weight_decay};
}

}  // namespace engine::kernels
