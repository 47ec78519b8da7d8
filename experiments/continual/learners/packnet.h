// PackNet (Mallya & Lazebnik 2018), the sub-network family: the tasks share
// one network without growing it, each owning a disjoint part of every conv
// and dense weight (the heads aside: each task has its own block, as naive).
//
// Task t trains the weights no earlier task owns (its free weights) with the
// earlier tasks' held fixed. Once its best weights are back it prunes, in each
// layer, the fraction --prune of its free weights of smallest magnitude (set
// to zero and left free for later tasks), retrains the rest for
// --retrain-epochs, and keeps them: they are task t's from then on. Task t's
// network is the weights of tasks 0..t (later tasks' are zero for it), so its
// accuracy cannot change after it (zero forgetting by construction).
//
// Biases and batch norm (affine parameters and running statistics) are not
// pruned: they train with task 0 and are frozen from task 1 on, as in the
// paper. Per-task copies would serve later tasks better but add parameters;
// frozen, they keep every earlier task's network bit-identical at no growth.
//
// Which task owns a weight is stored beside it, one value per weight
// ("packnet.owner.<weight>": 0 free, t+1 task t's) in float32 as the
// network's values are: counted as method values of task 0 (they never grow).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "experiments/continual/learners/wrapped_learner.h"
#include "layers/continual_model.h"

namespace continual {

class PackNet final : public WrappedLearner {
 public:
  // base: the naive method's learner; model: its network (continual_model(*base)).
  // prune in (0, 1), retrain_epochs >= 0 (std::invalid_argument naming the flag).
  PackNet(std::unique_ptr<Learner> base, layers::ContinualModel& model, double prune, int64_t retrain_epochs);

  // From task 1 on: freezes biases and batch norm, and trains only the free
  // conv and dense weights and the task's head block. Throws
  // std::runtime_error naming the task and the layer when a layer has no free
  // weight left.
  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override;
  // The network's growth (a head block per task), and for task 0 the owners.
  NewParams new_params(int64_t task) const override;
  // Through the weights of tasks 0..task only. For a task before the newest
  // this is evaluation only: it needs a NoGradGuard (std::logic_error else).
  engine::Tensor forward(const engine::Tensor& images, int64_t task, bool training) override;
  // Task t's network is masked to the weights of tasks 0..t: no single path
  // (the naive network it wraps would say otherwise).
  bool path_depends_on_task() const override { return true; }
  // Puts back every weight this phase of `task` does not train: the earlier
  // tasks' and, while retraining, the pruned ones.
  void after_step(int64_t task) override;
  // Gives task `task` the free weights it keeps (per layer), zeroes the
  // pruned ones; returns --retrain-epochs. Throws std::runtime_error naming
  // the task and the layer when pruning would leave it no weight of a layer.
  int64_t prune(int64_t task) override;
  // The network's tensors, then the owners.
  engine::NamedTensors state() override;
  // Task 0's part holds the owners too: with the kept files, the network of every task.
  engine::NamedTensors task_state(int64_t task) override;
  engine::NamedTensors method_state() override;  // packnet.owner.<weight>

 private:
  struct Masked {
    std::string name;       // the weight's name in the network's state
    engine::Tensor weight;  // aliased, on the network's device
    engine::Tensor owner;   // same shape, float32 on the CPU: 0 free, t+1 task t's
    engine::Tensor held;    // the weight's values at the start of this phase (CPU): what after_step puts back
  };
  // Copies every masked weight to `held` (the start of a training phase).
  void hold_weights();

  double prune_;
  int64_t retrain_epochs_;
  std::vector<Masked> masked_;
  int64_t newest_ = -1;    // the task begun last
  bool pruned_ = false;    // the newest task is pruned (retraining)
  int64_t owner_values_ = 0;
};

}  // namespace continual
