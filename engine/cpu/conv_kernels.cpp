// im2col / col2im: the data movement that turns a convolution into one GEMM.
//
// Row r = (c*KH + kh)*KW + kw of cols holds, for every output position
// (oh, ow), the input pixel x[c, oh*SH - PH + kh, ow*SW - PW + kw], or 0 where
// that pixel lies in the padding. Both kernels split the work over disjoint
// outputs (a channel's rows of cols, channels of dx), so results do not depend
// on the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/cpu/cpu_kernels.h"
#include "engine/kernels/window_bodies.h"

namespace engine::cpu {

// Runs of input pixels shorter than this are copied by a loop, longer ones by
// memcpy: a call per run cost more than the copy of VGG's 2x2 to 8x8 rows
// (measured: the 512->512 layer at 2x2 took 9 % less), while for sena32's 16-
// and 32-wide rows a loop and memcpy cost the same.
constexpr int64_t kShortRun = 16;

// x (C,H,W) of one image -> cols (C*KH*KW, OH*OW); zero in the padding. Overwrites.
// A thread takes whole channels (their KH*KW rows). Each output row oh of a
// row of cols is padding, or padding, a run of input pixels (a map's width)
// and padding; the run's span depends on kw alone, so it is found once per call.
template <class T>
void CpuKernels<T>::im2col(const Window2d& g, const T* x, T* cols) const {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  std::vector<kernels::Range> inside(static_cast<size_t>(g.kernel_w));  // per kw
  for (int64_t kw = 0; kw < g.kernel_w; ++kw)
    inside[static_cast<size_t>(kw)] = kernels::im2col_valid_outputs(kw, g.stride_w, g.pad_w, g.width, out_w);
  const int64_t channel_size = g.kernel_h * g.kernel_w * out_h * out_w;  // of cols
#pragma omp parallel for schedule(static) if (g.channels * channel_size > kParallelGrain)
  for (int64_t c = 0; c < g.channels; ++c) {
    const T* plane = x + c * g.height * g.width;
    T* out = cols + c * channel_size;
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const kernels::Range run = inside[static_cast<size_t>(kw)];
        const int64_t shift = kw - g.pad_w;  // input column of output column 0
        for (int64_t oh = 0; oh < out_h; ++oh, out += out_w) {
          const int64_t ih = oh * g.stride_h - g.pad_h + kh;
          if (ih < 0 || ih >= g.height) {
            std::fill(out, out + out_w, T(0));
            continue;
          }
          const T* in_row = plane + ih * g.width;
          std::fill(out, out + run.begin, T(0));
          if (g.stride_w == 1 && run.end - run.begin >= kShortRun) {
            std::memcpy(out + run.begin, in_row + run.begin + shift,
                        static_cast<size_t>(run.end - run.begin) * sizeof(T));
          } else if (g.stride_w == 1) {
            for (int64_t ow = run.begin; ow < run.end; ++ow) out[ow] = in_row[ow + shift];
          } else {
            for (int64_t ow = run.begin; ow < run.end; ++ow) out[ow] = in_row[ow * g.stride_w + shift];
          }
          std::fill(out + run.end, out + out_w, T(0));
        }
      }
    }
  }
}

// cols (C*KH*KW, OH*OW) -> dx (C,H,W), summing overlapping windows. Accumulates.
// One thread owns a channel, and adds its rows in a fixed order.
template <class T>
void CpuKernels<T>::col2im(const Window2d& g, const T* cols, T* dx) const {
  const int64_t out_h = g.out_height(), out_w = g.out_width();
  const int64_t work = g.channels * g.kernel_h * g.kernel_w * out_h * out_w;
#pragma omp parallel for schedule(static) if (work > kParallelGrain)
  for (int64_t c = 0; c < g.channels; ++c) {
    T* plane = dx + c * g.height * g.width;
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const int64_t row = (c * g.kernel_h + kh) * g.kernel_w + kw;
        const kernels::Range cols_in = kernels::im2col_valid_outputs(kw, g.stride_w, g.pad_w, g.width, out_w);
        const T* src = cols + row * out_h * out_w;
        for (int64_t oh = 0; oh < out_h; ++oh, src += out_w) {
          const int64_t ih = oh * g.stride_h - g.pad_h + kh;
          if (ih < 0 || ih >= g.height) continue;
          T* dx_row = plane + ih * g.width;
          const int64_t shift = kw - g.pad_w;
          if (g.stride_w == 1) {  // contiguous: the compiler vectorises this loop
            T* dst = dx_row + cols_in.begin + shift;
            const T* from = src + cols_in.begin;
            for (int64_t i = 0; i < cols_in.end - cols_in.begin; ++i) dst[i] += from[i];
          } else {
            for (int64_t ow = cols_in.begin; ow < cols_in.end; ++ow)
              dx_row[ow * g.stride_w + shift] += src[ow];
          }
        }
      }
    }
  }
}

template class CpuKernels<float>;
template class CpuKernels<double>;

}  // namespace engine::cpu
