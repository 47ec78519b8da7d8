#include "engine/init.h"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace engine {

int64_t fan_in(const Tensor& weight) {
  if (weight.ndim() < 2)
    shape_error("fan_in", "weight needs at least 2 dimensions, got " + to_string(weight.shape()));
  return weight.numel() / weight.dim(0);
}

// Draws n host values with `draw`, then writes them into t on its device.
template <class Draw>
static void fill_host(Tensor& t, Draw draw) {
  std::vector<double> values(static_cast<size_t>(t.numel()));
  for (double& v : values) v = draw();
  Tensor host = Tensor::from_vector(t.shape(), std::span<const double>(values));
  t.copy_(host.to(t.dtype()).to(t.device()));
}

void uniform_(Tensor& t, double low, double high, Generator& gen) {
  fill_host(t, [&] { return gen.uniform(low, high); });
}

void normal_(Tensor& t, double mean, double stddev, Generator& gen) {
  fill_host(t, [&] { return mean + stddev * gen.normal(); });
}

void zeros_(Tensor& t) { constant_(t, 0.0); }

void constant_(Tensor& t, double value) {
  t.copy_(Tensor::full(t.shape(), value, t.dtype(), t.device()));
}

void kaiming_uniform_(Tensor& weight, double a, Generator& gen) {
  const double bound = std::sqrt(6.0 / ((1.0 + a * a) * static_cast<double>(fan_in(weight))));
  uniform_(weight, -bound, bound, gen);
}

void bias_uniform_(Tensor& bias, int64_t fan_in_value, Generator& gen) {
  if (fan_in_value <= 0) throw std::invalid_argument("bias_uniform_: fan_in must be positive");
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in_value));
  uniform_(bias, -bound, bound, gen);
}

}  // namespace engine
