// PLACEHOLDER: replaced by the real kernels
#include <stdexcept>
#include "engine/cpu/cpu_kernels.h"
namespace engine::cpu {
template <class T> double CpuKernels<T>::cross_entropy_forward(int64_t n, int64_t k, const T* logits, const int64_t* labels,
                               const uint8_t* mask, T* log_probs) const { throw std::logic_error("cross_entropy_forward: not written yet"); }
template <class T> void CpuKernels<T>::cross_entropy_backward(int64_t n, int64_t k, const T* log_probs, const int64_t* labels,
                              T scale, T* dlogits) const { throw std::logic_error("cross_entropy_backward: not written yet"); }
template class CpuKernels<float>;
template class CpuKernels<double>;
}
