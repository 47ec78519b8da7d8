// matmul and linear: forward and backward through the backend's GEMM.
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

// a (M,K), b (K,N) -> y (M,N)
Tensor matmul(const Tensor& a, const Tensor& b) {
  check_ndim("matmul", "a", a, 2);
  check_ndim("matmul", "b", b, 2);
  check_same_dtype_device("matmul", a, b);
  if (a.dim(1) != b.dim(0))
    shape_error("matmul", "inner dimensions differ: a " + to_string(a.shape()) + " vs b " +
                              to_string(b.shape()));
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
  Tensor y = Tensor::empty({m, n}, a.dtype(), a.device());
  const Backend& be = backend(a.device());
  dispatch_dtype(a.dtype(), [&]<class T>() {
    be.kernels<T>().gemm(false, false, m, n, k, T(1), a.data<T>(), b.data<T>(), T(0), y.data<T>());
  });
  if (needs_grad({&a, &b})) {
    // Each gradient reads the other operand: keep an operand only for a gradient.
    const Tensor a_value = b.requires_grad() ? a : Tensor();
    const Tensor b_value = a.requires_grad() ? b : Tensor();
    record(y, "matmul", {a, b}, {a_value, b_value},
           [da = grad_target(a), db = grad_target(b), a_value, b_value, m, n, k](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        const Kernels<T>& kern = backend(dy.device()).kernels<T>();
        // da (M,K) += dy (M,N) b^T;  db (K,N) += a^T dy
        if (da.defined())
          kern.gemm(false, true, m, k, n, T(1), dy.data<T>(), b_value.data<T>(), T(1),
                    grad_buffer(da).data<T>());
        if (db.defined())
          kern.gemm(true, false, k, n, m, T(1), a_value.data<T>(), dy.data<T>(), T(1),
                    grad_buffer(db).data<T>());
      });
    });
  }
  return y;
}

// x (N,IN), weight (OUT,IN), bias (OUT) or undefined -> y (N,OUT) = x W^T + b
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_ndim("linear", "x", x, 2);
  check_ndim("linear", "weight", weight, 2);
  check_same_dtype_device("linear", x, weight);
  if (x.dim(1) != weight.dim(1))
    shape_error("linear", "x " + to_string(x.shape()) + " does not match weight " +
                              to_string(weight.shape()) + " (expected x (N," +
                              std::to_string(weight.dim(1)) + "))");
  if (bias.defined()) {
    check_same_dtype_device("linear", x, bias);
    if (bias.shape() != Shape{weight.dim(0)})
      shape_error("linear", "bias " + to_string(bias.shape()) + " does not match weight " +
                                to_string(weight.shape()));
  }
  const int64_t n = x.dim(0), in = x.dim(1), out = weight.dim(0);
  Tensor y = Tensor::empty({n, out}, x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    const Kernels<T>& kern = backend(x.device()).kernels<T>();
    if (bias.defined()) {
      // Seed each row with the bias, then accumulate x W^T on top (beta = 1).
      kern.copy_blocks(y.data<T>(), out, bias.data<T>(), 0, out, n);
      kern.gemm(false, true, n, out, in, T(1), x.data<T>(), weight.data<T>(), T(1), y.data<T>());
    } else {
      kern.gemm(false, true, n, out, in, T(1), x.data<T>(), weight.data<T>(), T(0), y.data<T>());
    }
  });
  if (needs_grad({&x, &weight, &bias})) {
    // dx reads W and dW reads x: keep each only for the gradient that reads it.
    const Tensor x_value = weight.requires_grad() ? x : Tensor();
    const Tensor weight_value = x.requires_grad() ? weight : Tensor();
    record(y, "linear", {x, weight, bias}, {x_value, weight_value},
           [dx = grad_target(x), dw = grad_target(weight), db = grad_target(bias), x_value,
            weight_value, n, in, out](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        const Kernels<T>& kern = backend(dy.device()).kernels<T>();
        // dx (N,IN) += dy (N,OUT) W;  dW (OUT,IN) += dy^T x;  db (OUT) += column sums of dy
        if (dx.defined())
          kern.gemm(false, false, n, in, out, T(1), dy.data<T>(), weight_value.data<T>(), T(1),
                    grad_buffer(dx).data<T>());
        if (dw.defined())
          kern.gemm(true, false, out, in, n, T(1), dy.data<T>(), x_value.data<T>(), T(1),
                    grad_buffer(dw).data<T>());
        if (db.defined()) {
          const int64_t dy_shape[2] = {n, out}, db_shape[2] = {1, out};
          kern.sum_to(dy.data<T>(), dy_shape, grad_buffer(db).data<T>(), db_shape, 2);
        }
      });
    });
  }
  return y;
}

}  // namespace engine
