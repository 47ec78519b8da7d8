// Experience replay, the rehearsal family: a memory of at most `capacity`
// training images of the tasks seen so far, class-balanced (each class gets
// capacity / classes-seen slots, the first classes one more for the
// remainder), each class's slots filled by reservoir sampling over its
// training images in data-set order with a generator seeded by the seed and
// the class. While task t trains, every batch of n new images is joined by
// min(n, memory size) images drawn from memory without replacement; their loss
// (each image's cross-entropy within its own task's classes, mean over the
// drawn images) is added to the task's.
//
// The memory after task t is a function of the data, the capacity and the
// seed only, so it is rebuilt, not stored, when a checkpoint resumes; the
// draws are numbered by a counter that checkpoints carry. It holds training
// images only (never validation or test ones): task.train indices.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "experiments/continual/learners/wrapped_learner.h"
#include "experiments/continual/task_data.h"

namespace continual {

// The memory's training-set indices after tasks 0..tasks_seen-1, grouped by
// class in class order, each class's in reservoir slot order.
std::vector<int64_t> fill_replay_memory(const TaskData& data, int64_t tasks_seen, int64_t capacity, uint64_t seed);

class Replay final : public WrappedLearner {
 public:
  // base: the naive network, whose path does not depend on the task id;
  // capacity >= 0 images; `data` must outlive the learner.
  Replay(std::unique_ptr<Learner> base, const TaskData& data, int64_t capacity, uint64_t seed);

  // Refills the memory with tasks 0..task-1.
  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override;
  // The network's growth, and the memory's growth in bytes.
  NewParams new_params(int64_t task) const override;
  engine::Tensor extra_loss(const engine::Tensor& images, const engine::Tensor& logits, int64_t task) override;
  // The network's counters and "replay.draws".
  std::vector<std::pair<std::string, uint64_t>> counters() const override;
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) override;

  const std::vector<int64_t>& memory() const { return memory_; }
  // What the memory stores: its images as the data set holds them (bytes).
  int64_t memory_bytes() const;

 private:
  const TaskData& data_;
  int64_t capacity_;
  uint64_t seed_;
  std::vector<int64_t> memory_;
  std::vector<int64_t> memory_task_;  // the task of each memory image
  engine::Tensor memory_images_;      // (M,C,H,W) float32 on the CPU, normalised as training batches
  std::vector<int64_t> memory_positions_;  // (M) class-order positions
  uint64_t draws_ = 0;
  std::vector<int64_t> memory_bytes_;  // per task begun: the memory it trains with
};

}  // namespace continual
