// Online EWC (Schwarz et al. 2018, "Progress & Compress"), the regularisation
// family: after each task a diagonal Fisher F estimates how much each weight
// mattered; later tasks pay (lambda / 2) * sum F (theta - theta*)^2 for moving
// the weights away from theta*, their values at the end of the last task.
// Online: F <- gamma F + F_task, one running Fisher and one anchor, so the
// stored state does not grow with the number of tasks.
//
// F_task is the empirical Fisher of the task's training images: the mean over
// images of the squared gradient of each image's own loss (cross-entropy on
// its label, within the task's classes), taken in evaluation mode (batch norm
// on running statistics, no dropout) because one image makes no batch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "experiments/continual/learners/wrapped_learner.h"

namespace continual {

// (lambda / 2) * sum over i of sum(fisher[i] * (params[i] - anchors[i])^2) -> shape {}.
// The three lists are parallel, each tensor of the same shape as its parameter.
engine::Tensor ewc_penalty(const std::vector<engine::Tensor>& params, const std::vector<engine::Tensor>& fisher,
                           const std::vector<engine::Tensor>& anchors, double lambda);

class Ewc final : public WrappedLearner {
 public:
  // base: the network to regularise (the naive method's); lambda >= 0, gamma in [0, 1].
  Ewc(std::unique_ptr<Learner> base, double lambda, double gamma);

  // Tracks every parameter that trains, with F = 0 until a task has ended.
  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override;
  // The network's growth, and a Fisher value and an anchor per newly tracked weight.
  NewParams new_params(int64_t task) const override;
  // The penalty from task 1 on (task 0 has nothing to keep).
  engine::Tensor extra_loss(const engine::Tensor& images, const engine::Tensor& logits, int64_t task) override;
  // F <- gamma F + F_task and theta* <- theta.
  void end_task(int64_t task, datasets::BatchLoader& training_images) override;
  // The network's tensors, then "ewc.fisher.<name>" and "ewc.anchor.<name>"
  // for every tracked parameter, so checkpoints resume with them.
  engine::NamedTensors state() override;
  // The network's trained tensors and the Fisher and anchors: constant while a
  // task trains, but a mid-task checkpoint must carry them.
  engine::NamedTensors trained_state() override;
  engine::NamedTensors method_state() override;  // ewc.fisher.<name>, ewc.anchor.<name>

 private:
  struct Tracked {
    std::string name;      // the parameter's name in the network's state
    engine::Tensor param;  // aliased
    engine::Tensor fisher;
    engine::Tensor anchor;
  };
  double lambda_, gamma_;
  std::vector<Tracked> tracked_;
  std::vector<int64_t> values_added_;  // per task begun: Fisher and anchor values
};

}  // namespace continual
