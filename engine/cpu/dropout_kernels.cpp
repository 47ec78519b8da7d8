// Inverted dropout with a counter-based mask: the mask is a pure function of
// (seed, counter, i), computed by the body shared with the CUDA backend
// (engine/kernels/dropout_body.h), so any thread count and any device draw the
// same mask.
#include "engine/cpu/cpu_kernels.h"
#include "engine/cpu/isa.h"
#include "engine/kernels/dropout_body.h"

namespace engine::cpu {

// x (n) -> y (n) = x * mask
template <class T>
void CpuKernels<T>::dropout_forward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* x,
                                    T* y) const {
  const kernels::DropoutForward<T> dropout{kernels::DropoutMask<T>::of(p, seed, counter), x, y};
  for_each_element(n, dropout);
}

// dy (n) -> dx (n) += dy * mask
template <class T>
void CpuKernels<T>::dropout_backward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* dy,
                                     T* dx) const {
  const kernels::DropoutBackward<T> dropout{kernels::DropoutMask<T>::of(p, seed, counter), dy, dx};
  for_each_element(n, dropout);
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
