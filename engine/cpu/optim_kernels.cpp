// Optimiser updates, element by element (torch.optim.SGD, Adam and AdamW
// semantics, single-tensor path, no amsgrad). See engine/optim.h for the classes.
#include <cmath>

#include "engine/cpu/cpu_kernels.h"

namespace engine::cpu {

// param, grad, momentum_buf (n) -> param, momentum_buf updated in place
template <class T>
void CpuKernels<T>::sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, T lr,
                             T momentum, T dampening, T weight_decay, bool nesterov,
                             bool first) const {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i] + weight_decay * param[i];
    if (momentum != T(0)) {
      // The first step seeds the buffer with g itself (no dampening), as PyTorch.
      const T buf = first ? g : momentum * momentum_buf[i] + (T(1) - dampening) * g;
      momentum_buf[i] = buf;
      g = nesterov ? g + momentum * buf : buf;
    }
    param[i] -= lr * g;
  }
}

// param, grad, m, v (n) -> param, m, v updated in place; step counts from 1
template <class T>
void CpuKernels<T>::adam_step(int64_t n, T* param, const T* grad, T* m, T* v, T lr, T beta1,
                              T beta2, T eps, T weight_decay, bool decoupled,
                              int64_t step) const {
  // Bias corrections in double, once per call (as PyTorch computes them on the host).
  const double correction1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double correction2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const T step_size = static_cast<T>(static_cast<double>(lr) / correction1);
  const T correction2_sqrt = static_cast<T>(std::sqrt(correction2));
  const T decay_factor = T(1) - lr * weight_decay;
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
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
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
