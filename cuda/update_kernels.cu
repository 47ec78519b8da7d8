// CUDA dropout and optimiser updates, one thread per element: the bodies are
// the CPU's own (engine/kernels/dropout_body.h, engine/kernels/update_bodies.h),
// so the same seed and counter give the same dropout mask on both devices.
#include "cuda/cuda_kernels.h"
#include "cuda/launch.cuh"
#include "engine/kernels/dropout_body.h"
#include "engine/kernels/update_bodies.h"

namespace engine::cuda {

// x (n) -> y (n) = x * mask
template <class T>
void CudaKernels<T>::dropout_forward(int64_t n, T p, uint64_t seed, uint64_t counter,
                                     const T* x, T* y) const {
  launch(*ctx_, "dropout_forward", n,
         kernels::DropoutForward<T>{kernels::DropoutMask<T>::of(p, seed, counter), x, y});
}

// dy (n) -> dx (n) += dy * mask
template <class T>
void CudaKernels<T>::dropout_backward(int64_t n, T p, uint64_t seed, uint64_t counter,
                                      const T* dy, T* dx) const {
  launch(*ctx_, "dropout_backward", n,
         kernels::DropoutBackward<T>{kernels::DropoutMask<T>::of(p, seed, counter), dy, dx});
}

// param, grad, momentum_buf (n) -> param, momentum_buf updated in place
template <class T>
void CudaKernels<T>::sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, T lr, T momentum,
                              T dampening, T weight_decay, bool nesterov, bool first) const {
  launch(*ctx_, "sgd_step", n,
         kernels::SgdStep<T>{param, grad, momentum_buf, lr, momentum, dampening, weight_decay,
                             nesterov, first});
}

// param, grad, m, v (n) -> param, m, v updated in place; step counts from 1
template <class T>
void CudaKernels<T>::adam_step(int64_t n, T* param, const T* grad, T* m, T* v, T lr, T beta1,
                               T beta2, T eps, T weight_decay, bool decoupled, int64_t step) const {
  launch(*ctx_, "adam_step", n,
         kernels::make_adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled,
                                 step));
}

template class CudaKernels<float>;
template class CudaKernels<double>;

}  // namespace engine::cuda
