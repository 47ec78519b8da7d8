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
    s.params = first.params;
    summaries.push_back(std::move(s));
  }
  return summaries;
}

}  // namespace continual
