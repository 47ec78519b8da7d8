// Cross-entropy: fused log-softmax + negative log-likelihood, one row per
// sample. The per-row and per-logit formulas are the bodies shared with the
// CUDA backend (engine/kernels/loss_bodies.h).
#include "engine/cpu/cpu_kernels.h"
#include "engine/kernels/loss_bodies.h"

namespace engine::cpu {

// logits (N,K), labels (N), mask (K) or null -> log_probs (N,K), loss (1): the mean
template <class T>
void CpuKernels<T>::cross_entropy_forward(int64_t n, int64_t k, const T* logits,
                                          const int64_t* labels, const uint8_t* mask,
                                          T* log_probs, T* loss) const {
  kernels::check_labels(n, k, labels, mask);
  const kernels::LogSoftmaxRow<T> log_softmax_row{logits, mask, k, log_probs};
#pragma omp parallel for schedule(static) if (n * k > kParallelGrain)
  for (int64_t row = 0; row < n; ++row) log_softmax_row(row);
  kernels::MeanNegativeLogLikelihood<T>{log_probs, labels, n, k, loss}(0);
}

// log_probs (N,K), labels (N), dy (1) -> dlogits (N,K) += (dy / N) * (softmax - onehot)
template <class T>
void CpuKernels<T>::cross_entropy_backward(int64_t n, int64_t k, const T* log_probs,
                                           const int64_t* labels, const T* dy, T* dlogits) const {
  const kernels::CrossEntropyBackward<T> backward{log_probs, labels, dy, n, k, dlogits};
#pragma omp parallel for schedule(static) if (n * k > kParallelGrain)
  for (int64_t row = 0; row < n; ++row)
    for (int64_t j = 0; j < k; ++j) backward(row * k + j);
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
