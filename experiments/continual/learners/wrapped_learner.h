// A Learner that adds a method on top of another (EWC and LwF on the naive
// network): every call goes to the wrapped learner unless the method
// overrides it.
#pragma once

#include <memory>
#include <utility>

#include "experiments/continual/learner.h"

namespace continual {

class WrappedLearner : public Learner {
 public:
  explicit WrappedLearner(std::unique_ptr<Learner> base) : base_(std::move(base)) {}

  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override {
    return base_->begin_task(task, classes);
  }
  NewParams new_params(int64_t task) const override { return base_->new_params(task); }
  engine::Tensor forward(const engine::Tensor& images, int64_t task, bool training) override {
    return base_->forward(images, task, training);
  }
  std::vector<uint8_t> class_mask(int64_t task) const override { return base_->class_mask(task); }
  std::vector<uint8_t> training_mask(int64_t task) const override { return base_->training_mask(task); }
  bool trains_on_all_seen_tasks() const override { return base_->trains_on_all_seen_tasks(); }
  bool path_depends_on_task() const override { return base_->path_depends_on_task(); }
  engine::Tensor extra_loss(const engine::Tensor& images, const engine::Tensor& logits, int64_t task) override {
    return base_->extra_loss(images, logits, task);
  }
  void end_task(int64_t task, datasets::BatchLoader& training_images) override {
    base_->end_task(task, training_images);
  }
  void after_step(int64_t task) override { base_->after_step(task); }
  int64_t prune(int64_t task) override { return base_->prune(task); }
  engine::NamedTensors state() override { return base_->state(); }
  engine::NamedTensors trained_state() override { return base_->trained_state(); }
  engine::NamedTensors task_state(int64_t task) override { return base_->task_state(task); }
  engine::NamedTensors method_state() override { return base_->method_state(); }
  std::vector<std::pair<std::string, uint64_t>> counters() const override { return base_->counters(); }
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) override {
    base_->load_counters(counters);
  }

  // The learner this one adds its method to.
  Learner& base() { return *base_; }
  const Learner& base() const { return *base_; }

 private:
  std::unique_ptr<Learner> base_;
};

}  // namespace continual
