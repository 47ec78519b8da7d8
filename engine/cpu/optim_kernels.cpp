// Optimiser updates, element by element (torch.optim.SGD, Adam and AdamW
// semantics, single-tensor path, no amsgrad). The per-element formulas are the
// bodies shared with the CUDA backend (engine/kernels/update_bodies.h). See
// engine/optim.h for the classes.
#include "engine/cpu/cpu_kernels.h"
#include "engine/cpu/isa.h"
#include "engine/kernels/update_bodies.h"

namespace engine::cpu {

// param, grad, momentum_buf (n) -> param, momentum_buf updated in place
template <class T>
void CpuKernels<T>::sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, T lr,
                             T momentum, T dampening, T weight_decay, bool nesterov,
                             bool first) const {
  const kernels::SgdStep<T> step{param,        grad,     momentum_buf, lr, momentum, dampening,
                                 weight_decay, nesterov, first};
  for_each_element(n, step);
}

// param, grad, m, v (n) -> param, m, v updated in place; step counts from 1
template <class T>
void CpuKernels<T>::adam_step(int64_t n, T* param, const T* grad, T* m, T* v, T lr, T beta1,
                              T beta2, T eps, T weight_decay, bool decoupled,
                              int64_t step) const {
  const kernels::AdamStep<T> update = kernels::make_adam_step(
      param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step);
  for_each_element(n, update);
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
