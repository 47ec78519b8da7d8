// CUDA fused log-softmax cross-entropy (bodies shared with the CPU:
// engine/kernels/loss_bodies.h): one thread per row forward, one per logit
// backward. Labels and the class mask arrive as host arrays and are uploaded
// per call (N and K values: small).
#include <optional>
#include <vector>

#include "cuda/cuda_kernels.h"
#include "cuda/launch.cuh"
#include "engine/kernels/loss_bodies.h"

namespace engine::cuda {

// logits (N,K), labels (N), mask (K) or null -> log_probs (N,K); returns the mean loss
template <class T>
double CudaKernels<T>::cross_entropy_forward(int64_t n, int64_t k, const T* logits,
                                             const int64_t* labels, const uint8_t* mask,
                                             T* log_probs) const {
  kernels::check_labels(n, k, labels, mask);
  if (n == 0) return 0;
  const DeviceBuffer device_labels = ctx_->upload(labels, static_cast<size_t>(n) * sizeof(int64_t));
  std::optional<DeviceBuffer> device_mask;
  if (mask) device_mask.emplace(ctx_->upload(mask, static_cast<size_t>(k)));
  launch(
      *ctx_, "cross_entropy_forward", n,
      kernels::LogSoftmaxRow<T>{logits, mask ? device_mask->as<uint8_t>() : nullptr, k, log_probs});
  DeviceBuffer picked(ctx_->allocator, static_cast<size_t>(n) * sizeof(T));
  launch(*ctx_, "cross_entropy_forward (loss terms)", n,
         kernels::PickLabel<T>{log_probs, device_labels.as<int64_t>(), k, picked.as<T>()});
  std::vector<T> terms(static_cast<size_t>(n));
  ctx_->copy_to_host(terms.data(), picked.as<T>(), terms.size() * sizeof(T));
  double loss = 0;  // in row order, as the CPU
  for (T term : terms) loss -= term;
  return loss / static_cast<double>(n);
}

// log_probs (N,K), labels (N) -> dlogits (N,K) += scale * (softmax - onehot)
template <class T>
void CudaKernels<T>::cross_entropy_backward(int64_t n, int64_t k, const T* log_probs,
                                            const int64_t* labels, T scale, T* dlogits) const {
  if (n * k == 0) return;
  const DeviceBuffer device_labels = ctx_->upload(labels, static_cast<size_t>(n) * sizeof(int64_t));
  launch(
      *ctx_, "cross_entropy_backward", n * k,
      kernels::CrossEntropyBackward<T>{log_probs, device_labels.as<int64_t>(), k, scale, dlogits});
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
