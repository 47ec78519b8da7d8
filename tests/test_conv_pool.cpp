// conv2d and pooling: gradient checks, values against a direct nested-loop
// convolution and hand-computed pools, frozen weights, shape errors,
// bit-identical results for 1 and 2 threads, and the CPU's gemm_batched_sum
// (conv2d's weight and bias gradients) as the loop of products it stands for.
#define BOOST_TEST_MODULE conv_pool
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "tests/gradcheck.h"

using namespace engine;
using testing::check_gradients;
using testing::random_input;

namespace {

Tensor grad_input(const Shape& shape, Generator& gen) {
  Tensor t = random_input(shape, gen);
  t.set_requires_grad();
  return t;
}

// float64 tensor holding a shuffled ramp: all entries distinct and at least
// 2/numel apart, so the max of a window never ties, even under finite differences.
Tensor distinct_input(const Shape& shape, Generator& gen) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = -1.0 + 2.0 * static_cast<double>(i) / v.size();
  gen.shuffle(v);
  Tensor t = Tensor::from_vector(shape, std::span<const double>(v));
  t.set_requires_grad();
  return t;
}

Tensor values(const Shape& shape, const std::vector<double>& v) {
  return Tensor::from_vector(shape, std::span<const double>(v));
}

std::vector<double> iota(int64_t n, double start = 0) {
  std::vector<double> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// Direct convolution in float64: the reference the im2col + GEMM path must match.
// x (N,C,H,W), w (OC,C,KH,KW), bias (OC) or empty -> (N,OC,OH,OW)
struct DirectConv {
  Shape xs, ws;
  Conv2dOptions opt;
  int64_t oh() const { return (xs[2] + 2 * opt.pad_h - ws[2]) / opt.stride_h + 1; }
  int64_t ow() const { return (xs[3] + 2 * opt.pad_w - ws[3]) / opt.stride_w + 1; }

  // Calls f(y_index, x_index, w_index) for every product x*w that feeds an output.
  template <class F>
  void for_each_term(F f) const {
    const int64_t n = xs[0], c = xs[1], h = xs[2], w = xs[3];
    const int64_t oc = ws[0], kh = ws[2], kw = ws[3];
    for (int64_t in = 0; in < n; ++in)
      for (int64_t io = 0; io < oc; ++io)
        for (int64_t y = 0; y < oh(); ++y)
          for (int64_t x = 0; x < ow(); ++x)
            for (int64_t ic = 0; ic < c; ++ic)
              for (int64_t ky = 0; ky < kh; ++ky)
                for (int64_t kx = 0; kx < kw; ++kx) {
                  const int64_t ih = y * opt.stride_h - opt.pad_h + ky;
                  const int64_t iw = x * opt.stride_w - opt.pad_w + kx;
                  if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                  f(((in * oc + io) * oh() + y) * ow() + x, ((in * c + ic) * h + ih) * w + iw,
                    ((io * c + ic) * kh + ky) * kw + kx);
                }
  }

  std::vector<double> forward(const std::vector<double>& x, const std::vector<double>& w,
                              const std::vector<double>& bias) const {
    const int64_t plane = oh() * ow();
    std::vector<double> y(static_cast<size_t>(xs[0] * ws[0] * plane), 0.0);
    for (size_t i = 0; i < y.size() && !bias.empty(); ++i) y[i] = bias[i / plane % ws[0]];
    for_each_term([&](int64_t yi, int64_t xi, int64_t wi) { y[yi] += x[xi] * w[wi]; });
    return y;
  }
};

// Relative error of the whole vector (tests/gradcheck.h): a NaN anywhere fails.
void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                 const std::string& what) {
  const std::string mismatch = testing::describe_mismatch(got, want, tol, "got", "want");
  BOOST_CHECK_MESSAGE(mismatch.empty(), what << ": " << mismatch);
}

// max_pool's loss is linear between ties: a step below half the spacing of
// distinct_input's values (2/numel) never changes a window's maximum.
const testing::GradCheckOptions kMaxPool{1e-3, 1e-12};

struct ConvCase {
  Shape xs, ws;
  Conv2dOptions o;
};

// Covers one image per im2col chunk (64 channels: its cols alone exceed the
// chunk budget), three per chunk with a partial last chunk (16 channels, 5
// images), stride 2 with padding 2, and 5x3 and 1x1 kernels; then maps of at
// most 16 positions, whose chunks go side by side through one GEMM: two
// images per chunk with a partial last one (1456 channels), and stride 2.
const std::vector<ConvCase> kValueCases = {
    {{2, 64, 32, 32}, {2, 64, 3, 3}, {1, 1, 1, 1}},
    {{5, 16, 32, 32}, {3, 16, 3, 3}, {1, 1, 1, 1}},
    {{3, 3, 11, 8}, {2, 3, 5, 3}, {2, 1, 2, 1}},
    {{4, 3, 9, 7}, {5, 3, 1, 1}, {2, 2, 0, 0}},
    {{5, 1456, 4, 4}, {3, 1456, 3, 3}, {1, 1, 1, 1}},
    {{3, 4, 6, 5}, {5, 4, 3, 3}, {2, 2, 1, 1}},
};

}  // namespace

BOOST_AUTO_TEST_CASE(conv2d_matches_direct_loops_float64_and_float32) {
  Generator gen(10);
  for (const ConvCase& c : kValueCases) {
    const DirectConv ref{c.xs, c.ws, c.o};
    Tensor x = random_input(c.xs, gen), w = random_input(c.ws, gen), b = random_input({c.ws[0]}, gen);
    const std::vector<double> want =
        ref.forward(x.to_double_vector(), w.to_double_vector(), b.to_double_vector());
    const std::string name = "conv2d x " + to_string(c.xs) + " w " + to_string(c.ws);
    Tensor y = conv2d(x, w, b, c.o);
    BOOST_TEST(y.shape() == (Shape{c.xs[0], c.ws[0], ref.oh(), ref.ow()}));
    check_close(y.to_double_vector(), want, 1e-12, name + " float64");
    check_close(conv2d(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32), c.o).to_double_vector(),
                want, 1e-4, name + " float32");  // sums of up to 576 float32 products
    const std::vector<double> want_no_bias = ref.forward(x.to_double_vector(), w.to_double_vector(), {});
    check_close(conv2d(x, w, Tensor(), c.o).to_double_vector(), want_no_bias, 1e-12, name + " no bias");
  }
}

// Backward against the same loops: for L = sum(y * r), dx[xi] += r[yi] w[wi],
// dw[wi] += r[yi] x[xi], db[o] = sum of r over (N,OH,OW).
BOOST_AUTO_TEST_CASE(conv2d_gradients_match_direct_loops) {
  Generator gen(11);
  for (const ConvCase& c : kValueCases) {
    const DirectConv ref{c.xs, c.ws, c.o};
    Tensor x = grad_input(c.xs, gen), w = grad_input(c.ws, gen), b = grad_input({c.ws[0]}, gen);
    Tensor y = conv2d(x, w, b, c.o);
    Tensor r = random_input(y.shape(), gen);
    sum(mul(y, r)).backward();

    const auto xv = x.to_double_vector(), wv = w.to_double_vector(), rv = r.to_double_vector();
    std::vector<double> dx(xv.size(), 0.0), dw(wv.size(), 0.0), db(static_cast<size_t>(c.ws[0]), 0.0);
    ref.for_each_term([&](int64_t yi, int64_t xi, int64_t wi) {
      dx[xi] += rv[yi] * wv[wi];
      dw[wi] += rv[yi] * xv[xi];
    });
    const int64_t plane = ref.oh() * ref.ow();
    for (size_t i = 0; i < rv.size(); ++i) db[i / plane % c.ws[0]] += rv[i];
    const std::string name = "conv2d x " + to_string(c.xs) + " w " + to_string(c.ws);
    check_close(x.grad().to_double_vector(), dx, 1e-12, name + " dx");
    check_close(w.grad().to_double_vector(), dw, 1e-12, name + " dw");
    check_close(b.grad().to_double_vector(), db, 1e-12, name + " db");
  }
}

// conv2d's weight and bias gradients sum products over images with
// gemm_batched_sum. On the CPU it must be the very loop of products it
// replaced (float32, bit for bit, with products large enough for threads to
// share them in bands), and in float64 the sum it stands for. Every transpose;
// both operands batched, or one shared (stride 0), as the bias's ones are.
// Threads share the (band, image) calls, a band's images split between
// threads where the work falls so: 5 column bands (n = 288) or 5 row bands
// (m = 288) over 3 or 7 images, on 1, 2, 3 and 8 threads (more threads than
// bands: threads then wait on one another along a band).
BOOST_AUTO_TEST_CASE(cpu_gemm_batched_sum_is_the_loop_of_products) {
  Generator gen(16);
  const int threads_before = num_threads();
  const Kernels<float>& f32 = backend(Device::cpu).f32();
  const Kernels<double>& f64 = backend(Device::cpu).f64();
  for (const auto& [m, n, k, batch] : std::vector<std::array<int64_t, 4>>{
           {64, 288, 128, 3}, {288, 64, 96, 7}})
    for (bool trans_a : {false, true})
      for (bool trans_b : {false, true})
        for (const auto& [stride_a, stride_b] : std::vector<std::pair<int64_t, int64_t>>{
                 {m * k, k * n}, {m * k, 0}, {0, k * n}}) {
          const std::string name = "gemm_batched_sum " + std::to_string(m) + "x" +
                                   std::to_string(n) + "x" + std::to_string(k) + " x " +
                                   std::to_string(batch) + ", " + (trans_a ? "T" : "N") +
                                   (trans_b ? "T" : "N") + ", strides " +
                                   std::to_string(stride_a) + " " + std::to_string(stride_b);
          const Tensor a = random_input({(batch - 1) * stride_a + m * k}, gen);
          const Tensor b = random_input({(batch - 1) * stride_b + k * n}, gen);
          const Tensor c = random_input({m, n}, gen);
          const Tensor a32 = a.to(DType::f32), b32 = b.to(DType::f32);

          // The loop of products, on one thread.
          set_num_threads(1);
          Tensor want = c.to(DType::f32);
          for (int64_t i = 0; i < batch; ++i)
            f32.gemm(trans_a, trans_b, m, n, k, 0.5f, a32.data<float>() + i * stride_a,
                     b32.data<float>() + i * stride_b, 1.0f, want.data<float>());
          // C + 0.5 * sum_i op(A_i) op(B_i), element by element.
          const std::vector<double> av = a.to_double_vector(), bv = b.to_double_vector();
          std::vector<double> sum = c.to_double_vector();
          for (int64_t i = 0; i < batch; ++i)
            for (int64_t r = 0; r < m; ++r)
              for (int64_t col = 0; col < n; ++col)
                for (int64_t p = 0; p < k; ++p) {
                  const double x = av[i * stride_a + (trans_a ? p * m + r : r * k + p)];
                  const double y = bv[i * stride_b + (trans_b ? col * k + p : p * n + col)];
                  sum[r * n + col] += 0.5 * x * y;
                }

          for (int threads : {1, 2, 3, 8}) {
            const std::string at = name + ", " + std::to_string(threads) + " threads";
            set_num_threads(threads);
            Tensor got = c.to(DType::f32);
            f32.gemm_batched_sum(trans_a, trans_b, m, n, k, 0.5f, a32.data<float>(), stride_a,
                                 b32.data<float>(), stride_b, got.data<float>(), batch);
            BOOST_TEST(got.to_float_vector() == want.to_float_vector(), at);
            Tensor got64 = c.clone();
            f64.gemm_batched_sum(trans_a, trans_b, m, n, k, 0.5, a.data<double>(), stride_a,
                                 b.data<double>(), stride_b, got64.data<double>(), batch);
            check_close(got64.to_double_vector(), sum, 1e-14, at + " float64");
          }
        }
  set_num_threads(threads_before);
}

BOOST_AUTO_TEST_CASE(gradcheck_conv2d) {
  Generator gen(12);
  const std::vector<ConvCase> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1, 1, 1}},  // batch > 1, non-square, padding 1
      {{2, 2, 7, 9}, {3, 2, 3, 3}, {2, 2, 1, 1}},  // odd sizes, stride 2
      {{1, 2, 6, 5}, {2, 2, 5, 3}, {2, 1, 2, 1}},  // 5x3 kernel, padding 2
      {{3, 4, 5, 5}, {2, 4, 1, 1}, {1, 1, 0, 0}},  // 1x1 kernel
      {{3, 2, 4, 4}, {3, 2, 3, 3}, {1, 1, 1, 1}},  // a 4x4 map: side by side
  };
  for (const ConvCase& c : cases) {
    const Conv2dOptions o = c.o;
    const std::string name = "conv2d x " + to_string(c.xs) + " w " + to_string(c.ws);
    check_gradients(name, [o](const auto& t) { return conv2d(t[0], t[1], t[2], o); },
                    {grad_input(c.xs, gen), grad_input(c.ws, gen), grad_input({c.ws[0]}, gen)}, testing::kMultilinear);
    check_gradients(name + " no bias", [o](const auto& t) { return conv2d(t[0], t[1], Tensor(), o); },
                    {grad_input(c.xs, gen), grad_input(c.ws, gen)}, testing::kMultilinear);
  }
}

// Every first layer: the images are frozen, the weight and bias train.
BOOST_AUTO_TEST_CASE(gradcheck_conv2d_with_frozen_input) {
  Generator gen(15);
  for (const ConvCase& c : {ConvCase{{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1, 1, 1}},
                            ConvCase{{2, 3, 8, 8}, {2, 3, 3, 3}, {2, 2, 1, 1}}}) {
    const Conv2dOptions o = c.o;
    const std::string name = "conv2d frozen x " + to_string(c.xs) + " w " + to_string(c.ws);
    Tensor frozen = random_input(c.xs, gen);
    check_gradients(name, [o](const auto& t) { return conv2d(t[0], t[1], t[2], o); },
                    {frozen, grad_input(c.ws, gen), grad_input({c.ws[0]}, gen)}, testing::kMultilinear);
    check_gradients(name + " no bias", [o](const auto& t) { return conv2d(t[0], t[1], Tensor(), o); },
                    {frozen, grad_input(c.ws, gen)}, testing::kMultilinear);
    BOOST_TEST(!frozen.grad().defined());
  }
}

BOOST_AUTO_TEST_CASE(frozen_weight_gets_no_gradient) {
  Generator gen(13);
  Tensor x = grad_input({2, 3, 6, 6}, gen), w = random_input({4, 3, 3, 3}, gen);
  Tensor b = grad_input({4}, gen);
  Tensor r = random_input({2, 4, 6, 6}, gen);
  sum(mul(conv2d(x, w, b, {1, 1, 1, 1}), r)).backward();
  BOOST_TEST(!w.grad().defined());
  BOOST_REQUIRE(x.grad().defined());
  BOOST_REQUIRE(b.grad().defined());

  // The input gradient is the same as with a trainable weight.
  Tensor x2 = x.detach().clone().set_requires_grad(), w2 = w.clone().set_requires_grad();
  sum(mul(conv2d(x2, w2, b.detach(), {1, 1, 1, 1}), r)).backward();
  BOOST_TEST(x.grad().to_double_vector() == x2.grad().to_double_vector());
}

BOOST_AUTO_TEST_CASE(gradcheck_pools) {
  Generator gen(14);
  const Pool2dOptions k3s2p1{3, 3, 2, 2, 1, 1};
  const Pool2dOptions k2s2{2, 2, 2, 2, 0, 0};
  const Pool2dOptions k3x2{3, 2, 1, 2, 1, 0};
  for (const Pool2dOptions& o : {k3s2p1, k2s2, k3x2}) {
    check_gradients("max_pool2d", [o](const auto& t) { return max_pool2d(t[0], o); },
                    {distinct_input({2, 3, 7, 6}, gen)}, kMaxPool);
    check_gradients("avg_pool2d", [o](const auto& t) { return avg_pool2d(t[0], o); },
                    {grad_input({2, 3, 7, 6}, gen)}, testing::kMultilinear);
  }
  // Non-divisible sizes (7 -> 3, 5 -> 2), and an output larger than the input.
  check_gradients("adaptive_avg_pool2d 7x5->3x2",
                  [](const auto& t) { return adaptive_avg_pool2d(t[0], 3, 2); },
                  {grad_input({2, 3, 7, 5}, gen)}, testing::kMultilinear);
  check_gradients("adaptive_avg_pool2d 3x3->4x5",
                  [](const auto& t) { return adaptive_avg_pool2d(t[0], 4, 5); },
                  {grad_input({1, 2, 3, 3}, gen)}, testing::kMultilinear);
}

BOOST_AUTO_TEST_CASE(max_pool_known_values) {
  // x = 0..15 on a 4x4 map.
  const Tensor x = values({1, 1, 4, 4}, iota(16));
  BOOST_TEST(max_pool2d(x, {2, 2, 2, 2, 0, 0}).to_double_vector() == (std::vector<double>{5, 7, 13, 15}));
  // Kernel 3, stride 2, padding 1: windows rows/cols [0,2) and [1,4).
  BOOST_TEST(max_pool2d(x, {3, 3, 2, 2, 1, 1}).to_double_vector() == (std::vector<double>{5, 7, 13, 15}));
  // Padding never wins, even over negative pixels.
  const Tensor negative = values({1, 1, 4, 4}, iota(16, -16));
  BOOST_TEST(max_pool2d(negative, {3, 3, 2, 2, 1, 1}).to_double_vector() ==
             (std::vector<double>{-11, -9, -3, -1}));
  // NaN wins its window (it propagates, as in PyTorch); the other windows are unaffected.
  std::vector<double> with_nan = iota(16);
  with_nan[6] = std::nan("");
  const auto pooled = max_pool2d(values({1, 1, 4, 4}, with_nan), {2, 2, 2, 2, 0, 0}).to_double_vector();
  BOOST_TEST(pooled[0] == 5);
  BOOST_TEST(std::isnan(pooled[1]));
  BOOST_TEST(pooled[2] == 13);
  BOOST_TEST(pooled[3] == 15);
  // The first NaN of a window takes its gradient, after a larger pixel (3) and
  // before a second NaN and the largest (7): window (0,1) reads pixels 2 3 6 7.
  with_nan[7] = std::nan("");
  Tensor nan_input = values({1, 1, 4, 4}, with_nan).set_requires_grad();
  sum(max_pool2d(nan_input, {2, 2, 2, 2, 0, 0})).backward();
  BOOST_TEST(nan_input.grad().to_double_vector() ==
             (std::vector<double>{0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1}));
  // Ties: the gradient goes to the first maximum of each window.
  Tensor ones = Tensor::full({1, 1, 4, 4}, 1.0, DType::f64);
  ones.set_requires_grad();
  sum(max_pool2d(ones, {2, 2, 2, 2, 0, 0})).backward();
  BOOST_TEST(ones.grad().to_double_vector() ==
             (std::vector<double>{1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0}));
  // Overlapping windows route each output to its own argmax: pixel 5 is the max
  // of window (0,0) only, 7 of (0,1), 13 of (1,0), 15 of (1,1).
  Tensor xg = x.clone().set_requires_grad();
  sum(mul(max_pool2d(xg, {3, 3, 2, 2, 1, 1}), values({1, 1, 2, 2}, {1, 2, 3, 4}))).backward();
  std::vector<double> want(16, 0.0);
  want[5] = 1, want[7] = 2, want[13] = 3, want[15] = 4;
  BOOST_TEST(xg.grad().to_double_vector() == want);
}

BOOST_AUTO_TEST_CASE(avg_pool_known_values) {
  const Tensor x = values({1, 1, 4, 4}, iota(16));
  const auto y = avg_pool2d(x, {2, 2, 2, 2, 0, 0}).to_double_vector();
  BOOST_TEST(y == (std::vector<double>{2.5, 4.5, 10.5, 12.5}), boost::test_tools::per_element());
  // count_include_pad: every window divides by 9, padding adds zeros.
  const auto padded = avg_pool2d(x, {3, 3, 2, 2, 1, 1}).to_double_vector();
  const std::vector<double> want{10.0 / 9, 24.0 / 9, 51.0 / 9, 90.0 / 9};
  for (size_t i = 0; i < want.size(); ++i) BOOST_TEST(padded[i] == want[i], boost::test_tools::tolerance(1e-14));
  // Backward: pixel 0 lies in window (0,0) only; pixel 5 in all four.
  Tensor xg = x.clone().set_requires_grad();
  sum(avg_pool2d(xg, {3, 3, 2, 2, 1, 1})).backward();
  const auto dx = xg.grad().to_double_vector();
  BOOST_TEST(dx[0] == 1.0 / 9, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(dx[5] == 4.0 / 9, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(dx[15] == 1.0 / 9, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(adaptive_avg_pool_known_values) {
  // 5 -> 3: windows [0,2), [1,4), [3,5).
  const Tensor x = values({1, 1, 1, 5}, {1, 2, 3, 4, 5});
  BOOST_TEST(adaptive_avg_pool2d(x, 1, 3).to_double_vector() == (std::vector<double>{1.5, 3, 4.5}),
             boost::test_tools::per_element());
  // 7 -> 3: windows [0,3), [2,5), [4,7); 7 -> 1 is the global mean.
  const Tensor y = values({1, 1, 7, 1}, iota(7));
  BOOST_TEST(adaptive_avg_pool2d(y, 3, 1).to_double_vector() == (std::vector<double>{1, 3, 5}),
             boost::test_tools::per_element());
  BOOST_TEST(adaptive_avg_pool2d(y, 1, 1).item() == 3.0);
  Tensor yg = y.clone().set_requires_grad();
  sum(adaptive_avg_pool2d(yg, 3, 1)).backward();
  const auto dy = yg.grad().to_double_vector();
  const std::vector<double> want{1.0 / 3, 1.0 / 3, 2.0 / 3, 1.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3};
  for (size_t i = 0; i < want.size(); ++i) BOOST_TEST(dy[i] == want[i], boost::test_tools::tolerance(1e-14));
}

namespace {
void check_message(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    BOOST_ERROR("no exception; expected one mentioning '" << parts.front() << "'");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    for (const std::string& part : parts)
      BOOST_CHECK_MESSAGE(what.find(part) != std::string::npos,
                          "message '" << what << "' lacks '" << part << "'");
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(shape_errors_are_clear) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8});
  check_message([&] { conv2d(x, Tensor::zeros({5, 4, 3, 3}), Tensor()); },
                {"conv2d", "(2, 3, 8, 8)", "has 3 channels", "(5, 4, 3, 3)", "expects 4"});
  check_message([&] { conv2d(x, Tensor::zeros({5, 3, 9, 3}), Tensor()); },
                {"conv2d", "kernel 9x3", "padded input 8x8"});
  check_message([&] { conv2d(x, Tensor::zeros({5, 3, 3, 3}), Tensor::zeros({4})); },
                {"conv2d", "bias (4)", "(5, 3, 3, 3)"});
  check_message([&] { conv2d(x, Tensor::zeros({5, 3, 3, 3}), Tensor(), {0, 1, 0, 0}); },
                {"conv2d", "stride"});
  check_message([&] { conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({5, 3, 3, 3}), Tensor()); },
                {"conv2d", "x must have 4 dimensions"});
  check_message([&] { conv2d(x, Tensor::zeros({5, 3, 3, 3}, DType::f64), Tensor()); },
                {"conv2d", "dtypes differ"});
  check_message([&] { conv2d(Tensor::zeros({2, 0, 8, 8}), Tensor::zeros({5, 0, 3, 3}), Tensor()); },
                {"conv2d", "at least one channel"});
  check_message([&] { max_pool2d(x, {9, 9, 1, 1, 0, 0}); }, {"max_pool2d", "kernel 9x9", "8x8"});
  check_message([&] { avg_pool2d(x, {3, 3, 1, 1, 2, 0}); }, {"avg_pool2d", "padding"});
  check_message([&] { max_pool2d(Tensor::zeros({2, 8, 8}), {}); }, {"max_pool2d", "4 dimensions"});
  check_message([&] { adaptive_avg_pool2d(x, 0, 2); }, {"adaptive_avg_pool2d", "0x2"});
}

// Same bits for 1 and 2 threads, with shapes large enough for OpenMP and
// OpenBLAS to split the work, one and several images per GEMM.
BOOST_AUTO_TEST_CASE(results_do_not_depend_on_thread_count) {
  struct Run {
    std::vector<float> y, pooled, dx, dw, db;
  };
  auto run = [](const Shape& xs, const Shape& ws) {
    Generator gen(15);
    Tensor x = random_input(xs, gen).to(DType::f32).set_requires_grad();
    Tensor w = random_input(ws, gen).to(DType::f32).set_requires_grad();
    Tensor b = random_input({ws[0]}, gen).to(DType::f32).set_requires_grad();
    Tensor y = conv2d(x, w, b, {1, 1, 1, 1});
    Tensor pooled = max_pool2d(relu(y), {3, 3, 2, 2, 1, 1});
    Tensor averaged = adaptive_avg_pool2d(avg_pool2d(pooled, {2, 2, 1, 1, 0, 0}), 3, 3);
    Tensor r = random_input(pooled.shape(), gen).to(DType::f32);
    Tensor s = random_input(averaged.shape(), gen).to(DType::f32);
    add(sum(mul(pooled, r)), sum(mul(averaged, s))).backward();
    return Run{y.to_float_vector(), pooled.to_float_vector(), x.grad().to_float_vector(),
               w.grad().to_float_vector(), b.grad().to_float_vector()};
  };
  for (const auto& [xs, ws] : std::vector<std::pair<Shape, Shape>>{
           {{2, 16, 32, 32}, {32, 16, 3, 3}}, {{7, 32, 12, 12}, {48, 32, 3, 3}},
           {{7, 32, 4, 4}, {48, 32, 3, 3}}}) {
    set_num_threads(1);
    const Run one = run(xs, ws);
    set_num_threads(2);
    const Run two = run(xs, ws);
    set_num_threads(0);
    BOOST_TEST(one.y == two.y);
    BOOST_TEST(one.dx == two.dx);
    BOOST_TEST(one.dw == two.dw);
    BOOST_TEST(one.db == two.db);
    BOOST_TEST(one.pooled == two.pooled);
  }
}
