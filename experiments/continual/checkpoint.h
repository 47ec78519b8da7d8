// Checkpoints of a cell in training, under --out/checkpoints/, written
// atomically. Their size is bounded by what one task trains, not by the whole
// network: an epoch rewrites only the task's trained tensors.
//
// <cell>.npz, rewritten after every epoch and after every finished task:
//   "progress"   the loop's state as JSON text (uint8 bytes): task, epoch,
//                early-stopping counters, curves, accuracy rows, timings
//   "model.*"    what the task in training can change (Learner::trained_state:
//                its trainable parameters and the buffers); empty at a task boundary
//   "best.*"     the same tensors as they were after the best epoch so far
//   "optim.*"    the optimiser's state (engine::Optimizer::state())
// --out/models/<cell>/task-N.npz, written when task N (1-based) has finished:
//   task N's part of the network (Learner::task_state), PyTorch state_dict
//   names; an earlier task's file is rewritten only when this task trained
//   some of its tensors (the shared network under naive and joint). These
//   files are the cell's kept model; a resume rebuilds the finished tasks,
//   loads their files, begins the task in training and loads "model.*".
// Since the batch order and augmentation are functions of (seed, epoch) and
// every initialisation draws from a generator seeded per task, resuming from
// these gives the same final numbers as an uninterrupted run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/npz.h"

namespace continual {

struct Checkpoint {
  nlohmann::json progress;
  engine::NamedTensors model;
  engine::NamedTensors best;
  engine::NamedTensors optimizer;
};

std::filesystem::path checkpoint_file(const std::filesystem::path& out_dir, const std::string& cell);
// The kept model of a cell: one file per task, task_number counted from 1.
std::filesystem::path model_dir(const std::filesystem::path& out_dir, const std::string& cell);
std::filesystem::path task_model_file(const std::filesystem::path& out_dir, const std::string& cell,
                                      int64_t task_number);

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
// nullopt when there is no file. Tensors come back as CPU tensors.
// Throws std::runtime_error naming the file when it is damaged.
std::optional<Checkpoint> load_checkpoint(const std::filesystem::path& path);

}  // namespace continual
