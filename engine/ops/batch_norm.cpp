// batch_norm2d: per-channel normalisation of NCHW activations, training and
// evaluation modes, forward and backward; batch_norm2d_relu, the same
// followed by a ReLU in one op.
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

// A per-channel tensor (C), or undefined where `optional` allows it.
void check_channel_tensor(const char* op, const Tensor& x, const Tensor& t, const std::string& arg,
                          bool optional) {
  if (!t.defined()) {
    if (optional) return;
    shape_error(op, arg + " is undefined but required here");
  }
  check_same_dtype_device(op, x, t);
  if (t.shape() != Shape{x.dim(1)})
    shape_error(op, arg + " " + to_string(t.shape()) + " does not match x " + to_string(x.shape()) +
                        " (expected (" + std::to_string(x.dim(1)) + "))");
}

template <class T>
T* data_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// The op's name in autograd's messages.
const char* op_name(bool relu, bool training) {
  if (relu) return training ? "batch_norm2d_relu" : "batch_norm2d_relu_eval";
  return training ? "batch_norm2d" : "batch_norm2d_eval";
}

// Training: batch statistics normalise; the backward needs them (saved mean and
// 1/sqrt(var + eps) per channel) because every output depends on every input
// of its channel through them. With relu the backward also reads the output,
// whose sign is ReLU's mask.
Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        Tensor& running_mean, Tensor& running_var, double momentum, double eps,
                        bool relu) {
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  if (n * hw < 2)
    shape_error(op_name(relu, true),
                "training needs more than one value per channel, got x " + to_string(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor save_mean = Tensor::empty({c}, x.dtype(), x.device());
  Tensor save_invstd = Tensor::empty({c}, x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().batch_norm_forward_train(
        n, c, hw, x.data<T>(), data_or_null<T>(gamma), data_or_null<T>(beta),
        static_cast<T>(eps), static_cast<T>(momentum), data_or_null<T>(running_mean),
        data_or_null<T>(running_var), save_mean.data<T>(), save_invstd.data<T>(), relu,
        y.data<T>());
  });
  for (Tensor* stats : {&running_mean, &running_var})
    if (stats->defined()) stats->bump_version("batch_norm2d (running statistics)");
  if (!needs_grad({&x, &gamma, &beta})) return y;
  // The node keeps the output through a detached handle: one holding y itself
  // would hold y's node and never be freed.
  const Tensor relu_output = relu ? y.detach() : Tensor();
  record(y, op_name(relu, true), {x, gamma, beta}, {x, gamma, relu_output},
         [x, gamma, beta, save_mean, save_invstd, relu_output, n, c, hw](const Tensor& dy) {
    dispatch_dtype(dy.dtype(), [&]<class T>() {
      // dx, dgamma, dbeta accumulate; null skips those nobody needs.
      T* dx = x.requires_grad() ? grad_buffer(x).data<T>() : nullptr;
      T* dgamma = gamma.defined() && gamma.requires_grad() ? grad_buffer(gamma).data<T>() : nullptr;
      T* dbeta = beta.defined() && beta.requires_grad() ? grad_buffer(beta).data<T>() : nullptr;
      backend(dy.device()).kernels<T>().batch_norm_backward(
          n, c, hw, x.data<T>(), dy.data<T>(), data_or_null<T>(relu_output),
          data_or_null<T>(gamma), save_mean.data<T>(), save_invstd.data<T>(), dx, dgamma, dbeta);
    });
  });
  return y;
}

// Evaluation: y = xhat * gamma + beta with xhat = (x - running_mean) / sqrt(running_var + eps),
// an affine map of x per channel. Its backward reuses the two batch norm kernels:
//   dx = dy * gamma / sqrt(running_var + eps)   = the eval forward applied to dy with mean 0;
//   dgamma = sum(dy * xhat), dbeta = sum(dy)      = the training backward on xhat with
//                                                   mean 0, invstd 1 (its dx left out).
// With relu, dy first goes through ReLU's backward (masked by the output) into
// a buffer of its own, since the first of these reuses the forward kernel.
Tensor batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const Tensor& running_mean, const Tensor& running_var, double eps,
                       bool relu) {
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().batch_norm_forward_eval(
        n, c, hw, x.data<T>(), data_or_null<T>(gamma), data_or_null<T>(beta),
        static_cast<T>(eps), running_mean.data<T>(), running_var.data<T>(), relu, y.data<T>());
  });
  if (!needs_grad({&x, &gamma, &beta})) return y;
  // Copies: a later training-mode call may update the running statistics in
  // place before this backward runs.
  const Tensor mean = running_mean.clone(), var = running_var.clone();
  const Tensor relu_output = relu ? y.detach() : Tensor();  // as in batch_norm_train
  record(y, op_name(relu, false), {x, gamma, beta}, {x, gamma, relu_output},
         [x, gamma, beta, mean, var, eps, relu_output, n, c, hw](const Tensor& dy_out) {
    dispatch_dtype(dy_out.dtype(), [&]<class T>() {
      const Kernels<T>& kern = backend(dy_out.device()).kernels<T>();
      Tensor dy = dy_out;
      if (relu_output.defined()) {
        dy = Tensor::zeros(x.shape(), x.dtype(), x.device());
        kern.relu_backward(dy.numel(), relu_output.data<T>(), dy_out.data<T>(), dy.data<T>());
      }
      const Tensor zeros = Tensor::zeros({c}, dy.dtype(), dy.device());
      if (x.requires_grad()) {
        Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        kern.batch_norm_forward_eval(n, c, hw, dy.data<T>(), data_or_null<T>(gamma), nullptr,
                                     static_cast<T>(eps), zeros.data<T>(), var.data<T>(),
                                     /*relu=*/false, dx.data<T>());
        kern.axpy(dx.numel(), T(1), dx.data<T>(), grad_buffer(x).data<T>());
      }
      T* dgamma = gamma.defined() && gamma.requires_grad() ? grad_buffer(gamma).data<T>() : nullptr;
      T* dbeta = beta.defined() && beta.requires_grad() ? grad_buffer(beta).data<T>() : nullptr;
      if (!dgamma && !dbeta) return;
      Tensor xhat = Tensor::empty(x.shape(), x.dtype(), x.device());
      kern.batch_norm_forward_eval(n, c, hw, x.data<T>(), nullptr, nullptr, static_cast<T>(eps),
                                   mean.data<T>(), var.data<T>(), /*relu=*/false, xhat.data<T>());
      const Tensor ones = Tensor::full({c}, 1.0, dy.dtype(), dy.device());
      kern.batch_norm_backward(n, c, hw, xhat.data<T>(), dy.data<T>(), nullptr, nullptr,
                               zeros.data<T>(), ones.data<T>(), nullptr, dgamma, dbeta);
    });
  });
  return y;
}

// Checks shared by batch_norm2d and batch_norm2d_relu, then the mode's op.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, double momentum, double eps, bool relu) {
  const char* name = op_name(relu, true);
  check_ndim(name, "x", x, 4);
  check_channel_tensor(name, x, gamma, "gamma", /*optional=*/true);
  check_channel_tensor(name, x, beta, "beta", /*optional=*/true);
  // Training may go without running statistics (track_running_stats=False);
  // evaluation normalises with them.
  check_channel_tensor(name, x, running_mean, "running_mean", /*optional=*/training);
  check_channel_tensor(name, x, running_var, "running_var", /*optional=*/training);
  if (running_mean.defined() != running_var.defined())
    shape_error(name, "running_mean and running_var must be both defined or both undefined");
  if (!(eps > 0)) shape_error(name, "eps must be > 0, got " + std::to_string(eps));
  if (training)
    return batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps, relu);
  return batch_norm_eval(x, gamma, beta, running_mean, running_var, eps, relu);
}

}  // namespace

// x (N,C,H,W); gamma, beta (C) or undefined; running_mean, running_var (C)
//   -> y (N,C,H,W)
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    Tensor& running_mean, Tensor& running_var, bool training, double momentum,
                    double eps) {
  return batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                    /*relu=*/false);
}

// As batch_norm2d, then max(y, 0)
Tensor batch_norm2d_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         Tensor& running_mean, Tensor& running_var, bool training,
                         double momentum, double eps) {
  return batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                    /*relu=*/true);
}

}  // namespace engine
