#include "layers/adapters.h"

#include <cmath>
#include <stdexcept>

#include "engine/init.h"
#include "engine/ops.h"

namespace layers {

double lora_scaling(int64_t rank, double alpha, LoraScaling rule) {
  if (rank <= 0 || !(alpha > 0))
    throw std::invalid_argument("lora_scaling: rank and alpha must be positive, got rank " +
                                std::to_string(rank) + ", alpha " + std::to_string(alpha));
  const double r = static_cast<double>(rank);
  return rule == LoraScaling::alpha_over_r ? alpha / r : r / alpha;
}

Adapter::Adapter(int64_t rank, double scaling) : rank_(rank), scaling_(scaling) {
  if (rank <= 0) throw std::invalid_argument("adapter: rank must be positive, got " + std::to_string(rank));
}

// ---- LoRA ------------------------------------------------------------------------

LoRA::LoRA(int64_t in_features, int64_t out_features, int64_t rank, double scaling, double dropout,
           uint64_t dropout_seed, engine::Generator* gen)
    : Adapter(rank, scaling), in_(in_features), out_(out_features), dropout_(dropout),
      dropout_seed_(dropout_seed) {
  if (in_features <= 0 || out_features <= 0)
    throw std::invalid_argument("LoRA: features must be positive, got " + std::to_string(in_features) +
                                " -> " + std::to_string(out_features));
  A_ = register_parameter("A", Tensor::empty({rank, in_features}));
  B_ = register_parameter("B", Tensor::empty({out_features, rank}));
  register_counter("dropout_counter", &dropout_counter_);
  if (gen) reset_parameters(*gen);
}

void LoRA::reset_parameters(engine::Generator& gen) {
  engine::kaiming_uniform_(A_, std::sqrt(5.0), gen);  // as nn.Linear's weight: +-1/sqrt(IN)
  engine::zeros_(B_);                                 // dW = 0 at the start of the task
}

// x (N,IN) -> (N,OUT)
Tensor LoRA::forward(const Tensor& x) {
  Tensor input = x;
  if (dropout_ > 0 && is_training())
    input = engine::dropout(x, dropout_, true, dropout_seed_, dropout_counter_++);
  const Tensor low = engine::linear(input, A_, Tensor());  // (N,R)
  return engine::mul_scalar(engine::linear(low, B_, Tensor()), scaling_);
}

// -> (OUT,IN)
Tensor LoRA::delta() const { return engine::mul_scalar(engine::matmul(B_, A_), scaling_); }

std::string LoRA::describe() const {
  return "LoRA(" + std::to_string(in_) + ", " + std::to_string(out_) + ", r=" + std::to_string(rank_) +
         ", scaling=" + repr_number(scaling_) + (dropout_ > 0 ? ", dropout=" + repr_number(dropout_) : "") + ")";
}

std::shared_ptr<Module> LoRA::clone() const {
  return finish_clone(std::make_shared<LoRA>(in_, out_, rank_, scaling_, dropout_, dropout_seed_, nullptr));
}

// ---- convolution adapters ---------------------------------------------------------

// weight (OC,C,KH,KW) -> (OC,C,KH,KW) = weight + dW
Tensor ConvAdapter::forward(const Tensor& weight) { return engine::add(weight, delta()); }

ConvLoRA::ConvLoRA(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t rank,
                   double scaling, engine::Generator* gen)
    : ConvAdapter(rank, scaling), in_(in_channels), out_(out_channels), kernel_(kernel) {
  if (in_channels <= 0 || out_channels <= 0 || kernel <= 0)
    throw std::invalid_argument("ConvLoRA: channels and kernel must be positive, got " +
                                std::to_string(in_channels) + " -> " + std::to_string(out_channels) +
                                ", kernel " + std::to_string(kernel));
  A_ = register_parameter("A", Tensor::empty({rank * kernel, in_channels * kernel}));
  B_ = register_parameter("B", Tensor::empty({out_channels * kernel, rank * kernel}));
  if (gen) reset_parameters(*gen);
}

void ConvLoRA::reset_parameters(engine::Generator& gen) {
  engine::kaiming_uniform_(A_, std::sqrt(5.0), gen);  // +-1/sqrt(C*K), as the study's code
  engine::zeros_(B_);
}

// B (OC*K, R*K) . A (R*K, C*K) -> (OC*K, C*K), read in row-major order as (OC,C,K,K)
Tensor ConvLoRA::delta() const {
  const Tensor product = engine::matmul(B_, A_);
  return engine::mul_scalar(engine::reshape(product, {out_, in_, kernel_, kernel_}), scaling_);
}

std::string ConvLoRA::describe() const {
  return "ConvLoRA(" + std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" +
         std::to_string(kernel_) + ", r=" + std::to_string(rank_) + ", scaling=" + repr_number(scaling_) + ")";
}

std::shared_ptr<Module> ConvLoRA::clone() const {
  return finish_clone(std::make_shared<ConvLoRA>(in_, out_, kernel_, rank_, scaling_, nullptr));
}

CPConvLoRA::CPConvLoRA(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                       int64_t rank, double scaling, bool input_factor, engine::Generator* gen)
    : ConvAdapter(rank, scaling), in_(in_channels), out_(out_channels), kernel_h_(kernel_h),
      kernel_w_(kernel_w), input_factor_(input_factor) {
  if (in_channels <= 0 || out_channels <= 0 || kernel_h <= 0 || kernel_w <= 0)
    throw std::invalid_argument("CPConvLoRA: channels and kernel sizes must be positive");
  C_ = register_parameter("C", Tensor::empty({out_channels, rank}));
  Ah_ = register_parameter("Ah", Tensor::empty({kernel_h, rank}));
  Bw_ = register_parameter("Bw", Tensor::empty({kernel_w, rank}));
  if (input_factor) D_ = register_parameter("D", Tensor::empty({in_channels, rank}));
  if (gen) reset_parameters(*gen);
}

void CPConvLoRA::reset_parameters(engine::Generator& gen) {
  engine::zeros_(C_);
  const double bound_h = 1.0 / std::sqrt(static_cast<double>(kernel_h_));
  const double bound_w = 1.0 / std::sqrt(static_cast<double>(kernel_w_));
  engine::uniform_(Ah_, -bound_h, bound_h, gen);
  engine::uniform_(Bw_, -bound_w, bound_w, gen);
  if (input_factor_) {
    const double bound_c = 1.0 / std::sqrt(static_cast<double>(in_));
    engine::uniform_(D_, -bound_c, bound_c, gen);
  }
}

// Each factor is viewed with the rank last and size-1 dimensions where it does
// not vary; broadcasting mul forms the outer products, sum over r adds them.
// C (OC,R), Ah (KH,R), Bw (KW,R), D (C,R) -> (OC,C,KH,KW), or (OC,1,KH,KW) without D
Tensor CPConvLoRA::delta() const {
  const int64_t r = rank_;
  Tensor outer = engine::mul(engine::reshape(C_, {out_, 1, 1, 1, r}),
                             engine::reshape(Ah_, {1, 1, kernel_h_, 1, r}));  // (OC,1,KH,1,R)
  outer = engine::mul(outer, engine::reshape(Bw_, {1, 1, 1, kernel_w_, r}));  // (OC,1,KH,KW,R)
  if (input_factor_) outer = engine::mul(outer, engine::reshape(D_, {1, in_, 1, 1, r}));
  return engine::mul_scalar(engine::sum(outer, 4), scaling_);
}

std::string CPConvLoRA::describe() const {
  return "CPConvLoRA(" + std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=(" +
         std::to_string(kernel_h_) + ", " + std::to_string(kernel_w_) + "), r=" + std::to_string(rank_) +
         ", scaling=" + repr_number(scaling_) + (input_factor_ ? ", input_factor" : "") + ")";
}

std::shared_ptr<Module> CPConvLoRA::clone() const {
  return finish_clone(std::make_shared<CPConvLoRA>(in_, out_, kernel_h_, kernel_w_, rank_, scaling_,
                                                   input_factor_, nullptr));
}

}  // namespace layers
