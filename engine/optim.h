// Optimisers (torch.optim semantics) and the ReduceLROnPlateau scheduler.
//
// An optimiser holds a list of parameters (tensors that require grad) and, per
// parameter, its state: named buffers on the parameter's device (SGD:
// "momentum_buffer"; Adam: "exp_avg", "exp_avg_sq") and its step count, the
// number of updates it received. step() updates every parameter that has a
// gradient, under NoGradGuard, through the backend's sgd_step / adam_step
// kernels; parameters without a gradient this step (frozen, or unused) are
// skipped and keep their state, as in PyTorch.
//
// For resumable training, state() exports everything needed to continue
// bit-identically as (name, tensor) pairs:
//   "lr"                 {} float64, the current learning rate
//   "param.<i>.step"     {} float64, the step count of parameter i (once updated)
//   "param.<i>.<buffer>" the buffer, same shape and dtype as parameter i
// and load_state() restores them into an optimiser built over the same
// parameter list (same order, shapes and dtypes).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine {

using OptimizerState = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  // Throws std::invalid_argument for an empty list, an undefined parameter or
  // one that does not require grad, or a negative learning rate.
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  void step();
  // Drops every parameter's gradient (the next backward allocates fresh zeros).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<Tensor>& params() const { return params_; }

  // The state tensors are the optimiser's own (aliases, not copies): write them
  // out before the next step().
  OptimizerState state() const;
  // Replaces the whole state (lr, step counts, buffers) with copies of `state`,
  // moved to each parameter's device. Throws std::invalid_argument naming the
  // entry for an unknown name, a parameter index out of range, or a shape or
  // dtype that does not match the parameter.
  void load_state(const OptimizerState& state);

 protected:
  struct ParamState {
    int64_t step = 0;                      // updates received so far
    std::map<std::string, Tensor> buffers;  // created on the first update
  };

  // Updates one parameter with its gradient; `state.step` is already counted
  // (1 on the first update).
  virtual void update(Tensor& param, const Tensor& grad, ParamState& state) = 0;
  // The buffer names this optimiser keeps per parameter (for load_state).
  virtual std::vector<std::string> buffer_names() const = 0;
  // For error messages: "SGD", "Adam", "AdamW".
  virtual std::string name() const = 0;

 private:
  std::vector<Tensor> params_;
  std::vector<ParamState> states_;
  double lr_;
};

// torch.optim.SGD: g = grad + weight_decay * param; with momentum,
// buf = momentum * buf + (1 - dampening) * g (buf = g on the first update) and
// g = nesterov ? g + momentum * buf : buf; then param -= lr * g.
class SGD final : public Optimizer {
 public:
  // Nesterov needs momentum > 0 and dampening 0 (as PyTorch).
  SGD(std::vector<Tensor> params, double lr, double momentum = 0, double dampening = 0,
      double weight_decay = 0, bool nesterov = false);

 protected:
  void update(Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;
  std::string name() const override { return "SGD"; }

 private:
  double momentum_, dampening_, weight_decay_;
  bool nesterov_;
};

// torch.optim.Adam: weight decay is an L2 term added to the gradient;
// m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// param -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0);

 protected:
  // For AdamW: decoupled weight decay.
  Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
       double weight_decay, bool decoupled);
  void update(Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;
  std::string name() const override { return "Adam"; }

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
};

// torch.optim.AdamW: Adam whose weight decay shrinks the parameter directly,
// param *= 1 - lr * weight_decay, before the moment update (Loshchilov & Hutter).
class AdamW final : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 1e-2);

 protected:
  std::string name() const override { return "AdamW"; }
};

// torch.optim.lr_scheduler.ReduceLROnPlateau with threshold_mode 'rel':
// a metric is an improvement when it beats the best by the relative
// `threshold`; after more than `patience` epochs without improvement the
// learning rate becomes max(lr * factor, min_lr) (changes smaller than 1e-8
// are skipped), followed by `cooldown` epochs in which bad epochs do not count.
// It adjusts the optimiser it was built with, which must outlive it.
class ReduceLROnPlateau {
 public:
  enum class Mode { min, max };  // min: lower is better (loss); max: accuracy

  // Throws std::invalid_argument unless 0 < factor < 1, patience >= 0,
  // threshold >= 0, cooldown >= 0, min_lr >= 0.
  ReduceLROnPlateau(Optimizer& optimizer, Mode mode = Mode::min, double factor = 0.1,
                    int64_t patience = 10, double threshold = 1e-4, int64_t cooldown = 0,
                    double min_lr = 0);

  // Records one epoch's metric; returns true when it lowered the learning rate.
  bool step(double metric);

  // Scheduler state for resumable training.
  struct State {
    double best;
    int64_t num_bad_epochs = 0;
    int64_t cooldown_counter = 0;
  };
  State state() const { return state_; }
  void load_state(const State& state) { state_ = state; }

 private:
  bool is_better(double metric) const;

  Optimizer& optimizer_;
  Mode mode_;
  double factor_, threshold_, min_lr_;
  int64_t patience_, cooldown_;
  State state_;
};

}  // namespace engine
