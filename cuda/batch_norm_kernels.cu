// CUDA batch norm over x viewed as (N,C,HW) (bodies shared with the CPU:
// engine/kernels/batch_norm_bodies.h): one block per channel reduces its N*HW
// values in shared memory, then one thread per element normalises (forward)
// or forms dx (backward).
#include "cuda/cuda_kernels.h"
#include "cuda/launch.cuh"
#include "engine/kernels/batch_norm_bodies.h"

namespace engine::cuda {

namespace {

// Block ch: mean and biased variance of channel ch (two passes) -> save_mean,
// save_invstd and the running statistics.
template <class T>
__global__ void batch_norm_stats_kernel(int64_t n, int64_t c, int64_t hw, const T* x, T eps,
                                        T momentum, T* running_mean, T* running_var,
                                        T* save_mean, T* save_invstd) {
  const int64_t ch = blockIdx.x, count = n * hw;
  const double sum = block_sum(0, 1, count, kernels::ChannelValue<T>{x, c, hw, ch});
  const double mean = sum / static_cast<double>(count);
  const double squares =
      block_sum(0, 1, count, kernels::ChannelSquaredDeviation<T>{x, c, hw, ch, mean});
  if (threadIdx.x == 0)
    kernels::finish_batch_norm_stats(ch, sum, squares, count, eps, momentum, running_mean,
                                     running_var, save_mean, save_invstd);
}

// Block ch: sum(dy) and sum(dy * xhat) of channel ch -> dgamma, dbeta and the
// two means dx needs (dy passed by the folded ReLU where relu_output is non-null).
template <class T>
__global__ void batch_norm_backward_sums_kernel(int64_t n, int64_t c, int64_t hw, const T* x,
                                                const T* dy, const T* relu_output,
                                                const T* save_mean, const T* save_invstd,
                                                T* dgamma, T* dbeta, T* mean_dy,
                                                T* mean_dy_xhat) {
  const int64_t ch = blockIdx.x, count = n * hw;
  const double sum_dy =
      block_sum(0, 1, count, kernels::ChannelDy<T>{dy, relu_output, c, hw, ch});
  const double sum_dy_xhat =
      block_sum(0, 1, count,
                kernels::ChannelDyXhat<T>{x, dy, relu_output, c, hw, ch, save_mean[ch],
                                          save_invstd[ch]});
  if (threadIdx.x == 0)
    kernels::finish_batch_norm_backward(ch, sum_dy, sum_dy_xhat, count, dgamma, dbeta, mean_dy,
                               mean_dy_xhat);
}

}  // namespace

// x (N,C,HW), gamma/beta (C) or null -> y (N,C,HW), max(y, 0) with relu;
// save_mean, save_invstd (C); running_mean/var (C) updated in place unless null.
template <class T>
void CudaKernels<T>::batch_norm_forward_train(int64_t n, int64_t c, int64_t hw, const T* x,
                                              const T* gamma, const T* beta, T eps, T momentum,
                                              T* running_mean, T* running_var, T* save_mean,
                                              T* save_invstd, bool relu, T* y) const {
  if (c == 0 || n * hw == 0) return;
  batch_norm_stats_kernel<<<c, kThreads, 0, ctx_->stream>>>(
      n, c, hw, x, eps, momentum, running_mean, running_var, save_mean, save_invstd);
  check_cuda(cudaGetLastError(), "batch_norm_forward_train (statistics)");
  launch(*ctx_, "batch_norm_forward_train (normalise)", n * c * hw,
         kernels::BatchNormApply<T>{x, save_mean, save_invstd, gamma, beta, c, hw, relu, y});
}

// x (N,C,HW), gamma/beta (C) or null, running_mean/var (C) -> y (N,C,HW),
// max(y, 0) with relu
template <class T>
void CudaKernels<T>::batch_norm_forward_eval(int64_t n, int64_t c, int64_t hw, const T* x,
                                             const T* gamma, const T* beta, T eps,
                                             const T* running_mean, const T* running_var,
                                             bool relu, T* y) const {
  DeviceBuffer invstd(ctx_->allocator, static_cast<size_t>(c) * sizeof(T));
  launch(*ctx_, "batch_norm_forward_eval (invstd)", c,
         kernels::RunningInvstd<T>{running_var, eps, invstd.as<T>()});
  launch(*ctx_, "batch_norm_forward_eval (normalise)", n * c * hw,
         kernels::BatchNormApply<T>{x, running_mean, invstd.as<T>(), gamma, beta, c, hw, relu,
                                    y});
}

// x, dy (N,C,HW), relu_output (N,C,HW) or null, gamma (C) or null,
// save_mean/invstd (C) -> dx (N,C,HW) +=, dgamma (C) +=, dbeta (C) +=  (each
// skipped when null)
template <class T>
void CudaKernels<T>::batch_norm_backward(int64_t n, int64_t c, int64_t hw, const T* x,
                                         const T* dy, const T* relu_output, const T* gamma,
                                         const T* save_mean, const T* save_invstd, T* dx,
                                         T* dgamma, T* dbeta) const {
  if (c == 0 || n * hw == 0) return;
  DeviceBuffer means(ctx_->allocator, 2 * static_cast<size_t>(c) * sizeof(T));
  T* mean_dy = means.as<T>();
  T* mean_dy_xhat = mean_dy + c;
  batch_norm_backward_sums_kernel<<<c, kThreads, 0, ctx_->stream>>>(
      n, c, hw, x, dy, relu_output, save_mean, save_invstd, dgamma, dbeta, mean_dy, mean_dy_xhat);
  check_cuda(cudaGetLastError(), "batch_norm_backward (sums)");
  if (dx)
    launch(*ctx_, "batch_norm_backward (dx)", n * c * hw,
           kernels::BatchNormBackwardDx<T>{x, dy, relu_output, gamma, save_mean, save_invstd,
                                           mean_dy, mean_dy_xhat, c, hw, dx});
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
