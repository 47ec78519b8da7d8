// GEMM through cuBLAS: the one file that calls it.
//
// cuBLAS is column-major. A row-major matrix read column-major is its
// transpose, so row-major C = op(A) op(B) is computed as the column-major
// product C^T = op(B)^T op(A)^T: swap the operands and m with n; the
// leading dimensions are the row-major row lengths.
#include <type_traits>

#include "cuda/cuda_check.h"
#include "cuda/cuda_kernels.h"

namespace engine::cuda {

namespace {

cublasOperation_t operation(bool transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

// cuBLAS wants leading dimensions >= 1 even for an empty (k = 0) operand.
int64_t leading_dimension(int64_t row_length) { return row_length > 0 ? row_length : 1; }

}  // namespace

// c (m,n) = alpha * op(a) op(b) + beta * c, row-major; a is (m,k) or (k,m) when trans_a.
template <class T>
void CudaKernels<T>::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                          const T* a, const T* b, T beta, T* c) const {
  if (m == 0 || n == 0) return;
  const int64_t lda = leading_dimension(trans_a ? m : k), ldb = leading_dimension(trans_b ? k : n);
  if constexpr (std::is_same_v<T, float>)
    check_cublas(cublasSgemm_64(ctx_->cublas, operation(trans_b), operation(trans_a), n, m, k,
                                &alpha, b, ldb, a, lda, &beta, c, n),
                 "cublasSgemm");
  else
    check_cublas(cublasDgemm_64(ctx_->cublas, operation(trans_b), operation(trans_a), n, m, k,
                                &alpha, b, ldb, a, lda, &beta, c, n),
                 "cublasDgemm");
}

// The same for `batch` products at element strides stride_a, stride_b, stride_c.
template <class T>
void CudaKernels<T>::gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n,
                                          int64_t k, T alpha, const T* a, int64_t stride_a,
                                          const T* b, int64_t stride_b, T beta, T* c,
                                          int64_t stride_c, int64_t batch) const {
  if (m == 0 || n == 0 || batch == 0) return;
  const int64_t lda = leading_dimension(trans_a ? m : k), ldb = leading_dimension(trans_b ? k : n);
  if constexpr (std::is_same_v<T, float>)
    check_cublas(cublasSgemmStridedBatched_64(ctx_->cublas, operation(trans_b), operation(trans_a),
                                              n, m, k, &alpha, b, ldb, stride_b, a, lda, stride_a,
                                              &beta, c, n, stride_c, batch),
                 "cublasSgemmStridedBatched");
  else
    check_cublas(cublasDgemmStridedBatched_64(ctx_->cublas, operation(trans_b), operation(trans_a),
                                              n, m, k, &alpha, b, ldb, stride_b, a, lda, stride_a,
                                              &beta, c, n, stride_c, batch),
                 "cublasDgemmStridedBatched");
}

// c (m,n) += alpha * sum_i op(a_i) op(b_i) as one product of depth batch*k:
// op(A) = [op(a_0) ... op(a_{batch-1})] (m, batch*k) and op(B) = the op(b_i)
// stacked (batch*k, n) (kernels::stack_along_k lays them out). One deep GEMM
// fills the GPU where `batch` shallow ones queue one after another. The
// stacked operands are scratch copies, as large as the operands they stack.
template <class T>
void CudaKernels<T>::gemm_batched_sum(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                      T alpha, const T* a, int64_t stride_a, const T* b,
                                      int64_t stride_b, T* c, int64_t batch) const {
  if (m == 0 || n == 0 || k == 0 || batch == 0) return;
  if (batch == 1) {  // nothing to stack
    gemm(trans_a, trans_b, m, n, k, alpha, a, b, T(1), c);
    return;
  }
  DeviceBuffer a_stacked(ctx_->allocator, static_cast<size_t>(batch * k * m) * sizeof(T));
  DeviceBuffer b_stacked(ctx_->allocator, static_cast<size_t>(batch * k * n) * sizeof(T));
  // a_i is stored (m, k) unless transposed, b_i (k, n) unless transposed.
  stack_along_k(a_stacked.as<T>(), a, stride_a, batch, k, m, !trans_a);
  stack_along_k(b_stacked.as<T>(), b, stride_b, batch, k, n, trans_b);
  gemm(trans_a, trans_b, m, n, batch * k, alpha, a_stacked.as<T>(), b_stacked.as<T>(), T(1), c);
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
