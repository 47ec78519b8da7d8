#include "experiments/continual/learners/lwf.h"

#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace continual {

using engine::Tensor;

Lwf::Lwf(std::function<std::unique_ptr<Learner>()> make_network, double alpha, double temperature)
    : WrappedLearner(make_network()), make_network_(std::move(make_network)), alpha_(alpha), temperature_(temperature) {
  if (!(alpha >= 0)) throw std::invalid_argument("--lwf-alpha: must be >= 0");
  if (!(temperature > 0)) throw std::invalid_argument("--lwf-temperature: must be positive");
}

std::vector<Tensor> Lwf::begin_task(int64_t task, const std::vector<int64_t>& classes) {
  if (task > 0) {
    // The teacher: the same structure (tasks 0..task-1), the network's current values.
    teacher_ = make_network_();
    for (int64_t j = 0; j < task; ++j) teacher_->begin_task(j, classes_[static_cast<size_t>(j)]);
    engine::NoGradGuard no_grad;
    const engine::NamedTensors from = base().state();
    engine::NamedTensors to = teacher_->state();
    if (from.size() != to.size()) throw std::logic_error("lwf: the teacher's structure differs from the network's");
    for (size_t i = 0; i < from.size(); ++i) to[i].second.copy_(from[i].second);
  }
  classes_.push_back(classes);
  return base().begin_task(task, classes);
}

Tensor Lwf::extra_loss([[maybe_unused]] const Tensor& images, const Tensor& logits, int64_t task) {
  if (task == 0 || alpha_ == 0) return {};
  // The naive network's path does not depend on the task id, so one teacher
  // forward serves every old task; its logits are the first K_old positions of
  // the network's (class order, task 0 first).
  Tensor teacher_logits;
  {
    engine::NoGradGuard no_grad;
    teacher_logits = teacher_->forward(images, task - 1, false);
  }
  const Tensor old_logits = engine::slice(logits, 1, 0, teacher_logits.dim(1));
  Tensor total;
  for (int64_t j = 0; j < task; ++j) {
    const Tensor term = engine::distillation(old_logits, teacher_logits, teacher_->class_mask(j), temperature_);
    total = total.defined() ? engine::add(total, term) : term;
  }
  return engine::mul_scalar(total, alpha_);
}

engine::NamedTensors Lwf::state() {
  engine::NamedTensors all = base().state();
  if (teacher_)
    for (const auto& [name, t] : teacher_->state()) all.push_back({"lwf.teacher." + name, t});
  return all;
}

}  // namespace continual
