// Batch norm over x viewed as (N,C,HW): statistics per channel over N*HW values.
//
// Each channel is one parallel iteration and sums its values in a fixed order
// (n outer, hw inner) into double accumulators, so results do not depend on
// the thread count and float32 sums of large batches keep their precision.
// The per-channel finishing arithmetic and the per-element formulas are the
// bodies shared with the CUDA backend (engine/kernels/batch_norm_bodies.h).
#include <algorithm>

#include "engine/cpu/cpu_kernels.h"
#include "engine/kernels/batch_norm_bodies.h"

namespace engine::cpu {

namespace {

// Offset of element (n, c, 0) of an (N,C,HW) array.
inline int64_t offset(int64_t n, int64_t c, int64_t channels, int64_t hw) {
  return (n * channels + c) * hw;
}

// y = (x - mean) * invstd * scale + shift over channel ch, then max(y, 0)
// where relu (a loop for each, so neither tests relu per element).
template <class T>
void normalise_channel(int64_t n, int64_t ch, int64_t c, int64_t hw, const T* x, T mean,
                       T invstd, T scale, T shift, bool relu, T* y) {
  for (int64_t b = 0; b < n; ++b) {
    const T* xs = x + offset(b, ch, c, hw);
    T* ys = y + offset(b, ch, c, hw);
    if (relu)
      for (int64_t j = 0; j < hw; ++j)
        ys[j] = kernels::relu_value(kernels::normalise(xs[j], mean, invstd, scale, shift));
    else
      for (int64_t j = 0; j < hw; ++j) ys[j] = kernels::normalise(xs[j], mean, invstd, scale, shift);
  }
}

}  // namespace

// x (N,C,HW), gamma/beta (C) or null -> y (N,C,HW); save_mean, save_invstd (C);
// running_mean/var (C) updated in place unless null.
template <class T>
void CpuKernels<T>::batch_norm_forward_train(int64_t n, int64_t c, int64_t hw, const T* x,
                                             const T* gamma, const T* beta, T eps, T momentum,
                                             T* running_mean, T* running_var, T* save_mean,
                                             T* save_invstd, bool relu, T* y) const {
  const int64_t count = n * hw;  // values per channel
#pragma omp parallel for schedule(static) if (n * c * hw > kParallelGrain)
  for (int64_t ch = 0; ch < c; ++ch) {
    // Two passes (mean, then squared deviations) avoid the cancellation of
    // E[x^2] - E[x]^2 when the mean is large compared with the spread.
    double sum = 0;
    for (int64_t b = 0; b < n; ++b) {
      const T* xs = x + offset(b, ch, c, hw);
      for (int64_t j = 0; j < hw; ++j) sum += xs[j];
    }
    const double mean = sum / static_cast<double>(count);
    double squares = 0;
    for (int64_t b = 0; b < n; ++b) {
      const T* xs = x + offset(b, ch, c, hw);
      for (int64_t j = 0; j < hw; ++j) {
        const double d = xs[j] - mean;
        squares += d * d;
      }
    }
    kernels::finish_batch_norm_stats(ch, sum, squares, count, eps, momentum, running_mean,
                                     running_var, save_mean, save_invstd);
    normalise_channel(n, ch, c, hw, x, save_mean[ch], save_invstd[ch], gamma ? gamma[ch] : T(1),
                      beta ? beta[ch] : T(0), relu, y);
  }
}

// x (N,C,HW), gamma/beta (C) or null, running_mean/var (C) -> y (N,C,HW)
template <class T>
void CpuKernels<T>::batch_norm_forward_eval(int64_t n, int64_t c, int64_t hw, const T* x,
                                            const T* gamma, const T* beta, T eps,
                                            const T* running_mean, const T* running_var,
                                            bool relu, T* y) const {
#pragma omp parallel for schedule(static) if (n * c * hw > kParallelGrain)
  for (int64_t ch = 0; ch < c; ++ch)
    normalise_channel(n, ch, c, hw, x, running_mean[ch],
                      kernels::running_invstd(running_var[ch], eps), gamma ? gamma[ch] : T(1),
                      beta ? beta[ch] : T(0), relu, y);
}

// One channel of batch_norm_backward, with or without a ReLU folded in (an
// instance for each, so that whether there is one is known when the loops
// are compiled, not tested per element).
template <bool kRelu, class T>
void batch_norm_backward_channel(int64_t n, int64_t ch, int64_t c, int64_t hw, const T* x,
                                 const T* dy, const T* relu_output, const T* gamma,
                                 const T* save_mean, const T* save_invstd, T* dx, T* dgamma,
                                 T* dbeta) {
  const T mean = save_mean[ch];
  const T invstd = save_invstd[ch];
  double sum_dy = 0, sum_dy_xhat = 0;
  const auto add_to_sums = [&](const T* g, const T* xs, int64_t len) {
    for (int64_t j = 0; j < len; ++j) {
      sum_dy += g[j];
      sum_dy_xhat += static_cast<double>(g[j]) * static_cast<double>((xs[j] - mean) * invstd);
    }
  };
  for (int64_t b = 0; b < n; ++b) {
    const int64_t at = offset(b, ch, c, hw);
    if constexpr (kRelu) {
      // ReLU's gradient a block at a time, then the sums over the block in
      // order: in the sums' own loop, which cannot vectorise, the compiler
      // makes the select a branch, mispredicted for half the outputs.
      constexpr int64_t kBlock = 256;
      T passed[kBlock];
      for (int64_t j0 = 0; j0 < hw; j0 += kBlock) {
        const int64_t len = std::min(kBlock, hw - j0);
        for (int64_t j = 0; j < len; ++j)
          passed[j] = kernels::batch_norm_upstream(dy + at + j0, relu_output + at + j0, j);
        add_to_sums(passed, x + at + j0, len);
      }
    } else {
      add_to_sums(dy + at, x + at, hw);
    }
  }
  if (dbeta) dbeta[ch] += static_cast<T>(sum_dy);
  if (dgamma) dgamma[ch] += static_cast<T>(sum_dy_xhat);
  if (!dx) return;
  const T scale = (gamma ? gamma[ch] : T(1)) * invstd;
  const T mean_dy = static_cast<T>(sum_dy / static_cast<double>(n * hw));
  const T mean_dy_xhat = static_cast<T>(sum_dy_xhat / static_cast<double>(n * hw));
  for (int64_t b = 0; b < n; ++b) {
    const int64_t at = offset(b, ch, c, hw);
    const T* xs = x + at;
    const T* dys = dy + at;
    const T* ys = kRelu ? relu_output + at : nullptr;
    T* dxs = dx + at;
    for (int64_t j = 0; j < hw; ++j)
      dxs[j] += kernels::batch_norm_dx(xs[j], kernels::batch_norm_upstream(dys, ys, j), mean,
                                       invstd, scale, mean_dy, mean_dy_xhat);
  }
}

// x, dy (N,C,HW), relu_output (N,C,HW) or null, gamma (C) or null,
// save_mean/invstd (C) -> dx (N,C,HW) +=, dgamma (C) +=, dbeta (C) +=  (each
// skipped when null)
//
// With xhat = (x - mean) * invstd and M = N*HW values per channel:
//   dbeta = sum(dy), dgamma = sum(dy * xhat),
//   dx = gamma * invstd * (dy - dbeta/M - xhat * dgamma/M)
// (the mean and variance depend on every x of the channel, hence the two sums),
// where dy is, with a ReLU folded in, dy where relu_output > 0
// (kernels::batch_norm_upstream, as on the GPU).
template <class T>
void CpuKernels<T>::batch_norm_backward(int64_t n, int64_t c, int64_t hw, const T* x,
                                        const T* dy, const T* relu_output, const T* gamma,
                                        const T* save_mean, const T* save_invstd, T* dx,
                                        T* dgamma, T* dbeta) const {
#pragma omp parallel for schedule(static) if (n * c * hw > kParallelGrain)
  for (int64_t ch = 0; ch < c; ++ch) {
    if (relu_output)
      batch_norm_backward_channel<true>(n, ch, c, hw, x, dy, relu_output, gamma, save_mean,
                                        save_invstd, dx, dgamma, dbeta);
    else
      batch_norm_backward_channel<false>(n, ch, c, hw, x, dy, relu_output, gamma, save_mean,
                                         save_invstd, dx, dgamma, dbeta);
  }
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
