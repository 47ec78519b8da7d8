// Low-rank adapters: a task-specific update dW of a frozen weight W, trained
// while W stays fixed. All are compositions of engine ops, so their gradients
// come from the ops' own backward functions (docs/lora-internals.md derives them).
//
//   LoRA (Linear W (OUT,IN)):       A (R,IN) Kaiming-uniform, B (OUT,R) zeros,
//                                   dW = s * B A; r*(IN+OUT) parameters.
//   ConvLoRA (Conv2d W (OC,C,K,K)): A (R*K, C*K) Kaiming-uniform, B (OC*K, R*K) zeros,
//                                   dW = s * reshape(B A, (OC,C,K,K)); r*K*K*(C+OC).
//   CPConvLoRA (W (OC,C,KH,KW)):    C (OC,R) zeros, Ah (KH,R), Bw (KW,R), optional D (C,R),
//                                   dW[o,i,h,w] = s * sum_r C[o,r] Ah[h,r] Bw[w,r] (D[i,r]);
//                                   r*(OC+KH+KW) parameters, + r*C with D.
//
// The factor next to the output (B, or C) starts at zero, so dW = 0 and a new
// task starts exactly from the frozen network. s is the scaling: alpha/r
// (loralib's convention, the default) or r/alpha (the reference study's code).
#pragma once

#include <cstdint>
#include <string>

#include "layers/module.h"

namespace layers {

enum class LoraScaling { alpha_over_r, r_over_alpha };
double lora_scaling(int64_t rank, double alpha, LoraScaling rule);

// One task's update of one layer's weight.
class Adapter : public Module {
 public:
  // dW, differentiable in the factors; its shape is the adapted weight's or
  // broadcasts to it (CPConvLoRA without D: (OC,1,KH,KW)).
  virtual Tensor delta() const = 0;
  int64_t rank() const { return rank_; }
  double scaling() const { return scaling_; }

 protected:
  Adapter(int64_t rank, double scaling);
  int64_t rank_;
  double scaling_;
};

// LoRA on a Linear layer.
class LoRA final : public Adapter {
 public:
  // dropout: probability on the adapter's input (loralib's lora_dropout), drawn
  // with `dropout_seed` and this adapter's counter. gen null: factors left
  // uninitialised (for counting, or loading).
  LoRA(int64_t in_features, int64_t out_features, int64_t rank, double scaling, double dropout,
       uint64_t dropout_seed, engine::Generator* gen);

  // x (N,IN) -> (N,OUT) = s * dropout(x) A^T B^T, the adapter's share of the output;
  // cheaper than forming dW when N*(IN+OUT) < IN*OUT.
  Tensor forward(const Tensor& x) override;
  // -> (OUT,IN) = s * B A
  Tensor delta() const override;
  std::string type_name() const override { return "LoRA"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  void reset_parameters(engine::Generator& gen) override;

  const Tensor& A() const { return A_; }
  const Tensor& B() const { return B_; }

 private:
  int64_t in_, out_;
  double dropout_;
  uint64_t dropout_seed_, dropout_counter_ = 0;
  Tensor A_, B_;
};

// An adapter of a Conv2d weight. Its forward maps the frozen weight to the
// adapted one, W + dW, which the layer then convolves with.
class ConvAdapter : public Adapter {
 public:
  // weight (OC,C,KH,KW) -> (OC,C,KH,KW)
  Tensor forward(const Tensor& weight) override;
  Part part() const override { return Part::features; }

 protected:
  using Adapter::Adapter;
};

// ConvLoRA (Aleem et al. 2024), as in the reference study; square kernels.
class ConvLoRA final : public ConvAdapter {
 public:
  ConvLoRA(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t rank, double scaling,
           engine::Generator* gen);
  // -> (OC,C,K,K) = s * reshape(B A)
  Tensor delta() const override;
  std::string type_name() const override { return "ConvLoRA"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  void reset_parameters(engine::Generator& gen) override;

  const Tensor& A() const { return A_; }
  const Tensor& B() const { return B_; }

 private:
  int64_t in_, out_, kernel_;
  Tensor A_, B_;
};

// Canonical-polyadic ConvLoRA: rank-r sum of outer products of an output-channel,
// a height and a width vector (and, with the input factor, an input-channel one).
// Init: C zeros (dW = 0 at the start); Ah, Bw uniform in +-1/sqrt(K) and D in
// +-1/sqrt(C), so that one rank-1 filter has the scale LoRA gives a row of A.
class CPConvLoRA final : public ConvAdapter {
 public:
  CPConvLoRA(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
             int64_t rank, double scaling, bool input_factor, engine::Generator* gen);
  // -> (OC,C,KH,KW); without D it is constant across input channels.
  Tensor delta() const override;
  std::string type_name() const override { return "CPConvLoRA"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;
  void reset_parameters(engine::Generator& gen) override;

  const Tensor& C() const { return C_; }
  const Tensor& Ah() const { return Ah_; }
  const Tensor& Bw() const { return Bw_; }
  const Tensor& D() const { return D_; }  // undefined without the input factor

 private:
  int64_t in_, out_, kernel_h_, kernel_w_;
  bool input_factor_;
  Tensor C_, Ah_, Bw_, D_;
};

}  // namespace layers
