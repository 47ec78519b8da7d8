// CUDA im2col / col2im (bodies in engine/kernels/window_bodies.h): one thread
// per element of cols (im2col) or of dx (col2im, a gather, so no two threads
// write one pixel).
#include "cuda/cuda_kernels.h"
#include "cuda/launch.cuh"
#include "engine/kernels/window_bodies.h"

namespace engine::cuda {

// x (C,H,W) -> cols (C*KH*KW, OH*OW). Overwrites.
template <class T>
void CudaKernels<T>::im2col(const Window2d& g, const T* x, T* cols) const {
  const kernels::WindowGeometry w = kernels::window_geometry(g);
  launch(*ctx_, "im2col", w.channels * w.kernel_h * w.kernel_w * w.out_h * w.out_w,
         kernels::Im2col<T>{w, x, cols});
}

// cols (C*KH*KW, OH*OW) -> dx (C,H,W). Accumulates.
template <class T>
void CudaKernels<T>::col2im(const Window2d& g, const T* cols, T* dx) const {
  const kernels::WindowGeometry w = kernels::window_geometry(g);
  launch(*ctx_, "col2im", w.channels * w.height * w.width, kernels::Col2im<T>{w, cols, dx});
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
