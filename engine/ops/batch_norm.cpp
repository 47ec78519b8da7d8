// batch_norm2d: per-channel normalisation of NCHW activations, training and
// evaluation modes, forward and backward.
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

// A per-channel tensor (C), or undefined where `optional` allows it.
void check_channel_tensor(const Tensor& x, const Tensor& t, const std::string& arg,
                          bool optional) {
  if (!t.defined()) {
    if (optional) return;
    shape_error("batch_norm2d", arg + " is undefined but required here");
  }
  check_same_dtype_device("batch_norm2d", x, t);
  if (t.shape() != Shape{x.dim(1)})
    shape_error("batch_norm2d", arg + " " + to_string(t.shape()) + " does not match x " +
                                    to_string(x.shape()) + " (expected (" +
                                    std::to_string(x.dim(1)) + "))");
}

template <class T>
T* data_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Training: batch statistics normalise; the backward needs them (saved mean and
// 1/sqrt(var + eps) per channel) because every output depends on every input
// of its channel through them.
Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        Tensor& running_mean, Tensor& running_var, double momentum, double eps) {
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  if (n * hw < 2)
    shape_error("batch_norm2d", "training needs more than one value per channel, got x " +
                                    to_string(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor save_mean = Tensor::empty({c}, x.dtype(), x.device());
  Tensor save_invstd = Tensor::empty({c}, x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().batch_norm_forward_train(
        n, c, hw, x.data<T>(), data_or_null<T>(gamma), data_or_null<T>(beta),
        static_cast<T>(eps), static_cast<T>(momentum), data_or_null<T>(running_mean),
        data_or_null<T>(running_var), save_mean.data<T>(), save_invstd.data<T>(), y.data<T>());
  });
  for (Tensor* stats : {&running_mean, &running_var})
    if (stats->defined()) stats->bump_version("batch_norm2d (running statistics)");
  if (!needs_grad({&x, &gamma, &beta})) return y;
  record(y, "batch_norm2d", {x, gamma, beta}, {x, gamma},
         [x, gamma, beta, save_mean, save_invstd, n, c, hw](const Tensor& dy) {
    dispatch_dtype(dy.dtype(), [&]<class T>() {
      // dx, dgamma, dbeta accumulate; null skips those nobody needs.
      T* dx = x.requires_grad() ? grad_buffer(x).data<T>() : nullptr;
      T* dgamma = gamma.defined() && gamma.requires_grad() ? grad_buffer(gamma).data<T>() : nullptr;
      T* dbeta = beta.defined() && beta.requires_grad() ? grad_buffer(beta).data<T>() : nullptr;
      backend(dy.device()).kernels<T>().batch_norm_backward(
          n, c, hw, x.data<T>(), dy.data<T>(), data_or_null<T>(gamma), save_mean.data<T>(),
          save_invstd.data<T>(), dx, dgamma, dbeta);
    });
  });
  return y;
}

// Evaluation: y = xhat * gamma + beta with xhat = (x - running_mean) / sqrt(running_var + eps),
// an affine map of x per channel. Its backward reuses the two batch norm kernels:
//   dx = dy * gamma / sqrt(running_var + eps)   = the eval forward applied to dy with mean 0;
//   dgamma = sum(dy * xhat), dbeta = sum(dy)      = the training backward on xhat with
//                                                   mean 0, invstd 1 (its dx left out).
Tensor batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const Tensor& running_mean, const Tensor& running_var, double eps) {
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().batch_norm_forward_eval(
        n, c, hw, x.data<T>(), data_or_null<T>(gamma), data_or_null<T>(beta),
        static_cast<T>(eps), running_mean.data<T>(), running_var.data<T>(), y.data<T>());
  });
  if (!needs_grad({&x, &gamma, &beta})) return y;
  // Copies: a later training-mode call may update the running statistics in
  // place before this backward runs.
  const Tensor mean = running_mean.clone(), var = running_var.clone();
  record(y, "batch_norm2d_eval", {x, gamma, beta}, {x, gamma},
         [x, gamma, beta, mean, var, eps, n, c, hw](const Tensor& dy) {
    dispatch_dtype(dy.dtype(), [&]<class T>() {
      const Kernels<T>& kern = backend(dy.device()).kernels<T>();
      const Tensor zeros = Tensor::zeros({c}, dy.dtype(), dy.device());
      if (x.requires_grad()) {
        Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        kern.batch_norm_forward_eval(n, c, hw, dy.data<T>(), data_or_null<T>(gamma), nullptr,
                                     static_cast<T>(eps), zeros.data<T>(), var.data<T>(),
                                     dx.data<T>());
        kern.axpy(dx.numel(), T(1), dx.data<T>(), grad_buffer(x).data<T>());
      }
      T* dgamma = gamma.defined() && gamma.requires_grad() ? grad_buffer(gamma).data<T>() : nullptr;
      T* dbeta = beta.defined() && beta.requires_grad() ? grad_buffer(beta).data<T>() : nullptr;
      if (!dgamma && !dbeta) return;
      Tensor xhat = Tensor::empty(x.shape(), x.dtype(), x.device());
      kern.batch_norm_forward_eval(n, c, hw, x.data<T>(), nullptr, nullptr, static_cast<T>(eps),
                                   mean.data<T>(), var.data<T>(), xhat.data<T>());
      const Tensor ones = Tensor::full({c}, 1.0, dy.dtype(), dy.device());
      kern.batch_norm_backward(n, c, hw, xhat.data<T>(), dy.data<T>(), nullptr, zeros.data<T>(),
                               ones.data<T>(), nullptr, dgamma, dbeta);
    });
  });
  return y;
}

}  // namespace

// x (N,C,H,W); gamma, beta (C) or undefined; running_mean, running_var (C)
//   -> y (N,C,H,W)
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    Tensor& running_mean, Tensor& running_var, bool training, double momentum,
                    double eps) {
  check_ndim("batch_norm2d", "x", x, 4);
  check_channel_tensor(x, gamma, "gamma", /*optional=*/true);
  check_channel_tensor(x, beta, "beta", /*optional=*/true);
  // Training may go without running statistics (track_running_stats=False);
  // evaluation normalises with them.
  check_channel_tensor(x, running_mean, "running_mean", /*optional=*/training);
  check_channel_tensor(x, running_var, "running_var", /*optional=*/training);
  if (running_mean.defined() != running_var.defined())
    shape_error("batch_norm2d", "running_mean and running_var must be both defined or both undefined");
  if (!(eps > 0)) shape_error("batch_norm2d", "eps must be > 0, got " + std::to_string(eps));
  if (training)
    return batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps);
  return batch_norm_eval(x, gamma, beta, running_mean, running_var, eps);
}

}  // namespace engine
