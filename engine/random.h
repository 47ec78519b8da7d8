// Seeded random numbers. Everything random in the project (initialisation,
// shuffles, splits, augmentation, dropout seeds) draws from a Generator built
// from an explicit seed, and the algorithms are written here rather than taken
// from <random>'s distributions, whose output differs between standard libraries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/splitmix64.h"

namespace engine {

// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0);
  uint64_t next_u64();
  double uniform();                     // [0, 1), 53 random bits
  double uniform(double low, double high);
  double normal();                      // standard normal (Box-Muller)
  uint64_t below(uint64_t n);           // uniform integer in [0, n), unbiased
  template <class T> void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  // A new generator whose stream does not overlap this one's in practice.
  Generator split();

 private:
  uint64_t s_[4];
};

}  // namespace engine
