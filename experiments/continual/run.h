// Running a sweep: every cell (method x seed) of this process's shard, each
// skipped when its result file is already there, then the reports once every
// cell of the sweep has finished (or a pointer to `continual merge`).
// With --data-parallel under mpirun, the ranks train every cell together and
// only rank 0 writes; an error on any rank ends them all (exit code 1).
#pragma once

#include <ostream>
#include <stdexcept>

#include "experiments/continual/config.h"

namespace continual {

// Flag values that cannot work (the program exits with code 2, as for parse errors).
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Prints the summary table to `out` when the sweep is complete; progress and
// messages go to `log` (a bar when `terminal`). Throws UsageError for bad
// flags and std::runtime_error for failures.
void run_sweep(const RunConfig& config, std::ostream& out, std::ostream& log, bool terminal);

}  // namespace continual
