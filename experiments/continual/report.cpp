#include "experiments/continual/report.h"

#include <cstdio>
#include <sstream>

#include "engine/io.h"
#include "experiments/common/device.h"
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
  auto pick_or_null = [&](const std::optional<MeanStd>& m) { return m ? pick(*m) : json(nullptr); };
  return {{"accuracy_matrix", matrix(s.accuracy_matrix, want_std)},
          {"validation_matrix", matrix(s.validation_matrix, want_std)},
          {"acc", pick(s.acc)},
          {"bwt", pick(s.bwt)},
          {"forgetting", pick(s.forgetting)},
          {"fwt", pick_or_null(s.fwt)},
          {"class_il_acc", pick_or_null(s.class_il_acc)},
          {"class_il_task_inferred_acc", pick_or_null(s.class_il_task_inferred_acc)},
          {"train_seconds_per_epoch", pick_or_null(s.train_seconds_per_epoch)},
          {"train_seconds_per_epoch_per_task", means(s.train_seconds_per_epoch_per_task, want_std)},
          {"peak_device_memory_bytes", pick(s.peak_device_memory_bytes)},
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

// As mean_and_spread, or "–" where the value is n/a.
std::string mean_and_spread(const char* pattern, const std::optional<MeanStd>& m) {
  return m ? mean_and_spread(pattern, *m) : "–";
}

// A CSV field: the value, or empty where it is n/a.
std::string csv_value(const char* pattern, const std::optional<double>& v) { return v ? format(pattern, *v) : ""; }

// Mebibytes, for peak memory: "12.3".
std::string mebibytes(double bytes) { return format("%.1f", bytes / (1024.0 * 1024.0)); }

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
  md << "\n| method | ACC | BWT | forgetting | FWT | class-IL ACC | task-inferred ACC |\n"
        "|---|---|---|---|---|---|---|\n";
  for (const MethodSummary& s : methods)
    md << "| " << s.method << " | " << mean_and_spread("%.4f", s.acc) << " | " << mean_and_spread("%+.4f", s.bwt)
       << " | " << mean_and_spread("%.4f", s.forgetting) << " | " << mean_and_spread("%+.4f", s.fwt) << " | "
       << mean_and_spread("%.4f", s.class_il_acc) << " | " << mean_and_spread("%.4f", s.class_il_task_inferred_acc)
       << " |\n";
  md << "\nACC: mean accuracy over all tasks after the last one, with the task id. BWT: mean change of each "
        "earlier task's accuracy from right after it was learnt to the end (0 = no forgetting). Forgetting: mean "
        "drop from each earlier task's best accuracy to its final one. FWT: mean over tasks 2.. of the task's "
        "accuracy once begun, before its first training step (its head block fresh), minus that of the same "
        "network untrained. Class-IL ACC: the final network without the task id, argmax over every class (– where "
        "the path depends on the task). Task-inferred ACC: without the task id, each image given to the task "
        "whose path is most confident (highest softmax over its own classes). ± : sample standard deviation over "
        "seeds (n - 1 in the denominator); – alone: n/a.\n";
  md << "\n| method | base params | new params per later task | total params | growth per task | "
        "new bytes per later task | stored bytes | s/epoch | seconds | peak memory MiB |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const MethodSummary& s : methods) {
    const ParamCounts& p = s.params;
    const int64_t per_task = new_params_per_later_task(p);
    double seconds = 0;
    for (const MeanStd& m : s.seconds_per_task) seconds += m.mean;
    const double device_bytes = s.peak_device_memory_bytes.mean;
    md << "| " << s.method << " | " << thousands(p.base) << " | " << thousands(per_task) << " | "
       << thousands(p.total) << " | "
       << format("%.1f%%", p.base > 0 ? 100.0 * static_cast<double>(per_task) / static_cast<double>(p.base) : 0)
       << " | " << thousands(new_bytes_per_later_task(p)) << " | " << thousands(p.stored_bytes) << " | "
       << (s.train_seconds_per_epoch ? format("%.2f", s.train_seconds_per_epoch->mean) : "–") << " | "
       << format("%.0f", seconds) << " | " << mebibytes(s.peak_memory_bytes.mean)
       << (device_bytes > 0 ? " (device " + mebibytes(device_bytes) + ")" : "") << " |\n";
  }
  md << "\nNew params per later task: parameters trained and stored for each task after the first (mean); "
        "growth is that as a share of the base network. New bytes per later task: what each later task adds to "
        "what is stored, parameters and a method's values (EWC's Fisher and anchors) as float32 and data "
        "(replay's images); stored bytes: all of it after the last task. s/epoch: seconds of the training passes "
        "per epoch (validation excluded), mean over every epoch of every task. Seconds: mean over seeds of the "
        "time spent on all tasks. Peak memory: the process's peak resident set (and the device's peak of tensors "
        "with --device cuda) during a cell, mean over seeds.\n";
  return md.str();
}

std::string metrics_csv(const std::vector<MethodSummary>& methods) {
  std::ostringstream csv;
  csv << "method,seed,tasks,acc,bwt,forgetting,seconds,base_params,new_params_per_later_task,total_params,fwt,"
         "class_il_acc,class_il_task_inferred_acc,train_seconds_per_epoch,new_bytes_per_later_task,stored_bytes,"
         "peak_memory_bytes,peak_device_memory_bytes\n";
  for (const MethodSummary& s : methods)
    for (const CellResult& run : s.runs)
      csv << s.method << ',' << run.seed << ',' << run.accuracy_matrix.size() << ','
          << format("%.6f", average_accuracy(run.accuracy_matrix)) << ','
          << format("%.6f", backward_transfer(run.accuracy_matrix)) << ','
          << format("%.6f", forgetting(run.accuracy_matrix)) << ',' << format("%.3f", total_seconds(run)) << ','
          << run.params.base << ',' << new_params_per_later_task(run.params) << ',' << run.params.total << ','
          << csv_value("%.6f", forward_transfer(run.accuracy_before_training, run.untrained_accuracy)) << ','
          << csv_value("%.6f", run.class_il_acc) << ',' << csv_value("%.6f", run.class_il_task_inferred_acc) << ','
          << csv_value("%.4f", train_seconds_per_epoch(run.curves)) << ','
          << new_bytes_per_later_task(run.params) << ',' << run.params.stored_bytes << ','
          << run.peak_memory_bytes << ',' << run.peak_device_memory_bytes << '\n';
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
         "new_method_values,new_data_bytes,cumulative_stored_bytes,train_seconds_per_epoch,peak_memory_bytes,"
         "peak_device_memory_bytes\n";
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
          << p.method_values_per_task[t] << ',' << p.data_bytes_per_task[t] << ',' << stored_bytes << ','
          << (s.train_seconds_per_epoch_per_task.empty() ? ""
                                                          : format("%.4f", s.train_seconds_per_epoch_per_task[t].mean))
          << ',' << format("%.0f", s.peak_memory_bytes.mean) << ',' << format("%.0f", s.peak_device_memory_bytes.mean)
          << '\n';
    }
  }
  return csv.str();
}

std::string write_reports(const std::filesystem::path& out_dir, const std::string& title, const json& config,
                          const json& dataset, const std::vector<MethodSummary>& methods) {
  std::filesystem::create_directories(out_dir);
  // The GPU of this process, which merges: the cells' own provenance names theirs.
  const json provenance = experiments::provenance_json(experiments::parse_device(config.value("device", "cpu")).device);
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
