// conv2d by im2col + GEMM, forward and backward.
//
// Images go through in chunks of B, as many as the device's budget of cols
// elements allows (Backend::conv_chunk_elements: a core's L2 cache on the CPU,
// far more on a GPU). One im2col call lowers a whole chunk: the chunk
// x (B,C,H,W) is read as one image of B*C channels, so its cols
// (B*C*KH*KW, OH*OW) hold each image's cols (C*KH*KW, OH*OW) one after another.
// A chunk's products then take one of two forms, chosen by the output map.
//
// Per image (maps of more than kSideBySideMaxPositions positions). For each
// image n of the chunk:
//   forward   y_n (OC, OH*OW) = W (OC, C*KH*KW) cols_n + b 1^T
//   backward  dW += dy_n cols_n^T;  db += dy_n 1;  dcols_n = W^T dy_n
// and one col2im call puts the chunk's dcols back onto dx. The products y_n
// and dcols_n run as one strided-batched GEMM (a single cuBLAS call on CUDA)
// that reads and writes NCHW in place; the sums dW (per chunk) and db (per
// batch) as one gemm_batched_sum, which the CPU adds image by image and CUDA
// computes as one GEMM over the images' columns side by side. On the 2-core
// CPU a product per image, in place, beat putting a chunk's columns side by
// side for one wide GEMM: the copies that layout needs cost more than the
// wider GEMM gains (up to 20% on the layers of experiments/bench, maps of 8x8
// and more); on a GPU, one launch instead of one per image is worth the copies.
//
// Side by side (small maps: VGG's last two blocks at 32x32 have 4x4 and 2x2).
// There a per-image product would repack all of W (up to 512 x 4608) to make
// at most 16 columns of y, several times its arithmetic. So the chunk's
// columns are copied side by side, cols (C*KH*KW, B*OH*OW), and so are dy's,
// dY (OC, B*OH*OW), and each product is one GEMM over the chunk:
//   forward   Y = W cols + b 1^T, copied back to y (B, OC, OH*OW)
//   backward  dW += dY cols^T;  db += dY 1;  dcols = W^T dY
// The sum over the chunk's images then runs inside one GEMM, in another order
// than image by image; no map of sena32 or tiny at 28x28 or 32x32 is that
// small, so their results are the same bits as before this layout existed.
//
// Backward recomputes cols rather than keeping them from the forward: they are
// KH*KW times larger than the input. Chunks and layouts depend on the shapes
// and the device only, and on the CPU dW and db accumulate in a fixed order,
// so every bit of the result is the same for any thread count.
#include <algorithm>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

// Output maps of at most this many positions (4x4) go side by side.
constexpr int64_t kSideBySideMaxPositions = 16;

struct ConvGeometry {
  Window2d window;           // one image
  int64_t batch = 0;         // N
  int64_t out_channels = 0;  // OC
  int64_t patch = 0;         // C*KH*KW: rows of cols, columns of W
  int64_t positions = 0;     // OH*OW: columns of one image's cols
  int64_t chunk = 0;         // images per im2col call
  bool side_by_side = false; // the chunk's products as one GEMM (small maps)
  int64_t image_size() const { return window.channels * window.height * window.width; }
  // The window of a chunk of b images read as one image of b*C channels.
  Window2d chunk_window(int64_t b) const {
    Window2d w = window;
    w.channels *= b;
    return w;
  }
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
  if (x.dim(1) < 1 || weight.dim(0) < 1)
    shape_error("conv2d", shape_of("x (N,C,H,W)", x) + " and " +
                              shape_of("weight (OC,C,KH,KW)", weight) + " need at least one channel");
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
  // A chunk's cols hold at most the device's budget (Backend::conv_chunk_elements)
  // unless one image alone needs more.
  geo.chunk = std::clamp<int64_t>(
      backend(x.device()).conv_chunk_elements() / (geo.patch * geo.positions), 1,
      std::max<int64_t>(geo.batch, 1));
  geo.side_by_side = geo.positions <= kSideBySideMaxPositions;
  return geo;
}

// Between a chunk's per-image layout (B, rows, P) and side by side (rows, B*P):
// image n's (rows, P) block is column block n of the side-by-side matrix.
template <class T>
void to_side_by_side(const Kernels<T>& kern, const T* per_image, int64_t rows, int64_t b,
                     int64_t p, T* side) {
  kern.swap_leading_axes(side, per_image, b, rows, p);
}
template <class T>
void from_side_by_side(const Kernels<T>& kern, const T* side, int64_t rows, int64_t b,
                       int64_t p, T* per_image) {
  kern.swap_leading_axes(per_image, side, rows, b, p);
}

// The backward of side-by-side chunks (the header's second form): per chunk,
// dY from dy, then db += dY 1, dW += dY cols^T and dcols = W^T dY.
template <class T>
void backward_side_by_side(const Kernels<T>& kern, const ConvGeometry& geo, const Tensor& dy,
                           const Tensor& x_value, const Tensor& weight_value, const Tensor& x_grad,
                           const Tensor& weight_grad, const Tensor& bias_grad) {
  const int64_t oc = geo.out_channels, p = geo.positions, patch = geo.patch;
  const bool need_dx = x_grad.defined(), need_dw = weight_grad.defined();
  const bool need_db = bias_grad.defined();
  const auto buffer = [&](int64_t elements) { return Tensor::empty({elements}, dy.dtype(), dy.device()); };
  const int64_t cols_size = need_dx || need_dw ? geo.chunk * patch * p : 0;
  Tensor dy_side = buffer(geo.chunk * oc * p), cols = buffer(cols_size), side = buffer(cols_size);
  Tensor ones = Tensor::full({need_db ? geo.chunk * p : 0}, 1.0, dy.dtype(), dy.device());
  T* db = need_db ? grad_buffer(bias_grad).data<T>() : nullptr;
  T* dw = need_dw ? grad_buffer(weight_grad).data<T>() : nullptr;
  T* dx = need_dx ? grad_buffer(x_grad).data<T>() : nullptr;
  for (int64_t first = 0; first < geo.batch; first += geo.chunk) {
    const int64_t b = std::min(geo.chunk, geo.batch - first);
    to_side_by_side(kern, dy.data<T>() + first * oc * p, oc, b, p, dy_side.data<T>());
    if (need_db) kern.gemm(false, false, oc, 1, b * p, T(1), dy_side.data<T>(), ones.data<T>(), T(1), db);
    if (need_dw) {
      kern.im2col(geo.chunk_window(b), x_value.data<T>() + first * geo.image_size(), cols.data<T>());
      to_side_by_side(kern, cols.data<T>(), patch, b, p, side.data<T>());
      kern.gemm(false, true, oc, patch, b * p, T(1), dy_side.data<T>(), side.data<T>(), T(1), dw);
    }
    if (need_dx) {  // dcols side by side in `side`, back to per image in `cols`, onto dx
      kern.gemm(true, false, patch, b * p, oc, T(1), weight_value.data<T>(), dy_side.data<T>(), T(0),
                side.data<T>());
      from_side_by_side(kern, side.data<T>(), patch, b, p, cols.data<T>());
      kern.col2im(geo.chunk_window(b), cols.data<T>(), dx + first * geo.image_size());
    }
  }
}

}  // namespace

// x (N,C,H,W), weight (OC,C,KH,KW), bias (OC) or undefined -> y (N,OC,OH,OW)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options) {
  const ConvGeometry geo = conv_geometry(x, weight, bias, options);
  const int64_t oc = geo.out_channels, p = geo.positions, patch = geo.patch;
  Tensor y = Tensor::empty({geo.batch, oc, geo.window.out_height(), geo.window.out_width()},
                           x.dtype(), x.device());
  dispatch_dtype(x.dtype(), [&]<class T>() {
    const Kernels<T>& kern = backend(x.device()).kernels<T>();
    const auto buffer = [&](int64_t elements) { return Tensor::empty({elements}, x.dtype(), x.device()); };
    // Side by side: the chunk's cols and Y (OC, B*OH*OW); b 1^T spans the chunk.
    const int64_t columns = geo.side_by_side ? geo.chunk * p : p;  // of one product
    Tensor cols = buffer(geo.chunk * patch * p);
    Tensor side = geo.side_by_side ? buffer(geo.chunk * patch * p) : Tensor();
    Tensor y_side = geo.side_by_side ? buffer(geo.chunk * oc * p) : Tensor();
    Tensor ones = Tensor::full({bias.defined() ? columns : 0}, 1.0, x.dtype(), x.device());
    // Per image, every y_n starts as the same map b 1^T (OC, OH*OW): one rank-1
    // product makes it, and each chunk copies it into its y_n (as linear seeds
    // its rows), rather than a rank-1 product per image.
    const bool seed_per_image = bias.defined() && !geo.side_by_side;
    Tensor bias_map = buffer(seed_per_image ? oc * p : 0);
    if (seed_per_image)
      kern.gemm(false, false, oc, p, 1, T(1), bias.data<T>(), ones.data<T>(), T(0), bias_map.data<T>());
    for (int64_t first = 0; first < geo.batch; first += geo.chunk) {
      const int64_t b = std::min(geo.chunk, geo.batch - first);
      T* y_first = y.data<T>() + first * oc * p;
      kern.im2col(geo.chunk_window(b), x.data<T>() + first * geo.image_size(), cols.data<T>());
      const T beta = bias.defined() ? T(1) : T(0);
      if (geo.side_by_side) {
        to_side_by_side(kern, cols.data<T>(), patch, b, p, side.data<T>());
        // Seed Y with the bias as the rank-1 product b 1^T, then add W cols on top.
        if (bias.defined())
          kern.gemm(false, false, oc, b * p, 1, T(1), bias.data<T>(), ones.data<T>(), T(0),
                    y_side.data<T>());
        kern.gemm(false, false, oc, b * p, patch, T(1), weight.data<T>(), side.data<T>(), beta,
                  y_side.data<T>());
        from_side_by_side(kern, y_side.data<T>(), oc, b, p, y_first);
        continue;
      }
      // Seed each y_n with the bias map, then add W cols_n on top.
      if (seed_per_image) kern.copy_blocks(y_first, oc * p, bias_map.data<T>(), 0, oc * p, b);
      kern.gemm_strided_batched(false, false, oc, p, patch, T(1), weight.data<T>(), 0,
                                cols.data<T>(), patch * p, beta, y_first, oc * p, b);
    }
  });

  if (needs_grad({&x, &weight, &bias})) {
    // dx reads W and dW reads x: keep each only for the gradient that reads it.
    const Tensor x_value = weight.requires_grad() ? x : Tensor();
    const Tensor weight_value = x.requires_grad() ? weight : Tensor();
    record(y, "conv2d", {x, weight, bias}, {x_value, weight_value},
           [x_grad = grad_target(x), weight_grad = grad_target(weight),
            bias_grad = grad_target(bias), x_value, weight_value, geo](const Tensor& dy) {
      const bool need_dx = x_grad.defined(), need_dw = weight_grad.defined();
      const bool need_db = bias_grad.defined();
      const int64_t oc = geo.out_channels, p = geo.positions, patch = geo.patch;
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        const Kernels<T>& kern = backend(dy.device()).kernels<T>();
        const auto buffer = [&](int64_t elements) { return Tensor::empty({elements}, dy.dtype(), dy.device()); };
        if (geo.side_by_side) {
          backward_side_by_side(kern, geo, dy, x_value, weight_value, x_grad, weight_grad, bias_grad);
          return;
        }
        // db (OC) += sum over n of dy_n (OC, OH*OW) 1.
        if (need_db) {
          Tensor ones = Tensor::full({p}, 1.0, dy.dtype(), dy.device());
          kern.gemm_batched_sum(false, false, oc, 1, p, T(1), dy.data<T>(), oc * p,
                                ones.data<T>(), 0, grad_buffer(bias_grad).data<T>(), geo.batch);
        }
        if (!need_dx && !need_dw) return;
        Tensor cols = buffer(geo.chunk * patch * p);
        T* dw = need_dw ? grad_buffer(weight_grad).data<T>() : nullptr;
        T* dx = need_dx ? grad_buffer(x_grad).data<T>() : nullptr;
        for (int64_t first = 0; first < geo.batch; first += geo.chunk) {
          const int64_t b = std::min(geo.chunk, geo.batch - first);
          const T* dy_first = dy.data<T>() + first * oc * p;
          // dW (OC, C*KH*KW) += sum over the chunk's n of dy_n cols_n^T.
          if (need_dw) {
            kern.im2col(geo.chunk_window(b), x_value.data<T>() + first * geo.image_size(),
                        cols.data<T>());
            kern.gemm_batched_sum(false, true, oc, patch, p, T(1), dy_first, oc * p,
                                  cols.data<T>(), patch * p, dw, b);
          }
          // dcols_n (C*KH*KW, OH*OW) = W^T dy_n, then the chunk's columns back onto dx.
          if (need_dx) {
            kern.gemm_strided_batched(true, false, patch, p, oc, T(1), weight_value.data<T>(), 0,
                                      dy_first, oc * p, T(0), cols.data<T>(), patch * p, b);
            kern.col2im(geo.chunk_window(b), cols.data<T>(), dx + first * geo.image_size());
          }
        }
      });
    });
  }
  return y;
}

}  // namespace engine
