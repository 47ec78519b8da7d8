// continual: the continual-learning experiment runner. Trains each method on
// a sequence of tasks split from one data set and reports how much each one
// forgets and what it costs in parameters and time (see --help).
//
//   continual [flags]            run the sweep (methods x seeds), or this shard of it
//   continual merge OUT_DIR      combine the cell files of a sharded sweep
//   continual evaluate OUT_DIR   re-evaluate the kept models of a finished run
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "experiments/common/cli.h"
#include "experiments/common/provenance.h"
#include "experiments/continual/config.h"
#include "experiments/continual/evaluate.h"
#include "experiments/continual/merge.h"
#include "experiments/continual/progress.h"
#include "experiments/continual/run.h"
#include "experiments/common/tool.h"

int main(int argc, char** argv) {
  using namespace continual;
  experiments::record_invocation(argc, argv);  // command line and start time for results.json
  CLI::App app{
      "continual: trains methods against catastrophic forgetting on a sequence of tasks split from one data set "
      "(task-incremental: the task id is known at test time) and writes the accuracy matrix, ACC, BWT, "
      "forgetting, parameter growth, tables and plots to --out."};
  experiments::add_standard_options(app, "continual",
                                    "continual --method naive,lora,sena --seeds 0,1 --out runs/try; continual merge runs/try");
  RunConfig config;
  add_flags(app, config);
  std::filesystem::path merge_dir;
  CLI::App* merge = app.add_subcommand("merge", "combine the cell files of a sharded sweep in OUT_DIR into "
                                                "results.json, summary.md, CSVs and plots");
  merge->add_option("OUT_DIR", merge_dir, "the --out directory of the shards")->required();
  std::filesystem::path evaluate_dir;
  CLI::App* evaluate = app.add_subcommand(
      "evaluate", "reload the kept models (OUT_DIR/models/<cell>/task-N.npz) of every finished cell, evaluate "
                  "every task again on the run's data, and compare with the run's last accuracy row "
                  "(writes OUT_DIR/evaluation.json); e.g. continual evaluate runs/continual");
  evaluate->add_option("OUT_DIR", evaluate_dir, "the --out directory of the run")->required();
  return tool::run_main("continual", app, argc, argv, [&] {
    if (merge->parsed()) {
      std::cout << merge_sweep(merge_dir) << "\nresults in " << merge_dir.string() << "\n";
    } else if (evaluate->parsed()) {
      for (const EvaluatedCell& cell : evaluate_run(evaluate_dir, std::cerr)) {
        std::cout << cell.cell << (cell.identical() ? "" : " (differs from the run)") << ":";
        for (double a : cell.accuracy) std::cout << " " << a;
        std::cout << "\n";
      }
    } else {
      run_sweep(config, std::cout, std::cerr, progress_on_terminal());
    }
    return 0;
  });
}
