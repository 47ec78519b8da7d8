// Shape ops: reshape and flatten (views), transpose, concat and slice (copies).
#include <numeric>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

int64_t normalise_dim(const char* op, int64_t dim, int64_t ndim) {
  const int64_t d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim)
    shape_error(op, "dim " + std::to_string(dim) + " out of range for " + std::to_string(ndim) +
                        " dimensions");
  return d;
}

int64_t product(const Shape& shape, int64_t begin, int64_t end) {
  return std::accumulate(shape.begin() + begin, shape.begin() + end, int64_t{1},
                         std::multiplies<>());
}

}  // namespace

// x (any) -> same elements in `shape`; shares x's storage.
Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape resolved = shape;
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      if (inferred >= 0) shape_error("reshape", "more than one -1 in " + to_string(shape));
      inferred = static_cast<int64_t>(i);
    } else {
      known *= resolved[i];
    }
  }
  if (inferred >= 0 && known > 0 && x.numel() % known == 0) resolved[inferred] = x.numel() / known;
  if (shape_numel(resolved) != x.numel())
    shape_error("reshape", "cannot view " + to_string(x.shape()) + " as " + to_string(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = resolved;
  impl->dtype = x.dtype();
  impl->storage = x.impl()->storage;
  Tensor y(std::move(impl));
  if (needs_grad({&x}))
    record(y, "reshape", {x}, {}, [x](const Tensor& dy) { pass_gradient(x, dy); });
  return y;
}

// x (d0, ..., dn) -> (d0, ..., d[start-1], prod of the rest)
Tensor flatten(const Tensor& x, int64_t start_dim) {
  const int64_t start = normalise_dim("flatten", start_dim, x.ndim());
  Shape shape(x.shape().begin(), x.shape().begin() + start);
  shape.push_back(product(x.shape(), start, x.ndim()));
  return reshape(x, shape);
}

// x (R,C) -> y (C,R)
Tensor transpose(const Tensor& x) {
  check_ndim("transpose", "x", x, 2);
  const int64_t rows = x.dim(0), cols = x.dim(1);
  Tensor y = Tensor::empty({cols, rows}, x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().transpose2d(y.data<T>(), x.data<T>(), rows, cols);
  });
  if (needs_grad({&x})) {
    record(y, "transpose", {x}, {}, [x, rows, cols](const Tensor& dy) {
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      dispatch_dtype(x.dtype(), [&]<class T>() {
        backend(x.device()).kernels<T>().transpose2d(dx.data<T>(), dy.data<T>(), cols, rows);
      });
      pass_gradient(x, dx);
    });
  }
  return y;
}

// xs[i] (..., D_i, ...) -> (..., sum D_i, ...)
// Seen as (outer, D, inner) blocks, each input fills a column band of the output.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) shape_error("concat", "no tensors to join");
  const Tensor& first = xs[0];
  const int64_t d = normalise_dim("concat", dim, first.ndim());
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  for (const Tensor& x : xs) {
    check_same_dtype_device("concat", first, x);
    Shape a = first.shape(), b = x.shape();
    if (a.size() != b.size())
      shape_error("concat", "ranks differ: " + to_string(a) + " vs " + to_string(b));
    a[d] = b[d] = 0;
    if (a != b)
      shape_error("concat", "shapes " + to_string(first.shape()) + " and " + to_string(x.shape()) +
                                " differ outside dim " + std::to_string(d));
    out_shape[d] += x.shape()[d];
  }
  const int64_t outer = product(out_shape, 0, d), inner = product(out_shape, d + 1, first.ndim());
  const int64_t out_row = out_shape[d] * inner;
  Tensor y = Tensor::empty(out_shape, first.dtype(), first.device());
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    offsets.push_back(offset);
    const int64_t block = x.shape()[d] * inner;
    dispatch_dtype(x.dtype(), [&]<class T>() {
      backend(x.device()).kernels<T>().copy_blocks(y.data<T>() + offset, out_row, x.data<T>(),
                                                   block, block, outer);
    });
    offset += block;
  }
  bool any_grad = false;
  for (const Tensor& x : xs) any_grad = any_grad || needs_grad({&x});
  if (any_grad) {
    std::vector<Tensor> targets;  // undefined for members that get no gradient
    for (const Tensor& x : xs) targets.push_back(grad_target(x));
    record(y, "concat", xs, {}, [targets, offsets, d, outer, inner, out_row](const Tensor& dy) {
      for (size_t i = 0; i < targets.size(); ++i) {
        const Tensor& x = targets[i];
        if (!x.defined()) continue;
        const int64_t block = x.shape()[d] * inner;
        Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        dispatch_dtype(x.dtype(), [&]<class T>() {
          backend(x.device()).kernels<T>().copy_blocks(dx.data<T>(), block,
                                                       dy.data<T>() + offsets[i], out_row, block,
                                                       outer);
        });
        pass_gradient(x, dx);
      }
    });
  }
  return y;
}

// x (..., D, ...) -> (..., end - start, ...)
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  const int64_t d = normalise_dim("slice", dim, x.ndim());
  if (start < 0 || end > x.shape()[d] || start > end)
    shape_error("slice", "range [" + std::to_string(start) + ", " + std::to_string(end) +
                             ") out of bounds for dim " + std::to_string(d) + " of " +
                             to_string(x.shape()));
  Shape out_shape = x.shape();
  out_shape[d] = end - start;
  const int64_t outer = product(x.shape(), 0, d), inner = product(x.shape(), d + 1, x.ndim());
  const int64_t in_row = x.shape()[d] * inner, block = (end - start) * inner;
  const int64_t offset = start * inner;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    backend(x.device()).kernels<T>().copy_blocks(y.data<T>(), block, x.data<T>() + offset,
                                                 in_row, block, outer);
  });
  if (needs_grad({&x})) {
    record(y, "slice", {x}, {}, [x, outer, in_row, block, offset](const Tensor& dy) {
      Tensor dx = Tensor::zeros(x.shape(), x.dtype(), x.device());
      dispatch_dtype(x.dtype(), [&]<class T>() {
        backend(x.device()).kernels<T>().copy_blocks(dx.data<T>() + offset, in_row,
                                                     dy.data<T>(), block, block, outer);
      });
      pass_gradient(x, dx);
    });
  }
  return y;
}

}  // namespace engine
