// Gradient checks and known values for matmul, linear, broadcasting
// element-wise ops, relu, reductions and shape ops; and the checks of the
// gradient-check harness itself (tests/gradcheck.h) on deliberately wrong
// backward functions.
#define BOOST_TEST_MODULE elementwise
#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <limits>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "tests/gradcheck.h"

using namespace engine;
using testing::check_gradients;
using testing::GradCheckOptions;
using testing::random_input;

namespace {
// div's loss is curved (1/b, |b| >= 0.1): the step balancing truncation and rounding.
const GradCheckOptions kDivision{1e-6, 1e-9};

Tensor grad_input(const Shape& shape, Generator& gen, bool avoid_zero = false) {
  Tensor t = random_input(shape, gen, avoid_zero);
  t.set_requires_grad();
  return t;
}

// y = 2x with the backward `accumulate(dx, dy, n)` given by the test, which
// writes into the gradient buffer of x (none: x receives no gradient): the
// harness must catch the wrong ones.
using BackwardBody = void (*)(double* dx, const double* dy, int64_t n);
Tensor doubled(const Tensor& x, BackwardBody accumulate) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = mul_scalar(x, 2.0);
  }
  if (needs_grad({&x}))
    record(y, "doubled", {x}, {}, [x, accumulate](const Tensor& dy) {
      if (accumulate) accumulate(grad_buffer(x).data<double>(), dy.data<double>(), x.numel());
    });
  return y;
}
}  // namespace

// ---- the harness ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(relative_error_fails_on_nan_and_infinity) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  BOOST_TEST(testing::relative_error({1, 2}, {1, 2}) == 0);
  BOOST_TEST(testing::relative_error({0, 0}, {0, 0}) == 0);
  BOOST_TEST(testing::relative_error({3, 0}, {0, 4}) == std::sqrt(25.0) / 4);
  // Small gradients keep their relative scale: no absolute floor of 1.
  BOOST_TEST(testing::relative_error({1e-9}, {2e-9}) == 0.5);
  BOOST_TEST(testing::relative_error({nan, 1}, {nan, 1}) == inf);
  BOOST_TEST(testing::relative_error({1, 1}, {1, nan}) == inf);
  BOOST_TEST(testing::relative_error({inf}, {inf}) == inf);
  BOOST_TEST(testing::relative_error({1}, {1, 2}) == inf);
  const std::string nan_message = testing::describe_mismatch({1, nan, 5}, {1, 2, 3}, 1e-8);
  BOOST_TEST(nan_message.find("worst element 1") != std::string::npos, nan_message);
}

BOOST_AUTO_TEST_CASE(harness_fails_on_wrong_nan_missing_and_overwriting_backward) {
  Generator gen(6);
  const Tensor x = grad_input({3, 4}, gen);
  const auto with = [](BackwardBody body) {
    return [body](const std::vector<Tensor>& t) { return doubled(t[0], body); };
  };
  BackwardBody right = [](double* dx, const double* dy, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] += 2 * dy[i];
  };
  BackwardBody wrong = [](double* dx, const double* dy, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] += (i == 5 ? 2.000001 : 2) * dy[i];
  };
  BackwardBody nan = [](double* dx, const double* dy, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] += i == 7 ? std::numeric_limits<double>::quiet_NaN() : 2 * dy[i];
  };
  BackwardBody overwriting = [](double* dx, const double* dy, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] = 2 * dy[i];
  };
  BackwardBody absent = nullptr;

  BOOST_TEST(testing::gradient_mismatch("right", with(right), {x}, testing::kMultilinear) == "");
  BOOST_TEST(testing::accumulation_mismatch("right", with(right), {x}) == "");

  const std::string wrong_message = testing::gradient_mismatch("wrong", with(wrong), {x});
  BOOST_TEST(wrong_message.find("wrong: input 0 (3, 4) relative error") == 0, wrong_message);
  BOOST_TEST(wrong_message.find("worst element 5") != std::string::npos, wrong_message);

  const std::string nan_message = testing::gradient_mismatch("nan", with(nan), {x});
  BOOST_TEST(nan_message.find("relative error inf") != std::string::npos, nan_message);
  BOOST_TEST(nan_message.find("worst element 7: analytic nan") != std::string::npos, nan_message);
  BOOST_TEST(testing::accumulation_mismatch("nan", with(nan), {x}) != "");

  // A NaN the forward produces reaches the numeric side: also a failure.
  const auto over_zero = [](const std::vector<Tensor>& t) { return div(t[0], sub(t[0], t[0])); };
  BOOST_TEST(testing::gradient_mismatch("over zero", over_zero, {x}) != "");

  // Overwriting is right from a zero gradient and wrong as soon as one exists.
  BOOST_TEST(testing::gradient_mismatch("overwriting", with(overwriting), {x}) == "");
  const std::string overwrite_message = testing::accumulation_mismatch("overwriting", with(overwriting), {x});
  BOOST_TEST(overwrite_message.find("overwriting: input 0 (3, 4) relative error") == 0, overwrite_message);

  BOOST_TEST(testing::gradient_mismatch("absent", with(absent), {x}) == "absent: input 0 (3, 4) received no gradient\n");
}

BOOST_AUTO_TEST_CASE(matmul_matches_naive_loop) {
  Generator gen(1);
  Tensor a = random_input({5, 7}, gen), b = random_input({7, 3}, gen);
  Tensor y = matmul(a, b);
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      double ref = 0;
      for (int64_t k = 0; k < 7; ++k) ref += a.data<double>()[i * 7 + k] * b.data<double>()[k * 3 + j];
      BOOST_TEST(y.data<double>()[i * 3 + j] == ref, boost::test_tools::tolerance(1e-12));
    }
  Tensor a32 = a.to(DType::f32), b32 = b.to(DType::f32);
  const auto y32 = matmul(a32, b32).to_double_vector();
  const auto y64 = y.to_double_vector();
  for (size_t i = 0; i < y64.size(); ++i) BOOST_TEST(y32[i] == y64[i], boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(shape_errors_name_op_and_shapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  try {
    matmul(a, b);
    BOOST_FAIL("matmul accepted mismatched shapes");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("matmul") != std::string::npos);
    BOOST_TEST(what.find("(2, 3)") != std::string::npos);
    BOOST_TEST(what.find("(4, 5)") != std::string::npos);
  }
  BOOST_CHECK_THROW(add(a, b), std::invalid_argument);
  BOOST_CHECK_THROW(add(a, Tensor::zeros({2, 3}, DType::f64)), std::invalid_argument);
  BOOST_CHECK_THROW(reshape(a, {4, 2}), std::invalid_argument);
  BOOST_CHECK_THROW(slice(a, 1, 2, 4), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(gradcheck_matmul_and_linear) {
  Generator gen(2);
  check_gradients("matmul", [](const auto& x) { return matmul(x[0], x[1]); },
                  {grad_input({3, 5}, gen), grad_input({5, 4}, gen)}, testing::kMultilinear);
  check_gradients("linear", [](const auto& x) { return linear(x[0], x[1], x[2]); },
                  {grad_input({4, 5}, gen), grad_input({3, 5}, gen), grad_input({3}, gen)}, testing::kMultilinear);
  check_gradients("linear_no_bias", [](const auto& x) { return linear(x[0], x[1], Tensor()); },
                  {grad_input({2, 3}, gen), grad_input({6, 3}, gen)}, testing::kMultilinear);
}

BOOST_AUTO_TEST_CASE(gradcheck_broadcasting_binary_ops) {
  Generator gen(3);
  // Shapes layers need: per-channel bias/scale (1,C,1,1) on (N,C,H,W), row vectors.
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{4, 3}, {3}}, {{3, 1}, {1, 4}}, {{2, 3}, {2, 3}}, {{5}, {}}};
  for (const auto& [sa, sb] : cases) {
    check_gradients("add", [](const auto& x) { return add(x[0], x[1]); }, {grad_input(sa, gen), grad_input(sb, gen)}, testing::kMultilinear);
    check_gradients("sub", [](const auto& x) { return sub(x[0], x[1]); }, {grad_input(sa, gen), grad_input(sb, gen)}, testing::kMultilinear);
    check_gradients("mul", [](const auto& x) { return mul(x[0], x[1]); }, {grad_input(sa, gen), grad_input(sb, gen)}, testing::kMultilinear);
    check_gradients("div", [](const auto& x) { return div(x[0], x[1]); },
                    {grad_input(sa, gen), grad_input(sb, gen, /*avoid_zero=*/true)}, kDivision);
  }
}

BOOST_AUTO_TEST_CASE(broadcast_values) {
  const std::vector<double> av{1, 2, 3, 4, 5, 6}, bv{10, 20, 30};
  Tensor a = Tensor::from_vector({2, 3}, std::span<const double>(av));
  Tensor b = Tensor::from_vector({3}, std::span<const double>(bv));
  BOOST_TEST(add(a, b).to_double_vector() == std::vector<double>({11, 22, 33, 14, 25, 36}),
             boost::test_tools::per_element());
  BOOST_TEST(sum(a, 0).to_double_vector() == std::vector<double>({5, 7, 9}), boost::test_tools::per_element());
  BOOST_TEST(sum(a, 1, true).shape() == Shape({2, 1}));
  BOOST_TEST(mean(a).item() == 3.5);
}

// The CPU's binary walks the coalesced mapping: a bias broadcast over (N,C,H,W)
// keeps N and C apart and merges H with W; same shapes become one run; size-1
// dimensions go; a mapping with nothing left is one element.
BOOST_AUTO_TEST_CASE(broadcast_coalesces_dimensions) {
  Broadcast bias;
  bias.ndim = 4;
  const std::array<int64_t, 4> shape{2, 3, 4, 5}, a{60, 20, 5, 1}, b{0, 1, 0, 0};
  std::copy(shape.begin(), shape.end(), bias.out_shape);
  std::copy(a.begin(), a.end(), bias.a_strides);
  std::copy(b.begin(), b.end(), bias.b_strides);
  const Broadcast c = bias.coalesced();
  BOOST_TEST(c.ndim == 3);
  BOOST_TEST((std::array<int64_t, 3>{c.out_shape[0], c.out_shape[1], c.out_shape[2]} ==
              std::array<int64_t, 3>{2, 3, 20}));
  BOOST_TEST((std::array<int64_t, 3>{c.a_strides[0], c.a_strides[1], c.a_strides[2]} ==
              std::array<int64_t, 3>{60, 20, 1}));
  BOOST_TEST((std::array<int64_t, 3>{c.b_strides[0], c.b_strides[1], c.b_strides[2]} ==
              std::array<int64_t, 3>{0, 1, 0}));

  Broadcast same = bias;  // (2,1,4,5) with a size-1 dimension, both operands contiguous
  same.out_shape[1] = 1;
  const std::array<int64_t, 4> contiguous{20, 20, 5, 1};
  std::copy(contiguous.begin(), contiguous.end(), same.a_strides);
  std::copy(contiguous.begin(), contiguous.end(), same.b_strides);
  const Broadcast run = same.coalesced();
  BOOST_TEST(run.ndim == 1);
  BOOST_TEST(run.out_shape[0] == 40);
  BOOST_TEST(run.a_strides[0] == 1);
  BOOST_TEST(run.b_strides[0] == 1);

  Broadcast scalar;  // (1,1): nothing left, numel 1
  scalar.ndim = 2;
  scalar.out_shape[0] = scalar.out_shape[1] = 1;
  BOOST_TEST(scalar.coalesced().ndim == 0);
  BOOST_TEST(scalar.coalesced().numel() == 1);
}

BOOST_AUTO_TEST_CASE(relu_propagates_nan) {
  // As PyTorch: a NaN (a diverged weight upstream) must reach the loss, not become 0.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dtype : {DType::f32, DType::f64}) {
    const std::vector<double> x{nan, -1, 0, 2};
    const std::vector<double> y =
        relu(Tensor::from_vector({4}, std::span<const double>(x)).to(dtype)).to_double_vector();
    BOOST_TEST(std::isnan(y[0]));
    BOOST_TEST((std::vector<double>(y.begin() + 1, y.end()) == std::vector<double>({0, 0, 2})),
               boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(gradcheck_unary_and_reductions) {
  Generator gen(4);
  check_gradients("relu", [](const auto& x) { return relu(x[0]); }, {grad_input({3, 7}, gen, true)}, testing::kMultilinear);
  // relu_ needs a fresh tensor to write: mul_scalar's output, which no backward reads.
  check_gradients("relu_", [](const auto& x) { return relu_(mul_scalar(x[0], 1.0)); }, {grad_input({3, 7}, gen, true)}, testing::kMultilinear);
  check_gradients("mul_scalar", [](const auto& x) { return mul_scalar(x[0], -2.5); }, {grad_input({4}, gen)}, testing::kMultilinear);
  check_gradients("sum", [](const auto& x) { return sum(x[0]); }, {grad_input({2, 3, 4}, gen)}, testing::kMultilinear);
  check_gradients("mean", [](const auto& x) { return mean(x[0]); }, {grad_input({3, 5}, gen)}, testing::kMultilinear);
  for (int64_t d = 0; d < 3; ++d) {
    check_gradients("sum_dim", [d](const auto& x) { return sum(x[0], d); }, {grad_input({2, 3, 4}, gen)}, testing::kMultilinear);
    check_gradients("sum_dim_keep", [d](const auto& x) { return sum(x[0], d, true); }, {grad_input({3, 1, 5}, gen)}, testing::kMultilinear);
  }
}

BOOST_AUTO_TEST_CASE(gradcheck_shape_ops) {
  Generator gen(5);
  check_gradients("reshape", [](const auto& x) { return reshape(x[0], {-1, 6}); }, {grad_input({2, 3, 4}, gen)}, testing::kMultilinear);
  check_gradients("flatten", [](const auto& x) { return flatten(x[0]); }, {grad_input({2, 3, 2, 2}, gen)}, testing::kMultilinear);
  check_gradients("transpose", [](const auto& x) { return transpose(x[0]); }, {grad_input({3, 5}, gen)}, testing::kMultilinear);
  for (int64_t d = 0; d < 3; ++d) {
    Shape s1{2, 3, 4}, s2{2, 3, 4};
    s2[d] = 5;
    check_gradients("concat", [d](const auto& x) { return concat({x[0], x[1]}, d); },
                    {grad_input(s1, gen), grad_input(s2, gen)}, testing::kMultilinear);
    check_gradients("slice", [d](const auto& x) { return slice(x[0], d, 1, 2); }, {grad_input({3, 3, 3}, gen)}, testing::kMultilinear);
  }
}

BOOST_AUTO_TEST_CASE(concat_and_slice_values) {
  const std::vector<double> av{1, 2, 3, 4}, bv{5, 6};
  Tensor a = Tensor::from_vector({2, 2}, std::span<const double>(av));
  Tensor b = Tensor::from_vector({2, 1}, std::span<const double>(bv));
  Tensor c = concat({a, b}, 1);
  BOOST_TEST(c.shape() == Shape({2, 3}));
  BOOST_TEST(c.to_double_vector() == std::vector<double>({1, 2, 5, 3, 4, 6}), boost::test_tools::per_element());
  BOOST_TEST(slice(c, 1, 1, 3).to_double_vector() == std::vector<double>({2, 5, 4, 6}),
             boost::test_tools::per_element());
  BOOST_TEST(transpose(a).to_double_vector() == std::vector<double>({1, 3, 2, 4}), boost::test_tools::per_element());
}

// An input used twice by one op receives both contributions.
BOOST_AUTO_TEST_CASE(gradcheck_an_input_in_both_operands) {
  Generator gen(7);
  check_gradients("add(x, x)", [](const auto& x) { return add(x[0], x[0]); }, {grad_input({3, 4}, gen)}, testing::kMultilinear);
  check_gradients("sub(x, x)", [](const auto& x) { return sub(x[0], x[0]); }, {grad_input({3, 4}, gen)}, testing::kMultilinear);
  check_gradients("mul(x, x)", [](const auto& x) { return mul(x[0], x[0]); }, {grad_input({3, 4}, gen)}, testing::kMultilinear);
  check_gradients("div(x, x)", [](const auto& x) { return div(x[0], x[0]); }, {grad_input({3, 4}, gen, true)}, kDivision);
  check_gradients("matmul(x, x)", [](const auto& x) { return matmul(x[0], x[0]); }, {grad_input({4, 4}, gen)}, testing::kMultilinear);
  check_gradients("linear(x, x, b)", [](const auto& x) { return linear(x[0], x[0], x[1]); },
                  {grad_input({3, 3}, gen), grad_input({3}, gen)}, testing::kMultilinear);
  check_gradients("concat({x, x})", [](const auto& x) { return concat({x[0], x[0]}, 1); }, {grad_input({2, 3}, gen)}, testing::kMultilinear);
}

// A frozen member of a concat gets no gradient; the trainable ones get theirs.
BOOST_AUTO_TEST_CASE(gradcheck_concat_with_a_frozen_member) {
  Generator gen(8);
  for (int64_t d = 0; d < 2; ++d) {
    Tensor frozen = random_input({2, 3}, gen);
    check_gradients("concat frozen first", [d](const auto& x) { return concat({x[0], x[1]}, d); },
                    {frozen, grad_input({2, 3}, gen)}, testing::kMultilinear);
    check_gradients("concat frozen middle", [d](const auto& x) { return concat({x[0], x[1], x[2]}, d); },
                    {grad_input({2, 3}, gen), frozen, grad_input({2, 3}, gen)}, testing::kMultilinear);
    BOOST_TEST(!frozen.grad().defined());
  }
}

// Products big enough to be cut into bands shared by threads (engine/cpu:
// more than 2^22 flops, over 64 rows or columns of C), forward and backward
// (whose products are transposed) against a naive loop, for 1 and 3 threads.
BOOST_AUTO_TEST_CASE(multi_band_gemm_matches_a_naive_loop) {
  Generator gen(9);
  const int threads_before = num_threads();
  // (M,K) x (K,N): bands along rows (M >= N, a partial last band), along columns.
  for (const auto [m, k, n] : {std::array<int64_t, 3>{200, 96, 130}, std::array<int64_t, 3>{70, 120, 300}}) {
    const Tensor a0 = random_input({m, k}, gen), b0 = random_input({k, n}, gen);
    const Tensor r = random_input({m, n}, gen);
    const auto av = a0.to_double_vector(), bv = b0.to_double_vector(), rv = r.to_double_vector();
    std::vector<double> y(static_cast<size_t>(m * n), 0.0), da(av.size(), 0.0), db(bv.size(), 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t p = 0; p < k; ++p) {
          y[i * n + j] += av[i * k + p] * bv[p * n + j];
          da[i * k + p] += rv[i * n + j] * bv[p * n + j];  // dA = dY B^T
          db[p * n + j] += av[i * k + p] * rv[i * n + j];  // dB = A^T dY
        }
    for (int threads : {1, 3}) {
      set_num_threads(threads);
      Tensor a = a0.clone().set_requires_grad(), b = b0.clone().set_requires_grad();
      const Tensor out = matmul(a, b);
      sum(mul(out, r)).backward();
      const std::string name = "matmul " + std::to_string(m) + "x" + std::to_string(k) + "x" +
                               std::to_string(n) + ", " + std::to_string(threads) + " threads";
      BOOST_TEST(testing::describe_mismatch(out.to_double_vector(), y, 1e-14) == "", name);
      BOOST_TEST(testing::describe_mismatch(a.grad().to_double_vector(), da, 1e-14) == "", name);
      BOOST_TEST(testing::describe_mismatch(b.grad().to_double_vector(), db, 1e-14) == "", name);
      BOOST_TEST(testing::accumulation_mismatch(name, [](const auto& x) { return matmul(x[0], x[1]); }, {a, b}) == "");
    }
  }
  set_num_threads(threads_before);
}
