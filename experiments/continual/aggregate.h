// Aggregation of the cells of one method over seeds: the numbers that
// results.json's "mean"/"std", summary.md, the CSVs and the plots all show,
// computed in this one place.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "experiments/continual/cell_result.h"
#include "experiments/continual/metrics.h"

namespace continual {

struct MethodSummary {
  std::string method;
  std::vector<CellResult> runs;  // in seed order
  // Element-wise over seeds, same ragged layout as AccuracyMatrix.
  std::vector<std::vector<MeanStd>> accuracy_matrix;
  std::vector<std::vector<MeanStd>> validation_matrix;
  MeanStd acc, bwt, forgetting;
  std::vector<MeanStd> final_accuracy;  // last row of R, per task
  std::vector<MeanStd> epochs_per_task;
  std::vector<MeanStd> seconds_per_task;
  MeanStd peak_memory_bytes;
  MeanStd peak_device_memory_bytes;
  // Empty (n/a) unless every run has the value: forward transfer needs two
  // tasks; the all-classes argmax a shared path; cells written before these
  // were measured have neither.
  std::optional<MeanStd> fwt, class_il_acc, class_il_task_inferred_acc;
  // Seconds of the training passes per epoch (validation excluded): over
  // every epoch of the run, and per task; empty where a run did not record them.
  std::optional<MeanStd> train_seconds_per_epoch;
  std::vector<MeanStd> train_seconds_per_epoch_per_task;
  ParamCounts params;  // identical for every seed (checked)
  int64_t tasks() const { return static_cast<int64_t>(accuracy_matrix.size()); }
};

// Parameters stored anew for each task after the first, averaged over those
// tasks (whole parameters, rounded down); 0 when there is a single task. The
// growth a method costs per task: the x axis of the study's headline figure.
int64_t new_params_per_later_task(const ParamCounts& params);

// Bytes stored anew for each task after the first (parameters and method
// values as float32, and data), averaged over those tasks (rounded down); 0
// when there is a single task.
int64_t new_bytes_per_later_task(const ParamCounts& params);

// Seconds a cell trained and evaluated, over all its tasks.
double total_seconds(const CellResult& cell);

// Seconds of the training passes per epoch over `curves` (one task's, or all),
// validation excluded; empty when an epoch's seconds were not recorded.
std::optional<double> train_seconds_per_epoch(const std::vector<TaskCurve>& curves);

// Groups `cells` by method, in the order of `methods`. Throws
// std::runtime_error when a method has no cell, or its cells disagree on the
// number of tasks, the accuracy split or the parameter counts.
std::vector<MethodSummary> summarise(const std::vector<std::string>& methods,
                                     const std::vector<CellResult>& cells);

}  // namespace continual
