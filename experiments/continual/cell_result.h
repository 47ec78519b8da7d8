// The result of one cell of a sweep: one method trained with one seed over
// the whole task sequence of one setting. Each cell is written to its own
// file under --out/cells/ (atomically), so a re-run can skip finished cells
// and separate processes (shards) never write the same file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/continual/metrics.h"

namespace continual {

// Parameter counts of a method. new_per_task[t] is what task t trained and
// stored anew (new_per_task[0]: everything trained on the first task); the
// conv / classifier split is given per task and for the total.
struct ParamCounts {
  int64_t base = 0;  // the whole network as it stands after the first task
  std::vector<int64_t> new_per_task;
  std::vector<int64_t> new_conv_per_task;
  std::vector<int64_t> new_classifier_per_task;
  int64_t total = 0;  // every parameter stored after the last task
  int64_t conv = 0;
  int64_t classifier = 0;
  std::vector<int64_t> trained_per_task = {};  // parameters each task trained (optimised), stored or not
  // What a method stores besides the network, added by each task (learner.h's
  // NewParams): values kept as parameters are, and data (bytes).
  std::vector<int64_t> method_values_per_task;
  std::vector<int64_t> data_bytes_per_task;
  int64_t stored_bytes = 0;  // everything stored after the last task: parameters and values as float32, and data
};

// Per-epoch learning curve of one task (epoch e of the vectors is epoch e+1).
struct TaskCurve {
  std::vector<double> train_loss;
  std::vector<double> val_accuracy;
  int64_t best_epoch = 0;  // 1-based epoch whose weights were kept
  std::vector<double> train_seconds = {};  // per epoch: the training passes
  std::vector<double> eval_seconds = {};   // per epoch: the validation evaluation
};

struct CellResult {
  std::string method;  // with "-r<rank>" where the sweep runs several adapter ranks
  uint64_t seed = 0;
  int64_t rank = 0;    // the conv adapter rank of lora and cp-lora; 0 for other methods
  // "test" when the data set has a test split, else "validation": what
  // accuracy_matrix holds. validation_matrix is always the validation one.
  std::string accuracy_split;
  AccuracyMatrix accuracy_matrix;
  AccuracyMatrix validation_matrix;
  ParamCounts params;
  std::vector<int64_t> epochs_per_task;  // epochs trained (early stopping may end before --epochs)
  std::vector<double> seconds_per_task;
  std::vector<TaskCurve> curves;
  int64_t peak_memory_bytes = 0;  // peak resident set size of the process during the cell
  // Where the cell ran (experiments/common/provenance.h; "started": the
  // cell's start, or its resumption's); an empty object when not recorded.
  nlohmann::json provenance = nlohmann::json::object();
  int64_t peak_device_memory_bytes = 0;  // --device cuda: most GPU memory held by tensors; 0 on the CPU
  // Bytes of each task's kept model file (--out/models/<cell>/task-N.npz):
  // what the task stores, the growth params.new_per_task counts, in .npz bytes.
  std::vector<int64_t> model_bytes_per_task;
  // Forward transfer's measurements (metrics.h's forward_transfer), per task:
  // the accuracy right after the task was begun, before any training step on
  // it, and the accuracy of the same network as built, never trained. Empty in
  // cells written before they were measured.
  std::vector<double> accuracy_before_training;
  std::vector<double> untrained_accuracy;
  // The final network without the task id, over the reported split's images
  // of every task (trainer.h's class_incremental_accuracy): the argmax over
  // every class (n/a where the path depends on the task), and the prediction
  // of the most confident task path. n/a (null) in cells written before them.
  std::optional<double> class_il_acc;
  std::optional<double> class_il_task_inferred_acc;
};

// "lora-seed3": names the cell in messages, file names and progress lines.
std::string cell_name(const std::string& method, uint64_t seed);

nlohmann::json to_json(const CellResult& cell);
// Throws std::runtime_error naming the missing or malformed key.
CellResult cell_from_json(const nlohmann::json& j);

// A cell file holds the cell's result and the setting it was run with, so that
// results of a different setting in the same --out are never mixed in.
std::filesystem::path cell_file(const std::filesystem::path& out_dir, const std::string& name);
void write_cell_file(const std::filesystem::path& path, const CellResult& cell,
                     const nlohmann::json& setting);
// The cell stored at `path`, or nullopt when there is no such file. Throws
// std::runtime_error when the file was written for a different setting.
std::optional<CellResult> read_cell_file(const std::filesystem::path& path,
                                         const nlohmann::json& setting);

}  // namespace continual
