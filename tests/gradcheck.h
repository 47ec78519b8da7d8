// The one gradient-check harness for every differentiable op (style: ggml's
// test-backend-ops). In float64 it compares the autograd gradient of a scalar
// loss with central finite differences, input by input, element by element.
//
// The loss is a fixed random projection of the op's output, L = sum(f(x) * R),
// so every output element carries a distinct weight and a wrong backward
// cannot hide behind symmetric sums. Ops with kinks (relu, max) need inputs
// kept away from the kink by the caller: see random_input(..., avoid_zero).
#pragma once

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace testing {

using engine::Shape;
using engine::Tensor;

// float64 tensor with entries uniform in [-1, 1]; with avoid_zero, |x| >= 0.1.
inline Tensor random_input(const Shape& shape, engine::Generator& gen, bool avoid_zero = false) {
  std::vector<double> v(static_cast<size_t>(engine::shape_numel(shape)));
  for (double& x : v) {
    x = gen.uniform(-1.0, 1.0);
    if (avoid_zero && std::abs(x) < 0.1) x = x < 0 ? x - 0.1 : x + 0.1;
  }
  return Tensor::from_vector(shape, std::span<const double>(v));
}

struct GradCheckOptions {
  double eps = 1e-6;          // finite-difference step
  double tolerance = 1e-6;    // on |analytic - numeric| / max(1, |analytic|, |numeric|)
};

// Checks d(sum(f(inputs) * R))/d(input) for every input with requires_grad.
inline void check_gradients(const std::string& name,
                            const std::function<Tensor(const std::vector<Tensor>&)>& f,
                            std::vector<Tensor> inputs, GradCheckOptions options = {}) {
  engine::Generator gen(1234);
  Tensor probe = f(inputs);
  const Tensor projection = random_input(probe.shape(), gen);
  auto loss = [&](const std::vector<Tensor>& xs) { return engine::sum(engine::mul(f(xs), projection)); };

  for (Tensor& x : inputs)
    if (x.requires_grad()) x.zero_grad();
  loss(inputs).backward();

  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    BOOST_REQUIRE_MESSAGE(x.grad().defined(), name << ": input " << i << " received no gradient");
    const std::vector<double> analytic = x.grad().to_double_vector();
    double* data = x.data<double>();
    double worst = 0;
    int64_t worst_index = -1;
    engine::NoGradGuard no_grad;
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double saved = data[j];
      data[j] = saved + options.eps;
      const double plus = loss(inputs).item();
      data[j] = saved - options.eps;
      const double minus = loss(inputs).item();
      data[j] = saved;
      const double numeric = (plus - minus) / (2 * options.eps);
      const double error = std::abs(analytic[j] - numeric) /
                           std::max({1.0, std::abs(analytic[j]), std::abs(numeric)});
      if (error > worst) worst = error, worst_index = j;
    }
    BOOST_CHECK_MESSAGE(worst <= options.tolerance,
                        name << ": input " << i << " " << engine::to_string(x.shape())
                             << " worst relative error " << worst << " at element "
                             << worst_index);
  }
}

}  // namespace testing
