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

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
