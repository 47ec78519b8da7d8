// The protocol of one cell: the tasks in sequence; each trains until early
// stopping on its validation accuracy (patience in epochs, best weights
// restored) or the epoch limit; a method that prunes (PackNet) then prunes
// and retrains for the epochs it asks (Learner::prune); after each task every
// task seen so far is evaluated with its task id, giving one row of the
// accuracy matrix R.
//
// A checkpoint is written after every epoch and every finished task; with
// `resume` an unfinished cell continues from it to the same numbers. A NaN or
// infinite loss stops the cell with an error; the last good checkpoint stays.
//
// Data parallel (CellRun::communicator of P ranks): every rank runs the same
// loop on the same batches, rank r taking rows [n*r/P, n*(r+1)/P) of each;
// gradients are averaged before every step, so the parameters stay identical
// (checked at the start of the cell and after every epoch). Batch-norm running
// statistics, computed per rank, are taken from rank 0 before each evaluation.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "engine/distributed.h"
#include "experiments/continual/cell_result.h"
#include "experiments/continual/config.h"
#include "experiments/continual/learner.h"
#include "experiments/continual/task_data.h"

namespace continual {

struct CellRun {
  std::string method;      // the cell's label (Cell::label): names its files and its result
  uint64_t seed = 0;
  bool resume = false;     // continue from the cell's checkpoint when there is one
  std::ostream* log;       // progress display and messages
  bool terminal = false;   // progress bar (true) or plain lines
  // Data-parallel ranks (nullptr: one process). Each rank trains on its slice
  // of every batch with the gradients averaged; only rank 0 writes checkpoints.
  engine::Communicator* communicator = nullptr;
  // Builds a fresh learner as this cell's (same method and seed), never to be
  // trained: forward transfer's baseline, each task measured once it is begun.
  // Empty: forward transfer is not measured (n/a).
  std::function<std::unique_ptr<Learner>()> untrained = {};
};

// Trains `learner` (fresh, built for this cell) over every task of `data`.
// Checkpoints go to checkpoint_file(config.out, cell name) (run.cpp removes
// them once the cell has finished); each task's part of the final network
// stays in task_model_file(config.out, cell name, task number).
CellResult train_cell(const RunConfig& config, const TaskData& data, Learner& learner, const CellRun& run);

// Copies `source` into `target` (tensors of a learner, aliased), matched by
// name, after checking that every tensor of `target` is there with its shape
// and nothing else is; errors start with `what` (a file) and name the tensor.
void load_state(const engine::NamedTensors& target, const engine::NamedTensors& source, const std::string& what);

// Begins tasks 0..tasks-1 on a fresh `learner` and loads their kept model
// files (checkpoint.h's task_model_file) written by the cell `cell` in `out_dir`.
void restore_finished_tasks(Learner& learner, const TaskData& data, const std::filesystem::path& out_dir,
                            const std::string& cell, int64_t tasks);

// Accuracy through task `task`'s path on its images of the reported split
// (TaskData::eval_set): an entry of the accuracy matrix.
double task_accuracy(Learner& learner, const TaskData& data, int64_t task, engine::Device device);

// Class-incremental accuracy: the network evaluated without the task id.
struct ClassIncrementalAccuracy {
  // The argmax over every class seen (all head blocks); n/a where the path
  // depends on the task (Learner::path_depends_on_task), which leaves no
  // single network to take it over.
  std::optional<double> all_classes;
  // Task inference by the most confident task path (metrics.h's
  // predict_by_most_confident_path); for a shared path, the most confident head block.
  double task_inferred = 0;
};

// Correct predictions of one batch, added into a running count.
struct ClassIncrementalCount {
  int64_t images = 0, all_classes_correct = 0, task_inferred_correct = 0;
};
// images (N,C,H,W) on the network's device, labels (N) class-order
// positions; `tasks` tasks begun. One forward pass through each task's path,
// or a single one where the path is shared.
void count_class_incremental(Learner& learner, const engine::Tensor& images, const std::vector<int64_t>& labels,
                             int64_t tasks, ClassIncrementalCount& count);
// Over the reported split's images of every task of `data` (TaskData::eval_set),
// all of whose tasks the learner has begun.
ClassIncrementalAccuracy class_incremental_accuracy(Learner& learner, const TaskData& data, engine::Device device);

// A seed for one purpose of one task of a cell (initialisation, batch order),
// so that each task's randomness is independent of how the run got there.
uint64_t task_stream(uint64_t seed, uint64_t purpose, int64_t task);

}  // namespace continual
