#include "experiments/continual/report.h"

#include <cstdio>
#include <sstream>

#include "engine/io.h"
#include "experiments/common/provenance.h"
#include "experiments/continual/figures.h"

namespace continual {

using nlohmann::json;

namespace {

// The sample standard deviation, or null where one seed gave nothing to measure.
json spread(const MeanStd& m) { return m.sample_std ? json(*m.sample_std) : json(nullptr); }

json means(const std::vector<MeanStd>& v, bool want_std) {
  json out = json::array();
  for (const MeanStd& m : v) out.push_back(want_std ? spread(m) : json(m.mean));
  return out;
}

json matrix(const std::vector<std::vector<MeanStd>>& m, bool want_std) {
  json out = json::array();
  for (const auto& row : m) out.push_back(means(row, want_std));
  return out;
}

json statistics(const MethodSummary& s, bool want_std) {
  auto pick = [&](const MeanStd& m) { return want_std ? spread(m) : json(m.mean); };
  return {{"accuracy_matrix", matrix(s.accuracy_matrix, want_std)},
          {"validation_matrix", matrix(s.validation_matrix, want_std)},
          {"acc", pick(s.acc)},
          {"bwt", pick(s.bwt)},
          {"forgetting", pick(s.forgetting)},
          {"final_accuracy", means(s.final_accuracy, want_std)},
          {"epochs_per_task", means(s.epochs_per_task, want_std)},
          {"seconds_per_task", means(s.seconds_per_task, want_std)},
          {"peak_memory_bytes", pick(s.peak_memory_bytes)}};
}

std::string format(const char* pattern, double a) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, a);
  return buffer;
}

// "0.7667 ± 0.0123" with two seeds or more, "0.7667 ± –" with one.
std::string mean_and_spread(const char* pattern, const MeanStd& m) {
  return format(pattern, m.mean) + " ± " + (m.sample_std ? format("%.4f", *m.sample_std) : "–");
}

// 1234567 -> "1,234,567": parameter counts are compared by eye.
std::string thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace

json results_json(const json& config, const json& dataset, const std::vector<MethodSummary>& methods,
                  const json& provenance) {
  json by_method = json::object();
  for (const MethodSummary& s : methods) {
    json runs = json::array();
    for (const CellResult& run : s.runs) runs.push_back(to_json(run));
    by_method[s.method] = {{"seeds", s.runs.size()},
                           {"runs", runs},
                           {"mean", statistics(s, false)},
                           {"sample_std", statistics(s, true)}};
  }
  return {{"provenance", provenance}, {"config", config}, {"dataset", dataset}, {"methods", by_method}};
}

std::string summary_markdown(const std::string& title, const std::vector<MethodSummary>& methods,
                             const json& provenance) {
  std::ostringstream md;
  const MethodSummary& first = methods.front();
  md << "## " << title << "\n\n";
  if (!provenance.empty()) md << experiments::provenance_markdown(provenance) << "\n";
  const size_t seeds = first.runs.size();
  md << "Final " << first.runs.front().accuracy_split << " accuracy of each task after the last task (mean over "
     << seeds << (seeds == 1 ? " seed" : " seeds") << " ± sample standard deviation"
     << (seeds == 1 ? "; – : one seed, no spread to measure" : "") << ") and epochs trained on it (mean).\n\n";
  md << "| task |";
  for (const MethodSummary& s : methods) md << " " << s.method << " accuracy | " << s.method << " epochs |";
  md << "\n|---|";
  for (size_t i = 0; i < methods.size(); ++i) md << "---|---|";
  md << "\n";
  for (int64_t t = 0; t < first.tasks(); ++t) {
    md << "| " << t + 1 << " |";
    for (const MethodSummary& s : methods)
      md << " " << mean_and_spread("%.4f", s.final_accuracy[t]) << " | " << format("%.1f", s.epochs_per_task[t].mean)
         << " |";
    md << "\n";
  }
  md << "\n| method | ACC | BWT | forgetting | base params | new params per later task | total params | "
        "growth per task | seconds |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const MethodSummary& s : methods) {
    const ParamCounts& p = s.params;
    const int64_t per_task = new_params_per_later_task(p);
    double seconds = 0;
    for (const MeanStd& m : s.seconds_per_task) seconds += m.mean;
    md << "| " << s.method << " | " << mean_and_spread("%.4f", s.acc) << " | " << mean_and_spread("%+.4f", s.bwt)
       << " | " << mean_and_spread("%.4f", s.forgetting) << " | " << thousands(p.base) << " | " << thousands(per_task)
       << " | " << thousands(p.total) << " | "
       << format("%.1f%%", p.base > 0 ? 100.0 * static_cast<double>(per_task) / static_cast<double>(p.base) : 0)
       << " | " << format("%.0f", seconds) << " |\n";
  }
  md << "\nACC: mean accuracy over all tasks after the last one. BWT: mean change of each earlier task's "
        "accuracy from right after it was learnt to the end (0 = no forgetting). Forgetting: mean drop from "
        "each earlier task's best accuracy to its final one. ± : sample standard deviation over seeds (n - 1 "
        "in the denominator). New params per later task: parameters trained and stored for each task after the "
        "first (mean); growth is that as a share of the base network. Seconds: mean over seeds of the time "
        "spent on all tasks.\n";
  return md.str();
}

std::string metrics_csv(const std::vector<MethodSummary>& methods) {
  std::ostringstream csv;
  csv << "method,seed,tasks,acc,bwt,forgetting,seconds,base_params,new_params_per_later_task,total_params\n";
  for (const MethodSummary& s : methods)
    for (const CellResult& run : s.runs)
      csv << s.method << ',' << run.seed << ',' << run.accuracy_matrix.size() << ','
          << format("%.6f", average_accuracy(run.accuracy_matrix)) << ','
          << format("%.6f", backward_transfer(run.accuracy_matrix)) << ','
          << format("%.6f", forgetting(run.accuracy_matrix)) << ',' << format("%.3f", total_seconds(run)) << ','
          << run.params.base << ',' << new_params_per_later_task(run.params) << ',' << run.params.total << '\n';
  return csv.str();
}

std::string accuracy_matrix_csv(const std::vector<MethodSummary>& methods) {
  std::ostringstream csv;
  csv << "method,seed,after_task,task,accuracy,accuracy_split,validation_accuracy\n";
  for (const MethodSummary& s : methods)
    for (const CellResult& run : s.runs)
      for (size_t i = 0; i < run.accuracy_matrix.size(); ++i)
        for (size_t j = 0; j <= i; ++j)
          csv << s.method << ',' << run.seed << ',' << i + 1 << ',' << j + 1 << ','
              << format("%.6f", run.accuracy_matrix[i][j]) << ',' << run.accuracy_split << ','
              << format("%.6f", run.validation_matrix[i][j]) << '\n';
  return csv.str();
}

std::string params_csv(const std::vector<MethodSummary>& methods) {
  std::ostringstream csv;
  csv << "method,task,new,new_conv,new_classifier,cumulative,cumulative_conv,cumulative_classifier,"
         "new_method_values,new_data_bytes,cumulative_stored_bytes\n";
  for (const MethodSummary& s : methods) {
    const ParamCounts& p = s.params;
    int64_t total = 0, conv = 0, classifier = 0, stored_bytes = 0;
    for (size_t t = 0; t < p.new_per_task.size(); ++t) {
      total += p.new_per_task[t];
      conv += p.new_conv_per_task[t];
      classifier += p.new_classifier_per_task[t];
      stored_bytes += p.data_bytes_per_task[t] +
                      static_cast<int64_t>(sizeof(float)) * (p.new_per_task[t] + p.method_values_per_task[t]);
      csv << s.method << ',' << t + 1 << ',' << p.new_per_task[t] << ',' << p.new_conv_per_task[t] << ','
          << p.new_classifier_per_task[t] << ',' << total << ',' << conv << ',' << classifier << ','
          << p.method_values_per_task[t] << ',' << p.data_bytes_per_task[t] << ',' << stored_bytes << '\n';
    }
  }
  return csv.str();
}

std::string write_reports(const std::filesystem::path& out_dir, const std::string& title, const json& config,
                          const json& dataset, const std::vector<MethodSummary>& methods) {
  std::filesystem::create_directories(out_dir);
  const engine::Device device = config.value("device", "cpu") == "cuda" ? engine::Device::cuda : engine::Device::cpu;
  const json provenance = experiments::provenance_json(device);
  engine::write_file_atomic(out_dir / "results.json", results_json(config, dataset, methods, provenance).dump(2) + "\n");
  const std::string markdown = summary_markdown(title, methods, provenance);
  engine::write_file_atomic(out_dir / "summary.md", markdown);
  engine::write_file_atomic(out_dir / "metrics.csv", metrics_csv(methods));
  engine::write_file_atomic(out_dir / "accuracy_matrix.csv", accuracy_matrix_csv(methods));
  engine::write_file_atomic(out_dir / "params.csv", params_csv(methods));
  write_figures(out_dir, methods);
  return markdown;
}

}  // namespace continual
