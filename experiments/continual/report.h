// The files a finished sweep leaves in --out: results.json, summary.md,
// accuracy_matrix.csv, params.csv and the plots (figures.h), all built from
// the per-method summaries of aggregate.h and written atomically.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/continual/aggregate.h"

namespace continual {

// {"config": config, "dataset": dataset, "methods": {"<method>": {"runs": [...],
// "mean": {...}, "std": {...}}}}; runs as cell_result.h's to_json.
nlohmann::json results_json(const nlohmann::json& config, const nlohmann::json& dataset,
                            const std::vector<MethodSummary>& methods);

// Markdown: a per-task table like the study's Table 4 (final accuracy mean ± std
// and epochs, per method), then ACC, BWT, forgetting and parameter growth per
// method. `title` heads it (the setting in words).
std::string summary_markdown(const std::string& title, const std::vector<MethodSummary>& methods);

// Long format, one line per (method, seed, after_task, task).
std::string accuracy_matrix_csv(const std::vector<MethodSummary>& methods);
// One line per (method, task): new and cumulative parameters, total and by part.
std::string params_csv(const std::vector<MethodSummary>& methods);

// Writes all of the above and the plots into out_dir. Returns the Markdown.
std::string write_reports(const std::filesystem::path& out_dir, const std::string& title,
                          const nlohmann::json& config, const nlohmann::json& dataset,
                          const std::vector<MethodSummary>& methods);

}  // namespace continual
