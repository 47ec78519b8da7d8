// The CUDA kernels' bodies (engine/kernels/*.h), run on the CPU over an
// emulated grid and compared with the CPU backend. The bodies
// are the code the GPU runs; here every block and thread index of a launch
// calls them through the same grid-stride loop, under two grids: the backend's
// own launch (the last block overhangs the data) and a grid smaller than the
// data (threads loop). Block reductions run through their host reference
// (block_sum_reference). Where the CPU backend calls the same body in its own
// loops (engine/kernels/), this checks the GPU's indexing and grid coverage
// against the CPU's loop structure; the formulas themselves are pinned by the
// literal values of the op tests (test_optim, test_norm_loss, ...).
// Needs no GPU: compiled by the host compiler, it runs in every build.
#define BOOST_TEST_MODULE cuda_kernels
#include <boost/test/unit_test.hpp>

#include <boost/mpl/list.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/caching_allocator.h"
#include "cuda/grid.h"
#include "engine/backend.h"
#include "engine/kernels/batch_norm_bodies.h"
#include "engine/kernels/dropout_body.h"
#include "engine/kernels/elementwise_bodies.h"
#include "engine/kernels/loss_bodies.h"
#include "engine/kernels/update_bodies.h"
#include "engine/kernels/window_bodies.h"
#include "engine/random.h"

using namespace engine;
using namespace engine::cuda;
using namespace engine::kernels;

namespace {

using FloatTypes = boost::mpl::list<float, double>;

template <class T>
const Kernels<T>& cpu() {
  return backend(Device::cpu).kernels<T>();
}

template <class T>
std::vector<T> random_values(int64_t n, Generator& gen, double low = -1, double high = 1) {
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = static_cast<T>(gen.uniform(low, high));
  return v;
}

// Every thread of a grid of `blocks` x kThreads calls the body through
// grid_stride, as grid_stride_kernel does on the GPU.
template <class Body>
void run_grid(int64_t blocks, int64_t n, const Body& body) {
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t t = 0; t < kThreads; ++t) grid_stride(ThreadIndex{b, t, blocks, kThreads}, n, body);
}

// The grids each body runs under: the backend's launch and 3 blocks.
std::vector<int64_t> grids(int64_t n) { return {launch_blocks(n), 3}; }

// Relative error, with equal infinities and NaN against NaN counted as exact.
template <class T>
double relative_error(T got, T want) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want) ? 0 : 1e300;
  if (got == want) return 0;
  const double g = got, w = want;
  return std::abs(g - w) / std::max(1.0, std::abs(w));
}

// got == want element by element, to `tolerance` (0: exactly, the same
// arithmetic in the same order as the CPU).
template <class T>
void check_close(const std::string& what, const std::vector<T>& got, const std::vector<T>& want,
                 double tolerance = 0) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  double worst = 0;
  size_t worst_index = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double error = relative_error(got[i], want[i]);
    if (error > worst) worst = error, worst_index = i;
  }
  BOOST_CHECK_MESSAGE(worst <= tolerance, what << ": element " << worst_index << " is "
                                               << got[worst_index] << ", the CPU gives "
                                               << want[worst_index] << " (relative error "
                                               << worst << ")");
}

// Runs make_body(out) under each grid on a fresh copy of `initial` and
// compares with the CPU's `want`.
template <class T, class MakeBody>
void check_body(const std::string& what, int64_t n, const std::vector<T>& initial,
                const std::vector<T>& want, MakeBody make_body, double tolerance = 0) {
  for (int64_t blocks : grids(n)) {
    std::vector<T> out = initial;
    run_grid(blocks, n, make_body(out.data()));
    check_close(what + " on " + std::to_string(blocks) + " blocks", out, want, tolerance);
  }
}

// Tolerance for sums whose order differs from the CPU's (block reductions).
template <class T>
constexpr double reorder_tolerance() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-12;
}

// Window geometries with padding, uneven strides, non-square kernels and a
// 1x1 window; pooling ones keep pad <= kernel/2.
std::vector<Window2d> geometries() {
  Window2d a;
  a.channels = 3, a.height = 7, a.width = 6, a.kernel_h = 3, a.kernel_w = 3;
  a.stride_h = 2, a.stride_w = 2, a.pad_h = 1, a.pad_w = 1;
  Window2d b;
  b.channels = 2, b.height = 5, b.width = 8, b.kernel_h = 2, b.kernel_w = 3;
  b.stride_h = 1, b.stride_w = 2, b.pad_h = 0, b.pad_w = 1;
  Window2d c;
  c.channels = 1, c.height = 4, c.width = 4;
  return {a, b, c};
}

}  // namespace

BOOST_AUTO_TEST_CASE(grid_stride_visits_every_item_once) {
  for (int64_t n : {0, 1, 255, 256, 257, 1000, 70000}) {
    for (int64_t blocks : {launch_blocks(n), int64_t(1), int64_t(3), int64_t(7)}) {
      std::vector<int> visits(static_cast<size_t>(n), 0);
      run_grid(blocks, n, [&](int64_t i) { ++visits[static_cast<size_t>(i)]; });
      int64_t wrong = 0;
      for (int v : visits) wrong += v != 1;
      BOOST_TEST(wrong == 0, "n " << n << ", " << blocks << " blocks: " << wrong
                                  << " items not visited exactly once");
    }
  }
  BOOST_TEST(launch_blocks(257) == 2);
  BOOST_TEST(launch_blocks(int64_t(1) << 40) == kMaxBlocks);
}

BOOST_AUTO_TEST_CASE(block_reduction_sums_every_value_once) {
  // Integers sum exactly in double: any lost or repeated value shows.
  const auto value = [](int64_t i) { return static_cast<double>(i + 1); };
  for (int64_t count : {0, 1, 100, 256, 257, 5000}) {
    const double want = static_cast<double>(count) * static_cast<double>(count + 1) / 2;
    BOOST_TEST(block_sum_reference(0, 1, count, value) == want, "count " << count);
    for (int64_t parts : {2, 3, 7}) {
      double sum = 0;
      for (int64_t p = 0; p < parts; ++p) sum += block_sum_reference(p, parts, count, value);
      BOOST_TEST(sum == want, "count " << count << " in " << parts << " blocks");
    }
  }
  // The tree pairs thread t with t + half: after the first step of 256
  // threads, partial 0 holds threads 0 and 128.
  std::vector<double> partials(kThreads);
  for (int64_t t = 0; t < kThreads; ++t) partials[t] = static_cast<double>(t);
  tree_step(partials.data(), 0, kThreads / 2);
  tree_step(partials.data(), kThreads / 2, kThreads / 2);
  BOOST_TEST(partials[0] == 128.0);
  BOOST_TEST(partials[kThreads / 2] == 128.0);  // threads >= half keep their value
}

BOOST_AUTO_TEST_CASE(allocation_buckets_waste_at_most_an_eighth_or_511_bytes) {
  BOOST_TEST(allocation_bucket(0) == 512u);
  BOOST_TEST(allocation_bucket(1) == 512u);
  BOOST_TEST(allocation_bucket(512) == 512u);
  BOOST_TEST(allocation_bucket(513) == 1024u);
  BOOST_TEST(allocation_bucket(4097) == 4608u);
  BOOST_TEST(allocation_bucket((size_t(1) << 20) + 1) == (size_t(1) << 20) + (size_t(1) << 17));
  size_t previous = 0;
  for (size_t bytes = 1; bytes < (size_t(1) << 30); bytes = bytes * 5 / 4 + 1) {
    const size_t bucket = allocation_bucket(bytes);
    BOOST_TEST(bucket >= bytes);
    BOOST_TEST(bucket % 512 == 0u);
    BOOST_TEST((bucket <= bytes + 511 || bucket <= bytes + bytes / 8), "bytes " << bytes);
    BOOST_TEST(bucket >= previous);
    previous = bucket;
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(memory_kernels_match_cpu, T, FloatTypes) {
  Generator gen(1);
  const std::vector<T> x = random_values<T>(37 * 29, gen);

  std::vector<T> want(300, T(0));
  cpu<T>().fill(want.data(), 300, T(2.5));
  check_body<T>("fill", 300, std::vector<T>(300, T(0)), want,
                [](T* out) { return Fill<T>{out, T(2.5)}; });

  // 29 rows of 11 from x's rows of 37 into rows of 13; then one block repeated (stride 0).
  for (int64_t src_stride : {37, 0}) {
    const std::vector<T> initial = random_values<T>(29 * 13, gen);
    want = initial;
    cpu<T>().copy_blocks(want.data(), 13, x.data(), src_stride, 11, 29);
    check_body<T>("copy_blocks, source stride " + std::to_string(src_stride), 29 * 11, initial,
                  want, [&](T* out) { return CopyBlocks<T>{out, 13, x.data(), src_stride, 11}; });
  }

  want.assign(x.size(), T(0));
  cpu<T>().transpose2d(want.data(), x.data(), 37, 29);
  check_body<T>("transpose2d", 37 * 29, std::vector<T>(x.size()), want,
                [&](T* out) { return Transpose2d<T>{out, x.data(), 37, 29}; });
}

// Against the definition out[j][i][k] = x[i*stride_i + j*K + k] in plain loops
// (the body, and for a contiguous x the CPU backend's swap_leading_axes, which
// the CUDA backend launches as this body): contiguous x, I slices apart by more
// than J*K, one slice repeated (stride 0), and 1-sized axes (J = 1 is how
// gemm_batched_sum stacks (k, columns) operands).
BOOST_AUTO_TEST_CASE_TEMPLATE(swap_leading_axes_matches_loops, T, FloatTypes) {
  Generator gen(11);
  struct Case {
    int64_t i, j, k, stride_i;
  };
  for (const Case c : {Case{4, 3, 5, 15}, Case{3, 2, 7, 20}, Case{5, 3, 4, 0}, Case{1, 6, 5, 30},
                       Case{4, 1, 9, 9}, Case{3, 4, 1, 4}, Case{1, 1, 1, 1}, Case{130, 7, 3, 21}}) {
    const int64_t n = c.i * c.j * c.k;
    const std::vector<T> x = random_values<T>((c.i - 1) * c.stride_i + c.j * c.k, gen);
    std::vector<T> want(static_cast<size_t>(n));
    for (int64_t j = 0; j < c.j; ++j)
      for (int64_t i = 0; i < c.i; ++i)
        for (int64_t k = 0; k < c.k; ++k)
          want[(j * c.i + i) * c.k + k] = x[i * c.stride_i + j * c.k + k];
    const std::string name = "swap_leading_axes I" + std::to_string(c.i) + " J" +
                             std::to_string(c.j) + " K" + std::to_string(c.k) + " stride " +
                             std::to_string(c.stride_i);
    check_body<T>(name, n, std::vector<T>(n, T(NAN)), want, [&](T* out) {
      return SwapLeadingAxes<T>{out, x.data(), c.i, c.j, c.k, c.stride_i};
    });
    if (c.stride_i == c.j * c.k) {  // the Kernels method takes a contiguous x
      std::vector<T> got(static_cast<size_t>(n), T(NAN));
      cpu<T>().swap_leading_axes(got.data(), x.data(), c.i, c.j, c.k);
      BOOST_TEST(got == want, name << ", CPU backend");
    }
  }
}

// The CUDA gemm_batched_sum on the host: its operands laid along k by
// stack_along_k's bodies on the emulated grid, then one product of depth
// batch*k (the CPU's gemm, which reads row-major operands as the CUDA gemm
// does), against the CPU's products added one by one. Every transpose, for
// operands in a row, shared (stride 0) and with gaps between them.
BOOST_AUTO_TEST_CASE_TEMPLATE(gemm_batched_sum_stacking_matches_cpu, T, FloatTypes) {
  Generator gen(12);
  const int64_t m = 19, n = 11, k = 13, batch = 5;
  // Sums of batch*k products in another order than the CPU's.
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (const auto& [stride_a, stride_b] : std::vector<std::pair<int64_t, int64_t>>{
               {m * k, k * n}, {m * k, 0}, {0, k * n}, {m * k + 3, k * n + 2}}) {
        const std::vector<T> a = random_values<T>((batch - 1) * stride_a + m * k, gen);
        const std::vector<T> b = random_values<T>((batch - 1) * stride_b + k * n, gen);
        const std::vector<T> initial = random_values<T>(m * n, gen);
        std::vector<T> want = initial;
        cpu<T>().gemm_batched_sum(trans_a, trans_b, m, n, k, T(0.5), a.data(), stride_a,
                                  b.data(), stride_b, want.data(), batch);
        std::vector<T> a_stacked(batch * k * m, T(NAN)), b_stacked(batch * k * n, T(NAN));
        run_grid(launch_blocks(batch * k * m), batch * k * m,
                 stack_along_k(a_stacked.data(), a.data(), stride_a, batch, k, m, !trans_a));
        run_grid(launch_blocks(batch * k * n), batch * k * n,
                 stack_along_k(b_stacked.data(), b.data(), stride_b, batch, k, n, trans_b));
        std::vector<T> got = initial;
        cpu<T>().gemm(trans_a, trans_b, m, n, batch * k, T(0.5), a_stacked.data(),
                      b_stacked.data(), T(1), got.data());
        check_close(std::string("gemm_batched_sum ") + (trans_a ? "T" : "N") + (trans_b ? "T" : "N") +
                        ", strides " + std::to_string(stride_a) + " " + std::to_string(stride_b),
                    got, want, tolerance);
      }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(broadcast_binary_matches_cpu, T, FloatTypes) {
  Generator gen(2);
  // a (2,1,5,3) (op) b (4,1,3) -> (2,4,5,3)
  Broadcast g;
  g.ndim = 4;
  const int64_t out_shape[] = {2, 4, 5, 3}, a_strides[] = {15, 0, 3, 1}, b_strides[] = {0, 3, 0, 1};
  for (int d = 0; d < 4; ++d)
    g.out_shape[d] = out_shape[d], g.a_strides[d] = a_strides[d], g.b_strides[d] = b_strides[d];
  const std::vector<T> a = random_values<T>(30, gen), b = random_values<T>(12, gen, 0.5, 2);
  for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div}) {
    std::vector<T> want(120);
    cpu<T>().binary(op, g, a.data(), b.data(), want.data());
    check_body<T>("binary " + std::to_string(static_cast<int>(op)), 120, std::vector<T>(120),
                  want, [&](T* out) { return Binary<T>{op, g, a.data(), b.data(), out}; });
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(sum_to_matches_cpu, T, FloatTypes) {
  Generator gen(3);
  const int64_t x_shape[] = {3, 4, 5, 6};
  const std::vector<T> x = random_values<T>(360, gen);
  const std::vector<std::vector<int64_t>> out_shapes = {
      {1, 4, 1, 6}, {3, 1, 5, 1}, {1, 1, 1, 1}, {3, 4, 5, 6}};
  for (const auto& out_shape : out_shapes) {
    const SumToGeometry g = make_sum_to_geometry(x_shape, out_shape.data(), 4);
    const std::vector<T> initial = random_values<T>(g.out_numel, gen);
    std::vector<T> want = initial;
    cpu<T>().sum_to(x.data(), x_shape, want.data(), out_shape.data(), 4);
    const std::string shape = std::to_string(g.out_numel) + " outputs";
    // A thread per output: the CPU's order, so exactly its result.
    check_body<T>("sum_to, " + shape, g.out_numel, initial, want,
                  [&](T* out) { return SumToOutput<T>{g, x.data(), out}; });
    // A block per output: the same sums in the tree's order.
    std::vector<T> got = initial;
    for (int64_t o = 0; o < g.out_numel; ++o)
      got[o] += static_cast<T>(
          block_sum_reference(0, 1, g.reduce_numel, SumToInput<T>{g, x.data() + g.base(o)}));
    check_close("sum_to by blocks, " + shape, got, want, reorder_tolerance<T>());
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(pointwise_kernels_match_cpu, T, FloatTypes) {
  Generator gen(4);
  const int64_t n = 1000;
  const std::vector<T> x = random_values<T>(n, gen), dy = random_values<T>(n, gen);
  const std::vector<T> initial = random_values<T>(n, gen);

  std::vector<T> want = initial;
  cpu<T>().axpy(n, T(-0.75), x.data(), want.data());
  check_body<T>("axpy", n, initial, want, [&](T* y) { return Axpy<T>{T(-0.75), x.data(), y}; });

  want = initial;
  cpu<T>().scale(n, T(1.5), want.data(), want.data());  // in place
  for (int64_t i = 0; i < n; ++i) BOOST_TEST_REQUIRE(want[i] == T(1.5) * initial[i]);
  check_body<T>("scale in place", n, initial, want, [&](T* y) { return Scale<T>{T(1.5), y, y}; });
  std::vector<T> scaled(n, T(NAN));
  cpu<T>().scale(n, T(1.5), initial.data(), scaled.data());
  BOOST_TEST(scaled == want, boost::test_tools::per_element());
  check_body<T>("scale", n, std::vector<T>(n, T(NAN)), want,
                [&](T* y) { return Scale<T>{T(1.5), initial.data(), y}; });

  want.assign(n, T(0));
  cpu<T>().relu_forward(n, x.data(), want.data());
  check_body<T>("relu_forward", n, std::vector<T>(n), want,
                [&](T* y) { return ReluForward<T>{x.data(), y}; });

  want = initial;
  cpu<T>().relu_backward(n, x.data(), dy.data(), want.data());
  check_body<T>("relu_backward", n, initial, want,
                [&](T* dx) { return ReluBackward<T>{x.data(), dy.data(), dx}; });
}

// The span both im2col schedules use: exactly the output columns whose input
// column o*stride - pad + k lies in the image, counted one by one.
BOOST_AUTO_TEST_CASE(im2col_valid_outputs_is_the_inside_columns) {
  for (int64_t size = 1; size <= 7; ++size)
    for (int64_t k = 0; k < 5; ++k)
      for (int64_t stride = 1; stride <= 3; ++stride)
        for (int64_t pad = 0; pad <= 3; ++pad)
          for (int64_t outputs = 0; outputs <= 9; ++outputs) {
            const Range got = im2col_valid_outputs(k, stride, pad, size, outputs);
            BOOST_TEST_CONTEXT("size " << size << " k " << k << " stride " << stride << " pad " << pad
                                       << " outputs " << outputs) {
              BOOST_TEST((0 <= got.begin && got.begin <= got.end && got.end <= outputs));
              for (int64_t o = 0; o < outputs; ++o) {
                const int64_t i = o * stride - pad + k;
                BOOST_TEST((i >= 0 && i < size) == (got.begin <= o && o < got.end), "output " << o);
              }
            }
          }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(im2col_and_col2im_match_cpu, T, FloatTypes) {
  Generator gen(6);
  for (const Window2d& g : geometries()) {
    const WindowGeometry w = window_geometry(g);
    const std::string name = "geometry C" + std::to_string(g.channels) + " H" +
                             std::to_string(g.height) + " W" + std::to_string(g.width);
    const int64_t image = g.channels * g.height * g.width;
    const int64_t cols_size = g.channels * g.kernel_h * g.kernel_w * w.out_h * w.out_w;
    const std::vector<T> x = random_values<T>(image, gen);
    std::vector<T> want(cols_size);
    cpu<T>().im2col(g, x.data(), want.data());
    check_body<T>("im2col, " + name, cols_size, std::vector<T>(cols_size, T(NAN)), want,
                  [&](T* cols) { return Im2col<T>{w, x.data(), cols}; });

    const std::vector<T> cols = random_values<T>(cols_size, gen);
    const std::vector<T> initial = random_values<T>(image, gen);
    want = initial;
    cpu<T>().col2im(g, cols.data(), want.data());
    check_body<T>("col2im, " + name, image, initial, want,
                  [&](T* dx) { return Col2im<T>{w, cols.data(), dx}; });
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(pooling_matches_cpu, T, FloatTypes) {
  Generator gen(7);
  const int64_t batch = 2;
  for (const Window2d& g : geometries()) {
    const WindowGeometry w = window_geometry(g);
    const std::string name = "geometry C" + std::to_string(g.channels) + " H" +
                             std::to_string(g.height) + " W" + std::to_string(g.width);
    const int64_t in_size = batch * g.channels * g.height * g.width;
    const int64_t out_size = batch * g.channels * w.out_h * w.out_w;
    std::vector<T> x = random_values<T>(in_size, gen);
    x[5] = x[6];         // a tie: the first maximum wins
    x[9] = T(NAN);       // NaN wins and propagates
    const std::vector<T> dy = random_values<T>(out_size, gen);
    const std::vector<T> initial = random_values<T>(in_size, gen);

    std::vector<T> want_y(out_size);
    std::vector<int32_t> want_argmax(out_size);
    cpu<T>().max_pool_forward(g, batch, x.data(), want_y.data(), want_argmax.data());
    for (int64_t blocks : grids(out_size)) {
      std::vector<T> y(out_size, T(0));
      std::vector<int32_t> argmax(out_size, -1);
      run_grid(blocks, out_size, MaxPoolForward<T>{w, x.data(), y.data(), argmax.data()});
      check_close("max_pool_forward, " + name, y, want_y);
      BOOST_TEST(argmax == want_argmax, "max_pool_forward argmax, " << name);
    }
    std::vector<T> want = initial;
    cpu<T>().max_pool_backward(g, batch, dy.data(), want_argmax.data(), want.data());
    check_body<T>("max_pool_backward, " + name, in_size, initial, want,
                  [&](T* dx) { return MaxPoolBackward<T>{w, dy.data(), want_argmax.data(), dx}; });

    x[9] = T(0.5);
    want.assign(out_size, T(0));
    cpu<T>().avg_pool_forward(g, batch, x.data(), want.data());
    check_body<T>("avg_pool_forward, " + name, out_size, std::vector<T>(out_size), want,
                  [&](T* y) { return AvgPoolForward<T>{w, x.data(), y}; });
    want = initial;
    cpu<T>().avg_pool_backward(g, batch, dy.data(), want.data());
    check_body<T>("avg_pool_backward, " + name, in_size, initial, want,
                  [&](T* dx) { return AvgPoolBackward<T>{w, dy.data(), dx}; });
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(adaptive_pooling_matches_cpu, T, FloatTypes) {
  Generator gen(8);
  const int64_t batch = 2;
  Window2d g;
  g.channels = 3, g.height = 7, g.width = 5;
  // Shrinking with overlapping windows, growing (windows repeat pixels), identity, global.
  for (auto [out_h, out_w] : std::vector<std::pair<int64_t, int64_t>>{{3, 2}, {4, 7}, {7, 5}, {1, 1}}) {
    const WindowGeometry w = adaptive_window_geometry(g, out_h, out_w);
    const std::string name = std::to_string(out_h) + "x" + std::to_string(out_w);
    const int64_t in_size = batch * g.channels * g.height * g.width;
    const int64_t out_size = batch * g.channels * out_h * out_w;
    const std::vector<T> x = random_values<T>(in_size, gen), dy = random_values<T>(out_size, gen);
    std::vector<T> want(out_size);
    cpu<T>().adaptive_avg_pool_forward(g, out_h, out_w, batch, x.data(), want.data());
    check_body<T>("adaptive_avg_pool_forward " + name, out_size, std::vector<T>(out_size), want,
                  [&](T* y) { return AdaptiveAvgPoolForward<T>{w, x.data(), y}; });
    const std::vector<T> initial = random_values<T>(in_size, gen);
    want = initial;
    cpu<T>().adaptive_avg_pool_backward(g, out_h, out_w, batch, dy.data(), want.data());
    check_body<T>("adaptive_avg_pool_backward " + name, in_size, initial, want,
                  [&](T* dx) { return AdaptiveAvgPoolBackward<T>{w, dy.data(), dx}; });
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(batch_norm_matches_cpu, T, FloatTypes) {
  Generator gen(9);
  // 300 values per channel: more than one per thread, and not a multiple of kThreads.
  const int64_t n = 4, c = 3, hw = 75, size = n * c * hw, count = n * hw;
  const std::vector<T> x = random_values<T>(size, gen, 2, 5), dy = random_values<T>(size, gen);
  const std::vector<T> gamma = random_values<T>(c, gen, 0.5, 1.5), beta = random_values<T>(c, gen);
  const T eps = T(1e-5), momentum = T(0.1);
  // relu: a ReLU folded in (batch_norm2d_relu), about half the outputs zero.
  for (bool affine : {true, false})
  for (bool relu : {false, true}) {
    const T* gamma_or_null = affine ? gamma.data() : nullptr;
    const T* beta_or_null = affine ? beta.data() : nullptr;
    const std::string name = std::string(affine ? "affine" : "no affine") + (relu ? ", relu" : "");

    // Training forward: statistics by block reductions, then the element pass.
    std::vector<T> want_mean(c), want_invstd(c), want_y(size);
    std::vector<T> want_running_mean(c, T(0.2)), want_running_var(c, T(1.5));
    cpu<T>().batch_norm_forward_train(n, c, hw, x.data(), gamma_or_null, beta_or_null, eps,
                                      momentum, want_running_mean.data(),
                                      want_running_var.data(), want_mean.data(),
                                      want_invstd.data(), relu, want_y.data());
    if (relu) BOOST_TEST(std::count(want_y.begin(), want_y.end(), T(0)) > size / 4, name);
    std::vector<T> mean(c), invstd(c), running_mean(c, T(0.2)), running_var(c, T(1.5));
    for (int64_t ch = 0; ch < c; ++ch) {
      const double sum = block_sum_reference(0, 1, count, ChannelValue<T>{x.data(), c, hw, ch});
      const double squares = block_sum_reference(
          0, 1, count,
          ChannelSquaredDeviation<T>{x.data(), c, hw, ch, sum / static_cast<double>(count)});
      finish_batch_norm_stats(ch, sum, squares, count, eps, momentum, running_mean.data(),
                              running_var.data(), mean.data(), invstd.data());
    }
    const double tolerance = reorder_tolerance<T>();
    check_close("batch norm mean, " + name, mean, want_mean, tolerance);
    check_close("batch norm invstd, " + name, invstd, want_invstd, tolerance);
    check_close("batch norm running mean, " + name, running_mean, want_running_mean, tolerance);
    check_close("batch norm running var, " + name, running_var, want_running_var, tolerance);
    // From the CPU's statistics the element pass agrees exactly.
    check_body<T>("batch norm normalise, " + name, size, std::vector<T>(size), want_y, [&](T* y) {
      return BatchNormApply<T>{x.data(), want_mean.data(), want_invstd.data(), gamma_or_null,
                               beta_or_null, c, hw, relu, y};
    });

    // Evaluation forward with the running statistics.
    std::vector<T> want(size);
    cpu<T>().batch_norm_forward_eval(n, c, hw, x.data(), gamma_or_null, beta_or_null, eps,
                                     want_running_mean.data(), want_running_var.data(), relu,
                                     want.data());
    std::vector<T> eval_invstd(c);
    run_grid(1, c, RunningInvstd<T>{want_running_var.data(), eps, eval_invstd.data()});
    check_body<T>("batch norm eval, " + name, size, std::vector<T>(size), want, [&](T* y) {
      return BatchNormApply<T>{x.data(), want_running_mean.data(), eval_invstd.data(),
                               gamma_or_null, beta_or_null, c, hw, relu, y};
    });

    // Backward: sums by block reductions, then dx per element; with relu, dy
    // is the gradient of the training forward's output want_y.
    const T* relu_output = relu ? want_y.data() : nullptr;
    const std::vector<T> dx0 = random_values<T>(size, gen), dgamma0 = random_values<T>(c, gen);
    const std::vector<T> dbeta0 = random_values<T>(c, gen);
    std::vector<T> want_dx = dx0, want_dgamma = dgamma0, want_dbeta = dbeta0;
    cpu<T>().batch_norm_backward(n, c, hw, x.data(), dy.data(), relu_output, gamma_or_null,
                                 want_mean.data(), want_invstd.data(), want_dx.data(),
                                 want_dgamma.data(), want_dbeta.data());
    std::vector<T> dgamma = dgamma0, dbeta = dbeta0, mean_dy(c), mean_dy_xhat(c);
    for (int64_t ch = 0; ch < c; ++ch) {
      const double sum_dy =
          block_sum_reference(0, 1, count, ChannelDy<T>{dy.data(), relu_output, c, hw, ch});
      const double sum_dy_xhat = block_sum_reference(
          0, 1, count,
          ChannelDyXhat<T>{x.data(), dy.data(), relu_output, c, hw, ch, want_mean[ch],
                           want_invstd[ch]});
      finish_batch_norm_backward(ch, sum_dy, sum_dy_xhat, count, dgamma.data(), dbeta.data(),
                                 mean_dy.data(), mean_dy_xhat.data());
    }
    check_close("batch norm dgamma, " + name, dgamma, want_dgamma, tolerance);
    check_close("batch norm dbeta, " + name, dbeta, want_dbeta, tolerance);
    for (int64_t blocks : grids(size)) {
      std::vector<T> dx = dx0;
      run_grid(blocks, size,
               BatchNormBackwardDx<T>{x.data(), dy.data(), relu_output, gamma_or_null,
                                      want_mean.data(), want_invstd.data(), mean_dy.data(),
                                      mean_dy_xhat.data(), c, hw, dx.data()});
      // mean(dy) and mean(dy * xhat) come from reordered sums and are
      // subtracted from dy, so dx can lose a few more bits.
      check_close("batch norm dx, " + name, dx, want_dx, 100 * tolerance);
    }
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(cross_entropy_matches_cpu, T, FloatTypes) {
  Generator gen(10);
  const int64_t n = 300, k = 7;
  const std::vector<T> logits = random_values<T>(n * k, gen, -4, 4);
  const std::vector<uint8_t> mask = {1, 0, 1, 1, 0, 1, 1};
  std::vector<int64_t> labels(n);
  for (int64_t row = 0; row < n; ++row) labels[row] = std::vector<int64_t>{0, 2, 3, 5, 6}[gen.below(5)];
  for (const uint8_t* class_mask : {static_cast<const uint8_t*>(nullptr), mask.data()}) {
    const std::string name = class_mask ? "masked" : "unmasked";
    std::vector<T> want(n * k);
    T want_loss = T(0);
    cpu<T>().cross_entropy_forward(n, k, logits.data(), labels.data(), class_mask, want.data(),
                                   &want_loss);
    // The mean of the picked log-probabilities, summed in double in row order.
    double reference = 0;
    for (int64_t row = 0; row < n; ++row) reference -= want[row * k + labels[row]];
    BOOST_TEST(want_loss == static_cast<T>(reference / n), "cross-entropy loss, " << name);
    for (int64_t blocks : grids(n)) {
      std::vector<T> log_probs(n * k, T(0));
      T loss = T(NAN);
      run_grid(blocks, n, LogSoftmaxRow<T>{logits.data(), class_mask, k, log_probs.data()});
      // The mean is one item: a grid of one block, its other threads idle.
      run_grid(1, 1, MeanNegativeLogLikelihood<T>{log_probs.data(), labels.data(), n, k, &loss});
      check_close("log_softmax, " + name, log_probs, want);
      BOOST_TEST(loss == want_loss, "cross-entropy loss on the grid, " << name);
    }
    if (class_mask) BOOST_TEST(std::isinf(want[1]));  // excluded class: -inf

    // dy = 75 over N = 300 rows: each row's gradient scaled by 0.25.
    const std::vector<T> initial = random_values<T>(n * k, gen);
    const T dy = T(75);
    std::vector<T> want_grad = initial;
    cpu<T>().cross_entropy_backward(n, k, want.data(), labels.data(), &dy, want_grad.data());
    for (int64_t i = 0; i < n * k; ++i) {
      const T onehot = i % k == labels[i / k] ? T(1) : T(0);
      BOOST_TEST_REQUIRE(want_grad[i] == initial[i] + T(0.25) * (std::exp(want[i]) - onehot), i);
    }
    check_body<T>("cross_entropy_backward, " + name, n * k, initial, want_grad, [&](T* d) {
      return CrossEntropyBackward<T>{want.data(), labels.data(), &dy, n, k, d};
    });
  }
}

// The mask is drawn anew by the forward and the backward from (seed, counter):
// the grid must draw the CPU's, and the backward the forward's.
BOOST_AUTO_TEST_CASE_TEMPLATE(dropout_mask_matches_cpu, T, FloatTypes) {
  Generator gen(11);
  const int64_t n = 5000;
  const T p = T(0.3);
  const std::vector<T> x = random_values<T>(n, gen), dy = random_values<T>(n, gen);
  const std::vector<T> dx0 = random_values<T>(n, gen), ones(n, T(1));
  for (uint64_t counter : {0, 1, 77}) {
    std::vector<T> want_y(n), want_dx = dx0, mask(n);
    cpu<T>().dropout_forward(n, p, 12345, counter, x.data(), want_y.data());
    cpu<T>().dropout_backward(n, p, 12345, counter, dy.data(), want_dx.data());
    cpu<T>().dropout_forward(n, p, 12345, counter, ones.data(), mask.data());  // 1 * mask
    int64_t dropped = 0;
    for (int64_t i = 0; i < n; ++i) {
      BOOST_TEST_REQUIRE((mask[i] == T(0) || mask[i] == T(1) / (T(1) - p)), i);
      dropped += mask[i] == T(0);
      BOOST_TEST_REQUIRE(want_y[i] == x[i] * mask[i], i);
      BOOST_TEST_REQUIRE(want_dx[i] == dx0[i] + dy[i] * mask[i], i);
    }
    BOOST_TEST(std::abs(static_cast<double>(dropped) / n - 0.3) < 0.03);
    const DropoutMask<T> draw = DropoutMask<T>::of(p, 12345, counter);
    for (int64_t blocks : grids(n)) {
      std::vector<T> y(n), dx = dx0;
      run_grid(blocks, n, DropoutForward<T>{draw, x.data(), y.data()});
      run_grid(blocks, n, DropoutBackward<T>{draw, dy.data(), dx.data()});
      check_close("dropout output, counter " + std::to_string(counter), y, want_y);
      check_close("dropout input gradient, counter " + std::to_string(counter), dx, want_dx);
    }
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(optimiser_updates_match_cpu, T, FloatTypes) {
  Generator gen(12);
  const int64_t n = 700;
  const std::vector<T> param0 = random_values<T>(n, gen), grad = random_values<T>(n, gen);
  const std::vector<T> buf0 = random_values<T>(n, gen), v0 = random_values<T>(n, gen, 0, 1);

  for (bool nesterov : {false, true})
    for (bool first : {false, true}) {
      std::vector<T> want_param = param0, want_buf = buf0;
      cpu<T>().sgd_step(n, want_param.data(), grad.data(), want_buf.data(), T(0.1), T(0.9),
                        T(0.1), T(1e-2), nesterov, first);
      for (int64_t blocks : grids(n)) {
        std::vector<T> param = param0, buf = buf0;
        run_grid(blocks, n,
                 SgdStep<T>{param.data(), grad.data(), buf.data(), T(0.1), T(0.9), T(0.1),
                            T(1e-2), nesterov, first});
        check_close("sgd param", param, want_param);
        check_close("sgd momentum", buf, want_buf);
      }
    }

  for (bool decoupled : {false, true})
    for (int64_t step : {1, 5}) {
      std::vector<T> want_param = param0, want_m = buf0, want_v = v0;
      cpu<T>().adam_step(n, want_param.data(), grad.data(), want_m.data(), want_v.data(),
                         T(1e-3), T(0.9), T(0.999), T(1e-8), T(1e-2), decoupled, step);
      for (int64_t blocks : grids(n)) {
        std::vector<T> param = param0, m = buf0, v = v0;
        run_grid(blocks, n,
                 make_adam_step(param.data(), grad.data(), m.data(), v.data(), T(1e-3), T(0.9),
                                T(0.999), T(1e-8), T(1e-2), decoupled, step));
        check_close("adam param", param, want_param);
        check_close("adam m", m, want_m);
        check_close("adam v", v, want_v);
      }
    }
}

// The CUDA backend is a plugin (libengine_cuda.so) that the engine loads on
// the first use of Device::cuda and that registers itself then
// (cuda/register_backend.cpp): a CUDA build's programs must find it, load it
// (every engine symbol it calls exported by the program) and get the backend,
// with or without a GPU.
BOOST_AUTO_TEST_CASE(cuda_backend_is_registered_exactly_when_built) {
  BOOST_TEST(backend_built(Device::cpu));
  BOOST_TEST(backend_registered(Device::cpu));
  BOOST_CHECK_THROW(register_backend(Device::cpu, [](int, std::string*) -> std::unique_ptr<Backend> {
                      return nullptr;
                    }),
                    std::logic_error);
#ifdef WITH_CUDA_BACKEND
  BOOST_TEST(backend_built(Device::cuda));
  BOOST_TEST(backend_registered(Device::cuda), backend_unavailable_reason(Device::cuda));
  const std::string reason = backend_unavailable_reason(Device::cuda);
  BOOST_TEST(reason.find("libengine_cuda.so") == std::string::npos, reason);
  // A second backend for the device is a programming error, not a silent swap.
  BOOST_CHECK_THROW(register_backend(Device::cuda, [](int, std::string*) -> std::unique_ptr<Backend> {
                      return nullptr;
                    }),
                    std::logic_error);
#else
  BOOST_TEST(!backend_built(Device::cuda));
  BOOST_TEST(!backend_registered(Device::cuda));
  BOOST_TEST(!backend_available(Device::cuda));
  const std::string reason = backend_unavailable_reason(Device::cuda);
  BOOST_TEST(reason.find("built without the cuda backend") != std::string::npos, reason);
#endif
}

namespace {
boost::test_tools::assertion_result no_gpu(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result result(!backend_available(Device::cuda));
  result.message() << "a CUDA GPU is usable here; this case checks the error without one";
  return result;
}
}  // namespace

BOOST_AUTO_TEST_CASE(cuda_without_gpu_is_a_clear_error, *boost::unit_test::precondition(no_gpu)) {
  const std::string reason = backend_unavailable_reason(Device::cuda);
  BOOST_TEST(!reason.empty());
  try {
    backend(Device::cuda);
    BOOST_FAIL("backend(cuda) succeeded without a GPU");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("cuda") != std::string::npos);
    BOOST_TEST(what.find(reason) != std::string::npos);
  }
  BOOST_CHECK_THROW(Tensor::zeros({2, 3}, DType::f32, Device::cuda), std::runtime_error);
  BOOST_TEST(backend_available(Device::cpu));
}

// cuda:N is one choice per process, made before the device's first use
// (experiments/common/device.h makes it from --device).
BOOST_AUTO_TEST_CASE(the_gpu_index_is_chosen_once_before_first_use) {
  BOOST_CHECK_NO_THROW(set_device_index(Device::cpu, 0));
  BOOST_CHECK_THROW(set_device_index(Device::cpu, 1), std::invalid_argument);
  BOOST_CHECK_THROW(set_device_index(Device::cuda, -1), std::invalid_argument);
  backend_available(Device::cuda);  // the first use: the index is fixed from here on
  const int index = device_index(Device::cuda);
  BOOST_CHECK_NO_THROW(set_device_index(Device::cuda, index));
#ifdef WITH_CUDA_BACKEND
  try {
    set_device_index(Device::cuda, index + 1);
    BOOST_FAIL("a second GPU was chosen after the first use");
  } catch (const std::logic_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("cuda:" + std::to_string(index) + " is in use") != std::string::npos, what);
    BOOST_TEST(what.find("cuda:" + std::to_string(index + 1)) != std::string::npos, what);
  }
  BOOST_TEST(device_index(Device::cuda) == index);
#endif
}

// TF32 is a GPU mode: the CPU backend refuses it rather than ignore it.
BOOST_AUTO_TEST_CASE(the_cpu_backend_refuses_tf32) {
  BOOST_CHECK_NO_THROW(backend(Device::cpu).set_tf32(false));
  BOOST_CHECK_THROW(backend(Device::cpu).set_tf32(true), std::invalid_argument);
  BOOST_TEST(!backend(Device::cpu).tf32());
}
