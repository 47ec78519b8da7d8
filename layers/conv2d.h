// Conv2d: 2-D convolution, as torch.nn.Conv2d (groups 1, dilation 1), with
// optional per-task ConvLoRA / CP-ConvLoRA adapters on its weight.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/ops.h"
#include "layers/adaptable.h"

namespace layers {

class Conv2d final : public AdaptableLayer {
 public:
  // weight (OC,C,K,K), bias (OC). gen null: tensors left uninitialised.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
         bool bias, engine::Generator* gen);

  // x (N,C,H,W) -> (N,OC,OH,OW), convolved with W (+ the current task's dW)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  bool fresh_output() const override { return true; }  // the op saves its input only
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  // nn.Conv2d's init: W Kaiming-uniform (a = sqrt(5)), b uniform in +-1/sqrt(C*K*K).
  void reset_parameters(engine::Generator& gen) override;
  Part part() const override { return Part::features; }

  void add_adapter(int64_t task, std::shared_ptr<ConvAdapter> adapter);
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  int64_t kernel() const { return kernel_; }
  int64_t stride() const { return options_.stride_h; }
  int64_t padding() const { return options_.pad_h; }
  // Output height or width for an input extent.
  int64_t output_size(int64_t input_size) const;

 private:
  int64_t in_, out_, kernel_;
  engine::Conv2dOptions options_;
};

}  // namespace layers
