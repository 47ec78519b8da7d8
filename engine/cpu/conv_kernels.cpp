// PLACEHOLDER: replaced by the real kernels
#include <stdexcept>
#include "engine/cpu/cpu_kernels.h"
namespace engine::cpu {
template <class T> void CpuKernels<T>::im2col(const Window2d& g, const T* x, T* cols) const { throw std::logic_error("im2col: not written yet"); }
template <class T> void CpuKernels<T>::col2im(const Window2d& g, const T* cols, T* dx) const { throw std::logic_error("col2im: not written yet"); }
template class CpuKernels<float>;
template class CpuKernels<double>;
}
