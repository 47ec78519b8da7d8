#include "experiments/continual/rank_figures.h"

#include <map>
#include <string>

#include "experiments/continual/plot.h"

namespace continual {

namespace {

// A rank sweep's method labels are METHOD-rR (sweep.h); the method is what precedes "-r".
std::string method_of(const MethodSummary& s) {
  const std::string suffix = "-r" + std::to_string(s.runs.front().rank);
  return s.method.ends_with(suffix) ? s.method.substr(0, s.method.size() - suffix.size()) : s.method;
}

}  // namespace

void write_rank_figures(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods) {
  // Per method, in the order first seen: (rank, summary), in the sweep's rank order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const MethodSummary*>> by_method;
  for (const MethodSummary& s : methods) {
    if (s.runs.front().rank == 0) continue;
    const std::string method = method_of(s);
    if (!by_method.contains(method)) order.push_back(method);
    by_method[method].push_back(&s);
  }
  bool swept = false;
  for (const auto& [method, ranks] : by_method) swept = swept || ranks.size() > 1;
  if (!swept) return;

  plot::LineChart accuracy, params;
  accuracy.title = "Accuracy against the adapter rank r";
  accuracy.x_label = params.x_label = "conv adapter rank r";
  accuracy.y_label = "average " + methods.front().runs.front().accuracy_split + " accuracy (ACC)";
  accuracy.y_max = 1.0;
  params.y_min = 0.0;
  params.title = "Parameters a task trains against the adapter rank r";
  params.y_label = "parameters trained by the last task";
  for (size_t m = 0; m < order.size(); ++m) {
    plot::Series acc, trained;
    acc.name = trained.name = order[m];
    acc.color = trained.color = plot::palette(m);
    for (const MethodSummary* s : by_method[order[m]]) {
      const double r = static_cast<double>(s->runs.front().rank);
      acc.x.push_back(r);
      acc.y.push_back(s->acc.mean);
      if (s->acc.sample_std) acc.y_error.push_back(*s->acc.sample_std);
      trained.x.push_back(r);
      trained.y.push_back(static_cast<double>(s->params.trained_per_task.back()));
    }
    accuracy.series.push_back(acc);
    params.series.push_back(trained);
  }
  plot::draw_line_chart(accuracy).save_all(out_dir / "rank_accuracy");
  plot::draw_line_chart(params).save_all(out_dir / "rank_params");
}

}  // namespace continual
