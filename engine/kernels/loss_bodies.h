// Bodies of the fused log-softmax cross-entropy kernels, shared by the CPU
// backend (engine/cpu/loss_kernels.cpp, in its OpenMP loops) and the CUDA
// backend (cuda/loss_kernels.cu; there labels and the class mask are device
// copies of the host arrays the kernels receive, uploaded without waiting).
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/host_device.h"

namespace engine::kernels {

// Host-side check of labels (N) against K classes and the mask (K) or null,
// before any work starts: a bad label is the caller's error, and an exception
// must not leave a parallel loop.
inline void check_labels(int64_t n, int64_t k, const int64_t* labels, const uint8_t* mask) {
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
}

// logits (N,K), mask (K) or null -> log_probs (N,K); one call per row.
// log softmax(z)_j = z_j - max - log(sum_i exp(z_i - max)) over allowed classes;
// subtracting the row maximum keeps every exp() in (0, 1]. Excluded classes get -inf.
template <class T>
struct LogSoftmaxRow {
  const T* logits;
  const uint8_t* mask;
  int64_t k;
  T* log_probs;
  ENGINE_HOST_DEVICE void operator()(int64_t row) const {
    const T* z = logits + row * k;
    T* out = log_probs + row * k;
    double max = -HUGE_VAL;
    for (int64_t j = 0; j < k; ++j)
      if ((!mask || mask[j]) && static_cast<double>(z[j]) > max) max = static_cast<double>(z[j]);
    double sum_exp = 0;
    for (int64_t j = 0; j < k; ++j)
      if (!mask || mask[j]) sum_exp += std::exp(static_cast<double>(z[j]) - max);
    const double log_normaliser = max + std::log(sum_exp);
    for (int64_t j = 0; j < k; ++j)
      out[j] = !mask || mask[j] ? static_cast<T>(static_cast<double>(z[j]) - log_normaliser)
                                : static_cast<T>(-HUGE_VAL);
  }
};

// loss (one element) = -(1/N) sum over rows of log_probs[row, labels[row]],
// summed in double in row order by one call (index 0): the same bits on every
// device and thread count, and a sum of N terms, N being a batch, is too
// short to be worth a parallel reduction.
template <class T>
struct MeanNegativeLogLikelihood {
  const T* log_probs;
  const int64_t* labels;
  int64_t n, k;
  T* loss;
  ENGINE_HOST_DEVICE void operator()(int64_t) const {
    double sum = 0;
    for (int64_t row = 0; row < n; ++row) sum -= log_probs[row * k + labels[row]];
    *loss = static_cast<T>(sum / static_cast<double>(n));
  }
};

// dlogits (N,K) += (dy / N) * (softmax - onehot), element i = row*K + j, dy
// being the loss's gradient (one element), read where it lies so that the
// host need not fetch it. Masked classes have log-prob -inf, so exp() gives
// them zero gradient.
template <class T>
struct CrossEntropyBackward {
  const T* log_probs;
  const int64_t* labels;
  const T* dy;
  int64_t n, k;
  T* dlogits;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t row = i / k, j = i % k;
    const T scale = static_cast<T>(static_cast<double>(*dy) / static_cast<double>(n));
    dlogits[i] += scale * (std::exp(log_probs[i]) - (j == labels[row] ? T(1) : T(0)));
  }
};

}  // namespace engine::kernels
