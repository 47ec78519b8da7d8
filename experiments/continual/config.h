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
  std::string class_order;         // "": the benchmark's order; "shuffle"; "study"; or "3,1,4,..."
  uint64_t split_seed = 0;         // class shuffle and validation split
  double validation_fraction = 0.1;
  int64_t train_limit = 2000;  // images per task for training (0: all); the default keeps the main run short
  int64_t eval_limit = 0;   // images per task for validation and test (0: all)
  std::string augment = "auto";  // auto (on for RGB data), on, off
  int64_t image_size = 0;        // 0: the data set's own size (folder data sets: 32); else resized to this
  std::string normalize = "dataset";  // dataset (its training images' mean/std) or imagenet

  // Network and methods.
  std::string arch = "sena32";
  std::vector<std::string> methods = {"naive", "lora", "sena"};
  std::vector<int64_t> ranks = {4};  // adapter rank of conv layers; several: a sweep dimension
  int64_t rank_fc = 8;   // adapter rank of dense layers
  double alpha = 8.0;    // adapter scaling = alpha / rank: 2 for conv at rank 4, 1 for dense at rank 8
  std::string adapt = "all";  // which layers get adapters (layers::parse_adapt)
  std::filesystem::path init;     // .npz backbone to start from

  // Protocol choices of single methods; unset: the default (kProtocolDefaults).
  // Setting one that no listed method uses is an error (validate).
  bool adapt_first_task = false;               // lora, cp-lora: adapters from task 0 on a frozen --init
  std::optional<std::string> scaling;          // lora, cp-lora: alpha-over-r or r-over-alpha
  std::optional<std::string> task_bn;          // lora, cp-lora: copy-previous-frozen, copy-trainable, shared
  std::optional<std::string> branch_init;      // sena, finetune-fc: copy or fresh
  std::optional<int64_t> shared_layers;        // sena: weighted layers in the shared trunk
  std::optional<int64_t> finetune_layers;      // finetune-fc: k, dense layers per task, head included
  // Methods of the other families of forgetting solutions (experiments/continual/learners/).
  double ewc_lambda = 1000;      // ewc: strength of the penalty
  double ewc_gamma = 1.0;        // ewc: decay of the running Fisher (online EWC)
  double lwf_alpha = 1.0;        // lwf: weight of the distillation loss
  double lwf_temperature = 2.0;  // lwf: softmax temperature of the soft targets
  int64_t memory = 200;          // replay: images kept in memory
  std::optional<double> prune;            // packnet: share of a task's free weights pruned, in (0, 1)
  std::optional<int64_t> retrain_epochs;  // packnet: epochs the kept weights retrain after pruning
  std::optional<double> pnn_width;  // pnn: width of every column against --arch's (default 1)

  // Training.
  int64_t epochs = 5;
  int64_t patience = 2;
  int64_t batch = 64;
  double lr = 1e-3;
  double weight_decay = 5e-4;
  std::string optimizer = "adam";
  std::vector<uint64_t> seeds = {0};
  std::string lr_plateau;  // "": constant rate; "PATIENCE[,FACTOR]": ReduceLROnPlateau on validation accuracy

  // Running.
  int threads = 0;  // 0: all cores
  std::string device = "cpu";  // cpu, cuda or cuda:N (experiments/common/device.h)
  bool tf32 = false;           // cuBLAS float32 GEMMs on TF32 tensor cores (cuda only)
  std::filesystem::path out = "runs/continual";
  bool resume = false;
  std::optional<std::string> shard;
  bool data_parallel = false;  // split each batch across the ranks of an MPI launch
};

// Registers every flag on `app`, bound to `config`, with its help text.
void add_flags(CLI::App& app, RunConfig& config);

// Throws std::invalid_argument naming the flag for values that cannot work
// (unknown method or optimiser, non-positive sizes, ...), and naming both
// flags of a conflict (a protocol choice no listed method uses, ...).
void validate(const RunConfig& config);

nlohmann::json config_json(const RunConfig& config);
nlohmann::json setting_json(const RunConfig& config);

// The method names this runner knows, in the order --help lists them.
const std::vector<std::string>& method_names();
// lora and cp-lora: the methods with adapters, which --rank, --scaling, --task-bn apply to.
bool is_adapter_method(const std::string& method);

// The defaults of the protocol choices left unset.
struct ProtocolDefaults {
  static constexpr const char* scaling = "alpha-over-r";
  static constexpr const char* task_bn = "copy-trainable";
  static constexpr const char* branch_init = "fresh";
  static constexpr int64_t finetune_layers = 2;
  static constexpr double prune = 0.5;
  static constexpr int64_t retrain_epochs = 1;
};

// --lr-plateau "PATIENCE[,FACTOR]" (factor 0.1 when not given). Throws
// std::invalid_argument naming the flag.
struct LrPlateau {
  int64_t patience = 0;
  double factor = 0.1;
};
LrPlateau parse_lr_plateau(const std::string& text);

}  // namespace continual
