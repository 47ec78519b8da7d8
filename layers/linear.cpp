#include "layers/linear.h"

#include <cmath>
#include <stdexcept>

#include "engine/init.h"
#include "engine/ops.h"

namespace layers {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, engine::Generator* gen)
    : in_(in_features), out_(out_features) {
  if (in_features <= 0 || out_features <= 0)
    throw std::invalid_argument("Linear: features must be positive, got " + std::to_string(in_features) +
                                " -> " + std::to_string(out_features));
  weight_ = register_parameter("weight", Tensor::empty({out_features, in_features}));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_features}));
  if (gen) reset_parameters(*gen);
}

void Linear::reset_parameters(engine::Generator& gen) {
  engine::kaiming_uniform_(weight_, std::sqrt(5.0), gen);
  if (bias_.defined()) engine::bias_uniform_(bias_, in_, gen);
}

// x (N,IN) -> (N,OUT)
Tensor Linear::forward(const Tensor& x) {
  Tensor y = engine::linear(x, weight_, bias_);
  if (Adapter* lora = active_adapter()) y = engine::add(y, lora->forward(x));
  return y;
}

std::string Linear::describe() const {
  return "Linear(in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
         ", bias=" + (bias_.defined() ? "True" : "False") + ")";
}

std::shared_ptr<Module> Linear::clone() const {
  check_not_merged("clone");
  return finish_clone(std::make_shared<Linear>(in_, out_, bias_.defined(), nullptr));
}

void Linear::add_adapter(int64_t task, std::shared_ptr<LoRA> adapter) {
  attach_adapter(task, std::move(adapter));
}

}  // namespace layers
