#include "experiments/continual/figures.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "experiments/continual/plot.h"

namespace continual {

namespace {

std::string task_label(size_t t) { return "T" + std::to_string(t + 1); }

std::string accuracy_name(const MethodSummary& s) { return s.runs.front().accuracy_split + " accuracy"; }

// "1 seed", "mean of 3 seeds": what a figure's numbers are.
std::string seeds_text(const MethodSummary& s) {
  return s.runs.size() == 1 ? "1 seed" : "mean of " + std::to_string(s.runs.size()) + " seeds";
}

// One accuracy range for every figure of the sweep: from a round tenth below
// the lowest mean (less its spread) to 1.
struct AccuracyAxis {
  double low = 0, high = 1;
};

AccuracyAxis accuracy_axis(const std::vector<MethodSummary>& methods) {
  double lowest = 1;
  for (const MethodSummary& s : methods) {
    for (const auto& row : s.accuracy_matrix)
      for (const MeanStd& m : row) lowest = std::min(lowest, m.mean);
    lowest = std::min(lowest, s.acc.mean - s.acc.sample_std.value_or(0));
  }
  return {std::clamp(std::floor(lowest * 10 - 1e-9) / 10, 0.0, 0.9), 1.0};
}

void write_heatmap(const std::filesystem::path& out_dir, const MethodSummary& s) {
  plot::Heatmap map;
  map.title = display_name(s.method) + ": " + accuracy_name(s) + " matrix (" + seeds_text(s) + ")";
  map.x_label = "evaluated task";
  map.y_label = "after training task";
  for (int64_t t = 0; t < s.tasks(); ++t) {
    map.row_labels.push_back(task_label(t));
    map.column_labels.push_back(task_label(t));
    std::vector<double> row;
    for (const MeanStd& m : s.accuracy_matrix[t]) row.push_back(m.mean);
    map.values.push_back(row);
  }
  plot::draw_heatmap(map).save_all(out_dir / ("heatmap_" + s.method));
}

void write_task_accuracy(const std::filesystem::path& out_dir, const MethodSummary& s, const AccuracyAxis& axis) {
  plot::LineChart chart;
  chart.title = display_name(s.method) + ": accuracy of each task over the sequence";
  chart.x_label = "after training task";
  chart.y_label = accuracy_name(s);
  chart.y_min = axis.low;
  chart.y_max = axis.high;
  chart.note = seeds_text(s) + "; the same accuracy axis in every figure of this run";
  for (int64_t j = 0; j < s.tasks(); ++j) {
    plot::Series series{"task " + std::to_string(j + 1), {}, {}, plot::palette(j), {}};
    for (int64_t i = j; i < s.tasks(); ++i) {
      series.x.push_back(static_cast<double>(i + 1));
      series.y.push_back(s.accuracy_matrix[i][j].mean);
    }
    chart.series.push_back(series);
  }
  plot::draw_line_chart(chart).save_all(out_dir / ("task_accuracy_" + s.method));
}

void write_acc_vs_params(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods,
                         const AccuracyAxis& axis) {
  plot::LineChart chart;
  chart.title = "Final accuracy against parameters added per task";
  chart.x_label = "new parameters per task after the first (log scale)";
  chart.y_label = "ACC (" + accuracy_name(methods.front()) + ", all tasks, at the end)";
  chart.log_x = true;
  chart.integer_x = false;
  chart.y_min = axis.low;
  chart.y_max = axis.high;
  const MethodSummary& first = methods.front();
  chart.note = first.runs.size() > 1 ? seeds_text(first) + ", bars: ± sample standard deviation"
                                     : "one seed: no spread measured, no error bars";
  for (size_t m = 0; m < methods.size(); ++m) {
    const MethodSummary& s = methods[m];
    plot::Series point{display_name(s.method), {}, {}, plot::palette(m), {}};
    point.lines = false;
    point.x.push_back(static_cast<double>(new_params_per_later_task(s.params)));
    point.y.push_back(s.acc.mean);
    if (s.acc.sample_std) point.y_error.push_back(*s.acc.sample_std);
    chart.series.push_back(point);
  }
  plot::draw_line_chart(chart, 900, 560).save_all(out_dir / "acc_vs_params");
}

// One line per method: what it has stored after each task, the running sum of
// `added(params, t)`, what task t adds.
template <class Added>
plot::LineChart cumulative_per_task(const std::vector<MethodSummary>& methods, Added added) {
  plot::LineChart chart;
  chart.x_label = "after training task";
  chart.log_y = true;
  for (size_t m = 0; m < methods.size(); ++m) {
    const ParamCounts& p = methods[m].params;
    plot::Series series{display_name(methods[m].method), {}, {}, plot::palette(m), {}};
    double total = 0;
    for (size_t t = 0; t < p.new_per_task.size(); ++t) {
      total += added(p, t);
      series.x.push_back(static_cast<double>(t + 1));
      series.y.push_back(total);
    }
    chart.series.push_back(series);
  }
  return chart;
}

void write_params_growth(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  plot::LineChart chart = cumulative_per_task(
      methods, [](const ParamCounts& p, size_t t) { return static_cast<double>(p.new_per_task[t]); });
  chart.title = "Parameters stored after each task";
  chart.y_label = "parameters, cumulative (log scale)";
  plot::draw_line_chart(chart).save_all(out_dir / "params_growth");
}

// Everything a method stores, in bytes: parameters and method values as
// float32 and data (replay's images), so that growth in data compares with
// growth in parameters.
void write_stored_bytes(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  plot::LineChart chart = cumulative_per_task(methods, [](const ParamCounts& p, size_t t) {
    return static_cast<double>(p.data_bytes_per_task[t]) +
           static_cast<double>(sizeof(float)) * static_cast<double>(p.new_per_task[t] + p.method_values_per_task[t]);
  });
  chart.title = "Bytes stored after each task: parameters, method values and data";
  chart.y_label = "bytes, cumulative (log scale)";
  chart.note = "parameters and method values (EWC's Fisher and anchors) as float32, data (replay's images) as stored";
  plot::draw_line_chart(chart).save_all(out_dir / "stored_bytes");
}

void write_params_parts(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  plot::StackedBars chart;
  chart.title = "Parameters stored after each task: conv and classifier parts";
  chart.x_label = "after training task";
  chart.y_label = "parameters, cumulative (log scale)";
  chart.part_names = {"conv layers", "classifier"};
  chart.stacked = false;
  chart.log_y = true;
  const int64_t tasks = methods.front().tasks();
  for (int64_t t = 0; t < tasks; ++t) chart.group_labels.push_back(task_label(t));
  for (size_t m = 0; m < methods.size(); ++m) {
    const ParamCounts& p = methods[m].params;
    plot::StackedBars::Bar bar{display_name(methods[m].method), plot::palette(m), {}};
    double conv = 0, classifier = 0;
    for (int64_t t = 0; t < tasks; ++t) {
      conv += static_cast<double>(p.new_conv_per_task[t]);
      classifier += static_cast<double>(p.new_classifier_per_task[t]);
      bar.parts.push_back({conv, classifier});
    }
    chart.bars.push_back(bar);
  }
  plot::draw_stacked_bars(chart, 1000, 560).save_all(out_dir / "params_parts");
}

}  // namespace

std::string display_name(const std::string& method) {
  static const std::map<std::string, std::string> names = {
      {"naive", "naive fine-tuning"},     {"joint", "joint (upper bound)"},
      {"finetune-head", "fine-tune head"}, {"finetune-fc", "fine-tune dense layers"},
      {"lora", "LoRA + ConvLoRA"},        {"cp-lora", "LoRA + CP-ConvLoRA"},
      {"sena", "SenaCNN"}};
  const auto it = names.find(method);
  return it == names.end() ? method : it->second;
}

std::vector<std::string> figure_names(const std::vector<MethodSummary>& methods) {
  std::vector<std::string> names;
  if (!methods.empty() && methods.front().tasks() > 1) names.push_back("acc_vs_params");
  for (const MethodSummary& s : methods) {
    names.push_back("heatmap_" + s.method);
    names.push_back("task_accuracy_" + s.method);
  }
  names.push_back("params_growth");
  names.push_back("stored_bytes");
  names.push_back("params_parts");
  return names;
}

void write_figures(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  const AccuracyAxis axis = accuracy_axis(methods);
  // Parameters per later task only exist with two tasks or more.
  if (methods.front().tasks() > 1) write_acc_vs_params(out_dir, methods, axis);
  for (const MethodSummary& s : methods) {
    write_heatmap(out_dir, s);
    write_task_accuracy(out_dir, s, axis);
  }
  write_params_growth(out_dir, methods);
  write_stored_bytes(out_dir, methods);
  write_params_parts(out_dir, methods);
}

}  // namespace continual
