// Layers without parameters: ReLU, Dropout, Flatten and the pooling layers, as
// their torch.nn namesakes.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/ops.h"
#include "layers/module.h"

namespace layers {

class ReLU final : public Module {
 public:
  Tensor forward(const Tensor& x) override;  // x (any) -> same shape
  std::string type_name() const override { return "ReLU"; }
  std::shared_ptr<Module> clone() const override;
};

// Inverted dropout. The mask of each training forward is drawn from (seed,
// counter), the counter advancing once per training forward, so a run is
// reproducible bit for bit and resumable (the counter is in named_counters()).
class Dropout final : public Module {
 public:
  Dropout(double p, uint64_t seed);
  Tensor forward(const Tensor& x) override;  // x (any) -> same shape
  std::string type_name() const override { return "Dropout"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  double p() const { return p_; }
  void set_p(double p);

 private:
  double p_;
  uint64_t seed_, counter_ = 0;
};

// Sets p of every Dropout in `root`'s tree (model-tool run --dropout: a
// training-mode pass with p = 0 is deterministic, so PyTorch can check it).
// Returns how many layers were set.
int64_t set_dropout(Module& root, double p);

// (N,C,H,W) -> (N,C*H*W), as nn.Flatten() (start_dim 1).
class Flatten final : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }
  std::shared_ptr<Module> clone() const override;
};

class MaxPool2d final : public Module {
 public:
  MaxPool2d(int64_t kernel, int64_t stride, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;  // x (N,C,H,W) -> (N,C,OH,OW)
  std::string type_name() const override { return "MaxPool2d"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  int64_t output_size(int64_t input_size) const;

 private:
  engine::Pool2dOptions options_;
};

class AvgPool2d final : public Module {
 public:
  AvgPool2d(int64_t kernel, int64_t stride, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;  // x (N,C,H,W) -> (N,C,OH,OW)
  std::string type_name() const override { return "AvgPool2d"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  int64_t output_size(int64_t input_size) const;

 private:
  engine::Pool2dOptions options_;
};

class AdaptiveAvgPool2d final : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
  Tensor forward(const Tensor& x) override;  // x (N,C,H,W) -> (N,C,out_h,out_w)
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;

 private:
  int64_t out_h_, out_w_;
};

}  // namespace layers
