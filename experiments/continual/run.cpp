#include "experiments/continual/run.h"

#include <chrono>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <new>
#include <optional>

#include "engine/distributed.h"
#include "engine/io.h"
#include "engine/parallel.h"
#include "experiments/continual/cell_result.h"
#include "experiments/continual/checkpoint.h"
#include "experiments/continual/merge.h"
#include "experiments/continual/methods.h"
#include "experiments/continual/sweep.h"
#include "experiments/continual/task_data.h"
#include "experiments/continual/trainer.h"
#include "experiments/common/device.h"
#include "experiments/common/tool.h"

namespace continual {

namespace fs = std::filesystem;

namespace {

// A temporary file whose writer is gone and that has not changed for this long
// is a leftover of a killed run (engine::remove_abandoned_temporaries).
constexpr std::chrono::seconds kAbandonedAfter{60};

std::string sweep_title(const RunConfig& c, const TaskData& data) {
  return "Split " + c.dataset + ", " + std::to_string(data.split.tasks.size()) + " tasks, " + c.arch + ", " +
         std::to_string(c.seeds.size()) + (c.seeds.size() == 1 ? " seed" : " seeds") + ", " + data.eval_split() +
         " accuracy";
}

// The ranks of a data-parallel run share every cell, so an MPI launch does not
// shard it: only --shard or a Slurm job array (one data-parallel job per shard).
std::optional<std::string> env_without_mpi(const std::string& name) {
  return name.starts_with("SLURM_") ? process_env(name) : std::nullopt;
}

// Refuses, before anything is written, every cell that could not be built:
// each method's network (--arch, --init, --adapt against the network) and its
// first task, after an estimate of the memory its adapters need (--rank,
// --rank-fc) against the machine's.
void build_every_method_once(const RunConfig& c, const TaskData& data) {
  const auto tasks = static_cast<double>(data.split.tasks.size());
  for (const std::string& method : c.methods) {
    const std::string flags = "--method " + method + " (--arch " + c.arch + ", --adapt " + c.adapt +
                              (c.init.empty() ? "" : ", --init " + c.init.string()) + ")";
    const auto named = [&](const std::function<void()>& step) {
      try {
        step();
      } catch (const std::invalid_argument& e) {
        throw UsageError(flags + ": " + e.what());
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::exception& e) {
        throw std::runtime_error(flags + ": " + e.what());
      }
    };
    // The largest rank of the sweep bounds the memory of all of them.
    const int64_t rank = *std::max_element(c.ranks.begin(), c.ranks.end());
    std::unique_ptr<Learner> learner;
    named([&] { learner = make_learner(c, method, data, c.seeds.front(), rank); });
    // Upper bound: an adapter of --rank on every conv weight (OC,C,K,K):
    // rank*K*K*(OC+C), of --rank-fc on every dense one (OUT,IN): rank_fc*(OUT+IN);
    // per task stored, and with gradient, optimiser moments and best copy
    // (5 floats) for the task in training; the base network 5 times too.
    double base = 0, adapters = 0;
    for (const auto& [name, t] : learner->state()) {
      base += static_cast<double>(t.numel());
      const auto dim = [&](int64_t d) { return static_cast<double>(t.dim(d)); };
      if (t.ndim() == 4) adapters += static_cast<double>(rank) * dim(2) * dim(3) * (dim(0) + dim(1));
      if (t.ndim() == 2) adapters += static_cast<double>(c.rank_fc) * (dim(0) + dim(1));
    }
    tool::require_memory("--rank/--rank-fc", 4.0 * (5 * base + (tasks + 5) * adapters),
                         c.arch + " with adapters of these ranks on every layer for " +
                             std::to_string(data.split.tasks.size()) + " tasks");
    named([&] { learner->begin_task(0, data.split.tasks.front().classes); });
  }
}

void run_cells(const RunConfig& c, const Shard& shard, engine::Communicator& comm, std::ostream& out,
               std::ostream& log, bool terminal) {
  const bool writes = comm.rank() == 0;  // only rank 0 writes files and the summary
  const std::vector<Cell> cells = sweep_cells(c.methods, c.seeds, c.ranks);
  if (shard.count > 1) log << "shard " << shard.index << "/" << shard.count << " from " << shard.source << "\n";
  log << "reading " << c.dataset << "...\n" << std::flush;
  const TaskData data = load_task_data(c);
  log << c.dataset << ": " << data.split.tasks.size() << " tasks, " << data.data.train.size()
      << " training images; reporting " << data.eval_split() << " accuracy"
      << (data.split.has_test ? "" : " (the data set has no test split)") << "\n";
  build_every_method_once(c, data);
  if (writes)
    for (const fs::path& path : engine::remove_abandoned_temporaries(c.out, kAbandonedAfter))
      log << "removed " << path.string() << " (a temporary file of an interrupted run)\n";
  const nlohmann::json setting = setting_json(c);
  if (writes)
    write_sweep_record(c.out, {config_json(c), setting, data.identity, sweep_title(c, data), cell_labels(cells), cells});

  for (size_t i = 0; i < cells.size(); ++i) {
    if (!shard.contains(i)) continue;
    const Cell& cell = cells[i];
    const std::string name = cell_name(cell.label(), cell.seed);
    const fs::path file = cell_file(c.out, name);
    // Rank 0 decides, so that every rank takes the same branch.
    if (comm.allgather({writes && read_cell_file(file, setting) ? 1u : 0u})[0]) {
      log << name << ": finished earlier (" << file.string() << "), skipped\n";
      continue;
    }
    auto learner = make_learner(c, cell.method, data, cell.seed, cell.rank);
    const auto untrained = [&] { return make_learner(c, cell.method, data, cell.seed, cell.rank); };
    CellResult result =
        train_cell(c, data, *learner, {cell.label(), cell.seed, c.resume, &log, terminal, &comm, untrained});
    if (is_adapter_method(cell.method))
      result.rank = cell.rank == 0 ? c.ranks.front() : cell.rank;
    if (!writes) continue;
    write_cell_file(file, result, setting);
    fs::remove(checkpoint_file(c.out, name));
  }
  if (!writes) return;

  const std::vector<std::string> missing = unfinished_cells(c.out, read_sweep_record(c.out));
  if (!missing.empty()) {
    log << "this shard is done; " << missing.size() << " cell(s) of the sweep are still to run elsewhere. "
        << "When all shards have finished: continual merge " << c.out.string() << "\n";
    return;
  }
  out << merge_sweep(c.out) << "\nresults in " << c.out.string() << "\n";
}

}  // namespace

void run_sweep(const RunConfig& c, std::ostream& out, std::ostream& log, bool terminal) {
  Shard shard;
  try {
    validate(c);
    shard = resolve_shard(c.shard, c.data_parallel ? env_without_mpi : process_env);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  const engine::Device device = experiments::use_device(c.device, c.tf32);
  engine::set_num_threads(c.threads);
  const auto comm = c.data_parallel ? engine::make_communicator(device) : engine::make_single_process_communicator();
  if (comm->size() == 1) return run_cells(c, shard, *comm, out, log, terminal);
  std::ostream silent(nullptr);  // no buffer: discards the log of ranks other than 0
  log << "data parallel: " << comm->name() << "\n";
  try {
    run_cells(c, shard, *comm, out, comm->rank() == 0 ? log : silent, terminal);
  } catch (const std::exception& e) {
    // Unwinding would finalise MPI on this rank while the others wait in a
    // collective: end them all.
    log << "continual: rank " << comm->rank() << ": " << e.what() << "\n";
    comm->abort(1);
  }
}

}  // namespace continual
