// Max, average and adaptive average pooling over (N*C) independent planes.
// The forward passes run the bodies the CUDA backend launches
// (engine/kernels/window_bodies.h), output by output, except max pooling's
// common windows (MaxPoolRow: the same results, a row at a time); the
// backward passes scatter each window's gradient over the same spans.
//
// Every loop is split over planes (MaxPoolRow's over rows of outputs): a
// plane's outputs (forward) or its input gradient (backward) belong to one
// thread, which visits the windows in a fixed order, so results do not depend
// on the thread count. Each thread runs a private copy of a body (firstprivate,
// or by value in for_each_element): stores through its output pointers then
// cannot alias its geometry, which stays in registers.
#include "engine/cpu/cpu_kernels.h"
#include "engine/cpu/isa.h"
#include "engine/kernels/window_bodies.h"

namespace engine::cpu {

using kernels::adaptive_span;
using kernels::Range;
using kernels::window_span;

// K x K windows with stride S and no padding, all inside the map (the pools
// of sena32 and the small CNN, 3 with stride 2, and of the VGGs, 2 with
// stride 2), one row of outputs at a time. The values and indices are those
// of kernels::MaxPoolForward: the window is scanned row by row, the first
// strict maximum wins, and a NaN, the first in that order, wins over
// everything. Here K and S are constants, the scans unroll, and the choices
// are selects across the row's outputs, so the loop over the row vectorises
// (for_each_element runs it with AVX2 or AVX-512 where the CPU has them); the
// first NaN is found by a second scan, backwards, whose last hit is the first.
// x (planes,H,W) -> y, argmax (planes,OH,OW).
template <class T, int K, int S>
struct MaxPoolRow {
  const T* x;
  T* y;
  int32_t* argmax;
  int64_t height, width, out_h, out_w;
  void operator()(int64_t row) const {  // row = plane * OH + oh
    const int64_t plane = row / out_h, oh = row % out_h;
    const T* top = x + plane * height * width + oh * S * width;  // the windows' first input row
    T* y_row = y + row * out_w;
    int32_t* argmax_row = argmax + row * out_w;
    // Indices within the plane, < H*W <= INT32_MAX (max_pool2d checks).
    const auto top_index = static_cast<int32_t>(oh * S * width), w = static_cast<int32_t>(width);
    for (int64_t ow = 0; ow < out_w; ++ow) {
      const int32_t first = top_index + static_cast<int32_t>(ow) * S;
      T best = top[ow * S];
      int32_t best_index = first;
#pragma GCC unroll 3
      for (int kh = 0; kh < K; ++kh)
#pragma GCC unroll 3
        for (int kw = 0; kw < K; ++kw) {
          const T v = top[kh * width + ow * S + kw];
          const bool larger = v > best;
          best_index = larger ? first + kh * w + kw : best_index;
          best = larger ? v : best;
        }
      T value = best;
      int32_t nan_index = -1;
#pragma GCC unroll 3
      for (int kh = K - 1; kh >= 0; --kh)
#pragma GCC unroll 3
        for (int kw = K - 1; kw >= 0; --kw) {
          const T v = top[kh * width + ow * S + kw];
          const bool is_nan = v != v;
          nan_index = is_nan ? first + kh * w + kw : nan_index;
          value = is_nan ? v : value;
        }
      y_row[ow] = value;
      argmax_row[ow] = nan_index >= 0 ? nan_index : best_index;
    }
  }
};

// x (N,C,H,W) -> y (N,C,OH,OW), argmax (N,C,OH,OW) (kernels::MaxPoolForward).
template <class T>
void CpuKernels<T>::max_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y,
                                     int32_t* argmax) const {
  const int64_t out_h = g.out_height(), out_w = g.out_width(), rows = batch * g.channels * out_h;
  const bool square = g.kernel_h == g.kernel_w && g.stride_h == g.stride_w && g.pad_h == 0 && g.pad_w == 0;
  if (square && g.kernel_h == 2 && g.stride_h == 2) {
    for_each_element(rows, MaxPoolRow<T, 2, 2>{x, y, argmax, g.height, g.width, out_h, out_w}, 4 * out_w);
    return;
  }
  if (square && g.kernel_h == 3 && g.stride_h == 2) {
    for_each_element(rows, MaxPoolRow<T, 3, 2>{x, y, argmax, g.height, g.width, out_h, out_w}, 9 * out_w);
    return;
  }
  const kernels::MaxPoolForward<T> body{kernels::window_geometry(g), x, y, argmax};
  const int64_t planes = batch * g.channels, out_size = body.g.out_h * body.g.out_w;
#pragma omp parallel for schedule(static) firstprivate(body) if (planes * out_size * g.kernel_h * g.kernel_w > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < body.g.out_h; ++oh)
      for (int64_t ow = 0; ow < body.g.out_w; ++ow) body.at(p, oh, ow);
}

// dy (N,C,OH,OW), argmax (N,C,OH,OW) -> dx (N,C,H,W) += dy at each argmax. Accumulates.
template <class T>
void CpuKernels<T>::max_pool_backward(const Window2d& g, int64_t batch, const T* dy,
                                      const int32_t* argmax, T* dx) const {
  const int64_t in_size = g.height * g.width, out_size = g.out_height() * g.out_width();
  const int64_t planes = batch * g.channels;
#pragma omp parallel for schedule(static) if (planes * out_size > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t o = p * out_size; o < (p + 1) * out_size; ++o) dx[p * in_size + argmax[o]] += dy[o];
}

// x (N,C,H,W) -> y (N,C,OH,OW): window mean (kernels::AvgPoolForward). Overwrites.
template <class T>
void CpuKernels<T>::avg_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y) const {
  const kernels::AvgPoolForward<T> body{kernels::window_geometry(g), x, y};
  const int64_t planes = batch * g.channels, out_size = body.g.out_h * body.g.out_w;
#pragma omp parallel for schedule(static) firstprivate(body) if (planes * out_size * g.kernel_h * g.kernel_w > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < body.g.out_h; ++oh)
      for (int64_t ow = 0; ow < body.g.out_w; ++ow) body.at(p, oh, ow);
}

// dy (N,C,OH,OW) -> dx (N,C,H,W) += dy / (KH*KW) over each window's pixels. Accumulates.
template <class T>
void CpuKernels<T>::avg_pool_backward(const Window2d& g, int64_t batch, const T* dy, T* dx) const {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  const int64_t in_size = g.height * g.width, out_size = out_h * out_w;
  const int64_t planes = batch * g.channels;
  const T inv_area = T(1) / static_cast<T>(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (planes * out_size * g.kernel_h * g.kernel_w > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p) {
    T* d_in = dx + p * in_size;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const Range rows = window_span(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Range cols = window_span(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
        const T share = dy[p * out_size + oh * out_w + ow] * inv_area;
        for (int64_t ih = rows.begin; ih < rows.end; ++ih)
          for (int64_t iw = cols.begin; iw < cols.end; ++iw) d_in[ih * g.width + iw] += share;
      }
    }
  }
}

// x (N,C,H,W) -> y (N,C,out_h,out_w): mean over each adaptive window
// (kernels::AdaptiveAvgPoolForward). Overwrites.
template <class T>
void CpuKernels<T>::adaptive_avg_pool_forward(const Window2d& g, int64_t out_h, int64_t out_w,
                                              int64_t batch, const T* x, T* y) const {
  const kernels::AdaptiveAvgPoolForward<T> body{kernels::adaptive_window_geometry(g, out_h, out_w), x, y};
  const int64_t planes = batch * g.channels;
#pragma omp parallel for schedule(static) firstprivate(body) if (planes * g.height * g.width > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < out_h; ++oh)
      for (int64_t ow = 0; ow < out_w; ++ow) body.at(p, oh, ow);
}

// dy (N,C,out_h,out_w) -> dx (N,C,H,W) += dy / window area over each window. Accumulates.
template <class T>
void CpuKernels<T>::adaptive_avg_pool_backward(const Window2d& g, int64_t out_h, int64_t out_w,
                                               int64_t batch, const T* dy, T* dx) const {
  const int64_t in_size = g.height * g.width, out_size = out_h * out_w;
  const int64_t planes = batch * g.channels;
#pragma omp parallel for schedule(static) if (planes * in_size > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p) {
    T* d_in = dx + p * in_size;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const Range rows = adaptive_span(oh, out_h, g.height);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Range cols = adaptive_span(ow, out_w, g.width);
        const int64_t area = (rows.end - rows.begin) * (cols.end - cols.begin);
        const T share = dy[p * out_size + oh * out_w + ow] / static_cast<T>(area);
        for (int64_t ih = rows.begin; ih < rows.end; ++ih)
          for (int64_t iw = cols.begin; iw < cols.end; ++iw) d_in[ih * g.width + iw] += share;
      }
    }
  }
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
