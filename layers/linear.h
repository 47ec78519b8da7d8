// Linear: y = x W^T + b, as torch.nn.Linear, with optional per-task LoRA adapters.
#pragma once

#include <cstdint>
#include <memory>

#include "layers/adaptable.h"

namespace layers {

class Linear final : public AdaptableLayer {
 public:
  // weight (OUT,IN), bias (OUT). gen null: tensors left uninitialised (the
  // caller loads weights or only counts parameters).
  Linear(int64_t in_features, int64_t out_features, bool bias, engine::Generator* gen);

  // x (N,IN) -> (N,OUT) = x W^T + b (+ the current task's LoRA output)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  bool fresh_output() const override { return true; }  // the op saves its input only
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  // nn.Linear's init: W Kaiming-uniform (a = sqrt(5)), b uniform in +-1/sqrt(IN).
  void reset_parameters(engine::Generator& gen) override;

  void add_adapter(int64_t task, std::shared_ptr<LoRA> adapter);
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 private:
  int64_t in_, out_;
};

}  // namespace layers
