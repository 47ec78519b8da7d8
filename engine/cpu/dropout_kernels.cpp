// Inverted dropout with a counter-based mask.
//
// Element i of the call (seed, counter) is kept when u_i >= p, where
//   key  = splitmix64(seed ^ splitmix64(counter))
//   bits = splitmix64(key + i * 0x9E3779B97F4A7C15)   (SplitMix64's i-th step from key)
//   u_i  = (bits >> 11) * 2^-53                        (uniform in [0, 1), in double)
// The mask is a pure function of (seed, counter, i): any thread count and any
// device (the CUDA kernel computes the same formula) draw the same mask.
#include "engine/cpu/cpu_kernels.h"
#include "engine/splitmix64.h"

namespace engine::cpu {

// x (n) -> mask (n) = keep ? 1/(1-p) : 0, y (n) = x * mask
template <class T>
void CpuKernels<T>::dropout_forward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* x,
                                    T* mask, T* y) const {
  const uint64_t key = splitmix64(seed ^ splitmix64(counter));
  const double drop_probability = static_cast<double>(p);
  const T keep_scale = T(1) / (T(1) - p);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bits = splitmix64(key + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);
    const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
    mask[i] = u >= drop_probability ? keep_scale : T(0);
    y[i] = x[i] * mask[i];
  }
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
