// Per-task parts of a task-incremental network.
//
// PerTask holds one replica of a layer per task and runs the current task's:
// batch norm copies for adapter methods, the replicated branch of SenaCNN and
// the per-task dense layers of finetune-fc. TaskHead holds one classifier block
// per task. In both, task 0's replica keeps the plain names (so a single-task
// model has PyTorch's state_dict names) and task t's is "<name>.tasks.<t>.*".
// A PerTask may instead keep its base apart: the base (a frozen backbone's
// layer) keeps the plain names and belongs to no task, and every task, task 0
// included, gets a replica "<name>.tasks.<t>.*" (adapters from the first task).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "layers/linear.h"
#include "layers/module.h"

namespace layers {

class PerTask final : public Module {
 public:
  enum class Base {
    first_task,  // `base` becomes task 0's replica (owned by task 0)
    kept_apart,  // `base` stays shared and unused in forward: only a source to copy
  };
  explicit PerTask(std::shared_ptr<Module> base, Base use = Base::first_task);

  // Adds the replica of task num_replicas(), owned by that task.
  void add_replica(std::shared_ptr<Module> replica);
  int64_t num_replicas() const { return static_cast<int64_t>(children().size()) - (kept_apart_ ? 1 : 0); }
  Module& replica(int64_t task) const;
  // The layer the PerTask was built around (task 0's replica unless kept apart).
  Module& base() const { return child(0); }

  // The current task's replica's forward, and its forward_relu where its
  // output is fresh (batch norm copies).
  Tensor forward(const Tensor& x) override;
  bool fresh_output() const override { return replica(task()).fresh_output(); }
  Tensor forward_relu(const Tensor& x) override { return replica(task()).forward_relu(x); }
  std::string type_name() const override { return "PerTask"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;

 private:
  PerTask() = default;  // for clone()
  std::string replica_name(int64_t task) const;

  bool kept_apart_ = false;
};

enum class HeadMode {
  per_task,  // one head per task: logits (N, classes of the task)
  shared,    // one head over all classes so far, other tasks' logits masked (the study's choice)
};

// The classification head of a task-incremental model. In shared mode it is
// one Linear over all classes whose rows are stored per task, so that task t's
// rows are trained (and frozen) on their own: logits = concat of every block's
// output, and class_mask(t) keeps only task t's classes in the softmax.
class TaskHead final : public Module {
 public:
  TaskHead(int64_t in_features, HeadMode mode);

  // Adds Linear(IN, classes) for task num_tasks(), owned by that task.
  // gen null: left uninitialised.
  Linear& add_task(int64_t classes, engine::Generator* gen);
  int64_t num_tasks() const { return static_cast<int64_t>(children().size()); }
  Linear& block(int64_t task) const;
  int64_t classes(int64_t task) const { return block(task).out_features(); }
  int64_t class_offset(int64_t task) const;  // first logit of the task (shared mode), else 0
  int64_t total_classes() const;
  // Shared mode: (total_classes) with 1 on the task's classes; per-task mode: empty (all).
  std::vector<uint8_t> class_mask(int64_t task) const;
  HeadMode mode() const { return mode_; }
  int64_t in_features() const { return in_; }

  // x (N,IN) -> per task: (N, classes(task)); shared: (N, total_classes)
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "TaskHead"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;

 private:
  int64_t in_;
  HeadMode mode_;
};

}  // namespace layers
