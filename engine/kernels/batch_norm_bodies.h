// Bodies of the batch-norm kernels over x viewed as (N,C,HW). On the GPU the
// per-channel sums are block reductions (one block per channel, cuda/grid.h)
// over the values below; the CPU (engine/cpu/batch_norm_kernels.cpp) sums each
// channel in one loop. Both backends share the per-channel finishing
// arithmetic and the per-element formulas (normalise, batch_norm_dx, ...).
//
// A ReLU after batch norm may be folded in (engine::batch_norm2d_relu): the
// forward writes max(y, 0), and the backward reads, instead of dy, ReLU's
// gradient of it, dy where the output is > 0 (batch_norm_upstream). The
// values are those of the two ops run apart.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/host_device.h"
#include "engine/kernels/elementwise_bodies.h"

namespace engine::kernels {

// Offset of value i (of the N*HW values) of channel ch in an (N,C,HW) array.
ENGINE_HOST_DEVICE inline int64_t channel_offset(int64_t i, int64_t ch, int64_t c, int64_t hw) {
  return (i / hw * c + ch) * hw + i % hw;
}

// Channel of element i of an (N,C,HW) array.
ENGINE_HOST_DEVICE inline int64_t channel_of(int64_t i, int64_t c, int64_t hw) {
  return i / hw % c;
}

// x of channel ch, as a double (summed for the mean).
template <class T>
struct ChannelValue {
  const T* x;
  int64_t c, hw, ch;
  ENGINE_HOST_DEVICE double operator()(int64_t i) const {
    return static_cast<double>(x[channel_offset(i, ch, c, hw)]);
  }
};

// (x - mean)^2 of channel ch (summed for the variance: two passes avoid the
// cancellation of E[x^2] - E[x]^2).
template <class T>
struct ChannelSquaredDeviation {
  const T* x;
  int64_t c, hw, ch;
  double mean;
  ENGINE_HOST_DEVICE double operator()(int64_t i) const {
    const double d = static_cast<double>(x[channel_offset(i, ch, c, hw)]) - mean;
    return d * d;
  }
};

// From a channel's sum and sum of squared deviations over `count` values:
// save_mean, save_invstd and (unless null) the running statistics of channel ch.
template <class T>
ENGINE_HOST_DEVICE void finish_batch_norm_stats(int64_t ch, double sum, double squares,
                                                int64_t count, T eps, T momentum,
                                                T* running_mean, T* running_var, T* save_mean,
                                                T* save_invstd) {
  const double mean = sum / static_cast<double>(count);
  const double biased_var = squares / static_cast<double>(count);
  const T mean_t = static_cast<T>(mean);
  save_mean[ch] = mean_t;
  save_invstd[ch] = static_cast<T>(1.0 / sqrt(biased_var + static_cast<double>(eps)));
  if (running_mean) {
    // The running variance estimates the population: unbiased, as PyTorch.
    const double unbiased_var = count > 1 ? squares / static_cast<double>(count - 1) : biased_var;
    running_mean[ch] = (T(1) - momentum) * running_mean[ch] + momentum * mean_t;
    running_var[ch] = (T(1) - momentum) * running_var[ch] + momentum * static_cast<T>(unbiased_var);
  }
}

// 1 / sqrt(running_var + eps) in double: a channel's invstd for evaluation.
template <class T>
ENGINE_HOST_DEVICE T running_invstd(T running_var, T eps) {
  return static_cast<T>(1.0 / sqrt(static_cast<double>(running_var) + static_cast<double>(eps)));
}

// invstd (C) = 1 / sqrt(running_var + eps), for evaluation.
template <class T>
struct RunningInvstd {
  const T* running_var;
  T eps;
  T* invstd;
  ENGINE_HOST_DEVICE void operator()(int64_t ch) const {
    invstd[ch] = running_invstd(running_var[ch], eps);
  }
};

// y = (x - mean) * invstd * scale + shift: one element, scale = gamma or 1,
// shift = beta or 0 of its channel.
template <class T>
ENGINE_HOST_DEVICE T normalise(T x, T mean, T invstd, T scale, T shift) {
  return (x - mean) * invstd * scale + shift;
}

// y = (x - mean) * invstd * gamma + beta, per element; gamma/beta may be null;
// then max(y, 0) where relu.
template <class T>
struct BatchNormApply {
  const T* x;
  const T* mean;
  const T* invstd;
  const T* gamma;
  const T* beta;
  int64_t c, hw;
  bool relu;
  T* y;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t ch = channel_of(i, c, hw);
    const T scale = gamma ? gamma[ch] : T(1);
    const T shift = beta ? beta[ch] : T(0);
    const T value = normalise(x[i], mean[ch], invstd[ch], scale, shift);
    y[i] = relu ? relu_value(value) : value;
  }
};

// The gradient batch norm's output receives at element `at`: dy, or, with a
// ReLU folded in (relu_output, the op's output, non-null), dy where the
// output is > 0.
template <class T>
ENGINE_HOST_DEVICE T batch_norm_upstream(const T* dy, const T* relu_output, int64_t at) {
  return relu_output ? relu_gradient(relu_output[at], dy[at]) : dy[at];
}

// dy of channel ch, as a double (summed for dbeta).
template <class T>
struct ChannelDy {
  const T* dy;
  const T* relu_output;  // or null
  int64_t c, hw, ch;
  ENGINE_HOST_DEVICE double operator()(int64_t i) const {
    return static_cast<double>(batch_norm_upstream(dy, relu_output, channel_offset(i, ch, c, hw)));
  }
};

// dy * xhat of channel ch, xhat = (x - mean) * invstd (summed for dgamma).
template <class T>
struct ChannelDyXhat {
  const T* x;
  const T* dy;
  const T* relu_output;  // or null
  int64_t c, hw, ch;
  T mean, invstd;
  ENGINE_HOST_DEVICE double operator()(int64_t i) const {
    const int64_t at = channel_offset(i, ch, c, hw);
    return static_cast<double>(batch_norm_upstream(dy, relu_output, at)) *
           static_cast<double>((x[at] - mean) * invstd);
  }
};

// From a channel's sum(dy) and sum(dy * xhat) over `count` values: dbeta and
// dgamma accumulate (unless null), and the two means that dx needs are stored.
template <class T>
ENGINE_HOST_DEVICE void finish_batch_norm_backward(int64_t ch, double sum_dy, double sum_dy_xhat,
                                                   int64_t count, T* dgamma, T* dbeta,
                                                   T* mean_dy, T* mean_dy_xhat) {
  if (dbeta) dbeta[ch] += static_cast<T>(sum_dy);
  if (dgamma) dgamma[ch] += static_cast<T>(sum_dy_xhat);
  mean_dy[ch] = static_cast<T>(sum_dy / static_cast<double>(count));
  mean_dy_xhat[ch] = static_cast<T>(sum_dy_xhat / static_cast<double>(count));
}

// One element's dx term, scale * (dy - mean(dy) - xhat * mean(dy * xhat)),
// with xhat = (x - mean) * invstd and scale = gamma * invstd of its channel.
template <class T>
ENGINE_HOST_DEVICE T batch_norm_dx(T x, T dy, T mean, T invstd, T scale, T mean_dy,
                                   T mean_dy_xhat) {
  const T xhat = (x - mean) * invstd;
  return scale * (dy - mean_dy - xhat * mean_dy_xhat);
}

// dx += gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), per element.
template <class T>
struct BatchNormBackwardDx {
  const T* x;
  const T* dy;
  const T* relu_output;  // or null
  const T* gamma;
  const T* save_mean;
  const T* save_invstd;
  const T* mean_dy;
  const T* mean_dy_xhat;
  int64_t c, hw;
  T* dx;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t ch = channel_of(i, c, hw);
    const T invstd = save_invstd[ch];
    const T scale = (gamma ? gamma[ch] : T(1)) * invstd;
    dx[i] += batch_norm_dx(x[i], batch_norm_upstream(dy, relu_output, i), save_mean[ch], invstd,
                           scale, mean_dy[ch], mean_dy_xhat[ch]);
  }
};

}  // namespace engine::kernels
