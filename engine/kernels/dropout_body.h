// Body of inverted dropout with a counter-based mask, element by element: the
// CPU backend (engine/cpu/dropout_kernels.cpp) and the CUDA backend
// (cuda/update_kernels.cu) both call it, so the same seed and counter draw the
// same mask on every device and for any thread count.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/host_device.h"
#include "engine/splitmix64.h"

namespace engine::kernels {

// Element i of the call (seed, counter) is kept when u_i >= p, where
//   key  = splitmix64(seed ^ splitmix64(counter))     (DropoutMask::of, once per call)
//   bits = splitmix64(key + i * 0x9E3779B97F4A7C15)   (SplitMix64's i-th step from key)
//   u_i  = (bits >> 11) * 2^-53                        (uniform in [0, 1), in double)
// and then mask_i = 1/(1-p), else 0. The mask is a pure function of (seed,
// counter, i), so the backward draws it again instead of keeping it.
//
// The test runs on integers: with k = bits >> 11 < 2^53, u_i = k * 2^-53 >= p
// exactly when k >= p * 2^53 (scaling by a power of two is exact), that is
// when k >= ceil(p * 2^53): the same mask, without converting k to double.
template <class T>
struct DropoutMask {
  uint64_t key;
  uint64_t keep_from;  // ceil(p * 2^53)
  T keep_scale;        // 1 / (1 - p)

  static DropoutMask of(T p, uint64_t seed, uint64_t counter) {
    return {splitmix64(seed ^ splitmix64(counter)),
            static_cast<uint64_t>(std::ceil(static_cast<double>(p) * 0x1.0p53)), T(1) / (T(1) - p)};
  }
  ENGINE_HOST_DEVICE T operator()(int64_t i) const {
    const uint64_t bits = splitmix64(key + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);
    return (bits >> 11) >= keep_from ? keep_scale : T(0);
  }
};

// y = x * mask. Overwrites.
template <class T>
struct DropoutForward {
  DropoutMask<T> mask;
  const T* x;
  T* y;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const { y[i] = x[i] * mask(i); }
};

// dx += dy * mask. Accumulates.
template <class T>
struct DropoutBackward {
  DropoutMask<T> mask;
  const T* dy;
  T* dx;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const { dx[i] += dy[i] * mask(i); }
};

}  // namespace engine::kernels
