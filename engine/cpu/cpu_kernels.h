// The CPU implementation of the primitive kernels (engine/backend.h).
// Members are defined across engine/cpu/*.cpp, one concept per file:
//   cpu_backend.cpp   memory, BLAS (OpenBLAS), element-wise, the Backend object
//   conv_kernels.cpp  im2col / col2im
//   pool_kernels.cpp  max, average and adaptive average pooling
//   batch_norm_kernels.cpp, loss_kernels.cpp, dropout_kernels.cpp, optim_kernels.cpp
// Loops are parallelised with OpenMP over disjoint outputs (see parallel.h);
// the element-wise ones also run compiled for AVX2 or AVX-512 where the CPU
// has them, with the same bits (isa.h).
#pragma once

#include "engine/backend.h"

namespace engine::cpu {

// Loops shorter than this run on one thread: forking costs more than it saves.
constexpr int64_t kParallelGrain = 1 << 15;

template <class T>
class CpuKernels final : public Kernels<T> {
 public:
  void fill(T* x, int64_t n, T value) const override;
  void copy(T* dst, const T* src, int64_t n) const override;
  void copy_blocks(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t block,
                   int64_t count) const override;
  void transpose2d(T* out, const T* x, int64_t rows, int64_t cols) const override;
  void swap_leading_axes(T* out, const T* x, int64_t size_i, int64_t size_j,
                         int64_t size_k) const override;

  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
            const T* b, T beta, T* c) const override;
  void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                            const T* a, int64_t stride_a, const T* b, int64_t stride_b, T beta,
                            T* c, int64_t stride_c, int64_t batch) const override;
  void gemm_batched_sum(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                        const T* a, int64_t stride_a, const T* b, int64_t stride_b, T* c,
                        int64_t batch) const override;

  void binary(BinaryOp op, const Broadcast& geometry, const T* a, const T* b,
              T* out) const override;
  void sum_to(const T* x, const int64_t* x_shape, T* out, const int64_t* out_shape,
              int ndim) const override;
  void axpy(int64_t n, T alpha, const T* x, T* y) const override;
  void scale(int64_t n, T alpha, const T* x, T* y) const override;
  void relu_forward(int64_t n, const T* x, T* y) const override;
  void relu_backward(int64_t n, const T* x, const T* dy, T* dx) const override;

  void im2col(const Window2d& g, const T* x, T* cols) const override;
  void col2im(const Window2d& g, const T* cols, T* dx) const override;

  void max_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y,
                        int32_t* argmax) const override;
  void max_pool_backward(const Window2d& g, int64_t batch, const T* dy, const int32_t* argmax,
                         T* dx) const override;
  void avg_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y) const override;
  void avg_pool_backward(const Window2d& g, int64_t batch, const T* dy, T* dx) const override;
  void adaptive_avg_pool_forward(const Window2d& g, int64_t out_h, int64_t out_w, int64_t batch,
                                 const T* x, T* y) const override;
  void adaptive_avg_pool_backward(const Window2d& g, int64_t out_h, int64_t out_w, int64_t batch,
                                  const T* dy, T* dx) const override;

  void batch_norm_forward_train(int64_t n, int64_t c, int64_t hw, const T* x, const T* gamma,
                                const T* beta, T eps, T momentum, T* running_mean,
                                T* running_var, T* save_mean, T* save_invstd, bool relu,
                                T* y) const override;
  void batch_norm_forward_eval(int64_t n, int64_t c, int64_t hw, const T* x, const T* gamma,
                               const T* beta, T eps, const T* running_mean,
                               const T* running_var, bool relu, T* y) const override;
  void batch_norm_backward(int64_t n, int64_t c, int64_t hw, const T* x, const T* dy,
                           const T* relu_output, const T* gamma, const T* save_mean,
                           const T* save_invstd, T* dx, T* dgamma, T* dbeta) const override;

  void cross_entropy_forward(int64_t n, int64_t k, const T* logits, const int64_t* labels,
                             const uint8_t* mask, T* log_probs, T* loss) const override;
  void cross_entropy_backward(int64_t n, int64_t k, const T* log_probs, const int64_t* labels,
                              const T* dy, T* dlogits) const override;

  void dropout_forward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* x,
                       T* y) const override;
  void dropout_backward(int64_t n, T p, uint64_t seed, uint64_t counter, const T* dy,
                        T* dx) const override;

  void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, T lr, T momentum,
                T dampening, T weight_decay, bool nesterov, bool first) const override;
  void adam_step(int64_t n, T* param, const T* grad, T* m, T* v, T lr, T beta1, T beta2, T eps,
                 T weight_decay, bool decoupled, int64_t step) const override;
};

}  // namespace engine::cpu
