// The plots of a rank sweep (--rank 1,3,9,12), beside the other figures in --out:
//   rank_accuracy.{png,svg,pdf}  average accuracy (ACC, mean over seeds) against the conv adapter rank r
//   rank_params.{png,svg,pdf}    parameters the last task trained (its adapters, batch-norm copies and
//                      head) against r; with --tasks 1 and --adapt-first-task, the first task's
// One line per adapter method. Written only when some method ran with two ranks or more.
#pragma once

#include <filesystem>
#include <vector>

#include "experiments/continual/aggregate.h"

namespace continual {

void write_rank_figures(const std::filesystem::path& out_dir, const std::vector<MethodSummary>& methods);

}  // namespace continual
