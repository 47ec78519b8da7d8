// PLACEHOLDER: replaced by the real kernels
#include <stdexcept>
#include "engine/cpu/cpu_kernels.h"
namespace engine::cpu {
template <class T> void CpuKernels<T>::max_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y,
                        int64_t* argmax) const { throw std::logic_error("max_pool_forward: not written yet"); }
template <class T> void CpuKernels<T>::max_pool_backward(const Window2d& g, int64_t batch, const T* dy, const int64_t* argmax,
                         T* dx) const { throw std::logic_error("max_pool_backward: not written yet"); }
template <class T> void CpuKernels<T>::avg_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y) const { throw std::logic_error("avg_pool_forward: not written yet"); }
template <class T> void CpuKernels<T>::avg_pool_backward(const Window2d& g, int64_t batch, const T* dy, T* dx) const { throw std::logic_error("avg_pool_backward: not written yet"); }
template <class T> void CpuKernels<T>::adaptive_avg_pool_forward(const Window2d& g, int64_t out_h, int64_t out_w, int64_t batch,
                                 const T* x, T* y) const { throw std::logic_error("adaptive_avg_pool_forward: not written yet"); }
template <class T> void CpuKernels<T>::adaptive_avg_pool_backward(const Window2d& g, int64_t out_h, int64_t out_w, int64_t batch,
                                  const T* dy, T* dx) const { throw std::logic_error("adaptive_avg_pool_backward: not written yet"); }
template class CpuKernels<float>;
template class CpuKernels<double>;
}
