// Progressive Neural Networks (Rusu et al. 2016), the dynamic-network family:
// every task gets a new column of the network, --pnn-width times as wide,
// with lateral connections from the frozen columns of the earlier tasks
// (layers/progressive.h has the exact form). Nothing learnt is ever changed
// (zero forgetting by construction); the price is growth: a column and its
// laterals per task, the laterals growing with the number of earlier columns.
//
// The logits are the shared head's (learner.h): column t's output layer is
// task t's block, other tasks' logits masked.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "experiments/continual/learner.h"
#include "layers/progressive.h"

namespace continual {

class Pnn final : public Learner {
 public:
  // layout: the plain network (make_model) every column copies, its values
  // unused; width > 0 scales the columns (layers::ProgressiveNetwork throws
  // std::invalid_argument for a layout or width it cannot build); columns
  // and laterals are drawn from a generator seeded with `seed`.
  Pnn(const layers::Module& layout, double width, uint64_t seed, engine::Device device);

  // Freezes the earlier columns, adds task `task`'s column and laterals and
  // returns their parameters.
  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override;
  // The column (conv and batch-norm layers, the 1x1 conv laterals: conv;
  // dense layers, head and dense laterals: classifier).
  NewParams new_params(int64_t task) const override;
  // Every column runs (task only picks the mask); the newest trains, the
  // earlier ones run in evaluation mode.
  engine::Tensor forward(const engine::Tensor& images, int64_t task, bool training) override;
  std::vector<uint8_t> class_mask(int64_t task) const override;

  engine::NamedTensors state() override { return network_->state_dict(); }
  // The newest column's part: all that trains on its task.
  engine::NamedTensors trained_state() override;
  // "column<t>.*": column t with its batch-norm statistics and its laterals.
  engine::NamedTensors task_state(int64_t task) override;
  std::vector<std::pair<std::string, uint64_t>> counters() const override { return network_->named_counters(); }
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) override {
    network_->load_counters(counters);
  }

  layers::ProgressiveNetwork& network() { return *network_; }

 private:
  std::shared_ptr<layers::ProgressiveNetwork> network_;
  engine::Generator gen_;
  engine::Device device_;
  std::vector<NewParams> new_params_;
};

}  // namespace continual
