// CUDA memory, element-wise and reduction kernels (bodies shared with
// the CPU: engine/kernels/elementwise_bodies.h).

#include "cuda/cuda_kernels.h"
#include "cuda/launch.cuh"
#include "engine/kernels/elementwise_bodies.h"

namespace engine::cuda {

namespace {

// out[o] += the sum of output o's inputs; one block per output (few, large sums).
template <class T>
__global__ void sum_to_blocks_kernel(kernels::SumToGeometry g, const T* x, T* out) {
  const int64_t o = blockIdx.x;
  const double total = block_sum(0, 1, g.reduce_numel, kernels::SumToInput<T>{g, x + g.base(o)});
  if (threadIdx.x == 0) out[o] += static_cast<T>(total);
}

}  // namespace

template <class T>
void CudaKernels<T>::fill(T* x, int64_t n, T value) const {
  launch(*ctx_, "fill", n, kernels::Fill<T>{x, value});
}

template <class T>
void CudaKernels<T>::copy(T* dst, const T* src, int64_t n) const {
  if (n <= 0 || dst == src) return;
  check_cuda(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(T),
                             cudaMemcpyDeviceToDevice, ctx_->stream),
             "cudaMemcpyAsync (copy)");
}

template <class T>
void CudaKernels<T>::copy_blocks(T* dst, int64_t dst_stride, const T* src, int64_t src_stride,
                                 int64_t block, int64_t count) const {
  launch(*ctx_, "copy_blocks", block * count,
         kernels::CopyBlocks<T>{dst, dst_stride, src, src_stride, block});
}

template <class T>
void CudaKernels<T>::transpose2d(T* out, const T* x, int64_t rows, int64_t cols) const {
  launch(*ctx_, "transpose2d", rows * cols, kernels::Transpose2d<T>{out, x, rows, cols});
}

template <class T>
void CudaKernels<T>::swap_leading_axes(T* out, const T* x, int64_t size_i, int64_t size_j,
                                       int64_t size_k) const {
  launch(*ctx_, "swap_leading_axes", size_i * size_j * size_k,
         kernels::SwapLeadingAxes<T>{out, x, size_i, size_j, size_k, size_j * size_k});
}

template <class T>
void CudaKernels<T>::stack_along_k(T* out, const T* x, int64_t stride, int64_t batch, int64_t k,
                                   int64_t other, bool k_along_rows) const {
  launch(*ctx_, "stack_along_k", batch * k * other,
         kernels::stack_along_k(out, x, stride, batch, k, other, k_along_rows));
}

template <class T>
void CudaKernels<T>::binary(BinaryOp op, const Broadcast& g, const T* a, const T* b,
                            T* out) const {
  launch(*ctx_, "binary", g.numel(), kernels::Binary<T>{op, g, a, b, out});
}

template <class T>
void CudaKernels<T>::sum_to(const T* x, const int64_t* x_shape, T* out, const int64_t* out_shape,
                            int ndim) const {
  const kernels::SumToGeometry g = kernels::make_sum_to_geometry(x_shape, out_shape, ndim);
  if (g.out_numel == 0) return;
  // A thread per output keeps many outputs busy; a block per output spreads
  // the few large sums (a bias gradient over N*H*W) over its threads.
  if (g.reduce_numel <= g.out_numel) {
    launch(*ctx_, "sum_to", g.out_numel, kernels::SumToOutput<T>{g, x, out});
    return;
  }
  sum_to_blocks_kernel<<<g.out_numel, kThreads, 0, ctx_->stream>>>(g, x, out);
  check_cuda(cudaGetLastError(), "sum_to (block per output)");
}

template <class T>
void CudaKernels<T>::axpy(int64_t n, T alpha, const T* x, T* y) const {
  launch(*ctx_, "axpy", n, kernels::Axpy<T>{alpha, x, y});
}

template <class T>
void CudaKernels<T>::scale(int64_t n, T alpha, const T* x, T* y) const {
  launch(*ctx_, "scale", n, kernels::Scale<T>{alpha, x, y});
}

template <class T>
void CudaKernels<T>::relu_forward(int64_t n, const T* x, T* y) const {
  launch(*ctx_, "relu_forward", n, kernels::ReluForward<T>{x, y});
}

template <class T>
void CudaKernels<T>::relu_backward(int64_t n, const T* x, const T* dy, T* dx) const {
  launch(*ctx_, "relu_backward", n, kernels::ReluBackward<T>{x, dy, dx});
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
