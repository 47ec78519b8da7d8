#define BOOST_TEST_MODULE tensor
#include <boost/test/unit_test.hpp>

#include <limits>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "engine/tensor.h"

using namespace engine;

BOOST_AUTO_TEST_CASE(factories_shapes_and_dtypes) {
  Tensor t = Tensor::full({2, 3}, 1.5, DType::f64);
  BOOST_TEST(t.numel() == 6);
  BOOST_TEST(t.dim(-1) == 3);
  BOOST_TEST(t.to_double_vector() == std::vector<double>(6, 1.5), boost::test_tools::per_element());
  BOOST_CHECK_THROW(t.data<float>(), std::invalid_argument);
  BOOST_CHECK_THROW(t.dim(2), std::out_of_range);
  const std::vector<float> values{1, 2, 3, 4};
  Tensor f = Tensor::from_vector({2, 2}, std::span<const float>(values));
  BOOST_TEST(f.to(DType::f64).to_double_vector() == std::vector<double>({1, 2, 3, 4}),
             boost::test_tools::per_element());
  BOOST_CHECK_THROW(Tensor::from_vector({3}, std::span<const float>(values)), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(clone_is_deep_detach_shares) {
  Tensor a = Tensor::zeros({3});
  Tensor c = a.clone(), d = a.detach();
  a.data<float>()[0] = 7;
  BOOST_TEST(c.data<float>()[0] == 0.0f);
  BOOST_TEST(d.data<float>()[0] == 7.0f);
}

BOOST_AUTO_TEST_CASE(backward_accumulates_and_frees_graph) {
  const std::vector<double> xv{1, 2, 3};
  Tensor x = Tensor::from_vector({3}, std::span<const double>(xv));
  x.set_requires_grad();
  // L = sum(x * x) + sum(x): dL/dx = 2x + 1, reaching x through two paths.
  Tensor loss = add(sum(mul(x, x)), sum(x));
  BOOST_TEST(loss.item() == 20.0);
  loss.backward();
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({3, 5, 7}),
             boost::test_tools::per_element());
  BOOST_TEST(!loss.impl()->grad_fn);  // graph released
  // A second backward accumulates into the leaf's gradient.
  sum(x).backward();
  BOOST_TEST(x.grad().to_double_vector() == std::vector<double>({4, 6, 8}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(no_grad_scope_records_nothing) {
  Tensor x = Tensor::full({2}, 1.0, DType::f64);
  x.set_requires_grad();
  {
    NoGradGuard guard;
    Tensor y = mul(x, x);
    BOOST_TEST(!y.requires_grad());
  }
  BOOST_TEST(mul(x, x).requires_grad());
}

BOOST_AUTO_TEST_CASE(frozen_input_gets_no_gradient) {
  Tensor w = Tensor::full({2, 2}, 0.5, DType::f64);  // frozen
  Tensor x = Tensor::full({3, 2}, 1.0, DType::f64);
  x.set_requires_grad();
  sum(linear(x, w, Tensor())).backward();
  BOOST_TEST(!w.grad().defined());
  BOOST_TEST(x.grad().defined());
}

BOOST_AUTO_TEST_CASE(deep_graph_does_not_overflow_the_stack) {
  Tensor x = Tensor::full({1}, 1.0, DType::f64);
  x.set_requires_grad();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = mul_scalar(y, 1.0);
  sum(y).backward();
  BOOST_TEST(x.grad().item() == 1.0);
}

BOOST_AUTO_TEST_CASE(sizes_past_int64_or_blas_ints_are_refused) {
  const int64_t huge = std::numeric_limits<int64_t>::max();
  BOOST_TEST(shape_numel({0, 5}) == 0);
  // A 0 does not excuse the other dimensions (a corrupt .npz header, say).
  BOOST_CHECK_EXCEPTION(shape_numel({0, huge, 4}), std::invalid_argument, [](const auto& e) {
    return std::string(e.what()).find("(0, 9223372036854775807, 4)") != std::string::npos;
  });
  BOOST_CHECK_THROW(shape_numel({int64_t{1} << 32, int64_t{1} << 32}), std::invalid_argument);
  BOOST_CHECK_THROW(Tensor::empty({int64_t{1} << 62, 1}, DType::f64), std::invalid_argument);
  // OpenBLAS takes int sizes: 2^31 rows must be refused, not wrapped.
  BOOST_CHECK_EXCEPTION(
      backend(Device::cpu).kernels<float>().gemm(false, false, int64_t{1} << 31, 1, 1, 1.0f,
                                                 nullptr, nullptr, 0.0f, nullptr),
      std::invalid_argument,
      [](const auto& e) { return std::string(e.what()).find("m=2147483648") != std::string::npos; });
}

BOOST_AUTO_TEST_CASE(generator_is_seeded_and_unbiased_enough) {
  Generator a(42), b(42), c(43);
  BOOST_TEST(a.next_u64() == b.next_u64());
  BOOST_TEST(a.next_u64() != c.next_u64());
  double mean = 0;
  for (int i = 0; i < 100000; ++i) mean += a.uniform();
  BOOST_TEST(std::abs(mean / 100000 - 0.5) < 0.01);
  std::vector<int> counts(3);
  for (int i = 0; i < 30000; ++i) ++counts[a.below(3)];
  for (int n : counts) BOOST_TEST(std::abs(n - 10000) < 400);
}
