#include "experiments/continual/learners/ewc.h"

#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace continual {

using engine::Tensor;

Tensor ewc_penalty(const std::vector<Tensor>& params, const std::vector<Tensor>& fisher,
                   const std::vector<Tensor>& anchors, double lambda) {
  if (params.empty() || fisher.size() != params.size() || anchors.size() != params.size())
    throw std::invalid_argument("ewc_penalty: " + std::to_string(params.size()) + " parameters, " +
                                std::to_string(fisher.size()) + " Fisher tensors, " +
                                std::to_string(anchors.size()) + " anchors");
  Tensor total;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor moved = engine::sub(params[i], anchors[i]);
    const Tensor term = engine::sum(engine::mul(fisher[i], engine::mul(moved, moved)));
    total = total.defined() ? engine::add(total, term) : term;
  }
  return engine::mul_scalar(total, lambda / 2);
}

Ewc::Ewc(std::unique_ptr<Learner> base, double lambda, double gamma)
    : WrappedLearner(std::move(base)), lambda_(lambda), gamma_(gamma) {
  if (!(lambda >= 0)) throw std::invalid_argument("--ewc-lambda: must be >= 0");
  if (!(gamma >= 0 && gamma <= 1)) throw std::invalid_argument("--ewc-gamma: must lie in [0, 1]");
}

std::vector<Tensor> Ewc::begin_task(int64_t task, const std::vector<int64_t>& classes) {
  std::vector<Tensor> trainable = base().begin_task(task, classes);
  const engine::NamedTensors named = base().state();
  int64_t added = 0;
  for (const Tensor& p : trainable) {
    bool known = false;
    for (const Tracked& t : tracked_) known = known || t.param.same_storage(p);
    if (known) continue;
    std::string name;
    for (const auto& [n, t] : named)
      if (t.same_storage(p)) name = n;
    if (name.empty()) throw std::logic_error("ewc: a trainable parameter is not in the network's state");
    tracked_.push_back({name, p, Tensor::zeros(p.shape(), p.dtype(), p.device()),
                        Tensor::zeros(p.shape(), p.dtype(), p.device())});
    added += 2 * p.numel();
  }
  values_added_.push_back(added);
  return trainable;
}

NewParams Ewc::new_params(int64_t task) const {
  NewParams p = base().new_params(task);
  p.method_values = values_added_.at(static_cast<size_t>(task));
  return p;
}

Tensor Ewc::extra_loss([[maybe_unused]] const Tensor& images, [[maybe_unused]] const Tensor& logits, int64_t task) {
  if (task == 0 || lambda_ == 0) return {};
  std::vector<Tensor> params, fisher, anchors;
  for (const Tracked& t : tracked_) {
    params.push_back(t.param);
    fisher.push_back(t.fisher);
    anchors.push_back(t.anchor);
  }
  return ewc_penalty(params, fisher, anchors, lambda_);
}

void Ewc::end_task(int64_t task, datasets::BatchLoader& training_images) {
  // Sums of squared per-image gradients, in the parameters' dtype and device.
  std::vector<Tensor> sums;
  for (const Tracked& t : tracked_) sums.push_back(Tensor::zeros(t.param.shape(), t.param.dtype(), t.param.device()));
  const std::vector<uint8_t> mask = class_mask(task);
  int64_t images = 0;
  training_images.start_epoch(0);
  while (std::optional<datasets::Batch> batch = training_images.next()) {
    const Tensor on_device = batch->images.to(tracked_.front().param.device());
    for (int64_t i = 0; i < static_cast<int64_t>(batch->labels.size()); ++i) {
      for (Tracked& t : tracked_) t.param.zero_grad();
      const Tensor logits = forward(engine::slice(on_device, 0, i, i + 1), task, false);
      const int64_t label = batch->labels[static_cast<size_t>(i)];
      engine::cross_entropy(logits, std::span<const int64_t>(&label, 1), mask).backward();
      engine::NoGradGuard no_grad;
      for (size_t k = 0; k < tracked_.size(); ++k) {
        const Tensor g = tracked_[k].param.grad();
        if (g.defined()) sums[k] = engine::add(sums[k], engine::mul(g, g));
      }
      ++images;
    }
  }
  if (images == 0) throw std::runtime_error("ewc: task " + std::to_string(task + 1) + " has no training images");
  engine::NoGradGuard no_grad;
  for (size_t k = 0; k < tracked_.size(); ++k) {
    Tracked& t = tracked_[k];
    t.param.zero_grad();
    const Tensor task_fisher = engine::mul_scalar(sums[k], 1.0 / static_cast<double>(images));
    t.fisher.copy_(engine::add(engine::mul_scalar(t.fisher, gamma_), task_fisher));
    t.anchor.copy_(t.param);
  }
}

engine::NamedTensors Ewc::state() {
  engine::NamedTensors all = base().state();
  for (auto& entry : method_state()) all.push_back(std::move(entry));
  return all;
}

engine::NamedTensors Ewc::trained_state() {
  engine::NamedTensors all = base().trained_state();
  for (auto& entry : method_state()) all.push_back(std::move(entry));
  return all;
}

engine::NamedTensors Ewc::method_state() {
  engine::NamedTensors mine;
  for (const Tracked& t : tracked_) mine.push_back({"ewc.fisher." + t.name, t.fisher});
  for (const Tracked& t : tracked_) mine.push_back({"ewc.anchor." + t.name, t.anchor});
  return mine;
}

}  // namespace continual
