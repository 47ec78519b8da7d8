// BatchNorm2d, as torch.nn.BatchNorm2d (affine, tracking running statistics).
//
// One deliberate difference: a frozen BatchNorm2d (weight not requiring grad)
// normalises with its running statistics and leaves them unchanged even in
// training mode. Freezing a layer thus freezes all of its state, which is what
// keeps a frozen, shared trunk (SenaCNN, adapters) from drifting while later
// tasks train. PyTorch's "num_batches_tracked" counter is not kept (only the
// cumulative average of momentum=None uses it, not offered here):
// load_npz_state_dict (module.h) accepts it from a PyTorch file after checking
// it is a 0-d integer beside this layer's running statistics, and
// scripts/export_torchvision.py writes 0 for it when it gives a state_dict back to torch.
#pragma once

#include <cstdint>
#include <memory>

#include "layers/module.h"

namespace layers {

class BatchNorm2d final : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);

  // x (N,C,H,W) -> (N,C,H,W)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BatchNorm2d"; }
  bool fresh_output() const override { return true; }  // the op saves its input only
  // forward then ReLU in one op (engine::batch_norm2d_relu)
  Tensor forward_relu(const Tensor& x) override;
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  // weight 1, bias 0, running_mean 0, running_var 1 (as PyTorch).
  void reset_parameters(engine::Generator& gen) override;
  Part part() const override { return Part::features; }

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  int64_t channels() const { return channels_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }

 private:
  void reset();
  bool batch_statistics() const;

  int64_t channels_;
  double eps_, momentum_;
  Tensor weight_, bias_, running_mean_, running_var_;
};

}  // namespace layers
