#include "experiments/continual/figures.h"

#include <string>

#include "experiments/continual/plot.h"

namespace continual {

namespace {

std::string task_label(size_t t) { return "T" + std::to_string(t + 1); }

std::string accuracy_name(const MethodSummary& s) {
  return s.runs.front().accuracy_split + " accuracy";
}

void write_heatmap(const std::filesystem::path& out_dir, const MethodSummary& s) {
  plot::Heatmap map;
  map.title = s.method + ": " + accuracy_name(s) + " matrix";
  map.x_label = "evaluated task";
  map.y_label = "after training task";
  for (int64_t t = 0; t < s.tasks(); ++t) {
    map.row_labels.push_back(task_label(t));
    map.column_labels.push_back(task_label(t));
    std::vector<double> row;
    for (const MeanStd& m : s.accuracy_matrix[t]) row.push_back(m.mean);
    map.values.push_back(row);
  }
  plot::draw_heatmap(map).save_png(out_dir / ("heatmap_" + s.method + ".png"));
}

void write_task_accuracy(const std::filesystem::path& out_dir, const MethodSummary& s) {
  plot::LineChart chart;
  chart.title = s.method + ": accuracy of each task over the sequence";
  chart.x_label = "after training task";
  chart.y_label = accuracy_name(s);
  chart.y_max = 1.0;
  for (int64_t j = 0; j < s.tasks(); ++j) {
    plot::Series series{"task " + std::to_string(j + 1), {}, {}, plot::palette(j)};
    for (int64_t i = j; i < s.tasks(); ++i) {
      series.x.push_back(static_cast<double>(i + 1));
      series.y.push_back(s.accuracy_matrix[i][j].mean);
    }
    chart.series.push_back(series);
  }
  plot::draw_line_chart(chart).save_png(out_dir / ("task_accuracy_" + s.method + ".png"));
}

void write_params_growth(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  plot::LineChart chart;
  chart.title = "Parameters stored after each task";
  chart.x_label = "after training task";
  chart.y_label = "parameters (cumulative)";
  chart.y_min = 0;
  for (size_t m = 0; m < methods.size(); ++m) {
    plot::Series series{methods[m].method, {}, {}, plot::palette(m)};
    double total = 0;
    for (size_t t = 0; t < methods[m].params.new_per_task.size(); ++t) {
      total += static_cast<double>(methods[m].params.new_per_task[t]);
      series.x.push_back(static_cast<double>(t + 1));
      series.y.push_back(total);
    }
    chart.series.push_back(series);
  }
  plot::draw_line_chart(chart).save_png(out_dir / "params_growth.png");
}

void write_params_parts(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  plot::StackedBars chart;
  chart.title = "Parameters stored after each task, conv and classifier";
  chart.x_label = "after training task";
  chart.y_label = "parameters (cumulative)";
  chart.part_names = {"conv", "classifier"};
  const int64_t tasks = methods.front().tasks();
  for (int64_t t = 0; t < tasks; ++t) chart.group_labels.push_back(task_label(t));
  for (size_t m = 0; m < methods.size(); ++m) {
    const ParamCounts& p = methods[m].params;
    plot::StackedBars::Bar bar{methods[m].method, plot::palette(m), {}};
    double conv = 0, classifier = 0;
    for (int64_t t = 0; t < tasks; ++t) {
      conv += static_cast<double>(p.new_conv_per_task[t]);
      classifier += static_cast<double>(p.new_classifier_per_task[t]);
      bar.parts.push_back({conv, classifier});
    }
    chart.bars.push_back(bar);
  }
  plot::draw_stacked_bars(chart).save_png(out_dir / "params_parts.png");
}

}  // namespace

void write_figures(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  for (const MethodSummary& s : methods) {
    write_heatmap(out_dir, s);
    write_task_accuracy(out_dir, s);
  }
  write_params_growth(out_dir, methods);
  write_params_parts(out_dir, methods);
}

}  // namespace continual
