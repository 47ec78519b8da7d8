// PLACEHOLDER: replaced by the real kernels
#include <stdexcept>
#include "engine/cpu/cpu_kernels.h"
namespace engine::cpu {
template <class T> void CpuKernels<T>::sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, T lr, T momentum,
                T dampening, T weight_decay, bool nesterov, bool first) const { throw std::logic_error("sgd_step: not written yet"); }
template <class T> void CpuKernels<T>::adam_step(int64_t n, T* param, const T* grad, T* m, T* v, T lr, T beta1, T beta2, T eps,
                 T weight_decay, bool decoupled, int64_t step) const { throw std::logic_error("adam_step: not written yet"); }
template class CpuKernels<float>;
template class CpuKernels<double>;
}
