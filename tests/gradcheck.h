// The one gradient-check harness for every differentiable op (style: ggml's
// test-backend-ops). In float64 it checks two things of a scalar loss's
// autograd gradient, input by input:
//
//  1. It equals central finite differences, as a relative error of the whole
//     gradient tensor: ||analytic - numeric|| / max(||analytic||, ||numeric||).
//     That stays meaningful for small gradients (no absolute floor of 1), and a
//     NaN or infinity anywhere, on either side, is a failure. Each test states
//     the tightest tolerance its op passes: 1e-12 where the loss is linear or
//     quadratic in the input (kMultilinear: central differences are exact up
//     to rounding), 1e-9 where the op is curved (the defaults).
//  2. It accumulates: backward adds into a gradient that is already there, and
//     an input used by two ops receives the sum of both ops' contributions.
//
// The loss is a fixed random projection of the op's output, L = sum(f(x) * R),
// so every output element carries a distinct weight and a wrong backward
// cannot hide behind symmetric sums. Ops with kinks (relu, max) need inputs
// kept away from the kink by the caller: see random_input(..., avoid_zero).
//
// gradient_mismatch and accumulation_mismatch return the failure ("" when the
// gradients are right) so that tests can check that the harness itself fails
// on a wrong backward; check_gradients runs both and reports through Boost.Test.
#pragma once

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace testing {

using engine::Shape;
using engine::Tensor;
using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// float64 tensor with entries uniform in [-1, 1]; with avoid_zero, |x| >= 0.1.
inline Tensor random_input(const Shape& shape, engine::Generator& gen, bool avoid_zero = false) {
  std::vector<double> v(static_cast<size_t>(engine::shape_numel(shape)));
  for (double& x : v) {
    x = gen.uniform(-1.0, 1.0);
    if (avoid_zero && std::abs(x) < 0.1) x = x < 0 ? x - 0.1 : x + 0.1;
  }
  return Tensor::from_vector(shape, std::span<const double>(v));
}

// ||got - want|| / max(||got||, ||want||) in the 2-norm; 0 when both are zero;
// +infinity when the sizes differ or any entry of either is NaN or infinite.
inline double relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, norm_got = 0, norm_want = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) return std::numeric_limits<double>::infinity();
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm_got += got[i] * got[i];
    norm_want += want[i] * want[i];
  }
  const double scale = std::sqrt(std::max(norm_got, norm_want));
  return diff == 0 ? 0 : std::sqrt(diff) / std::max(scale, std::numeric_limits<double>::min());
}

// "relative error E > TOL; worst element J: A vs N" ("" when within tol). A
// non-finite entry is named first, as it is the failure whatever the rest says.
inline std::string describe_mismatch(const std::vector<double>& got, const std::vector<double>& want,
                                     double tolerance, const std::string& got_name = "analytic",
                                     const std::string& want_name = "numeric") {
  const double error = relative_error(got, want);
  if (error <= tolerance) return "";
  std::ostringstream out;
  out.precision(17);
  if (got.size() != want.size()) {
    out << got_name << " has " << got.size() << " elements, " << want_name << " " << want.size();
    return out.str();
  }
  size_t worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) {
      worst = i;
      break;
    }
    if (std::abs(got[i] - want[i]) > std::abs(got[worst] - want[worst])) worst = i;
  }
  out << "relative error " << error << " > " << tolerance << "; worst element " << worst << ": "
      << got_name << " " << got[worst] << " vs " << want_name << " " << want[worst];
  return out.str();
}

struct GradCheckOptions {
  double eps = 1e-5;        // finite-difference step
  double tolerance = 1e-9;  // on relative_error(analytic, numeric), per input
};
// The defaults suit curved ops (div, softmax, batch statistics): a step that
// balances truncation (~eps^2) against rounding (~1e-16 / eps) leaves ~1e-10.

// Ops whose loss is linear in each input element, or quadratic (matmul, conv,
// pooling, add, mul, shape ops, an input used twice): central differences are
// exact there but for rounding, which a large step keeps near 1e-13.
inline constexpr GradCheckOptions kMultilinear{1e-2, 1e-12};

namespace detail {

inline Tensor projected_loss(const Op& f, const std::vector<Tensor>& inputs, const Tensor& projection) {
  return engine::sum(engine::mul(f(inputs), projection));
}

// Gradients of every input after one backward from zero (undefined ones stay empty).
inline std::vector<std::vector<double>> gradients_of(const Op& f, std::vector<Tensor>& inputs,
                                                     const Tensor& projection) {
  for (Tensor& x : inputs)
    if (x.requires_grad()) x.zero_grad();
  projected_loss(f, inputs, projection).backward();
  std::vector<std::vector<double>> grads;
  for (Tensor& x : inputs)
    grads.push_back(x.requires_grad() && x.grad().defined() ? x.grad().to_double_vector()
                                                            : std::vector<double>{});
  return grads;
}

inline std::string input_name(const std::string& name, size_t i, const Tensor& x) {
  return name + ": input " + std::to_string(i) + " " + engine::to_string(x.shape()) + " ";
}

}  // namespace detail

// Autograd against central differences for every input with requires_grad.
inline std::string gradient_mismatch(const std::string& name, const Op& f, std::vector<Tensor> inputs,
                                     GradCheckOptions options = {}) {
  engine::Generator gen(1234);
  const Tensor projection = random_input(f(inputs).shape(), gen);
  const auto analytic = detail::gradients_of(f, inputs, projection);

  std::string failures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    if (analytic[i].empty()) {
      failures += detail::input_name(name, i, x) + "received no gradient\n";
      continue;
    }
    std::vector<double> numeric(static_cast<size_t>(x.numel()));
    double* data = x.data<double>();
    engine::NoGradGuard no_grad;
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double saved = data[j];
      data[j] = saved + options.eps;
      const double plus = detail::projected_loss(f, inputs, projection).item();
      data[j] = saved - options.eps;
      const double minus = detail::projected_loss(f, inputs, projection).item();
      data[j] = saved;
      numeric[static_cast<size_t>(j)] = (plus - minus) / (2 * options.eps);
    }
    const std::string mismatch = describe_mismatch(analytic[i], numeric, options.tolerance);
    if (!mismatch.empty()) failures += detail::input_name(name, i, x) + mismatch + "\n";
  }
  return failures;
}

// Backward adds: starting from a non-zero gradient S, a loss that uses every
// input twice, L1 + L2 with two projections, must leave S + dL1 + dL2. The
// only differences allowed are the rounding of the order of the additions.
inline std::string accumulation_mismatch(const std::string& name, const Op& f, std::vector<Tensor> inputs) {
  engine::Generator gen(4321);
  const Shape out_shape = f(inputs).shape();
  const Tensor r1 = random_input(out_shape, gen), r2 = random_input(out_shape, gen);
  const auto g1 = detail::gradients_of(f, inputs, r1);
  const auto g2 = detail::gradients_of(f, inputs, r2);

  std::vector<std::vector<double>> want(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    x.zero_grad();
    if (g1[i].empty() || g2[i].empty()) continue;  // gradient_mismatch names it
    const Tensor start = random_input(x.shape(), gen);
    engine::grad_buffer(x).copy_(start);
    const std::vector<double> s = start.to_double_vector();
    want[i].resize(s.size());
    for (size_t j = 0; j < s.size(); ++j) want[i][j] = s[j] + g1[i][j] + g2[i][j];
  }
  engine::add(detail::projected_loss(f, inputs, r1), detail::projected_loss(f, inputs, r2)).backward();

  std::string failures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (want[i].empty()) continue;
    const std::vector<double> got = x.grad().defined() ? x.grad().to_double_vector() : std::vector<double>{};
    const std::string mismatch = describe_mismatch(got, want[i], 1e-13, "accumulated", "S + dL1 + dL2");
    if (!mismatch.empty()) failures += detail::input_name(name, i, x) + mismatch + "\n";
  }
  return failures;
}

// Both checks, reported as Boost.Test failures naming the op and the input.
inline void check_gradients(const std::string& name, const Op& f, std::vector<Tensor> inputs,
                            GradCheckOptions options = {}) {
  const std::string numeric = gradient_mismatch(name, f, inputs, options);
  BOOST_CHECK_MESSAGE(numeric.empty(), numeric);
  const std::string accumulation = accumulation_mismatch(name, f, inputs);
  BOOST_CHECK_MESSAGE(accumulation.empty(), accumulation);
}

}  // namespace testing
