#include "layers/sequential.h"

namespace layers {

Sequential& Sequential::add(std::shared_ptr<Module> module) {
  return add(std::to_string(size()), std::move(module));
}

Sequential& Sequential::add(std::string name, std::shared_ptr<Module> module) {
  register_module(std::move(name), std::move(module));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, module] : children()) y = module->forward(y);
  return y;
}

std::shared_ptr<Module> Sequential::clone() const { return finish_clone(std::make_shared<Sequential>()); }

}  // namespace layers
