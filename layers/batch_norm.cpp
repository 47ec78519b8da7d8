#include "layers/batch_norm.h"

#include <stdexcept>

#include "engine/init.h"
#include "engine/ops.h"

namespace layers {

BatchNorm2d::BatchNorm2d(int64_t channels, double eps, double momentum)
    : channels_(channels), eps_(eps), momentum_(momentum) {
  if (channels <= 0)
    throw std::invalid_argument("BatchNorm2d: channels must be positive, got " + std::to_string(channels));
  weight_ = register_parameter("weight", Tensor::empty({channels}));
  bias_ = register_parameter("bias", Tensor::empty({channels}));
  running_mean_ = register_buffer("running_mean", Tensor::empty({channels}));
  running_var_ = register_buffer("running_var", Tensor::empty({channels}));
  reset();  // deterministic and cheap, so always done
}

void BatchNorm2d::reset() {
  engine::constant_(weight_, 1.0);
  engine::zeros_(bias_);
  engine::zeros_(running_mean_);
  engine::constant_(running_var_, 1.0);
}

void BatchNorm2d::reset_parameters(engine::Generator& /*gen*/) { reset(); }

// x (N,C,H,W) -> (N,C,H,W)
Tensor BatchNorm2d::forward(const Tensor& x) {
  return engine::batch_norm2d(x, weight_, bias_, running_mean_, running_var_, batch_statistics(),
                              momentum_, eps_);
}

// x (N,C,H,W) -> max(forward(x), 0)
Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  return engine::batch_norm2d_relu(x, weight_, bias_, running_mean_, running_var_,
                                   batch_statistics(), momentum_, eps_);
}

// Training mode normalises with the batch's statistics unless the layer is
// frozen (see the header).
bool BatchNorm2d::batch_statistics() const { return is_training() && weight_.requires_grad(); }

std::string BatchNorm2d::describe() const {
  return "BatchNorm2d(" + std::to_string(channels_) + ", eps=" + repr_number(eps_) +
         ", momentum=" + repr_number(momentum_) + ")";
}

std::shared_ptr<Module> BatchNorm2d::clone() const {
  return finish_clone(std::make_shared<BatchNorm2d>(channels_, eps_, momentum_));
}

}  // namespace layers
