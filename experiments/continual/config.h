// Everything a run of `continual` is configured with, its command-line flags,
// and the two JSON views of it: the full configuration (results.json) and the
// setting, the part that decides the numbers a cell produces (so that cells of
// different settings are never mixed in one --out).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace continual {

struct RunConfig {
  // Data and tasks.
  std::string dataset = "fashion-mnist";
  std::filesystem::path data_dir;  // empty: the data set's default
  int64_t tasks = 5;
  int64_t first_task_classes = 0;  // 0: all tasks equal
  std::string class_order;         // "": the benchmark's order; "shuffle"; or "3,1,4,..."
  uint64_t split_seed = 0;         // class shuffle and validation split
  double validation_fraction = 0.1;
  int64_t train_limit = 2000;  // images per task for training (0: all); the default keeps the main run short
  int64_t eval_limit = 0;   // images per task for validation and test (0: all)
  std::string augment = "auto";  // auto (on for RGB data), on, off
  int64_t image_size = 32;       // folder data sets: images resized to this

  // Network and methods.
  std::string arch = "sena32";
  std::vector<std::string> methods = {"naive", "lora", "sena"};
  int64_t rank = 4;      // adapter rank of conv layers
  int64_t rank_fc = 8;   // adapter rank of dense layers
  double alpha = 8.0;    // adapter scaling = alpha / rank: 2 for conv at rank 4, 1 for dense at rank 8
  std::string adapt = "all";  // which layers get adapters (layers::parse_adapt)
  std::filesystem::path init;     // .npz backbone to start from

  // Methods of the other families of forgetting solutions (experiments/continual/learners/).
  double ewc_lambda = 1000;      // ewc: strength of the penalty
  double ewc_gamma = 1.0;        // ewc: decay of the running Fisher (online EWC)
  double lwf_alpha = 1.0;        // lwf: weight of the distillation loss
  double lwf_temperature = 2.0;  // lwf: softmax temperature of the soft targets
  int64_t memory = 200;          // replay: images kept in memory

  // Training.
  int64_t epochs = 5;
  int64_t patience = 2;
  int64_t batch = 64;
  double lr = 1e-3;
  double weight_decay = 5e-4;
  std::string optimizer = "adam";
  std::vector<uint64_t> seeds = {0};

  // Running.
  int threads = 0;  // 0: all cores
  std::string device = "cpu";
  std::filesystem::path out = "runs/continual";
  bool resume = false;
  std::optional<std::string> shard;
  bool data_parallel = false;  // split each batch across the ranks of an MPI launch
};

// Registers every flag on `app`, bound to `config`, with its help text.
void add_flags(CLI::App& app, RunConfig& config);

// Throws std::invalid_argument naming the flag for values that cannot work
// (unknown method or optimiser, non-positive sizes, ...).
void validate(const RunConfig& config);

nlohmann::json config_json(const RunConfig& config);
nlohmann::json setting_json(const RunConfig& config);

// The method names this runner knows, in the order --help lists them.
const std::vector<std::string>& method_names();

}  // namespace continual
