// The plots of a sweep, written as PNG files into --out:
//   heatmap_<method>.png        mean accuracy matrix R (rows: after task i, columns: task j)
//   task_accuracy_<method>.png  accuracy of each task over the rest of the sequence
//   params_growth.png           cumulative parameters stored after each task, per method
//   params_parts.png            the same split into conv and classifier parts (the study's Figure 6)
#pragma once

#include <filesystem>
#include <vector>

#include "experiments/continual/aggregate.h"

namespace continual {

void write_figures(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods);

}  // namespace continual
