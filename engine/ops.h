// Differentiable operations. Each is implemented in engine/ops/<name>.cpp with
// its forward and backward side by side, device-agnostic on top of the
// primitive kernels of engine/backend.h. Every op checks its arguments' shapes,
// dtypes and devices on entry and throws std::invalid_argument naming the op
// and the shapes at fault.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/tensor.h"

namespace engine {

// ---- linear algebra (ops/matmul.cpp) --------------------------------------------
// a (M,K), b (K,N) -> (M,N)
Tensor matmul(const Tensor& a, const Tensor& b);
// x (N,IN), weight (OUT,IN), bias (OUT) or undefined -> (N,OUT) = x W^T + b
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---- element-wise with broadcasting (ops/elementwise.cpp) ---------------------
// Shapes broadcast as in NumPy (trailing dimensions aligned; size 1 stretches).
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor mul_scalar(const Tensor& x, double alpha);
Tensor relu(const Tensor& x);
// ReLU in place, for a tensor whose values no backward reads: the fresh
// output of a convolution, linear map or batch norm, which save their inputs
// only (layers::Sequential applies it there). x's bytes become max(x, 0) and
// the result shares them, so a training step keeps one activation where relu
// keeps two (PyTorch's ReLU(inplace=True)). The backward takes its mask from
// the result (> 0 exactly where x was), so values and gradients are relu's
// bit for bit. A backward that saved x finds the write and refuses to run
// (autograd's version check); a leaf that requires grad is refused here.
Tensor relu_(const Tensor& x);
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& x, double alpha) { return mul_scalar(x, alpha); }

// ---- reductions (ops/reduce.cpp) ----------------------------------------------
Tensor sum(const Tensor& x);   // -> shape {} (one element)
Tensor mean(const Tensor& x);  // -> shape {}
// Sum over one dimension; keepdim keeps it with size 1.
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);

// ---- shape (ops/shape.cpp) --------------------------------------------------------
// Same storage, new shape; one entry may be -1 (inferred).
Tensor reshape(const Tensor& x, const Shape& shape);
// Collapses dimensions [start_dim, end) into one: (N,C,H,W) -> (N,C*H*W) for 1.
Tensor flatten(const Tensor& x, int64_t start_dim = 1);
// x (R,C) -> (C,R)
Tensor transpose(const Tensor& x);
// Joins along dim; all other dimensions must match.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// Elements [start, end) along dim.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);

// ---- convolution (ops/conv2d.cpp) --------------------------------------------------
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
};
// x (N,C,H,W), weight (OC,C,KH,KW), bias (OC) or undefined -> y (N,OC,OH,OW)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options = {});

// ---- pooling (ops/pool.cpp) -------------------------------------------------------
struct Pool2dOptions {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
};
// x (N,C,H,W) -> (N,C,OH,OW)
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options);
// x (N,C,H,W) -> (N,C,out_h,out_w)
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- batch norm (ops/batch_norm.cpp) ------------------------------------------------
// x (N,C,H,W); gamma, beta, running_mean, running_var (C). In training mode the
// batch statistics normalise and the running ones are updated in place with
// `momentum` (PyTorch's convention: running = (1-m) running + m batch);
// in evaluation mode the running statistics normalise.
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    Tensor& running_mean, Tensor& running_var, bool training,
                    double momentum = 0.1, double eps = 1e-5);
// relu(batch_norm2d(...)) as one op, the same values and gradients bit for
// bit: the forward writes max(y, 0) in batch norm's pass, and the backward
// folds ReLU's mask into batch norm's (no gradient buffer between the two, no
// pass of its own for either; layers::Sequential uses it for BatchNorm2d
// then ReLU).
Tensor batch_norm2d_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         Tensor& running_mean, Tensor& running_var, bool training,
                         double momentum = 0.1, double eps = 1e-5);

// ---- dropout (ops/dropout.cpp) --------------------------------------------------------
// Inverted dropout: zeroes each element with probability p and scales the rest
// by 1/(1-p). The mask is a pure function of (seed, counter, index), so it is the
// same on every device and thread count. Identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t counter);

// ---- loss (ops/cross_entropy.cpp) -----------------------------------------------------
// Fused, numerically stable log-softmax + negative log-likelihood, mean over N.
// logits (N,K), labels (N) in [0,K). class_mask (K) of 0/1: classes with 0 are
// excluded from the softmax (task-incremental heads); empty = all classes.
// -> shape {} (one element)
Tensor cross_entropy(const Tensor& logits, std::span<const int64_t> labels,
                     std::span<const uint8_t> class_mask = {});

// Soft-target cross-entropy of knowledge distillation (ops/distillation.cpp):
// mean over N of -sum over allowed k of softmax(teacher/T)_k log softmax(logits/T)_k,
// both softmaxes over the allowed classes only. The teacher gets no gradient.
// logits (N,K), teacher_logits (N,K), class_mask (K) of 0/1 -> shape {}
Tensor distillation(const Tensor& logits, const Tensor& teacher_logits, std::span<const uint8_t> class_mask,
                    double temperature);
// Not differentiable: index of the largest allowed logit per row.
// logits (N,K), class_mask (K) or empty -> N predictions
std::vector<int64_t> masked_argmax(const Tensor& logits, std::span<const uint8_t> class_mask = {});

}  // namespace engine
