// `continual evaluate OUT_DIR`: the kept models of a finished run, evaluated
// again without training. Every finished cell of the sweep in OUT_DIR
// (sweep.json, cells/) has its network rebuilt from the run's setting and each
// task's part loaded from models/<cell>/task-N.npz; every task is then
// evaluated on the run's data as the trainer does after the last task. On the
// same machine and build the row equals the cell's last accuracy row (hence
// results.json's) bit for bit; evaluation.json records both rows per cell,
// and the class-incremental accuracies (no task id) beside the recorded ones.
//
// task_network() exports one task's model as a plain network of the run's
// architecture (`model-tool merge`).
//
// Nothing is written unless every check passes: a directory without models,
// a missing or mis-shaped task file or tensor, or data of another shape than
// the run's is an error naming the file and tensor (or both shapes).
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/npz.h"
#include "experiments/continual/config.h"
#include "experiments/continual/trainer.h"
#include "layers/models.h"

namespace continual {

// The run configuration of a sweep from its setting (sweep.json's "setting",
// whose keys are the flags' names with '_' for '-'), parsed by the same flags
// as the command line. Keys this build has no flag for are returned in
// `unknown` (a run of another version) and otherwise ignored.
RunConfig config_from_setting(const nlohmann::json& setting, std::vector<std::string>& unknown);

struct EvaluatedCell {
  std::string cell;                  // "lora-seed0"
  std::vector<double> accuracy;      // per task, after reloading the kept model
  std::vector<double> recorded;      // the cell's last accuracy row, as trained
  bool identical() const { return accuracy == recorded; }
  // Without the task id (trainer.h's class_incremental_accuracy), from the
  // kept models; the cell's recorded values beside them (null: n/a, or a cell
  // written before they were measured).
  ClassIncrementalAccuracy class_incremental;
  std::optional<double> recorded_class_il_acc, recorded_class_il_task_inferred_acc;
};

// Evaluates every finished cell, writes OUT_DIR/evaluation.json and returns
// the cells. Messages (and a note where the run's data or version differ) go
// to `log`. Throws std::runtime_error as described above.
std::vector<EvaluatedCell> evaluate_run(const std::filesystem::path& out_dir, std::ostream& log);

// One task's network as a plain model of the run's architecture, for use
// elsewhere: the task's adapters merged into the shared weights, and its
// batch-norm copies, branch and head block under the plain network's names
// (PyTorch's state_dict names; torchvision's for the VGGs), the head over the
// task's classes only. Its logits are the kept model's logits of those classes.
struct TaskNetwork {
  std::string arch;
  layers::InputShape input;
  int64_t classes = 0;
  engine::NamedTensors tensors;
};
// `task_number` counts from 1. Throws std::runtime_error naming the cell, the
// task or the file at fault.
TaskNetwork task_network(const std::filesystem::path& out_dir, const std::string& cell, int64_t task_number,
                         std::ostream& log);

}  // namespace continual
