// Cross-entropy: fused log-softmax + negative log-likelihood, one row per sample.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/cpu/cpu_kernels.h"

namespace engine::cpu {

// logits (N,K), labels (N), mask (K) or null -> log_probs (N,K); returns the mean loss
template <class T>
double CpuKernels<T>::cross_entropy_forward(int64_t n, int64_t k, const T* logits,
                                            const int64_t* labels, const uint8_t* mask,
                                            T* log_probs) const {
  // Labels are checked before the parallel loop: an exception must not leave it.
  for (int64_t row = 0; row < n; ++row) {
    const int64_t label = labels[row];
    if (label < 0 || label >= k)
      throw std::invalid_argument("cross_entropy: row " + std::to_string(row) + " has label " +
                                  std::to_string(label) + ", outside [0, " + std::to_string(k) +
                                  ")");
    if (mask && !mask[label])
      throw std::invalid_argument("cross_entropy: row " + std::to_string(row) + " has label " +
                                  std::to_string(label) + ", which the class mask excludes");
  }
  const T minus_infinity = -std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(static) if (n * k > kParallelGrain)
  for (int64_t row = 0; row < n; ++row) {
    const T* z = logits + row * k;
    T* out = log_probs + row * k;
    // log softmax(z)_j = z_j - max - log(sum_i exp(z_i - max)): subtracting the
    // row maximum keeps every exp() in (0, 1], so nothing overflows.
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < k; ++j)
      if (!mask || mask[j]) max = std::max(max, static_cast<double>(z[j]));
    double sum_exp = 0;
    for (int64_t j = 0; j < k; ++j)
      if (!mask || mask[j]) sum_exp += std::exp(static_cast<double>(z[j]) - max);
    const double log_normaliser = max + std::log(sum_exp);
    for (int64_t j = 0; j < k; ++j)
      out[j] = !mask || mask[j] ? static_cast<T>(static_cast<double>(z[j]) - log_normaliser)
                                : minus_infinity;
  }
  double loss = 0;  // sequential: the order must not depend on threads
  for (int64_t row = 0; row < n; ++row) loss -= log_probs[row * k + labels[row]];
  return loss / static_cast<double>(n);
}

// log_probs (N,K), labels (N) -> dlogits (N,K) += scale * (softmax - onehot)
template <class T>
void CpuKernels<T>::cross_entropy_backward(int64_t n, int64_t k, const T* log_probs,
                                           const int64_t* labels, T scale, T* dlogits) const {
#pragma omp parallel for schedule(static) if (n * k > kParallelGrain)
  for (int64_t row = 0; row < n; ++row) {
    const T* lp = log_probs + row * k;
    T* d = dlogits + row * k;
    // Masked classes have log-prob -inf, so exp() gives them zero gradient.
    for (int64_t j = 0; j < k; ++j)
      d[j] += scale * (std::exp(lp[j]) - (j == labels[row] ? T(1) : T(0)));
  }
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
