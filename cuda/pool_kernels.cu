// CUDA max, average and adaptive average pooling (bodies shared with the CPU:
// engine/kernels/window_bodies.h):
// forward kernels take one thread per output, backward ones one per input
// pixel (gathers, so no two threads write one pixel).
#include "cuda/cuda_kernels.h"
#include "cuda/launch.cuh"
#include "engine/kernels/window_bodies.h"

namespace engine::cuda {

// x (N,C,H,W) -> y, argmax (N,C,OH,OW). Overwrites.
template <class T>
void CudaKernels<T>::max_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y,
                                      int32_t* argmax) const {
  const kernels::WindowGeometry w = kernels::window_geometry(g);
  launch(*ctx_, "max_pool_forward", batch * w.channels * w.out_h * w.out_w,
         kernels::MaxPoolForward<T>{w, x, y, argmax});
}

// dy, argmax (N,C,OH,OW) -> dx (N,C,H,W). Accumulates.
template <class T>
void CudaKernels<T>::max_pool_backward(const Window2d& g, int64_t batch, const T* dy,
                                       const int32_t* argmax, T* dx) const {
  const kernels::WindowGeometry w = kernels::window_geometry(g);
  launch(*ctx_, "max_pool_backward", batch * w.channels * w.height * w.width,
         kernels::MaxPoolBackward<T>{w, dy, argmax, dx});
}

// x (N,C,H,W) -> y (N,C,OH,OW). Overwrites.
template <class T>
void CudaKernels<T>::avg_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y) const {
  const kernels::WindowGeometry w = kernels::window_geometry(g);
  launch(*ctx_, "avg_pool_forward", batch * w.channels * w.out_h * w.out_w,
         kernels::AvgPoolForward<T>{w, x, y});
}

// dy (N,C,OH,OW) -> dx (N,C,H,W). Accumulates.
template <class T>
void CudaKernels<T>::avg_pool_backward(const Window2d& g, int64_t batch, const T* dy,
                                       T* dx) const {
  const kernels::WindowGeometry w = kernels::window_geometry(g);
  launch(*ctx_, "avg_pool_backward", batch * w.channels * w.height * w.width,
         kernels::AvgPoolBackward<T>{w, dy, dx});
}

// x (N,C,H,W) -> y (N,C,out_h,out_w). Overwrites.
template <class T>
void CudaKernels<T>::adaptive_avg_pool_forward(const Window2d& g, int64_t out_h, int64_t out_w,
                                               int64_t batch, const T* x, T* y) const {
  const kernels::WindowGeometry w = kernels::adaptive_window_geometry(g, out_h, out_w);
  launch(*ctx_, "adaptive_avg_pool_forward", batch * w.channels * out_h * out_w,
         kernels::AdaptiveAvgPoolForward<T>{w, x, y});
}

// dy (N,C,out_h,out_w) -> dx (N,C,H,W). Accumulates.
template <class T>
void CudaKernels<T>::adaptive_avg_pool_backward(const Window2d& g, int64_t out_h, int64_t out_w,
                                                int64_t batch, const T* dy, T* dx) const {
  const kernels::WindowGeometry w = kernels::adaptive_window_geometry(g, out_h, out_w);
  launch(*ctx_, "adaptive_avg_pool_backward", batch * w.channels * w.height * w.width,
         kernels::AdaptiveAvgPoolBackward<T>{w, dy, dx});
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
