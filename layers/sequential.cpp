#include "layers/sequential.h"

#include "engine/ops.h"
#include "layers/basic.h"

namespace layers {

Sequential& Sequential::add(std::shared_ptr<Module> module) {
  return add(std::to_string(size()), std::move(module));
}

Sequential& Sequential::add(std::string name, std::shared_ptr<Module> module) {
  register_module(std::move(name), std::move(module));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  const auto& modules = children();
  Tensor y = x;
  for (size_t i = 0; i < modules.size(); ++i) {
    Module& module = *modules[i].second;
    // A ReLU right after a layer whose output nothing else reads runs in
    // place, or inside the layer's op (batch norm): the step keeps one
    // activation there instead of two, with the same values and gradients.
    const bool relu_next = i + 1 < modules.size() && dynamic_cast<const ReLU*>(modules[i + 1].second.get());
    if (relu_next && module.fresh_output()) {
      y = module.forward_relu(y);
      ++i;
    } else {
      y = module.forward(y);
    }
  }
  return y;
}

std::shared_ptr<Module> Sequential::clone() const { return finish_clone(std::make_shared<Sequential>()); }

}  // namespace layers
