// Checkpoints of a cell in training, one .npz per cell under --out/checkpoints/,
// rewritten atomically after every epoch and after every finished task. It
// holds everything the training loop needs to go on as if never stopped:
//   "progress"   the loop's state as JSON text (uint8 bytes): task, epoch,
//                early-stopping counters, curves, accuracy rows, timings
//   "model.*"    every tensor of the model (parameters and buffers)
//   "best.*"     the best epoch's weights of the task in training
//   "optim.*"    the optimiser's state (engine::Optimizer::state())
// Since the batch order and augmentation are functions of (seed, epoch) and
// every initialisation draws from a generator seeded per task, resuming from
// this gives the same final numbers as an uninterrupted run.
#pragma once

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

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
// nullopt when there is no file. Tensors come back as CPU tensors.
// Throws std::runtime_error naming the file when it is damaged.
std::optional<Checkpoint> load_checkpoint(const std::filesystem::path& path);

}  // namespace continual
