// Learning without Forgetting (Li & Hoiem 2016), the distillation family: while
// task t trains, the network as it stood after task t-1 (the teacher, frozen)
// labels the new task's images for every old task, and the network is asked
// to keep those outputs: alpha * sum over old tasks j of the distillation loss
// between the two networks' logits of task j's classes at temperature T
// (engine::distillation). No old images are stored; the teacher is a copy of
// the network, held only while the next task trains.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "experiments/continual/learners/wrapped_learner.h"

namespace continual {

class Lwf final : public WrappedLearner {
 public:
  // make_network builds a fresh naive network (the same seed, so the same
  // structure after the same begin_task calls), whose path does not depend on
  // the task id; alpha >= 0, temperature > 0.
  Lwf(std::function<std::unique_ptr<Learner>()> make_network, double alpha, double temperature);

  // From task 1 on, first copies the network into the teacher.
  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override;
  engine::Tensor extra_loss(const engine::Tensor& images, const engine::Tensor& logits, int64_t task) override;
  // The network's tensors, then the teacher's as "lwf.teacher.<name>" (from
  // task 1 on), so that checkpoints resume with the same teacher.
  engine::NamedTensors state() override;

 private:
  std::function<std::unique_ptr<Learner>()> make_network_;
  double alpha_, temperature_;
  std::vector<std::vector<int64_t>> classes_;  // of each task begun
  std::unique_ptr<Learner> teacher_;           // tasks 0..t-1 while task t trains
};

}  // namespace continual
