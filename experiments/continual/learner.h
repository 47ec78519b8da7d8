// What the training loop needs from a method: a network that grows and
// freezes as tasks arrive. One Learner per cell (method x seed); methods.h
// builds it on layers::ContinualModel. The seam keeps the loop testable with
// small stand-in networks.
//
// Logits are in class-order positions: position p is the p-th class of the
// split's class order (task 0's classes first), so the network's shared head
// grows by one block per task; the loaders map labels to these positions
// (TaskData::label_positions). class_mask(task) allows only the task's classes
// (task-incremental learning: the task id is known at test time).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "datasets/loader.h"
#include "engine/npz.h"
#include "engine/tensor.h"

namespace continual {

// Parameters a task added to what is stored, by part of the network, and
// what a method stores besides the network.
struct NewParams {
  int64_t conv = 0;        // feature extractor: conv and batch-norm layers and their adapters
  int64_t classifier = 0;  // dense layers, their adapters and the heads
  int64_t method_values = 0;  // values kept alongside, stored as parameters are (EWC's Fisher and anchors)
  int64_t data_bytes = 0;     // data kept (replay's images, as the data set stores them)
  int64_t total() const { return conv + classifier; }
};

class Learner {
 public:
  virtual ~Learner() = default;

  // Prepares the network for the next task (heads, adapters, batch-norm
  // copies, freezing); tasks come in order 0, 1, ... and new weights are drawn
  // from the learner's own seeded generator, so replaying the same calls
  // rebuilds the same network. Returns the parameters that train on this task.
  virtual std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) = 0;
  // What begin_task(task) added to the stored parameters; for task 0 everything
  // that trains on it (for naive and joint, later tasks store nothing new but a head).
  virtual NewParams new_params(int64_t task) const = 0;

  // images (N,C,H,W) -> logits (N,K) through task `task`'s path, K the classes
  // of every task begun so far.
  virtual engine::Tensor forward(const engine::Tensor& images, int64_t task, bool training) = 0;
  // K entries (as forward's logits now), 1 for the classes of task `task`.
  virtual std::vector<uint8_t> class_mask(int64_t task) const = 0;
  // The mask of the training loss; joint training allows every class seen so far.
  virtual std::vector<uint8_t> training_mask(int64_t task) const { return class_mask(task); }
  // Joint training learns task t on the data of tasks 0..t.
  virtual bool trains_on_all_seen_tasks() const { return false; }
  // Whether forward(images, task) depends on `task` beyond which logits the
  // class mask keeps (adapters, branches, columns, masks of weights): then
  // there is no single network to take an argmax over every class without
  // the task id, and class-incremental accuracy needs task inference. True
  // unless a learner knows better: a wrong true costs T forward passes, a
  // wrong false a meaningless number.
  virtual bool path_depends_on_task() const { return true; }

  // Method hooks, called by the training loop; the defaults do nothing.
  // A term added to the task's loss on one training batch (a regulariser, a
  // distillation loss), or an undefined Tensor for none. images (N,C,H,W) on
  // the network's device; logits (N,K) are forward(images, task, true)'s.
  virtual engine::Tensor extra_loss([[maybe_unused]] const engine::Tensor& images,
                                    [[maybe_unused]] const engine::Tensor& logits, [[maybe_unused]] int64_t task) {
    return {};
  }
  // Called once task `task` has finished, its best weights in place and its
  // row of the accuracy matrix measured. `training_images` yields the task's
  // training images in a fixed order, without augmentation, labels in
  // class-order positions.
  virtual void end_task([[maybe_unused]] int64_t task, [[maybe_unused]] datasets::BatchLoader& training_images) {}
  // Called after every optimiser step of task `task` (its retraining too): a
  // method that freezes parts of a tensor (PackNet's earlier tasks' weights)
  // puts them back, whatever the optimiser's weight decay and moments did.
  virtual void after_step([[maybe_unused]] int64_t task) {}
  // Called once task `task` has its best weights back, before its row of the
  // accuracy matrix is measured: a method that prunes the network (PackNet)
  // does it here and returns the epochs the weights it keeps then retrain on
  // the task, with a fresh optimiser over begin_task's parameters; 0: none.
  virtual int64_t prune([[maybe_unused]] int64_t task) { return 0; }

  // Every tensor of the network (parameters and buffers such as running
  // statistics, and a method's own stored tensors such as EWC's Fisher),
  // aliased: writing into them changes the network.
  virtual engine::NamedTensors state() = 0;
  // What training the current task can change, aliased: the parameters
  // begin_task returned and the buffers of their layers (running statistics).
  // The rest of state() stays as the previous task left it, so a checkpoint
  // within a task needs only this.
  virtual engine::NamedTensors trained_state() = 0;
  // What begin_task(task) added to the network, aliased, with the network's
  // names: for task 0 the whole network as it then stood, for later tasks
  // their adapters, batch-norm copies, branches and head block. Together the
  // tasks' parts are state(); a task's part is what its kept model file holds.
  virtual engine::NamedTensors task_state(int64_t task) = 0;
  // What a method keeps besides the network and sets at the end of a task
  // (EWC's Fisher and anchors), aliased; part of state(). Checkpoints carry it
  // so that a resumed run has it without redoing end_task.
  virtual engine::NamedTensors method_state() { return {}; }
  // Counters of random layers (dropout), for checkpoints that resume bit-identically.
  virtual std::vector<std::pair<std::string, uint64_t>> counters() const = 0;
  virtual void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) = 0;
};

}  // namespace continual
