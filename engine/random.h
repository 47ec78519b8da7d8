// Seeded random numbers. Everything random in the project (initialisation,
// shuffles, splits, augmentation, dropout seeds) draws from a Generator built
// from an explicit seed, and the algorithms are written here rather than taken
// from <random>'s distributions, whose output differs between standard libraries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace engine {

// SplitMix64 step: a good 64-bit mixer, used for seeding and as the
// counter-based hash of dropout (same input -> same output on any device).
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

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
