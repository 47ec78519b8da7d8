// PLACEHOLDER: replaced by the real kernels
#include <stdexcept>
#include "engine/cpu/cpu_kernels.h"
namespace engine::cpu {
template <class T> void CpuKernels<T>::batch_norm_forward_train(int64_t n, int64_t c, int64_t hw, const T* x, const T* gamma,
                                const T* beta, T eps, T momentum, T* running_mean,
                                T* running_var, T* save_mean, T* save_invstd,
                                T* y) const { throw std::logic_error("batch_norm_forward_train: not written yet"); }
template <class T> void CpuKernels<T>::batch_norm_forward_eval(int64_t n, int64_t c, int64_t hw, const T* x, const T* gamma,
                               const T* beta, T eps, const T* running_mean,
                               const T* running_var, T* y) const { throw std::logic_error("batch_norm_forward_eval: not written yet"); }
template <class T> void CpuKernels<T>::batch_norm_backward(int64_t n, int64_t c, int64_t hw, const T* x, const T* dy,
                           const T* gamma, const T* save_mean, const T* save_invstd, T* dx,
                           T* dgamma, T* dbeta) const { throw std::logic_error("batch_norm_backward: not written yet"); }
template class CpuKernels<float>;
template class CpuKernels<double>;
}
