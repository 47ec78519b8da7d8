// Bodies of the window ops: im2col / col2im and max, average and adaptive
// average pooling (one call = one output element), with the span and index
// helpers both backends use. The CUDA backend (cuda/conv_kernels.cu,
// cuda/pool_kernels.cu) launches every body here. The CPU backend
// (engine/cpu/pool_kernels.cpp) runs the pooling forward bodies output by
// output in its per-plane loops (at(plane, oh, ow): no index division per
// output), and its backward passes walk the same spans. Where the schedules
// must differ they agree bit for bit: the backward bodies gather (each input
// pixel visits the windows that contain it, in the order the CPU scatters into
// it: window rows, then columns, ascending), since GPU threads cannot scatter
// into shared pixels without atomics; im2col / col2im on the CPU copy whole
// rows (engine/cpu/conv_kernels.cpp) over the span im2col_valid_outputs gives,
// which the GPU's one-element bodies test. tests/test_cuda_kernels.cpp runs every
// body over an emulated grid against the CPU backend.
#pragma once

#include <cstdint>

#include "engine/backend.h"
#include "engine/host_device.h"

namespace engine::kernels {

// Window2d with its output size, readable in device code.
struct WindowGeometry {
  int64_t channels, height, width;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int64_t out_h, out_w;
};

inline WindowGeometry window_geometry(const Window2d& g) {
  return {g.channels, g.height, g.width, g.kernel_h,     g.kernel_w,
          g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.out_height(), g.out_width()};
}

// Adaptive pooling's geometry: only the sizes matter.
inline WindowGeometry adaptive_window_geometry(const Window2d& g, int64_t out_h, int64_t out_w) {
  return {g.channels, g.height, g.width, 1, 1, 1, 1, 0, 0, out_h, out_w};
}

// Inputs [begin, end) of one dimension.
struct Range {
  int64_t begin, end;
};

// Input rows (or columns) under output o of a window, clipped to the image.
ENGINE_HOST_DEVICE inline Range window_span(int64_t o, int64_t k, int64_t stride, int64_t pad,
                                            int64_t size) {
  const int64_t start = o * stride - pad;
  return {start > 0 ? start : 0, start + k < size ? start + k : size};
}

// Outputs whose window covers input position i: o*stride - pad <= i < o*stride - pad + k.
ENGINE_HOST_DEVICE inline Range covering_windows(int64_t i, int64_t k, int64_t stride,
                                                 int64_t pad, int64_t outputs) {
  const int64_t low = i + pad - k + 1;  // smallest o*stride allowed
  const int64_t begin = low > 0 ? (low + stride - 1) / stride : 0;
  const int64_t end = (i + pad) / stride + 1;
  return {begin, end < outputs ? end : outputs};
}

// PyTorch's adaptive window: output o covers [floor(o*size/outputs), ceil((o+1)*size/outputs)).
ENGINE_HOST_DEVICE inline Range adaptive_span(int64_t o, int64_t outputs, int64_t size) {
  return {o * size / outputs, ((o + 1) * size + outputs - 1) / outputs};
}

// Adaptive outputs whose window covers input position i: window o starts at
// or before i while o*size/outputs < i + 1, and ends after i while
// (o+1)*size/outputs > i, which gives [floor(i*outputs/size), ceil((i+1)*outputs/size)).
ENGINE_HOST_DEVICE inline Range adaptive_covering(int64_t i, int64_t outputs, int64_t size) {
  return {i * outputs / size, ((i + 1) * outputs + size - 1) / size};
}

// The output columns [begin, end) of an im2col row of kernel offset k whose
// input column o*stride - pad + k lies inside [0, size); the others read
// padding. The CPU copies each row's span at once, the GPU tests one column.
ENGINE_HOST_DEVICE inline Range im2col_valid_outputs(int64_t k, int64_t stride, int64_t pad, int64_t size,
                                                     int64_t outputs) {
  const int64_t first = pad - k > 0 ? pad - k : 0;         // smallest o*stride allowed
  const int64_t last = size + pad - k > 0 ? size + pad - k : 0;  // o*stride must stay below it
  int64_t begin = (first + stride - 1) / stride, end = (last + stride - 1) / stride;
  begin = begin < outputs ? begin : outputs;
  end = end < begin ? begin : (end < outputs ? end : outputs);
  return {begin, end};
}

// x (C,H,W) -> cols (C*KH*KW, OH*OW); i indexes cols. Row (c*KH + kh)*KW + kw,
// column oh*OW + ow holds x[c, oh*SH - PH + kh, ow*SW - PW + kw], 0 in the padding.
template <class T>
struct Im2col {
  WindowGeometry g;
  const T* x;
  T* cols;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t ow = i % g.out_w, oh = i / g.out_w % g.out_h, row = i / (g.out_w * g.out_h);
    const int64_t kw = row % g.kernel_w, kh = row / g.kernel_w % g.kernel_h;
    const int64_t c = row / (g.kernel_w * g.kernel_h);
    const int64_t ih = oh * g.stride_h - g.pad_h + kh, iw = ow * g.stride_w - g.pad_w + kw;
    const Range columns = im2col_valid_outputs(kw, g.stride_w, g.pad_w, g.width, g.out_w);
    const bool inside = ih >= 0 && ih < g.height && ow >= columns.begin && ow < columns.end;
    cols[i] = inside ? x[(c * g.height + ih) * g.width + iw] : T(0);
  }
};

// cols (C*KH*KW, OH*OW) -> dx (C,H,W) +=; i indexes dx. Pixel (ih, iw) sums the
// cols entries that im2col copied it to, kernel row and column ascending.
template <class T>
struct Col2im {
  WindowGeometry g;
  const T* cols;
  T* dx;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t iw = i % g.width, ih = i / g.width % g.height, c = i / (g.width * g.height);
    T acc = dx[i];
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t sh = ih + g.pad_h - kh;  // = oh * stride_h
      if (sh < 0 || sh % g.stride_h != 0 || sh / g.stride_h >= g.out_h) continue;
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const int64_t sw = iw + g.pad_w - kw;  // = ow * stride_w
        if (sw < 0 || sw % g.stride_w != 0 || sw / g.stride_w >= g.out_w) continue;
        const int64_t row = (c * g.kernel_h + kh) * g.kernel_w + kw;
        acc += cols[(row * g.out_h + sh / g.stride_h) * g.out_w + sw / g.stride_w];
      }
    }
    dx[i] = acc;
  }
};

// x (N,C,H,W) -> y, argmax (N,C,OH,OW) = flat index into H*W of the first
// maximum; o indexes y. Padding never wins: the op keeps pad <= kernel/2, so
// every window holds at least one pixel. NaN wins (the first one), as in
// PyTorch, so it propagates.
template <class T>
struct MaxPoolForward {
  WindowGeometry g;
  const T* x;
  T* y;
  int32_t* argmax;
  // Output (oh, ow) of plane `plane` (one channel of one image).
  ENGINE_HOST_DEVICE void at(int64_t plane, int64_t oh, int64_t ow) const {
    const T* in = x + plane * g.height * g.width;
    const Range rows = window_span(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
    const Range cols = window_span(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
    // One pass without branches (a compare-and-branch per pixel mispredicts
    // on real data): `v > best ? v : best` is one max instruction, and the
    // indices move by all-ones masks, which compile to logic, not jumps.
    // The first NaN (v != v, on host and device) wins over everything.
    const int64_t first = rows.begin * g.width + cols.begin;
    T best = in[first];
    int64_t best_index = first, nan_index = -1;
    for (int64_t ih = rows.begin; ih < rows.end; ++ih)
      for (int64_t iw = cols.begin; iw < cols.end; ++iw) {
        const int64_t index = ih * g.width + iw;
        const T v = in[index];
        const int64_t larger = -static_cast<int64_t>(v > best);
        const int64_t first_nan = -static_cast<int64_t>((v != v) & (nan_index < 0));
        best_index = (index & larger) | (best_index & ~larger);
        nan_index = (index & first_nan) | (nan_index & ~first_nan);
        best = v > best ? v : best;
      }
    if (nan_index >= 0) best = in[nan_index], best_index = nan_index;
    const int64_t o = (plane * g.out_h + oh) * g.out_w + ow;
    y[o] = best;
    argmax[o] = static_cast<int32_t>(best_index);  // < H*W, at most INT32_MAX (max_pool2d checks)
  }
  ENGINE_HOST_DEVICE void operator()(int64_t o) const {
    at(o / (g.out_w * g.out_h), o / g.out_w % g.out_h, o % g.out_w);
  }
};

// dy, argmax (N,C,OH,OW) -> dx (N,C,H,W) +=; i indexes dx: the dy of every
// covering window whose argmax is this pixel.
template <class T>
struct MaxPoolBackward {
  WindowGeometry g;
  const T* dy;
  const int32_t* argmax;
  T* dx;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t pixel = i % (g.height * g.width), plane = i / (g.height * g.width);
    const int64_t ih = pixel / g.width, iw = pixel % g.width;
    const Range rows = covering_windows(ih, g.kernel_h, g.stride_h, g.pad_h, g.out_h);
    const Range cols = covering_windows(iw, g.kernel_w, g.stride_w, g.pad_w, g.out_w);
    const int64_t first = plane * g.out_h * g.out_w;
    T acc = dx[i];
    for (int64_t oh = rows.begin; oh < rows.end; ++oh)
      for (int64_t ow = cols.begin; ow < cols.end; ++ow) {
        const int64_t o = first + oh * g.out_w + ow;
        if (argmax[o] == pixel) acc += dy[o];
      }
    dx[i] = acc;
  }
};

// x (N,C,H,W) -> y (N,C,OH,OW) = window sum / (KH*KW). Padding counts as
// zeros (count_include_pad); without ceil mode every window lies inside the
// padded image, so the divisor is always KH*KW.
template <class T>
struct AvgPoolForward {
  WindowGeometry g;
  const T* x;
  T* y;
  ENGINE_HOST_DEVICE void at(int64_t plane, int64_t oh, int64_t ow) const {
    const T* in = x + plane * g.height * g.width;
    const Range rows = window_span(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
    const Range cols = window_span(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
    T sum = 0;
    for (int64_t ih = rows.begin; ih < rows.end; ++ih)
      for (int64_t iw = cols.begin; iw < cols.end; ++iw) sum += in[ih * g.width + iw];
    y[(plane * g.out_h + oh) * g.out_w + ow] = sum * (T(1) / static_cast<T>(g.kernel_h * g.kernel_w));
  }
  ENGINE_HOST_DEVICE void operator()(int64_t o) const {
    at(o / (g.out_w * g.out_h), o / g.out_w % g.out_h, o % g.out_w);
  }
};

// dy (N,C,OH,OW) -> dx (N,C,H,W) += dy / (KH*KW) of every covering window.
template <class T>
struct AvgPoolBackward {
  WindowGeometry g;
  const T* dy;
  T* dx;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t iw = i % g.width, ih = i / g.width % g.height, plane = i / (g.width * g.height);
    const Range rows = covering_windows(ih, g.kernel_h, g.stride_h, g.pad_h, g.out_h);
    const Range cols = covering_windows(iw, g.kernel_w, g.stride_w, g.pad_w, g.out_w);
    const T inv_area = T(1) / static_cast<T>(g.kernel_h * g.kernel_w);
    const T* d_out = dy + plane * g.out_h * g.out_w;
    T acc = dx[i];
    for (int64_t oh = rows.begin; oh < rows.end; ++oh)
      for (int64_t ow = cols.begin; ow < cols.end; ++ow) acc += d_out[oh * g.out_w + ow] * inv_area;
    dx[i] = acc;
  }
};

// x (N,C,H,W) -> y (N,C,out_h,out_w): mean over each adaptive window (g.out_* = out_*).
template <class T>
struct AdaptiveAvgPoolForward {
  WindowGeometry g;
  const T* x;
  T* y;
  ENGINE_HOST_DEVICE void at(int64_t plane, int64_t oh, int64_t ow) const {
    const T* in = x + plane * g.height * g.width;
    const Range rows = adaptive_span(oh, g.out_h, g.height);
    const Range cols = adaptive_span(ow, g.out_w, g.width);
    T sum = 0;
    for (int64_t ih = rows.begin; ih < rows.end; ++ih)
      for (int64_t iw = cols.begin; iw < cols.end; ++iw) sum += in[ih * g.width + iw];
    const int64_t area = (rows.end - rows.begin) * (cols.end - cols.begin);
    y[(plane * g.out_h + oh) * g.out_w + ow] = sum / static_cast<T>(area);
  }
  ENGINE_HOST_DEVICE void operator()(int64_t o) const {
    at(o / (g.out_w * g.out_h), o / g.out_w % g.out_h, o % g.out_w);
  }
};

// dy (N,C,out_h,out_w) -> dx (N,C,H,W) += dy / area of every covering adaptive window.
template <class T>
struct AdaptiveAvgPoolBackward {
  WindowGeometry g;
  const T* dy;
  T* dx;
  ENGINE_HOST_DEVICE void operator()(int64_t i) const {
    const int64_t iw = i % g.width, ih = i / g.width % g.height, plane = i / (g.width * g.height);
    const Range rows = adaptive_covering(ih, g.out_h, g.height);
    const Range cols = adaptive_covering(iw, g.out_w, g.width);
    const T* d_out = dy + plane * g.out_h * g.out_w;
    T acc = dx[i];
    for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
      const Range r = adaptive_span(oh, g.out_h, g.height);
      for (int64_t ow = cols.begin; ow < cols.end; ++ow) {
        const Range c = adaptive_span(ow, g.out_w, g.width);
        const int64_t area = (r.end - r.begin) * (c.end - c.begin);
        acc += d_out[oh * g.out_w + ow] / static_cast<T>(area);
      }
    }
    dx[i] = acc;
  }
};

}  // namespace engine::kernels
