// Element-wise ops with NumPy broadcasting, and relu.
#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
  }
  return "binary";
}

// Pads a shape with leading 1s to `ndim` dimensions.
Shape padded(const Shape& shape, size_t ndim) {
  Shape out(ndim - shape.size(), 1);
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const size_t ndim = std::max(a.size(), b.size());
  if (ndim > static_cast<size_t>(kMaxDims))
    shape_error(op, "at most " + std::to_string(kMaxDims) + " dimensions, got " + to_string(a) +
                        " and " + to_string(b));
  const Shape pa = padded(a, ndim), pb = padded(b, ndim);
  Shape out(ndim);
  for (size_t d = 0; d < ndim; ++d) {
    if (pa[d] != pb[d] && pa[d] != 1 && pb[d] != 1)
      shape_error(op, "shapes " + to_string(a) + " and " + to_string(b) + " do not broadcast");
    out[d] = pa[d] == 1 ? pb[d] : pa[d];
  }
  return out;
}

// Strides of a row-major `shape` read as `out` (stride 0 where it broadcasts).
void broadcast_strides(const Shape& shape, const Shape& out, int64_t* strides) {
  const Shape p = padded(shape, out.size());
  int64_t stride = 1;
  for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
    strides[d] = p[d] == 1 ? 0 : stride;
    stride *= p[d];
  }
}

Broadcast make_broadcast(const Shape& a, const Shape& b, const Shape& out) {
  Broadcast g;
  g.ndim = static_cast<int>(out.size());
  std::copy(out.begin(), out.end(), g.out_shape);
  broadcast_strides(a, out, g.a_strides);
  broadcast_strides(b, out, g.b_strides);
  return g;
}

// Raw out = a (op) b for tensors already checked to broadcast to out_shape.
Tensor apply_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  const Broadcast g = make_broadcast(a.shape(), b.shape(), out_shape);
  dispatch_dtype(a.dtype(), [&]<class T>() {
    backend(a.device()).kernels<T>().binary(op, g, a.data<T>(), b.data<T>(), out.data<T>());
  });
  return out;
}

// grad_buffer(target) += alpha * (x summed down to target's shape).
void accumulate_reduced(const Tensor& target, const Tensor& x, double alpha) {
  const Shape out = padded(target.shape(), x.shape().size());
  if (out == x.shape()) {  // nothing to sum: x passed on (the same values as sum_to's)
    pass_gradient(target, x, alpha);
    return;
  }
  dispatch_dtype(x.dtype(), [&]<class T>() {
    const Kernels<T>& kern = backend(x.device()).kernels<T>();
    Tensor g = grad_buffer(target);
    if (alpha == 1.0) {
      kern.sum_to(x.data<T>(), x.shape().data(), g.data<T>(), out.data(), x.ndim());
    } else {
      Tensor reduced = Tensor::zeros(target.shape(), x.dtype(), x.device());
      kern.sum_to(x.data<T>(), x.shape().data(), reduced.data<T>(), out.data(), x.ndim());
      kern.axpy(g.numel(), static_cast<T>(alpha), reduced.data<T>(), g.data<T>());
    }
  });
}

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = op_name(op);
  check_same_dtype_device(name, a, b);
  const Shape out_shape = broadcast_shape(name, a.shape(), b.shape());
  Tensor y = apply_binary(op, a, b, out_shape);
  if (!needs_grad({&a, &b})) return y;
  // add and sub read no operand values; mul and div keep an operand only for
  // a gradient that reads it.
  const bool reads = op == BinaryOp::mul || op == BinaryOp::div;
  const Tensor a_value = reads && b.requires_grad() ? a : Tensor();
  const Tensor b_value = reads && (a.requires_grad() || op == BinaryOp::div) ? b : Tensor();
  record(y, name, {a, b}, {a_value, b_value},
         [op, da = grad_target(a), db = grad_target(b), a_value, b_value,
          out_shape](const Tensor& dy) {
    switch (op) {
      case BinaryOp::add:  // da = dy, db = dy
        if (da.defined()) accumulate_reduced(da, dy, 1.0);
        if (db.defined()) accumulate_reduced(db, dy, 1.0);
        break;
      case BinaryOp::sub:  // da = dy, db = -dy
        if (da.defined()) accumulate_reduced(da, dy, 1.0);
        if (db.defined()) accumulate_reduced(db, dy, -1.0);
        break;
      case BinaryOp::mul:  // da = dy b, db = dy a
        if (da.defined())
          accumulate_reduced(da, apply_binary(BinaryOp::mul, dy, b_value, out_shape), 1.0);
        if (db.defined())
          accumulate_reduced(db, apply_binary(BinaryOp::mul, dy, a_value, out_shape), 1.0);
        break;
      case BinaryOp::div:  // da = dy / b, db = -dy a / b^2 = -(dy / b) * (a / b)
        const Tensor dy_over_b = apply_binary(BinaryOp::div, dy, b_value, out_shape);
        if (da.defined()) accumulate_reduced(da, dy_over_b, 1.0);
        if (db.defined()) {
          const Tensor a_over_b = apply_binary(BinaryOp::div, a_value, b_value, out_shape);
          accumulate_reduced(db, apply_binary(BinaryOp::mul, dy_over_b, a_over_b, out_shape), -1.0);
        }
        break;
    }
  });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::div, a, b); }

// x (any) -> alpha * x
Tensor mul_scalar(const Tensor& x, double alpha) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().scale(y.numel(), static_cast<T>(alpha), x.data<T>(), y.data<T>());
  });
  if (needs_grad({&x})) {
    record(y, "mul_scalar", {x}, {}, [x, alpha](const Tensor& dy) { pass_gradient(x, dy, alpha); });
  }
  return y;
}

// x (any) -> max(x, 0)
Tensor relu(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().relu_forward(x.numel(), x.data<T>(), y.data<T>());
  });
  if (needs_grad({&x})) {
    record(y, "relu", {x}, {x}, [x](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        backend(dy.device()).kernels<T>().relu_backward(dy.numel(), x.data<T>(), dy.data<T>(),
                                                        grad_buffer(x).data<T>());
      });
    });
  }
  return y;
}

// x (any, written) -> max(x, 0), sharing x's bytes
Tensor relu_(const Tensor& x) {
  if (x.requires_grad() && !x.impl()->grad_fn)
    throw std::invalid_argument("relu_: x " + to_string(x.shape()) +
                                " is a leaf that requires grad; an in-place write would lose its values");
  Tensor written = x;  // a handle: bump_version marks the shared bytes
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().relu_forward(x.numel(), x.data<T>(), written.data<T>());
  });
  written.bump_version("relu_");
  // The result is a new handle on the bytes, so that it can carry its own
  // node. The node keeps the values through a detached handle: one holding
  // y itself would hold y's node and never be freed.
  Tensor y = x.detach();
  if (needs_grad({&x})) {
    const Tensor values = y.detach();
    record(y, "relu_", {x}, {values}, [x, values](const Tensor& dy) {
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        backend(dy.device()).kernels<T>().relu_backward(dy.numel(), values.data<T>(), dy.data<T>(),
                                                        grad_buffer(x).data<T>());
      });
    });
  }
  return y;
}

}  // namespace engine
