// SplitMix64: a good 64-bit mixer, used for seeding the Generator and as the
// counter-based hash of dropout. One definition for the CPU and the GPU, so the
// same input gives the same output on every device.
#pragma once

#include <cstdint>

#include "engine/host_device.h"

namespace engine {

ENGINE_HOST_DEVICE constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace engine
