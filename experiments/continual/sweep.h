// A sweep is a list of cells, one per (method, seed) of one setting, in a
// fixed order (method-major: every seed of the first method, then the next).
// With several adapter ranks (--rank 1,3,9) each adapter method runs once per
// rank, rank-major within the method, as its own "method" METHOD-rR; methods
// without adapters do not depend on the rank and run once.
// A shard I/N runs the cells whose index mod N is I, so independent processes
// (a Slurm job array, an MPI launch, or hand-started --shard runs) split a
// sweep without talking to each other.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace continual {

struct Cell {
  std::string method;
  uint64_t seed = 0;
  int64_t rank = 0;  // the adapter rank of a rank sweep's cell; 0 outside one (--rank's only value)
  // What reports group the cell under: the method, "lora-r9" in a rank sweep.
  std::string label() const { return rank == 0 ? method : method + "-r" + std::to_string(rank); }
};

// `ranks`: --rank's values; several make the adapter methods (lora, cp-lora) run once per rank.
std::vector<Cell> sweep_cells(const std::vector<std::string>& methods, const std::vector<uint64_t>& seeds,
                              const std::vector<int64_t>& ranks = {});
// The cells' labels, each once, in order: the "methods" the reports compare.
std::vector<std::string> cell_labels(const std::vector<Cell>& cells);

struct Shard {
  int64_t index = 0;
  int64_t count = 1;
  std::string source = "single process";  // where index and count came from, for the log
  bool contains(size_t cell_index) const { return static_cast<int64_t>(cell_index % count) == index; }
};

// "I/N" with 0 <= I < N. Throws std::invalid_argument quoting the text.
Shard parse_shard(const std::string& text);

// The shard to run: `flag` (--shard) when given; else a Slurm job array
// (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT); else an
// MPI launch (OMPI_COMM_WORLD_RANK/SIZE of Open MPI, PMI_RANK/PMI_SIZE of
// MPICH and Intel MPI, PMIX_RANK with PMI_SIZE); else the whole sweep.
// `getenv` is injectable for tests. Throws std::invalid_argument for
// malformed or inconsistent values, naming the variables.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
Shard resolve_shard(const std::optional<std::string>& flag, const EnvLookup& getenv);
std::optional<std::string> process_env(const std::string& name);

}  // namespace continual
