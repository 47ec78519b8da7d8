#include "layers/per_task.h"

#include <stdexcept>

#include "engine/ops.h"

namespace layers {

namespace {
// Task 0 lends its tensors the plain names; later tasks get "tasks.<t>".
std::string task_name(int64_t task) { return task == 0 ? "" : "tasks." + std::to_string(task); }
}  // namespace

// ---- PerTask ------------------------------------------------------------------

PerTask::PerTask(std::shared_ptr<Module> base, Base use) : kept_apart_(use == Base::kept_apart) {
  if (!kept_apart_) base->set_owner_task(0);
  register_module("", std::move(base));
}

// With the base kept apart, the plain names are the base's and every task's replica is "tasks.<t>".
std::string PerTask::replica_name(int64_t task) const {
  return kept_apart_ ? "tasks." + std::to_string(task) : task_name(task);
}

void PerTask::add_replica(std::shared_ptr<Module> replica) {
  const int64_t task = num_replicas();
  replica->set_owner_task(task);
  register_module(replica_name(task), std::move(replica));
}

Module& PerTask::replica(int64_t task) const {
  if (task < 0 || task >= num_replicas())
    throw std::out_of_range("PerTask: no replica for task " + std::to_string(task) + " (have " +
                            std::to_string(num_replicas()) + ") of " + child(0).describe());
  return child(static_cast<size_t>(task + (kept_apart_ ? 1 : 0)));
}

Tensor PerTask::forward(const Tensor& x) { return replica(task()).forward(x); }

std::string PerTask::describe() const {
  return "PerTask(" + child(0).describe() + ", tasks=" + std::to_string(num_replicas()) +
         (kept_apart_ ? ", base kept apart)" : ")");
}

std::shared_ptr<Module> PerTask::clone() const {
  std::shared_ptr<PerTask> shell(new PerTask());
  shell->kept_apart_ = kept_apart_;
  return finish_clone(shell);
}

// ---- TaskHead -------------------------------------------------------------------

TaskHead::TaskHead(int64_t in_features, HeadMode mode) : in_(in_features), mode_(mode) {
  if (in_features <= 0)
    throw std::invalid_argument("TaskHead: in_features must be positive, got " + std::to_string(in_features));
}

Linear& TaskHead::add_task(int64_t classes, engine::Generator* gen) {
  if (classes <= 0)
    throw std::invalid_argument("TaskHead::add_task: classes must be positive, got " + std::to_string(classes));
  const int64_t task = num_tasks();
  auto linear = std::make_shared<Linear>(in_, classes, true, gen);
  linear->set_owner_task(task);
  register_module(task_name(task), linear);
  return *linear;
}

Linear& TaskHead::block(int64_t task) const {
  if (task < 0 || task >= num_tasks())
    throw std::out_of_range("TaskHead: no block for task " + std::to_string(task) + " (the model has " +
                            std::to_string(num_tasks()) + " tasks; call add_task first)");
  return static_cast<Linear&>(child(static_cast<size_t>(task)));
}

int64_t TaskHead::class_offset(int64_t task) const {
  block(task);  // checks the task
  if (mode_ == HeadMode::per_task) return 0;
  int64_t offset = 0;
  for (int64_t t = 0; t < task; ++t) offset += classes(t);
  return offset;
}

int64_t TaskHead::total_classes() const {
  int64_t total = 0;
  for (int64_t t = 0; t < num_tasks(); ++t) total += classes(t);
  return total;
}

std::vector<uint8_t> TaskHead::class_mask(int64_t task) const {
  if (mode_ == HeadMode::per_task) {
    block(task);
    return {};
  }
  std::vector<uint8_t> mask(static_cast<size_t>(total_classes()), 0);
  const int64_t offset = class_offset(task);
  for (int64_t k = 0; k < classes(task); ++k) mask[static_cast<size_t>(offset + k)] = 1;
  return mask;
}

// x (N,IN) -> (N,classes(task)) or (N,total_classes)
Tensor TaskHead::forward(const Tensor& x) {
  if (mode_ == HeadMode::per_task) return block(task()).forward(x);
  block(task());  // the current task must exist
  std::vector<Tensor> logits;
  for (int64_t t = 0; t < num_tasks(); ++t) logits.push_back(block(t).forward(x));
  return logits.size() == 1 ? logits[0] : engine::concat(logits, 1);
}

std::string TaskHead::describe() const {
  std::string s = "TaskHead(in_features=" + std::to_string(in_) +
                  (mode_ == HeadMode::shared ? ", shared" : ", per_task") + ", classes=[";
  for (int64_t t = 0; t < num_tasks(); ++t) s += (t ? ", " : "") + std::to_string(classes(t));
  return s + "])";
}

std::shared_ptr<Module> TaskHead::clone() const { return finish_clone(std::make_shared<TaskHead>(in_, mode_)); }

}  // namespace layers
