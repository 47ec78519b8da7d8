// Max, average and adaptive average pooling over (N*C) independent planes.
//
// Every loop is split over planes: a plane's outputs (forward) or its input
// gradient (backward) belong to one thread, which visits the windows in a
// fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>

#include "engine/cpu/cpu_kernels.h"

namespace engine::cpu {

namespace {

// The input rows (or columns) [begin, end) under output position o of a
// window of size k, clipped to the image: padding holds no pixels.
struct Span {
  int64_t begin, end;
};
Span window_span(int64_t o, int64_t k, int64_t stride, int64_t pad, int64_t size) {
  const int64_t start = o * stride - pad;
  return {std::max<int64_t>(start, 0), std::min(start + k, size)};
}

// PyTorch's adaptive window: output o of `outputs` covers input
// [floor(o*size/outputs), ceil((o+1)*size/outputs)).
Span adaptive_span(int64_t o, int64_t outputs, int64_t size) {
  return {o * size / outputs, ((o + 1) * size + outputs - 1) / outputs};
}

}  // namespace

// x (N,C,H,W) -> y (N,C,OH,OW), argmax (N,C,OH,OW) = flat index into H*W of the
// first maximum. Padding never wins: the op keeps pad <= kernel/2, so every
// window holds at least one pixel. NaN wins (the first one), as in PyTorch, so it propagates.
template <class T>
void CpuKernels<T>::max_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y,
                                     int64_t* argmax) const {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  const int64_t in_size = g.height * g.width, out_size = out_h * out_w;
  const int64_t planes = batch * g.channels;
#pragma omp parallel for schedule(static) if (planes * out_size * g.kernel_h * g.kernel_w > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = x + p * in_size;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const Span rows = window_span(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Span cols = window_span(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
        // Two passes: the maximum (branch-free), then the first pixel holding
        // it; a single pass with a compare-and-branch per pixel mispredicts on
        // real data. A NaN anywhere is the maximum.
        T best = in[rows.begin * g.width + cols.begin];
        bool has_nan = false;
        for (int64_t ih = rows.begin; ih < rows.end; ++ih)
          for (int64_t iw = cols.begin; iw < cols.end; ++iw) {
            const T v = in[ih * g.width + iw];
            best = v > best ? v : best;
            has_nan |= std::isnan(v);
          }
        int64_t best_index = -1;
        for (int64_t ih = rows.begin; ih < rows.end && best_index < 0; ++ih)
          for (int64_t iw = cols.begin; iw < cols.end; ++iw) {
            const T v = in[ih * g.width + iw];
            if (has_nan ? std::isnan(v) : v == best) {
              best_index = ih * g.width + iw;
              break;
            }
          }
        if (has_nan) best = in[best_index];
        const int64_t o = p * out_size + oh * out_w + ow;
        y[o] = best;
        argmax[o] = best_index;
      }
    }
  }
}

// dy (N,C,OH,OW), argmax (N,C,OH,OW) -> dx (N,C,H,W) += dy at each argmax. Accumulates.
template <class T>
void CpuKernels<T>::max_pool_backward(const Window2d& g, int64_t batch, const T* dy,
                                      const int64_t* argmax, T* dx) const {
  const int64_t in_size = g.height * g.width, out_size = g.out_height() * g.out_width();
  const int64_t planes = batch * g.channels;
#pragma omp parallel for schedule(static) if (planes * out_size > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t o = p * out_size; o < (p + 1) * out_size; ++o) dx[p * in_size + argmax[o]] += dy[o];
}

// x (N,C,H,W) -> y (N,C,OH,OW): window sum / (KH*KW). Padding counts as zeros
// (count_include_pad); without ceil mode every window lies inside the padded
// image, so the divisor is always KH*KW. Overwrites.
template <class T>
void CpuKernels<T>::avg_pool_forward(const Window2d& g, int64_t batch, const T* x, T* y) const {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  const int64_t in_size = g.height * g.width, out_size = out_h * out_w;
  const int64_t planes = batch * g.channels;
  const T inv_area = T(1) / static_cast<T>(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (planes * out_size * g.kernel_h * g.kernel_w > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = x + p * in_size;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const Span rows = window_span(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Span cols = window_span(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
        T sum = 0;
        for (int64_t ih = rows.begin; ih < rows.end; ++ih)
          for (int64_t iw = cols.begin; iw < cols.end; ++iw) sum += in[ih * g.width + iw];
        y[p * out_size + oh * out_w + ow] = sum * inv_area;
      }
    }
  }
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
      const Span rows = window_span(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Span cols = window_span(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
        const T share = dy[p * out_size + oh * out_w + ow] * inv_area;
        for (int64_t ih = rows.begin; ih < rows.end; ++ih)
          for (int64_t iw = cols.begin; iw < cols.end; ++iw) d_in[ih * g.width + iw] += share;
      }
    }
  }
}

// x (N,C,H,W) -> y (N,C,out_h,out_w): mean over each adaptive window. Overwrites.
template <class T>
void CpuKernels<T>::adaptive_avg_pool_forward(const Window2d& g, int64_t out_h, int64_t out_w,
                                              int64_t batch, const T* x, T* y) const {
  const int64_t in_size = g.height * g.width, out_size = out_h * out_w;
  const int64_t planes = batch * g.channels;
#pragma omp parallel for schedule(static) if (planes * in_size > kParallelGrain)
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = x + p * in_size;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const Span rows = adaptive_span(oh, out_h, g.height);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Span cols = adaptive_span(ow, out_w, g.width);
        T sum = 0;
        for (int64_t ih = rows.begin; ih < rows.end; ++ih)
          for (int64_t iw = cols.begin; iw < cols.end; ++iw) sum += in[ih * g.width + iw];
        const int64_t area = (rows.end - rows.begin) * (cols.end - cols.begin);
        y[p * out_size + oh * out_w + ow] = sum / static_cast<T>(area);
      }
    }
  }
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
      const Span rows = adaptive_span(oh, out_h, g.height);
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Span cols = adaptive_span(ow, out_w, g.width);
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
