#include "engine/optim.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/backend.h"

namespace engine {

namespace {

void require(bool condition, const std::string& what, const std::string& message) {
  if (!condition) throw std::invalid_argument(what + ": " + message);
}

// The buffer `name` of a parameter's state, created as zeros on first use.
Tensor& buffer(std::map<std::string, Tensor>& buffers, const std::string& name,
               const Tensor& param) {
  Tensor& b = buffers[name];
  if (!b.defined()) b = Tensor::zeros(param.shape(), param.dtype(), param.device());
  return b;
}

// "param.<i>.<rest>" -> (i, rest); false for any other form.
bool parse_param_entry(const std::string& name, size_t& index, std::string& rest) {
  const std::string prefix = "param.";
  if (name.rfind(prefix, 0) != 0) return false;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return false;
  const std::string digits = name.substr(prefix.size(), dot - prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return false;
  index = std::stoull(digits);
  rest = name.substr(dot + 1);
  return true;
}

}  // namespace

// ---- Optimizer -------------------------------------------------------------------

Optimizer::Optimizer(std::vector<Tensor> params, double lr)
    : params_(std::move(params)), states_(params_.size()), lr_(lr) {
  require(!params_.empty(), "optimizer", "empty parameter list");
  for (size_t i = 0; i < params_.size(); ++i) {
    require(params_[i].defined(), "optimizer", "parameter " + std::to_string(i) + " is undefined");
    require(params_[i].requires_grad(), "optimizer",
            "parameter " + std::to_string(i) + " " + to_string(params_[i].shape()) +
                " does not require grad");
  }
  set_lr(lr);
}

void Optimizer::set_lr(double lr) {
  require(lr >= 0, "optimizer", "learning rate must be >= 0, got " + std::to_string(lr));
  lr_ = lr;
}

void Optimizer::step() {
  NoGradGuard no_grad;  // updates are not part of any graph
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor grad = params_[i].grad();
    if (!grad.defined()) continue;  // no gradient this step: frozen or unused
    ++states_[i].step;
    update(params_[i], grad, states_[i]);
    params_[i].bump_version("an optimiser step");
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

OptimizerState Optimizer::state() const {
  OptimizerState out;
  out.emplace_back("lr", Tensor::full({}, lr_, DType::f64));
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string prefix = "param." + std::to_string(i) + ".";
    if (states_[i].step > 0)
      out.emplace_back(prefix + "step",
                       Tensor::full({}, static_cast<double>(states_[i].step), DType::f64));
    for (const auto& [name, tensor] : states_[i].buffers) out.emplace_back(prefix + name, tensor);
  }
  return out;
}

void Optimizer::load_state(const OptimizerState& state) {
  const std::string what = name() + " load_state";
  const std::vector<std::string> names = buffer_names();
  std::vector<ParamState> loaded(params_.size());
  double lr = lr_;
  for (const auto& [entry, value] : state) {
    require(value.defined(), what, "entry '" + entry + "' is undefined");
    if (entry == "lr") {
      require(value.numel() == 1, what, "entry 'lr' must have one element, got " + to_string(value.shape()));
      lr = value.item();
      continue;
    }
    size_t index = 0;
    std::string field;
    require(parse_param_entry(entry, index, field), what, "unknown entry '" + entry + "'");
    require(index < params_.size(), what,
            "entry '" + entry + "' names parameter " + std::to_string(index) + " of " +
                std::to_string(params_.size()));
    const Tensor& param = params_[index];
    if (field == "step") {
      const double step = value.numel() == 1 ? value.item() : -1;
      require(step >= 0 && step == std::floor(step), what,
              "entry '" + entry + "' must be one non-negative integer");
      loaded[index].step = static_cast<int64_t>(step);
      continue;
    }
    require(std::find(names.begin(), names.end(), field) != names.end(), what,
            "unknown entry '" + entry + "'");
    require(value.shape() == param.shape() && value.dtype() == param.dtype(), what,
            "entry '" + entry + "' is " + to_string(value.dtype()) + " " +
                to_string(value.shape()) + " but parameter " + std::to_string(index) + " is " +
                to_string(param.dtype()) + " " + to_string(param.shape()));
    // A private copy on the parameter's device: the caller's tensors stay untouched.
    loaded[index].buffers[field] =
        value.device() == param.device() ? value.clone() : value.to(param.device());
  }
  set_lr(lr);
  states_ = std::move(loaded);
}

// ---- SGD ------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov)
    : Optimizer(std::move(params), lr),
      momentum_(momentum),
      dampening_(dampening),
      weight_decay_(weight_decay),
      nesterov_(nesterov) {
  require(momentum >= 0, "SGD", "momentum must be >= 0, got " + std::to_string(momentum));
  require(weight_decay >= 0, "SGD", "weight_decay must be >= 0, got " + std::to_string(weight_decay));
  require(!nesterov || (momentum > 0 && dampening == 0), "SGD",
          "nesterov needs momentum > 0 and dampening 0");
}

void SGD::update(Tensor& param, const Tensor& grad, ParamState& state) {
  // No buffer yet means first update: the kernel seeds it with the gradient.
  Tensor momentum_buffer;
  bool first = false;
  if (momentum_ != 0) {
    first = !state.buffers.contains("momentum_buffer");
    momentum_buffer = buffer(state.buffers, "momentum_buffer", param);
  }
  dispatch_dtype(param.dtype(), [&]<class T>() {
    backend(param.device()).kernels<T>().sgd_step(
        param.numel(), param.data<T>(), grad.data<T>(),
        momentum_buffer.defined() ? momentum_buffer.data<T>() : nullptr, static_cast<T>(lr()),
        static_cast<T>(momentum_), static_cast<T>(dampening_), static_cast<T>(weight_decay_),
        nesterov_, first);
  });
}

std::vector<std::string> SGD::buffer_names() const { return {"momentum_buffer"}; }

// ---- Adam / AdamW -------------------------------------------------------------------

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, /*decoupled=*/false) {}

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool decoupled)
    : Optimizer(std::move(params), lr),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_(decoupled) {
  const std::string what = decoupled ? "AdamW" : "Adam";
  require(beta1 >= 0 && beta1 < 1, what, "beta1 must be in [0, 1), got " + std::to_string(beta1));
  require(beta2 >= 0 && beta2 < 1, what, "beta2 must be in [0, 1), got " + std::to_string(beta2));
  require(eps >= 0, what, "eps must be >= 0, got " + std::to_string(eps));
  require(weight_decay >= 0, what, "weight_decay must be >= 0, got " + std::to_string(weight_decay));
}

void Adam::update(Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor& exp_avg = buffer(state.buffers, "exp_avg", param);
  Tensor& exp_avg_sq = buffer(state.buffers, "exp_avg_sq", param);
  dispatch_dtype(param.dtype(), [&]<class T>() {
    backend(param.device()).kernels<T>().adam_step(
        param.numel(), param.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(),
        static_cast<T>(lr()), static_cast<T>(beta1_), static_cast<T>(beta2_),
        static_cast<T>(eps_), static_cast<T>(weight_decay_), decoupled_, state.step);
  });
}

std::vector<std::string> Adam::buffer_names() const { return {"exp_avg", "exp_avg_sq"}; }

AdamW::AdamW(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps,
             double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, /*decoupled=*/true) {}

// ---- ReduceLROnPlateau ----------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, Mode mode, double factor,
                                     int64_t patience, double threshold, int64_t cooldown,
                                     double min_lr)
    : optimizer_(optimizer),
      mode_(mode),
      factor_(factor),
      threshold_(threshold),
      min_lr_(min_lr),
      patience_(patience),
      cooldown_(cooldown) {
  const std::string what = "ReduceLROnPlateau";
  require(factor > 0 && factor < 1, what, "factor must be in (0, 1), got " + std::to_string(factor));
  require(patience >= 0, what, "patience must be >= 0, got " + std::to_string(patience));
  require(threshold >= 0, what, "threshold must be >= 0, got " + std::to_string(threshold));
  require(cooldown >= 0, what, "cooldown must be >= 0, got " + std::to_string(cooldown));
  require(min_lr >= 0, what, "min_lr must be >= 0, got " + std::to_string(min_lr));
  state_.best = mode == Mode::min ? std::numeric_limits<double>::infinity()
                                  : -std::numeric_limits<double>::infinity();
}

bool ReduceLROnPlateau::is_better(double metric) const {
  if (mode_ == Mode::min) return metric < state_.best * (1 - threshold_);
  return metric > state_.best * (1 + threshold_);
}

bool ReduceLROnPlateau::step(double metric) {
  if (is_better(metric)) {
    state_.best = metric;
    state_.num_bad_epochs = 0;
  } else {
    ++state_.num_bad_epochs;  // NaN lands here too: it never improves
  }
  if (state_.cooldown_counter > 0) {
    --state_.cooldown_counter;
    state_.num_bad_epochs = 0;  // bad epochs during cooldown do not count
  }
  if (state_.num_bad_epochs <= patience_) return false;
  state_.cooldown_counter = cooldown_;
  state_.num_bad_epochs = 0;
  const double old_lr = optimizer_.lr();
  const double new_lr = std::max(old_lr * factor_, min_lr_);
  // PyTorch's eps: changes this small are not worth making.
  if (old_lr - new_lr <= 1e-8) return false;
  optimizer_.set_lr(new_lr);
  return true;
}

}  // namespace engine
