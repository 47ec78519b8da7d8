// The CUDA implementation of the primitive kernels (engine/backend.h).
// Members are defined across cuda/*.cu (and cuBLAS in blas_kernels.cpp), one
// concept per file, mirroring engine/cpu/:
//   blas_kernels.cpp         GEMM through cuBLAS (the only file calling it)
//   elementwise_kernels.cu   memory, element-wise ops, sum_to
//   conv_kernels.cu          im2col / col2im
//   pool_kernels.cu          max, average and adaptive average pooling
//   batch_norm_kernels.cu, loss_kernels.cu, update_kernels.cu (dropout, optimisers)
// Each kernel is a grid-stride loop over a body from engine/kernels/*.h (the
// bodies the CPU backend calls too), which the CPU tests also run over an
// emulated grid (tests/test_cuda_kernels.cpp).
#pragma once

#include "cuda/cuda_context.h"
#include "engine/backend.h"

namespace engine::cuda {

template <class T>
class CudaKernels final : public Kernels<T> {
 public:
  explicit CudaKernels(CudaContext* context) : ctx_(context) {}

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

 private:
  // Operands X_i of gemm_batched_sum's products -> out, laid along k for one
  // product (kernels::stack_along_k says how). Overwrites.
  void stack_along_k(T* out, const T* x, int64_t stride, int64_t batch, int64_t k, int64_t other,
                     bool k_along_rows) const;

  CudaContext* ctx_;
};

}  // namespace engine::cuda
