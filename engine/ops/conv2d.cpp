// conv2d by im2col + GEMM, forward and backward.
//
// A chunk of B images is lowered to one matrix whose columns are the output
// positions of the B images side by side, cols (C*KH*KW, B*OH*OW), so that one
// GEMM serves the whole chunk (a small feature map alone gives a GEMM too
// narrow to run near peak):
//   forward   Y (OC, B*OH*OW) = W (OC, C*KH*KW) cols + b 1^T
//   backward  dW += dY cols^T;  db += dY 1;  dcols = W^T dY, then col2im per image
// Y and dY are the chunk's y and dy with the images side by side too; copies
// move them to and from NCHW. Backward recomputes cols instead of keeping
// them from the forward: they are KH*KW times larger than the input.
// The chunk size depends on the shapes only, so the order in which dW and db
// accumulate, and hence every bit of the result, is the same for any thread count.
#include <algorithm>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

// GEMMs at least this many columns wide run near the machine's peak; narrower
// maps are batched up to it (measured with experiments/bench).
constexpr int64_t kColumnsPerGemm = 1024;

struct ConvGeometry {
  Window2d window;           // one image
  int64_t batch = 0;         // N
  int64_t out_channels = 0;  // OC
  int64_t patch = 0;         // C*KH*KW: rows of cols, columns of W
  int64_t positions = 0;     // OH*OW: columns of one image's cols
  int64_t chunk = 0;         // images per GEMM
  int64_t image_size() const { return window.channels * window.height * window.width; }
};

std::string shape_of(const char* layout, const Tensor& t) {
  return std::string(layout) + "=" + to_string(t.shape());
}

ConvGeometry conv_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Conv2dOptions& options) {
  check_ndim("conv2d", "x", x, 4);
  check_ndim("conv2d", "weight", weight, 4);
  check_same_dtype_device("conv2d", x, weight);
  if (x.dim(1) != weight.dim(1))
    shape_error("conv2d", shape_of("x (N,C,H,W)", x) + " has " + std::to_string(x.dim(1)) +
                              " channels but " + shape_of("weight (OC,C,KH,KW)", weight) +
                              " expects " + std::to_string(weight.dim(1)));
  if (bias.defined()) {
    check_same_dtype_device("conv2d", x, bias);
    if (bias.shape() != Shape{weight.dim(0)})
      shape_error("conv2d", "bias " + to_string(bias.shape()) + " does not match " +
                                shape_of("weight (OC,C,KH,KW)", weight) + ": expected (" +
                                std::to_string(weight.dim(0)) + ")");
  }
  if (options.stride_h < 1 || options.stride_w < 1 || options.pad_h < 0 || options.pad_w < 0)
    shape_error("conv2d", "stride must be >= 1 and padding >= 0, got stride " +
                              std::to_string(options.stride_h) + "x" +
                              std::to_string(options.stride_w) + ", padding " +
                              std::to_string(options.pad_h) + "x" + std::to_string(options.pad_w));
  Window2d w;
  w.channels = x.dim(1);
  w.height = x.dim(2), w.width = x.dim(3);
  w.kernel_h = weight.dim(2), w.kernel_w = weight.dim(3);
  w.stride_h = options.stride_h, w.stride_w = options.stride_w;
  w.pad_h = options.pad_h, w.pad_w = options.pad_w;
  const int64_t padded_h = w.height + 2 * w.pad_h, padded_w = w.width + 2 * w.pad_w;
  if (w.kernel_h < 1 || w.kernel_w < 1 || w.kernel_h > padded_h || w.kernel_w > padded_w)
    shape_error("conv2d", "kernel " + std::to_string(w.kernel_h) + "x" + std::to_string(w.kernel_w) +
                              " of " + shape_of("weight (OC,C,KH,KW)", weight) +
                              " does not fit the padded input " + std::to_string(padded_h) + "x" +
                              std::to_string(padded_w) + " of " + shape_of("x (N,C,H,W)", x));

  ConvGeometry geo;
  geo.window = w;
  geo.batch = x.dim(0);
  geo.out_channels = weight.dim(0);
  geo.patch = w.channels * w.kernel_h * w.kernel_w;
  geo.positions = w.out_height() * w.out_width();
  geo.chunk = std::clamp<int64_t>((kColumnsPerGemm + geo.positions - 1) / geo.positions, 1,
                                  std::max<int64_t>(geo.batch, 1));
  return geo;
}

// cols (C*KH*KW, b*OH*OW) of the b images starting at x: image i fills columns
// [i*OH*OW, (i+1)*OH*OW). image_cols (C*KH*KW, OH*OW) is scratch for b > 1.
template <class T>
void lower_chunk(const Kernels<T>& kern, const ConvGeometry& geo, const T* x, int64_t b,
                 T* image_cols, T* cols) {
  if (b == 1) return kern.im2col(geo.window, x, cols);
  const int64_t p = geo.positions;
  for (int64_t i = 0; i < b; ++i) {
    kern.im2col(geo.window, x + i * geo.image_size(), image_cols);
    kern.copy_blocks(cols + i * p, b * p, image_cols, p, p, geo.patch);
  }
}

}  // namespace

// x (N,C,H,W), weight (OC,C,KH,KW), bias (OC) or undefined -> y (N,OC,OH,OW)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options) {
  const ConvGeometry geo = conv_geometry(x, weight, bias, options);
  const int64_t oc = geo.out_channels, p = geo.positions;
  Tensor y = Tensor::empty({geo.batch, oc, geo.window.out_height(), geo.window.out_width()},
                           x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    const Kernels<T>& kern = backend(x.device()).kernels<T>();
    const int64_t width = geo.chunk * p;
    Tensor cols = Tensor::empty({geo.patch, width}, x.dtype(), x.device());
    Tensor image_cols = Tensor::empty({geo.chunk > 1 ? geo.patch * p : 0}, x.dtype(), x.device());
    Tensor wide_y = Tensor::empty({geo.chunk > 1 ? oc * width : 0}, x.dtype(), x.device());
    Tensor ones = Tensor::full({bias.defined() ? width : 0}, 1.0, x.dtype(), x.device());
    for (int64_t first = 0; first < geo.batch; first += geo.chunk) {
      const int64_t b = std::min(geo.chunk, geo.batch - first);
      T* y_first = y.data<T>() + first * oc * p;
      T* out = b == 1 ? y_first : wide_y.data<T>();
      lower_chunk(kern, geo, x.data<T>() + first * geo.image_size(), b, image_cols.data<T>(),
                  cols.data<T>());
      // Seed Y with the bias as the rank-1 product b 1^T, then add W cols on top.
      if (bias.defined())
        kern.gemm(false, false, oc, b * p, 1, T(1), bias.data<T>(), ones.data<T>(), T(0), out);
      kern.gemm(false, false, oc, b * p, geo.patch, T(1), weight.data<T>(), cols.data<T>(),
                bias.defined() ? T(1) : T(0), out);
      if (b > 1)
        for (int64_t i = 0; i < b; ++i)
          kern.copy_blocks(y_first + i * oc * p, p, out + i * p, b * p, p, oc);
    }
  });

  if (needs_grad({&x, &weight, &bias})) {
    record(y, "conv2d", {x, weight, bias}, [x, weight, bias, geo](const Tensor& dy) {
      const bool need_dx = x.requires_grad(), need_dw = weight.requires_grad();
      const bool need_db = bias.defined() && bias.requires_grad();
      const int64_t oc = geo.out_channels, p = geo.positions, width = geo.chunk * p;
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        const Kernels<T>& kern = backend(dy.device()).kernels<T>();
        const bool need_cols = need_dx || need_dw;
        Tensor cols = Tensor::empty({need_cols ? geo.patch * width : 0}, dy.dtype(), dy.device());
        Tensor image_cols = Tensor::empty({need_cols && geo.chunk > 1 ? geo.patch * p : 0},
                                          dy.dtype(), dy.device());
        Tensor wide_dy = Tensor::empty({geo.chunk > 1 ? oc * width : 0}, dy.dtype(), dy.device());
        Tensor ones = Tensor::full({need_db ? width : 0}, 1.0, dy.dtype(), dy.device());
        T* dx = need_dx ? grad_buffer(x).data<T>() : nullptr;
        T* dw = need_dw ? grad_buffer(weight).data<T>() : nullptr;
        T* db = need_db ? grad_buffer(bias).data<T>() : nullptr;
        for (int64_t first = 0; first < geo.batch; first += geo.chunk) {
          const int64_t b = std::min(geo.chunk, geo.batch - first);
          const T* dy_first = dy.data<T>() + first * oc * p;
          const T* d_out = dy_first;
          if (b > 1) {
            for (int64_t i = 0; i < b; ++i)
              kern.copy_blocks(wide_dy.data<T>() + i * p, b * p, dy_first + i * oc * p, p, p, oc);
            d_out = wide_dy.data<T>();
          }
          // db (OC) += dY (OC, b*OH*OW) 1
          if (need_db) kern.gemm(false, false, oc, 1, b * p, T(1), d_out, ones.data<T>(), T(1), db);
          // dW (OC, C*KH*KW) += dY cols^T
          if (need_dw) {
            lower_chunk(kern, geo, x.data<T>() + first * geo.image_size(), b,
                        image_cols.data<T>(), cols.data<T>());
            kern.gemm(false, true, oc, geo.patch, b * p, T(1), d_out, cols.data<T>(), T(1), dw);
          }
          // dcols (C*KH*KW, b*OH*OW) = W^T dY, then each image's columns back onto dx.
          if (need_dx) {
            kern.gemm(true, false, geo.patch, b * p, oc, T(1), weight.data<T>(), d_out, T(0),
                      cols.data<T>());
            T* dx_first = dx + first * geo.image_size();
            if (b == 1) {
              kern.col2im(geo.window, cols.data<T>(), dx_first);
              continue;
            }
            for (int64_t i = 0; i < b; ++i) {
              kern.copy_blocks(image_cols.data<T>(), p, cols.data<T>() + i * p, b * p, p, geo.patch);
              kern.col2im(geo.window, image_cols.data<T>(), dx_first + i * geo.image_size());
            }
          }
        }
      });
    });
  }
  return y;
}

}  // namespace engine
