// Parameter initialisers matching PyTorch's defaults, drawing from a Generator.
// They fill CPU or CUDA tensors (values are drawn on the host, in index order).
#pragma once

#include "engine/random.h"
#include "engine/tensor.h"

namespace engine {

// fan_in of a weight: shape[1] * prod(shape[2:]) (Linear (OUT,IN): IN;
// Conv2d (OC,C,KH,KW): C*KH*KW).
int64_t fan_in(const Tensor& weight);

void uniform_(Tensor& t, double low, double high, Generator& gen);
void normal_(Tensor& t, double mean, double stddev, Generator& gen);
void zeros_(Tensor& t);
void constant_(Tensor& t, double value);

// torch.nn.init.kaiming_uniform_(w, a, mode='fan_in', nonlinearity='leaky_relu'):
// bound = sqrt(6 / ((1 + a^2) * fan_in)). With a = sqrt(5) (nn.Linear and
// nn.Conv2d's default) the bound is 1/sqrt(fan_in).
void kaiming_uniform_(Tensor& weight, double a, Generator& gen);
// The default bias init of nn.Linear / nn.Conv2d: uniform in +-1/sqrt(fan_in).
void bias_uniform_(Tensor& bias, int64_t fan_in, Generator& gen);

}  // namespace engine
