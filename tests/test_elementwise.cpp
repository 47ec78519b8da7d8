// Gradient checks and known values for matmul, linear, broadcasting
// element-wise ops, relu, reductions and shape ops.
#define BOOST_TEST_MODULE elementwise
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace engine;
using testing::check_gradients;
using testing::random_input;

namespace {
Tensor grad_input(const Shape& shape, Generator& gen, bool avoid_zero = false) {
  Tensor t = random_input(shape, gen, avoid_zero);
  t.set_requires_grad();
  return t;
}
}  // namespace

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
                  {grad_input({3, 5}, gen), grad_input({5, 4}, gen)});
  check_gradients("linear", [](const auto& x) { return linear(x[0], x[1], x[2]); },
                  {grad_input({4, 5}, gen), grad_input({3, 5}, gen), grad_input({3}, gen)});
  check_gradients("linear_no_bias", [](const auto& x) { return linear(x[0], x[1], Tensor()); },
                  {grad_input({2, 3}, gen), grad_input({6, 3}, gen)});
}

BOOST_AUTO_TEST_CASE(gradcheck_broadcasting_binary_ops) {
  Generator gen(3);
  // Shapes layers need: per-channel bias/scale (1,C,1,1) on (N,C,H,W), row vectors.
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{4, 3}, {3}}, {{3, 1}, {1, 4}}, {{2, 3}, {2, 3}}, {{5}, {}}};
  for (const auto& [sa, sb] : cases) {
    check_gradients("add", [](const auto& x) { return add(x[0], x[1]); }, {grad_input(sa, gen), grad_input(sb, gen)});
    check_gradients("sub", [](const auto& x) { return sub(x[0], x[1]); }, {grad_input(sa, gen), grad_input(sb, gen)});
    check_gradients("mul", [](const auto& x) { return mul(x[0], x[1]); }, {grad_input(sa, gen), grad_input(sb, gen)});
    check_gradients("div", [](const auto& x) { return div(x[0], x[1]); },
                    {grad_input(sa, gen), grad_input(sb, gen, /*avoid_zero=*/true)});
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
  check_gradients("relu", [](const auto& x) { return relu(x[0]); }, {grad_input({3, 7}, gen, true)});
  check_gradients("mul_scalar", [](const auto& x) { return mul_scalar(x[0], -2.5); }, {grad_input({4}, gen)});
  check_gradients("sum", [](const auto& x) { return sum(x[0]); }, {grad_input({2, 3, 4}, gen)});
  check_gradients("mean", [](const auto& x) { return mean(x[0]); }, {grad_input({3, 5}, gen)});
  for (int64_t d = 0; d < 3; ++d) {
    check_gradients("sum_dim", [d](const auto& x) { return sum(x[0], d); }, {grad_input({2, 3, 4}, gen)});
    check_gradients("sum_dim_keep", [d](const auto& x) { return sum(x[0], d, true); }, {grad_input({3, 1, 5}, gen)});
  }
}

BOOST_AUTO_TEST_CASE(gradcheck_shape_ops) {
  Generator gen(5);
  check_gradients("reshape", [](const auto& x) { return reshape(x[0], {-1, 6}); }, {grad_input({2, 3, 4}, gen)});
  check_gradients("flatten", [](const auto& x) { return flatten(x[0]); }, {grad_input({2, 3, 2, 2}, gen)});
  check_gradients("transpose", [](const auto& x) { return transpose(x[0]); }, {grad_input({3, 5}, gen)});
  for (int64_t d = 0; d < 3; ++d) {
    Shape s1{2, 3, 4}, s2{2, 3, 4};
    s2[d] = 5;
    check_gradients("concat", [d](const auto& x) { return concat({x[0], x[1]}, d); },
                    {grad_input(s1, gen), grad_input(s2, gen)});
    check_gradients("slice", [d](const auto& x) { return slice(x[0], d, 1, 2); }, {grad_input({3, 3, 3}, gen)});
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
