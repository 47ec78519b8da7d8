// Inverted dropout with a counter-based mask: the mask is a pure function of
// (seed, counter, i), computed by the body shared with the CUDA backend
// (engine/kernels/dropout_body.h), so any thread count and any device draw the
// same mask.
#include "engine/cpu/cpu_kernels.h"
#include "engine/kernels/dropout_body.h"

namespace engine::cpu {

// x (n) -> mask (n) = keep ? 1/(1-p) : 0, y (n) = x * mask
template <class T>
void CpuKernels<T>::dropout_forward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* x,
                                    T* mask, T* y) const {
  const kernels::DropoutForward<T> dropout = kernels::make_dropout(p, seed, counter, x, mask, y);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dropout(i);
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
