// The files a finished sweep leaves in --out: results.json, summary.md,
// metrics.csv, accuracy_matrix.csv, params.csv and the figures (figures.h),
// all built from the per-method summaries of aggregate.h and written
// atomically. Tasks are numbered from 1 in every file (JSON arrays excepted:
// their element 0 is task 1). A spread over seeds is the sample standard
// deviation, given only where there are two seeds or more (null in JSON, a
// dash in Markdown otherwise).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/continual/aggregate.h"

namespace continual {

// {"provenance": provenance, "config": config, "dataset": dataset,
//  "methods": {"<method>": {"seeds": n, "runs": [...], "mean": {...}, "sample_std": {...}}}};
// runs as cell_result.h's to_json.
nlohmann::json results_json(const nlohmann::json& config, const nlohmann::json& dataset,
                            const std::vector<MethodSummary>& methods,
                            const nlohmann::json& provenance = nlohmann::json::object());

// Markdown: the title, the provenance (provenance.h's record), a per-task table
// like the study's Table 4 (final accuracy and epochs, per method), then per
// method ACC, BWT, forgetting, FWT and the class-incremental accuracies, and
// the costs: parameter and byte growth, seconds per epoch, peak memory.
// n/a values are a dash.
std::string summary_markdown(const std::string& title, const std::vector<MethodSummary>& methods,
                             const nlohmann::json& provenance = nlohmann::json::object());

// One line per (method, seed): ACC, BWT, forgetting, seconds, parameters,
// FWT, class-incremental accuracies, seconds per epoch, stored bytes and peak
// memory; an n/a value is an empty field.
std::string metrics_csv(const std::vector<MethodSummary>& methods);
// Long format, one line per (method, seed, after_task, task).
std::string accuracy_matrix_csv(const std::vector<MethodSummary>& methods);
// One line per (method, task): new and cumulative parameters, total and by
// part, method values, data and stored bytes, the task's training seconds per
// epoch (mean over seeds; empty where not recorded) and the method's peak
// memory (mean over seeds, on every line of the method).
std::string params_csv(const std::vector<MethodSummary>& methods);

// Writes all of the above and the figures into out_dir, with the provenance of
// this process (the device named by config["device"]). Returns the Markdown.
std::string write_reports(const std::filesystem::path& out_dir, const std::string& title,
                          const nlohmann::json& config, const nlohmann::json& dataset,
                          const std::vector<MethodSummary>& methods);

}  // namespace continual
