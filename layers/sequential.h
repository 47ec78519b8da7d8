// Sequential: children applied in order, as torch.nn.Sequential. Children are
// named "0", "1", ... unless given a name (VGG's "features", "avgpool",
// "classifier"), so state_dict names follow PyTorch's for the same layout.
#pragma once

#include <memory>
#include <string>

#include "layers/module.h"

namespace layers {

class Sequential final : public Module {
 public:
  Sequential() = default;

  // Appends under the next index as name; returns *this for chaining.
  Sequential& add(std::shared_ptr<Module> module);
  Sequential& add(std::string name, std::shared_ptr<Module> module);
  size_t size() const { return children().size(); }

  // x -> children[n-1](... children[0](x))
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  std::shared_ptr<Module> clone() const override;
  bool is_container() const override { return true; }
};

}  // namespace layers
