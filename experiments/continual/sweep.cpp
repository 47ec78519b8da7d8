#include "experiments/continual/sweep.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "experiments/continual/config.h"

namespace continual {

std::vector<Cell> sweep_cells(const std::vector<std::string>& methods, const std::vector<uint64_t>& seeds,
                              const std::vector<int64_t>& ranks) {
  std::vector<Cell> cells;
  for (const std::string& method : methods) {
    const bool swept = ranks.size() > 1 && is_adapter_method(method);
    for (int64_t rank : swept ? ranks : std::vector<int64_t>{0})
      for (uint64_t seed : seeds) cells.push_back({method, seed, rank});
  }
  return cells;
}

std::vector<std::string> cell_labels(const std::vector<Cell>& cells) {
  std::vector<std::string> labels;
  for (const Cell& cell : cells)
    if (std::find(labels.begin(), labels.end(), cell.label()) == labels.end()) labels.push_back(cell.label());
  return labels;
}

namespace {

int64_t parse_count(const std::string& text, const std::string& what) {
  size_t used = 0;
  int64_t value = -1;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < 0)
    throw std::invalid_argument(what + ": \"" + text + "\" is not a non-negative integer");
  return value;
}

Shard make_shard(int64_t index, int64_t count, const std::string& source) {
  if (count < 1 || index < 0 || index >= count)
    throw std::invalid_argument(source + ": shard " + std::to_string(index) + "/" + std::to_string(count) +
                                " is not I/N with 0 <= I < N");
  return {index, count, source};
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) throw std::invalid_argument("--shard: \"" + text + "\" is not I/N");
  return make_shard(parse_count(text.substr(0, slash), "--shard"), parse_count(text.substr(slash + 1), "--shard"),
                    "--shard " + text);
}

Shard resolve_shard(const std::optional<std::string>& flag, const EnvLookup& getenv) {
  if (flag) return parse_shard(*flag);
  if (auto id = getenv("SLURM_ARRAY_TASK_ID")) {
    const auto count = getenv("SLURM_ARRAY_TASK_COUNT");
    if (!count) throw std::invalid_argument("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
    // Arrays may start anywhere (--array=1-8): the shard index counts from the minimum.
    const int64_t first = parse_count(getenv("SLURM_ARRAY_TASK_MIN").value_or("0"), "SLURM_ARRAY_TASK_MIN");
    const int64_t task = parse_count(*id, "SLURM_ARRAY_TASK_ID");
    return make_shard(task - first, parse_count(*count, "SLURM_ARRAY_TASK_COUNT"),
                      "Slurm job array (SLURM_ARRAY_TASK_ID=" + *id + ")");
  }
  const std::pair<const char*, const char*> mpi[] = {
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}, {"PMI_RANK", "PMI_SIZE"}, {"PMIX_RANK", "PMI_SIZE"}};
  for (const auto& [rank_name, size_name] : mpi) {
    const auto rank = getenv(rank_name);
    if (!rank) continue;
    const auto size = getenv(size_name);
    if (!size) throw std::invalid_argument(std::string(rank_name) + " is set but " + size_name + " is not");
    return make_shard(parse_count(*rank, rank_name), parse_count(*size, size_name),
                      std::string("MPI launch (") + rank_name + "=" + *rank + ", " + size_name + "=" + *size + ")");
  }
  return {};
}

std::optional<std::string> process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (!value) return std::nullopt;
  return std::string(value);
}

}  // namespace continual
