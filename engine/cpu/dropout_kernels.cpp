// PLACEHOLDER: replaced by the real kernels
#include <stdexcept>
#include "engine/cpu/cpu_kernels.h"
namespace engine::cpu {
template <class T> void CpuKernels<T>::dropout_forward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* x, T* mask,
                       T* y) const { throw std::logic_error("dropout_forward: not written yet"); }
template class CpuKernels<float>;
template class CpuKernels<double>;
}
