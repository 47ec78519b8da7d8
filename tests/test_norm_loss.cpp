// Batch norm, dropout and cross-entropy: gradient checks, values computed by
// hand, error messages, and determinism across thread counts.
#define BOOST_TEST_MODULE norm_loss
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "engine/ops.h"
#include "engine/parallel.h"
#include "tests/gradcheck.h"

using namespace engine;
using testing::check_gradients;
using testing::random_input;
namespace tt = boost::test_tools;

namespace {

Tensor grad_input(const Shape& shape, Generator& gen) {
  Tensor t = random_input(shape, gen);
  t.set_requires_grad();
  return t;
}

Tensor doubles(const Shape& shape, const std::vector<double>& values) {
  return Tensor::from_vector(shape, std::span<const double>(values));
}

// Curved gradient checks (tests/gradcheck.h): batch statistics of a trainable
// input, and softmax; measured ~1e-10, so 1e-9. With only gamma and beta
// trainable, or running statistics, the loss is linear: kMultilinear.
const testing::GradCheckOptions kBatchNormTrain{1e-5, 1e-9};
const testing::GradCheckOptions kSoftmax{1e-5, 1e-9};

// The message of the std::invalid_argument that f throws ("" when none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---- batch norm ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(gradcheck_batch_norm_training) {
  Generator gen(11);
  // N > 1, odd C, non-square maps: a wrong reduction axis or stride shows up.
  for (const Shape& shape : {Shape{3, 5, 2, 3}, Shape{2, 3, 4, 1}}) {
    const int64_t c = shape[1];
    Tensor running_mean = Tensor::zeros({c}, DType::f64), running_var = Tensor::full({c}, 1.0, DType::f64);
    check_gradients("batch_norm2d_train",
                    [&](const auto& x) {
                      return batch_norm2d(x[0], x[1], x[2], running_mean, running_var, true);
                    },
                    {grad_input(shape, gen), grad_input({c}, gen), grad_input({c}, gen)}, kBatchNormTrain);
    check_gradients("batch_norm2d_train_no_affine",
                    [&](const auto& x) {
                      return batch_norm2d(x[0], Tensor(), Tensor(), running_mean, running_var, true);
                    },
                    {grad_input(shape, gen)}, kBatchNormTrain);
  }
}

// Frozen paths: only dx needed (frozen affine, as in a frozen backbone feeding
// an adapter), or only dgamma/dbeta (frozen input, as right after the images).
BOOST_AUTO_TEST_CASE(gradcheck_batch_norm_with_frozen_parts) {
  Generator gen(13);
  const Shape shape{3, 4, 2, 3};
  Tensor running_mean = Tensor::zeros({4}, DType::f64), running_var = Tensor::full({4}, 1.0, DType::f64);
  const auto bn = [&](const std::vector<Tensor>& x) {
    return batch_norm2d(x[0], x[1], x[2], running_mean, running_var, true);
  };
  Tensor frozen_x = random_input(shape, gen), frozen_gamma = random_input({4}, gen),
         frozen_beta = random_input({4}, gen);
  check_gradients("batch_norm2d_train only dx", bn, {grad_input(shape, gen), frozen_gamma, frozen_beta}, kBatchNormTrain);
  check_gradients("batch_norm2d_train only dgamma", bn, {frozen_x, grad_input({4}, gen), frozen_beta}, testing::kMultilinear);
  check_gradients("batch_norm2d_train only dgamma dbeta", bn, {frozen_x, grad_input({4}, gen), grad_input({4}, gen)}, testing::kMultilinear);
  check_gradients("batch_norm2d_train only dbeta", bn, {frozen_x, frozen_gamma, grad_input({4}, gen)}, testing::kMultilinear);
  for (const Tensor& t : {frozen_x, frozen_gamma, frozen_beta}) BOOST_TEST(!t.grad().defined());
}

BOOST_AUTO_TEST_CASE(gradcheck_batch_norm_eval) {
  Generator gen(12);
  Tensor running_mean = random_input({3}, gen);
  Tensor running_var = doubles({3}, {0.5, 1.5, 2.0});
  check_gradients("batch_norm2d_eval",
                  [&](const auto& x) {
                    return batch_norm2d(x[0], x[1], x[2], running_mean, running_var, false);
                  },
                  {grad_input({2, 3, 3, 2}, gen), grad_input({3}, gen), grad_input({3}, gen)}, testing::kMultilinear);
}

// batch_norm2d_relu in float64: training (batch statistics) and evaluation
// (running statistics), every input trainable. The random inputs keep the
// outputs away from ReLU's kink by more than the finite difference's step.
BOOST_AUTO_TEST_CASE(gradcheck_batch_norm_relu) {
  Generator gen(14);
  const Shape shape{3, 4, 2, 3};
  Tensor running_mean = random_input({4}, gen), running_var = doubles({4}, {0.5, 1.5, 2.0, 1.0});
  for (bool training : {true, false})
    check_gradients(training ? "batch_norm2d_relu_train" : "batch_norm2d_relu_eval",
                    [&](const auto& x) {
                      return batch_norm2d_relu(x[0], x[1], x[2], running_mean, running_var, training);
                    },
                    {grad_input(shape, gen), grad_input({4}, gen), grad_input({4}, gen)},
                    training ? kBatchNormTrain : testing::kMultilinear);
}

// The fused op against the two ops it replaces (batch_norm2d, then relu_ on
// its output, as layers::Sequential ran them), in float32: the same output,
// running statistics and gradients bit for bit, with a dy that holds zeros of
// both signs, in training and in evaluation mode, with and without affine.
BOOST_AUTO_TEST_CASE(batch_norm_relu_is_relu_of_batch_norm_bit_for_bit) {
  Generator gen(15);
  const Shape shape{4, 3, 5, 6};
  for (bool training : {true, false})
    for (bool affine : {true, false}) {
      const std::string name = std::string(training ? "training" : "evaluation") +
                               (affine ? ", affine" : ", no affine");
      const Tensor x0 = random_input(shape, gen).to(DType::f32);
      const Tensor gamma0 = random_input({3}, gen).to(DType::f32);
      const Tensor beta0 = random_input({3}, gen).to(DType::f32);
      std::vector<float> dy_values = random_input(shape, gen).to(DType::f32).to_float_vector();
      for (size_t i = 0; i < dy_values.size(); i += 7) dy_values[i] = i % 2 ? 0.0f : -0.0f;
      const Tensor dy = Tensor::from_vector(shape, std::span<const float>(dy_values));

      struct Run {
        Tensor y, x, gamma, beta, running_mean, running_var;
      };
      const auto run = [&](bool fused) {
        Run r{Tensor(), x0.clone(), gamma0.clone(), beta0.clone(),
              Tensor::full({3}, 0.25, DType::f32), Tensor::full({3}, 1.5, DType::f32)};
        for (Tensor* t : {&r.x, &r.gamma, &r.beta}) t->set_requires_grad();
        const Tensor gamma = affine ? r.gamma : Tensor(), beta = affine ? r.beta : Tensor();
        r.y = fused ? batch_norm2d_relu(r.x, gamma, beta, r.running_mean, r.running_var, training)
                    : relu_(batch_norm2d(r.x, gamma, beta, r.running_mean, r.running_var, training));
        r.y.backward(dy);
        return r;
      };
      const Run fused = run(true), apart = run(false);
      const std::vector<float> y = fused.y.to_float_vector();
      BOOST_TEST(std::count(y.begin(), y.end(), 0.0f) > static_cast<long>(y.size() / 4), name);
      BOOST_TEST(y == apart.y.to_float_vector(), name + ": y");
      BOOST_TEST(fused.running_mean.to_float_vector() == apart.running_mean.to_float_vector(), name);
      BOOST_TEST(fused.running_var.to_float_vector() == apart.running_var.to_float_vector(), name);
      BOOST_TEST(fused.x.grad().to_float_vector() == apart.x.grad().to_float_vector(), name + ": dx");
      if (affine) {
        BOOST_TEST(fused.gamma.grad().to_float_vector() == apart.gamma.grad().to_float_vector(),
                   name + ": dgamma");
        BOOST_TEST(fused.beta.grad().to_float_vector() == apart.beta.grad().to_float_vector(),
                   name + ": dbeta");
      }
    }
}

BOOST_AUTO_TEST_CASE(batch_norm_hand_computed_statistics) {
  // x (2,2,1,2). Channel 0 holds {1, 2, 3, 6}: mean 3, squared deviations
  // 4+1+0+9 = 14, biased var 3.5, unbiased 14/3. Channel 1 holds {0, 0, -1, 1}:
  // mean 0, biased var 0.5, unbiased 2/3.
  const Tensor x = doubles({2, 2, 1, 2}, {1, 2, 0, 0, 3, 6, -1, 1});
  const Tensor gamma = doubles({2}, {2.0, 1.0}), beta = doubles({2}, {0.5, 0.0});
  Tensor running_mean = Tensor::zeros({2}, DType::f64), running_var = Tensor::full({2}, 1.0, DType::f64);
  const double eps = 1e-5;

  const std::vector<double> y = batch_norm2d(x, gamma, beta, running_mean, running_var, true, 0.1, eps)
                                    .to_double_vector();
  const double inv0 = 1 / std::sqrt(3.5 + eps), inv1 = 1 / std::sqrt(0.5 + eps);
  const std::vector<double> expected = {(1 - 3) * inv0 * 2 + 0.5, (2 - 3) * inv0 * 2 + 0.5,
                                        0.0, 0.0,
                                        (3 - 3) * inv0 * 2 + 0.5, (6 - 3) * inv0 * 2 + 0.5,
                                        -1 * inv1, 1 * inv1};
  BOOST_TEST(y == expected, tt::tolerance(1e-12) << tt::per_element());

  // Step 1: running = 0.9 * (0, 1) + 0.1 * (3, 14/3) = (0.3, 0.9 + 14/30);
  //          var ch1 = 0.9 + 0.1 * 2/3.
  BOOST_TEST(running_mean.to_double_vector() == std::vector<double>({0.3, 0.0}),
             tt::tolerance(1e-12) << tt::per_element());
  BOOST_TEST(running_var.to_double_vector() == std::vector<double>({0.9 + 14.0 / 30, 0.9 + 2.0 / 30}),
             tt::tolerance(1e-12) << tt::per_element());

  // Step 2 with 2x: channel 0 mean 6, unbiased var 56/3; channel 1 mean 0, unbiased 8/3.
  batch_norm2d(x * 2.0, gamma, beta, running_mean, running_var, true, 0.1, eps);
  // mean ch0 = 0.9 * 0.3 + 0.6 = 0.87; var ch0 = 0.9 * (0.9 + 0.4667) + 1.8667 = 3.0966...
  BOOST_TEST(running_mean.to_double_vector() == std::vector<double>({0.87, 0.0}),
             tt::tolerance(1e-12) << tt::per_element());
  BOOST_TEST(running_var.to_double_vector() ==
                 std::vector<double>({0.81 + 0.42 + 56.0 / 30, 0.81 + 0.06 + 8.0 / 30}),
             tt::tolerance(1e-12) << tt::per_element());
  BOOST_TEST(running_var.data<double>()[0] == 3.0966666666666667, tt::tolerance(1e-12));

  // Evaluation normalises with the running statistics and leaves them alone.
  const std::vector<double> y_eval =
      batch_norm2d(x, gamma, beta, running_mean, running_var, false, 0.1, eps).to_double_vector();
  const double rv0 = 3.0966666666666667, rv1 = 1.1366666666666667;
  BOOST_TEST(y_eval[0] == (1 - 0.87) / std::sqrt(rv0 + eps) * 2 + 0.5, tt::tolerance(1e-12));
  BOOST_TEST(y_eval[5] == (6 - 0.87) / std::sqrt(rv0 + eps) * 2 + 0.5, tt::tolerance(1e-12));
  BOOST_TEST(y_eval[7] == 1 / std::sqrt(rv1 + eps), tt::tolerance(1e-12));
  BOOST_TEST(running_mean.to_double_vector() == std::vector<double>({0.87, 0.0}),
             tt::tolerance(1e-12) << tt::per_element());
}

BOOST_AUTO_TEST_CASE(batch_norm_float32_matches_float64) {
  Generator gen(13);
  const Tensor x = random_input({4, 3, 5, 7}, gen), gamma = random_input({3}, gen),
               beta = random_input({3}, gen);
  Tensor mean64 = Tensor::zeros({3}, DType::f64), var64 = Tensor::full({3}, 1.0, DType::f64);
  Tensor mean32 = Tensor::zeros({3}, DType::f32), var32 = Tensor::full({3}, 1.0, DType::f32);
  const auto y64 = batch_norm2d(x, gamma, beta, mean64, var64, true).to_double_vector();
  const auto y32 = batch_norm2d(x.to(DType::f32), gamma.to(DType::f32), beta.to(DType::f32),
                                mean32, var32, true)
                       .to_double_vector();
  BOOST_TEST(y32 == y64, tt::tolerance(1e-5) << tt::per_element());
  BOOST_TEST(var32.to_double_vector() == var64.to_double_vector(), tt::tolerance(1e-5) << tt::per_element());
}

BOOST_AUTO_TEST_CASE(batch_norm_same_bits_for_any_thread_count) {
  Generator gen(14);
  // Large enough to take the parallel path (more than kParallelGrain elements).
  Tensor x = random_input({8, 16, 32, 32}, gen).to(DType::f32);
  x.set_requires_grad();
  Tensor gamma = random_input({16}, gen).to(DType::f32), beta = random_input({16}, gen).to(DType::f32);
  gamma.set_requires_grad();
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor running_mean = Tensor::zeros({16}), running_var = Tensor::full({16}, 1.0);
    x.zero_grad();
    gamma.zero_grad();
    Tensor y = batch_norm2d(x, gamma, beta, running_mean, running_var, true);
    sum(mul(y, y)).backward();
    std::vector<float> out = y.to_float_vector();
    for (const Tensor& t : {x.grad(), gamma.grad(), running_var}) {
      const std::vector<float> v = t.to_float_vector();
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  };
  const std::vector<float> one = run(1), two = run(2);
  set_num_threads(0);
  BOOST_TEST(one == two, tt::per_element());
}

BOOST_AUTO_TEST_CASE(batch_norm_rejects_bad_arguments) {
  Tensor running_mean = Tensor::zeros({3}), running_var = Tensor::full({3}, 1.0);
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  const std::string wrong_gamma = error_of([&] {
    batch_norm2d(x, Tensor::zeros({4}), Tensor(), running_mean, running_var, true);
  });
  BOOST_TEST(wrong_gamma.find("batch_norm2d") != std::string::npos);
  BOOST_TEST(wrong_gamma.find("(4)") != std::string::npos);
  BOOST_TEST(wrong_gamma.find("(2, 3, 4, 4)") != std::string::npos);
  const std::string wrong_beta = error_of([&] {
    batch_norm2d_relu(x, Tensor(), Tensor::zeros({2}), running_mean, running_var, true);
  });
  BOOST_TEST(wrong_beta.find("batch_norm2d_relu: beta (2)") != std::string::npos, wrong_beta);
  BOOST_CHECK_THROW(batch_norm2d(Tensor::zeros({2, 3, 4}), Tensor(), Tensor(), running_mean,
                                 running_var, true),
                    std::invalid_argument);
  // One value per channel has no variance to normalise by.
  BOOST_CHECK_THROW(batch_norm2d(Tensor::zeros({1, 3, 1, 1}), Tensor(), Tensor(), running_mean,
                                 running_var, true),
                    std::invalid_argument);
  Tensor none;
  BOOST_CHECK_THROW(batch_norm2d(x, Tensor(), Tensor(), none, none, false), std::invalid_argument);
  BOOST_CHECK_NO_THROW(batch_norm2d(x, Tensor(), Tensor(), none, none, true));
}

// ---- cross-entropy -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(cross_entropy_hand_computed) {
  const std::vector<int64_t> label2 = {2};
  const Tensor logits = doubles({1, 3}, {1, 2, 3});
  // -log softmax(z)_2 = log(e^1 + e^2 + e^3) - 3
  const double expected = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3;
  BOOST_TEST(cross_entropy(logits, label2).item() == expected, tt::tolerance(1e-14));
  BOOST_TEST(expected == 0.40760596444437994, tt::tolerance(1e-14));

  // Class 1 masked out: log(e^1 + e^3) - 3 = log(1 + e^-2).
  const std::vector<uint8_t> mask = {1, 0, 1};
  BOOST_TEST(cross_entropy(logits, label2, mask).item() == std::log1p(std::exp(-2.0)), tt::tolerance(1e-14));

  // Mean over rows: the second row, [0, 0, 0] label 0, contributes log 3.
  const std::vector<int64_t> labels = {2, 0};
  const Tensor two_rows = doubles({2, 3}, {1, 2, 3, 0, 0, 0});
  BOOST_TEST(cross_entropy(two_rows, labels).item() == (expected + std::log(3.0)) / 2, tt::tolerance(1e-14));

  // Gradient: (softmax - onehot) / N, masked class exactly zero.
  Tensor z = doubles({1, 3}, {1, 2, 3});
  z.set_requires_grad();
  cross_entropy(z, label2, mask).backward();
  const double p0 = std::exp(1.0) / (std::exp(1.0) + std::exp(3.0));
  BOOST_TEST(z.grad().to_double_vector() == std::vector<double>({p0, 0.0, -p0}),
             tt::tolerance(1e-14) << tt::per_element());
  BOOST_TEST(z.grad().data<double>()[1] == 0.0);
}

BOOST_AUTO_TEST_CASE(cross_entropy_is_stable_for_huge_logits) {
  const std::vector<int64_t> labels = {1, 0};
  const Tensor logits = Tensor::from_vector({2, 2}, std::span<const float>(std::vector<float>{1000, 0, -1000, 0}));
  // Row 0: log(e^1000 + 1) - 0 = 1000; row 1: log(e^-1000 + 1) + 1000 = 1000.
  BOOST_TEST(cross_entropy(logits, labels).item() == 1000.0, tt::tolerance(1e-6));
  // A huge masked-out logit must not take part in the shift: log(e^1 + e^2) - 2.
  const std::vector<int64_t> label2 = {2};
  const std::vector<uint8_t> mask = {0, 1, 1};
  const Tensor masked_huge = Tensor::from_vector({1, 3}, std::span<const float>(std::vector<float>{1000, 1, 2}));
  BOOST_TEST(cross_entropy(masked_huge, label2, mask).item() == std::log1p(std::exp(-1.0)), tt::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(gradcheck_cross_entropy) {
  Generator gen(21);
  const std::vector<int64_t> labels = {0, 3, 4, 1};
  check_gradients("cross_entropy", [&](const auto& x) { return cross_entropy(x[0], labels); },
                  {grad_input({4, 5}, gen)}, kSoftmax);
  const std::vector<uint8_t> mask = {1, 1, 0, 1, 1};
  check_gradients("cross_entropy_masked",
                  [&](const auto& x) { return cross_entropy(x[0], labels, mask); },
                  {grad_input({4, 5}, gen)}, kSoftmax);
}

BOOST_AUTO_TEST_CASE(cross_entropy_rejects_bad_labels_naming_row_and_label) {
  const Tensor logits = Tensor::zeros({3, 4});
  const std::vector<int64_t> out_of_range = {0, 1, 4};
  const std::string range = error_of([&] { cross_entropy(logits, out_of_range); });
  BOOST_TEST(range.find("row 2") != std::string::npos);
  BOOST_TEST(range.find("label 4") != std::string::npos);
  const std::vector<int64_t> labels = {0, 1, 2};
  const std::vector<uint8_t> mask = {1, 0, 1, 1};
  const std::string masked = error_of([&] { cross_entropy(logits, labels, mask); });
  BOOST_TEST(masked.find("row 1") != std::string::npos);
  BOOST_TEST(masked.find("label 1") != std::string::npos);
  const std::vector<int64_t> negative = {-1, 0, 0};
  BOOST_CHECK_THROW(cross_entropy(logits, negative), std::invalid_argument);
  const std::vector<int64_t> too_few = {0, 1};
  BOOST_CHECK_THROW(cross_entropy(logits, too_few), std::invalid_argument);
  const std::vector<uint8_t> short_mask = {1, 1};
  BOOST_CHECK_THROW(cross_entropy(logits, labels, short_mask), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(masked_argmax_values) {
  const Tensor logits = doubles({3, 3}, {1, 5, 3, 4, 2, 9, 7, 7, 1});
  BOOST_TEST(masked_argmax(logits) == std::vector<int64_t>({1, 2, 0}), tt::per_element());
  const std::vector<uint8_t> mask = {1, 0, 1};
  BOOST_TEST(masked_argmax(logits, mask) == std::vector<int64_t>({2, 2, 0}), tt::per_element());
  const std::vector<uint8_t> last_only = {0, 0, 1};
  BOOST_TEST(masked_argmax(logits, last_only) == std::vector<int64_t>({2, 2, 2}), tt::per_element());
  const std::vector<uint8_t> none = {0, 0, 0};
  BOOST_CHECK_THROW(masked_argmax(logits, none), std::invalid_argument);
}

// ---- dropout -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(dropout_gradient_equals_mask) {
  Generator gen(31);
  check_gradients("dropout", [](const auto& x) { return dropout(x[0], 0.4, true, 99, 5); },
                  {grad_input({3, 4, 5}, gen)}, testing::kMultilinear);
  Tensor x = grad_input({200}, gen);
  sum(dropout(x, 0.4, true, 99, 5)).backward();
  const Tensor mask = dropout(Tensor::full({200}, 1.0, DType::f64), 0.4, true, 99, 5);
  BOOST_TEST(x.grad().to_double_vector() == mask.to_double_vector(), tt::per_element());
}

BOOST_AUTO_TEST_CASE(dropout_mask_is_a_function_of_seed_and_counter) {
  const double p = 0.3;
  const Tensor ones = Tensor::full({100000}, 1.0);
  const std::vector<float> a = dropout(ones, p, true, 7, 1).to_float_vector();
  const std::vector<float> b = dropout(ones, p, true, 7, 1).to_float_vector();
  const std::vector<float> c = dropout(ones, p, true, 7, 2).to_float_vector();
  const std::vector<float> d = dropout(ones, p, true, 8, 1).to_float_vector();
  BOOST_TEST(a == b, tt::per_element());
  BOOST_TEST((a != c));
  BOOST_TEST((a != d));
  const float scale = 1.0f / (1.0f - static_cast<float>(p));
  int64_t kept = 0, agree_with_c = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    BOOST_REQUIRE(((a[i] == 0.0f) || (a[i] == scale)));
    kept += a[i] != 0.0f;
    agree_with_c += (a[i] != 0.0f) == (c[i] != 0.0f);
  }
  // 100000 draws: the standard deviation of the kept fraction is 0.0015.
  BOOST_TEST(std::abs(static_cast<double>(kept) / 1e5 - (1 - p)) < 0.01);
  // Independent masks agree on p^2 + (1-p)^2 = 0.58 of the elements.
  BOOST_TEST(std::abs(static_cast<double>(agree_with_c) / 1e5 - 0.58) < 0.01);

  // Same bits for any thread count, and the same mask in float32 and float64.
  set_num_threads(1);
  const std::vector<float> single = dropout(ones, p, true, 7, 1).to_float_vector();
  set_num_threads(0);
  BOOST_TEST(single == a, tt::per_element());
  const std::vector<double> a64 = dropout(Tensor::full({100000}, 1.0, DType::f64), 0.5, true, 7, 1).to_double_vector();
  const std::vector<float> a32 = dropout(ones, 0.5, true, 7, 1).to_float_vector();
  for (size_t i = 0; i < a64.size(); ++i) BOOST_REQUIRE_EQUAL(a64[i], static_cast<double>(a32[i]));
}

BOOST_AUTO_TEST_CASE(dropout_follows_the_documented_hash) {
  // The formula of engine/cpu/dropout_kernels.cpp, which the CUDA kernel repeats.
  const uint64_t seed = 42, counter = 3;
  const double p = 0.25;
  const std::vector<double> mask = dropout(Tensor::full({64}, 1.0, DType::f64), p, true, seed, counter)
                                       .to_double_vector();
  const uint64_t key = splitmix64(seed ^ splitmix64(counter));
  for (uint64_t i = 0; i < 64; ++i) {
    const double u = static_cast<double>(splitmix64(key + i * 0x9E3779B97F4A7C15ull) >> 11) * 0x1.0p-53;
    BOOST_TEST(mask[i] == (u >= p ? 1 / (1 - p) : 0.0));
  }
}

BOOST_AUTO_TEST_CASE(dropout_identity_when_off) {
  Tensor x = Tensor::full({10}, 2.0);
  BOOST_TEST(dropout(x, 0.5, false, 1, 1).same_storage(x));
  BOOST_TEST(dropout(x, 0.0, true, 1, 1).same_storage(x));
  BOOST_CHECK_THROW(dropout(x, 1.0, true, 1, 1), std::invalid_argument);
  BOOST_CHECK_THROW(dropout(x, -0.1, true, 1, 1), std::invalid_argument);
}
