// Body of inverted dropout with a counter-based mask, element by element: the
// CPU backend (engine/cpu/dropout_kernels.cpp) and the CUDA backend
// (cuda/update_kernels.cu) both call it, so the same seed and counter draw the
// same mask on every device and for any thread count.
#pragma once

#include <cstdint>

#include "engine/host_device.h"
#include "engine/splitmix64.h"

namespace engine::kernels {

// Element i of the call (seed, counter) is kept when u_i >= p, where
//   key  = splitmix64(seed ^ splitmix64(counter))     (make_dropout, once per call)
//   bits = splitmix64(key + i * 0x9E3779B97F4A7C15)   (SplitMix64's i-th step from key)
//   u_i  = (bits >> 11) * 2^-53                        (uniform in [0, 1), in double)
// and then mask = 1/(1-p), else 0; y = x * mask. The mask is a pure function
// of (seed, counter, i).
template <class T>
struct DropoutForward {
  uint64_t key;
  double drop_probability;
  T keep_scale;  // 1 / (1 - p)
  const T* x;
  T* mask;
  T* y;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const uint64_t bits = splitmix64(key + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);
    const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
    mask[i] = u >= drop_probability ? keep_scale : T(0);
    y[i] = x[i] * mask[i];
  }
};

// The body of one dropout_forward call.
template <class T>
DropoutForward<T> make_dropout(T p, uint64_t seed, uint64_t counter, const T* x, T* mask, T* y) {
  const uint64_t key = splitmix64(seed ^ splitmix64(counter));  // one per call
  return {key, static_cast<double>(p), T(1) / (T(1) - p), x, mask, y};
}

}  // namespace engine::kernels
