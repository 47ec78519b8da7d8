#include "experiments/continual/aggregate.h"

#include <functional>
#include <stdexcept>

namespace continual {

namespace {

std::vector<MeanStd> per_index(const std::vector<CellResult>& runs, size_t count,
                               const std::function<double(const CellResult&, size_t)>& value) {
  std::vector<MeanStd> out;
  for (size_t i = 0; i < count; ++i) {
    std::vector<double> values;
    for (const CellResult& run : runs) values.push_back(value(run, i));
    out.push_back(mean_std(values));
  }
  return out;
}

MeanStd over_runs(const std::vector<CellResult>& runs, const std::function<double(const CellResult&)>& value) {
  std::vector<double> values;
  for (const CellResult& run : runs) values.push_back(value(run));
  return mean_std(values);
}

// Empty when a run has no value.
std::optional<MeanStd> over_runs_if_all(const std::vector<CellResult>& runs,
                                        const std::function<std::optional<double>(const CellResult&)>& value) {
  std::vector<double> values;
  for (const CellResult& run : runs) {
    const std::optional<double> v = value(run);
    if (!v) return std::nullopt;
    values.push_back(*v);
  }
  return mean_std(values);
}

std::vector<std::vector<MeanStd>> matrix_mean_std(const std::vector<CellResult>& runs,
                                                  AccuracyMatrix CellResult::*matrix) {
  std::vector<std::vector<MeanStd>> out;
  const size_t tasks = (runs.front().*matrix).size();
  for (size_t i = 0; i < tasks; ++i)
    out.push_back(per_index(runs, i + 1, [&](const CellResult& r, size_t j) { return (r.*matrix)[i][j]; }));
  return out;
}

bool same_params(const ParamCounts& a, const ParamCounts& b) {
  return a.base == b.base && a.new_per_task == b.new_per_task && a.new_conv_per_task == b.new_conv_per_task &&
         a.new_classifier_per_task == b.new_classifier_per_task && a.total == b.total && a.conv == b.conv &&
         a.classifier == b.classifier;
}

}  // namespace

int64_t new_params_per_later_task(const ParamCounts& params) {
  const size_t later = params.new_per_task.size() > 1 ? params.new_per_task.size() - 1 : 0;
  if (later == 0) return 0;
  int64_t total = 0;
  for (size_t t = 1; t < params.new_per_task.size(); ++t) total += params.new_per_task[t];
  return total / static_cast<int64_t>(later);
}

int64_t new_bytes_per_later_task(const ParamCounts& params) {
  const size_t later = params.new_per_task.size() > 1 ? params.new_per_task.size() - 1 : 0;
  if (later == 0) return 0;
  int64_t total = 0;
  for (size_t t = 1; t < params.new_per_task.size(); ++t)
    total += params.data_bytes_per_task.at(t) +
             static_cast<int64_t>(sizeof(float)) * (params.new_per_task[t] + params.method_values_per_task.at(t));
  return total / static_cast<int64_t>(later);
}

std::optional<double> train_seconds_per_epoch(const std::vector<TaskCurve>& curves) {
  double seconds = 0;
  size_t epochs = 0;
  for (const TaskCurve& c : curves) {
    if (c.train_seconds.size() != c.train_loss.size()) return std::nullopt;
    for (double s : c.train_seconds) seconds += s;
    epochs += c.train_seconds.size();
  }
  if (epochs == 0) return std::nullopt;
  return seconds / static_cast<double>(epochs);
}

double total_seconds(const CellResult& cell) {
  double total = 0;
  for (double s : cell.seconds_per_task) total += s;
  return total;
}

std::vector<MethodSummary> summarise(const std::vector<std::string>& methods, const std::vector<CellResult>& cells) {
  std::vector<MethodSummary> summaries;
  for (const std::string& method : methods) {
    MethodSummary s;
    s.method = method;
    for (const CellResult& cell : cells)
      if (cell.method == method) s.runs.push_back(cell);
    if (s.runs.empty()) throw std::runtime_error("summary: no result for method " + method);
    const CellResult& first = s.runs.front();
    const size_t tasks = first.accuracy_matrix.size();
    for (const CellResult& run : s.runs) {
      const std::string name = cell_name(run.method, run.seed);
      check_accuracy_matrix(run.accuracy_matrix);
      if (run.accuracy_matrix.size() != tasks || run.validation_matrix.size() != tasks ||
          run.epochs_per_task.size() != tasks || run.seconds_per_task.size() != tasks)
        throw std::runtime_error("summary: cell " + name + " has a different number of tasks than " +
                                 cell_name(first.method, first.seed));
      if (run.accuracy_split != first.accuracy_split)
        throw std::runtime_error("summary: cell " + name + " reports " + run.accuracy_split + " accuracy, " +
                                 cell_name(first.method, first.seed) + " " + first.accuracy_split);
      if (!same_params(run.params, first.params))
        throw std::runtime_error("summary: cell " + name + " has different parameter counts than " +
                                 cell_name(first.method, first.seed));
    }
    s.accuracy_matrix = matrix_mean_std(s.runs, &CellResult::accuracy_matrix);
    s.validation_matrix = matrix_mean_std(s.runs, &CellResult::validation_matrix);
    s.acc = over_runs(s.runs, [](const CellResult& r) { return average_accuracy(r.accuracy_matrix); });
    s.bwt = over_runs(s.runs, [](const CellResult& r) { return backward_transfer(r.accuracy_matrix); });
    s.forgetting = over_runs(s.runs, [](const CellResult& r) { return forgetting(r.accuracy_matrix); });
    s.final_accuracy = s.accuracy_matrix.back();
    s.epochs_per_task = per_index(s.runs, tasks, [](const CellResult& r, size_t t) {
      return static_cast<double>(r.epochs_per_task[t]);
    });
    s.seconds_per_task = per_index(s.runs, tasks, [](const CellResult& r, size_t t) { return r.seconds_per_task[t]; });
    s.peak_memory_bytes =
        over_runs(s.runs, [](const CellResult& r) { return static_cast<double>(r.peak_memory_bytes); });
    s.peak_device_memory_bytes =
        over_runs(s.runs, [](const CellResult& r) { return static_cast<double>(r.peak_device_memory_bytes); });
    s.fwt = over_runs_if_all(s.runs, [](const CellResult& r) {
      return forward_transfer(r.accuracy_before_training, r.untrained_accuracy);
    });
    s.class_il_acc = over_runs_if_all(s.runs, [](const CellResult& r) { return r.class_il_acc; });
    s.class_il_task_inferred_acc =
        over_runs_if_all(s.runs, [](const CellResult& r) { return r.class_il_task_inferred_acc; });
    s.train_seconds_per_epoch =
        over_runs_if_all(s.runs, [](const CellResult& r) { return train_seconds_per_epoch(r.curves); });
    for (size_t t = 0; t < tasks; ++t) {
      const std::optional<MeanStd> task = over_runs_if_all(s.runs, [&](const CellResult& r) {
        return t < r.curves.size() ? train_seconds_per_epoch({r.curves[t]}) : std::nullopt;
      });
      if (!task) {
        s.train_seconds_per_epoch_per_task.clear();
        break;
      }
      s.train_seconds_per_epoch_per_task.push_back(*task);
    }
    s.params = first.params;
    summaries.push_back(std::move(s));
  }
  return summaries;
}

}  // namespace continual
