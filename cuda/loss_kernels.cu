// CUDA fused log-softmax cross-entropy (bodies shared with the CPU:
// engine/kernels/loss_bodies.h): one thread per row forward, one thread for
// the mean over rows, one per logit backward. Labels and the class mask arrive
// as host arrays and are uploaded per call (N and K values: small) through
// pinned staging, so neither direction makes the host wait for the GPU: the
// loss stays on the device, and the backward reads its dy there.
#include <optional>

#include "cuda/cuda_kernels.h"
#include "cuda/launch.cuh"
#include "engine/kernels/loss_bodies.h"

namespace engine::cuda {

// logits (N,K), labels (N), mask (K) or null -> log_probs (N,K), loss (1): the mean
template <class T>
void CudaKernels<T>::cross_entropy_forward(int64_t n, int64_t k, const T* logits,
                                           const int64_t* labels, const uint8_t* mask,
                                           T* log_probs, T* loss) const {
  kernels::check_labels(n, k, labels, mask);
  if (n == 0) return;
  const DeviceBuffer device_labels = ctx_->upload(labels, static_cast<size_t>(n) * sizeof(int64_t));
  std::optional<DeviceBuffer> device_mask;
  if (mask) device_mask.emplace(ctx_->upload(mask, static_cast<size_t>(k)));
  launch(
      *ctx_, "cross_entropy_forward", n,
      kernels::LogSoftmaxRow<T>{logits, mask ? device_mask->as<uint8_t>() : nullptr, k, log_probs});
  launch(*ctx_, "cross_entropy_forward (mean)", 1,
         kernels::MeanNegativeLogLikelihood<T>{log_probs, device_labels.as<int64_t>(), n, k, loss});
}

// log_probs (N,K), labels (N), dy (1) -> dlogits (N,K) += (dy / N) * (softmax - onehot)
template <class T>
void CudaKernels<T>::cross_entropy_backward(int64_t n, int64_t k, const T* log_probs,
                                            const int64_t* labels, const T* dy, T* dlogits) const {
  if (n * k == 0) return;
  const DeviceBuffer device_labels = ctx_->upload(labels, static_cast<size_t>(n) * sizeof(int64_t));
  launch(*ctx_, "cross_entropy_backward", n * k,
         kernels::CrossEntropyBackward<T>{log_probs, device_labels.as<int64_t>(), dy, n, k, dlogits});
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
