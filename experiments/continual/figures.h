// The figures of a sweep, each written into --out as <name>.png (raster),
// <name>.svg and <name>.pdf (vector) from the same drawing (plot.h):
//   acc_vs_params               the study's headline: final ACC of every method against the
//                               parameters it adds per task after the first (log x), error
//                               bars ± the sample standard deviation where there are 2+ seeds
//   heatmap_<method>            mean accuracy matrix R (rows: after task i, columns: task j)
//   task_accuracy_<method>      accuracy of each task over the rest of the sequence
//   params_growth               cumulative parameters stored after each task, per method (log y)
//   stored_bytes                cumulative bytes stored after each task, per method: parameters and
//                               method values as float32, and data (log y)
//   params_parts                the same split into conv and classifier parts, side by side
//                               (log y; the study's Figure 6)
// Every accuracy axis spans the same range in all figures of a sweep, so
// methods compare by eye; tasks are numbered from 1.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "experiments/continual/aggregate.h"

namespace continual {

// "lora" -> "LoRA + ConvLoRA", ...: the name a reader of a figure knows the
// method by; unknown names come back unchanged.
std::string display_name(const std::string& method);

// The stems (file names without extension) write_figures writes for `methods`.
std::vector<std::string> figure_names(const std::vector<MethodSummary>& methods);

void write_figures(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods);

}  // namespace continual
