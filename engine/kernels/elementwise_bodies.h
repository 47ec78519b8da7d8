// Bodies of the memory, element-wise and reduction kernels (one call = one
// output element). The CPU backend (engine/cpu/cpu_backend.cpp) calls them in
// its OpenMP loops where it works element by element; the CUDA backend
// (cuda/elementwise_kernels.cu) launches all of them, including the ones the
// CPU does differently (memcpy, a sequential sum) and the block reductions'
// inputs.
#pragma once

#include <cstdint>

#include "engine/backend.h"
#include "engine/host_device.h"

namespace engine::kernels {

// x (n) = value
template <class T>
struct Fill {
  T* x;
  T value;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const { x[i] = value; }
};

// dst[r*dst_stride + j] = src[r*src_stride + j] for r < count, j < block; i = r*block + j.
// src_stride 0 repeats one block (linear's bias rows).
template <class T>
struct CopyBlocks {
  T* dst;
  int64_t dst_stride;
  const T* src;
  int64_t src_stride, block;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t r = i / block, j = i % block;
    dst[r * dst_stride + j] = src[r * src_stride + j];
  }
};

// x (rows, cols) -> out (cols, rows); i indexes out.
template <class T>
struct Transpose2d {
  T* out;
  const T* x;
  int64_t rows, cols;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t c = i / rows, r = i % rows;
    out[i] = x[r * cols + c];
  }
};

// x (I,J,K) -> out (J,I,K): out[j][i][k] = x[i*stride_i + j*K + k], so the
// I slices of x lie side by side in each row j of out. stride_i is J*K for a
// contiguous x and 0 repeats one slice. e indexes out.
template <class T>
struct SwapLeadingAxes {
  T* out;
  const T* x;
  int64_t size_i, size_j, size_k, stride_i;
  ENGINE_HOST_DEVICE void operator()(int64_t e) const {
    const int64_t k = e % size_k, i = e / size_k % size_i, j = e / size_k / size_i;
    out[e] = x[i * stride_i + j * size_k + k];
  }
};

// How the CUDA gemm_batched_sum lays the operands X_i (i < batch, `stride`
// apart, 0: shared) of its products along k, for one product of depth batch*k:
// X_i stored (rows, k) (A untransposed, B transposed) -> out (rows, batch, k),
// the products' rows side by side; X_i stored (k, columns) -> out
// (batch, k, columns), the products one after another. `other` is the rows or
// columns that are not k. out holds batch*k*other elements.
template <class T>
SwapLeadingAxes<T> stack_along_k(T* out, const T* x, int64_t stride, int64_t batch, int64_t k,
                                 int64_t other, bool k_along_rows) {
  if (k_along_rows) return {out, x, batch, other, k, stride};
  return {out, x, batch, 1, k * other, stride};
}

template <class T>
ENGINE_HOST_DEVICE T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return T(0);
}

// Offsets in a and b of item i of the leading `dims` dimensions of out_shape:
// i's multi-index over out_shape[0, dims) through a's and b's (possibly 0)
// strides. With dims = ndim, item i is element i; the CPU passes ndim - 1 and
// gets the start of row i of the innermost dimension.
ENGINE_HOST_DEVICE inline void broadcast_offsets(const Broadcast& g, int dims, int64_t i,
                                                 int64_t& offset_a, int64_t& offset_b) {
  offset_a = 0, offset_b = 0;
  for (int d = dims - 1; d >= 0; --d) {
    const int64_t index = i % g.out_shape[d];
    i /= g.out_shape[d];
    offset_a += index * g.a_strides[d];
    offset_b += index * g.b_strides[d];
  }
}

// out = a (op) b with broadcasting, element i.
template <class T>
struct Binary {
  BinaryOp op;
  Broadcast g;
  const T* a;
  const T* b;
  T* out;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    int64_t offset_a, offset_b;
    broadcast_offsets(g, g.ndim, i, offset_a, offset_b);
    out[i] = apply_binary(op, a[offset_a], b[offset_b]);
  }
};

// Geometry of sum_to: x (x_shape) summed over the dimensions where out_shape is 1.
struct SumToGeometry {
  int ndim = 0;
  int64_t x_shape[kMaxDims] = {};
  int64_t out_shape[kMaxDims] = {};
  int64_t x_strides[kMaxDims] = {};
  int64_t out_numel = 1;     // outputs
  int64_t reduce_numel = 1;  // inputs summed into each output

  // Offset in x of output o's first input.
  ENGINE_HOST_DEVICE int64_t base(int64_t o) const {
    int64_t offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      offset += o % out_shape[d] * x_strides[d];
      o /= out_shape[d];
    }
    return offset;
  }
  // Offset of input r of an output, relative to its base, in the CPU's order.
  ENGINE_HOST_DEVICE int64_t reduced_offset(int64_t r) const {
    int64_t offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      if (out_shape[d] != 1) continue;
      offset += r % x_shape[d] * x_strides[d];
      r /= x_shape[d];
    }
    return offset;
  }
};

inline SumToGeometry make_sum_to_geometry(const int64_t* x_shape, const int64_t* out_shape,
                                          int ndim) {
  SumToGeometry g;
  g.ndim = ndim;
  int64_t stride = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    g.x_shape[d] = x_shape[d];
    g.out_shape[d] = out_shape[d];
    g.x_strides[d] = stride;
    stride *= x_shape[d];
    g.out_numel *= out_shape[d];
    if (out_shape[d] == 1) g.reduce_numel *= x_shape[d];
  }
  return g;
}

// out[o] += sum of output o's inputs, one thread per output, in the CPU's order
// (reduced_offset's: the last reduced dimension fastest). The offset steps from
// input to input like an odometer over the reduced dimensions, with no
// division per input. Used when there are many outputs; few large sums use
// SumToInput and a block each.
template <class T>
struct SumToOutput {
  SumToGeometry g;
  const T* x;
  T* out;
  ENGINE_HOST_DEVICE void operator()(int64_t o) const {
    const T* first = x + g.base(o);
    int64_t digit[kMaxDims] = {};
    int64_t offset = 0;
    double acc = 0;
    for (int64_t r = 0; r < g.reduce_numel; ++r) {
      acc += first[offset];
      for (int d = g.ndim - 1; d >= 0; --d) {  // carry into the next reduced dimension
        if (g.out_shape[d] != 1) continue;
        if (++digit[d] < g.x_shape[d]) {
          offset += g.x_strides[d];
          break;
        }
        digit[d] = 0;
        offset -= (g.x_shape[d] - 1) * g.x_strides[d];
      }
    }
    out[o] += static_cast<T>(acc);
  }
};

// Input r of output o, as a double: the value a block reduction sums.
template <class T>
struct SumToInput {
  SumToGeometry g;
  const T* first;  // x + g.base(o)
  ENGINE_HOST_DEVICE double operator()(int64_t r) const {
    return static_cast<double>(first[g.reduced_offset(r)]);
  }
};

// y += alpha * x
template <class T>
struct Axpy {
  T alpha;
  const T* x;
  T* y;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const { y[i] += alpha * x[i]; }
};

// x *= alpha
template <class T>
struct Scale {
  T alpha;
  const T* x;
  T* y;  // may be x
  ENGINE_HOST_DEVICE void operator()(int64_t i) const { y[i] = alpha * x[i]; }
};

// max(x, 0) of one value; NaN stays NaN (as PyTorch), so diverging weights
// reach the loss.
template <class T>
ENGINE_HOST_DEVICE T relu_value(T x) {
  return x <= T(0) ? T(0) : x;
}

// ReLU's backward of one value: dy where the ReLU passed, x > 0 (or its output
// y > 0: the same test). dy is read whether or not it passes: a select of two
// loaded values vectorises, a conditional load is a branch per element that
// the CPU mispredicts half the time on a ReLU's inputs.
template <class T>
ENGINE_HOST_DEVICE T relu_gradient(T x, T dy) {
  return x > T(0) ? dy : T(0);
}

// y = max(x, 0)
template <class T>
struct ReluForward {
  const T* x;
  T* y;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const { y[i] = relu_value(x[i]); }
};

// dx += dy * (x > 0)
template <class T>
struct ReluBackward {
  const T* x;
  const T* dy;
  T* dx;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const { dx[i] += relu_gradient(x[i], dy[i]); }
};

}  // namespace engine::kernels
