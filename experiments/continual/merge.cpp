#include "experiments/continual/merge.h"

#include <stdexcept>

#include "engine/io.h"
#include "experiments/continual/aggregate.h"
#include "experiments/continual/cell_result.h"
#include "experiments/continual/rank_figures.h"
#include "experiments/continual/report.h"

namespace continual {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
fs::path record_file(const fs::path& out_dir) { return out_dir / "sweep.json"; }
}  // namespace

void write_sweep_record(const fs::path& out_dir, const SweepRecord& r) {
  json cells = json::array();
  for (const Cell& cell : r.cells) {
    cells.push_back({{"method", cell.method}, {"seed", cell.seed}});
    if (cell.rank != 0) cells.back()["rank"] = cell.rank;  // only in rank sweeps: older records stay as they were
  }
  const json j = {{"config", r.config}, {"setting", r.setting}, {"dataset", r.dataset},
                  {"title", r.title},   {"methods", r.methods}, {"cells", cells}};
  fs::create_directories(out_dir);
  // Every shard writes the same text, so concurrent writers cannot disagree.
  engine::write_file_atomic(record_file(out_dir), j.dump(1) + "\n");
}

SweepRecord read_sweep_record(const fs::path& out_dir) {
  const fs::path path = record_file(out_dir);
  if (!fs::exists(path))
    throw std::runtime_error(path.string() + ": missing (not the --out of a continual run?)");
  const std::vector<char> bytes = engine::read_file(path);
  try {
    const json j = json::parse(bytes.begin(), bytes.end());
    SweepRecord r{j.at("config"), j.at("setting"), j.at("dataset"), j.at("title").get<std::string>(),
                  j.at("methods").get<std::vector<std::string>>(), {}};
    for (const json& cell : j.at("cells"))
      r.cells.push_back({cell.at("method"), cell.at("seed"), cell.value("rank", int64_t{0})});
    return r;
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": malformed: " + e.what());
  }
}

std::vector<std::string> unfinished_cells(const fs::path& out_dir, const SweepRecord& record) {
  std::vector<std::string> missing;
  for (const Cell& cell : record.cells) {
    const std::string name = cell_name(cell.label(), cell.seed);
    if (!fs::exists(cell_file(out_dir, name))) missing.push_back(name);
  }
  return missing;
}

std::string merge_sweep(const fs::path& out_dir) {
  const SweepRecord record = read_sweep_record(out_dir);
  const std::vector<std::string> missing = unfinished_cells(out_dir, record);
  if (!missing.empty()) {
    std::string list;
    for (const std::string& name : missing) list += " " + name;
    throw std::runtime_error("merge " + out_dir.string() + ": " + std::to_string(missing.size()) +
                             " cell(s) not finished:" + list + " (their shards have not run or failed)");
  }
  std::vector<CellResult> cells;
  for (const Cell& cell : record.cells) {
    const std::string name = cell_name(cell.label(), cell.seed);
    const fs::path path = cell_file(out_dir, name);
    CellResult result = *read_cell_file(path, record.setting);
    if (result.method != cell.label() || result.seed != cell.seed)
      throw std::runtime_error(path.string() + ": holds cell " + cell_name(result.method, result.seed) +
                               ", expected " + name);
    for (const CellResult& earlier : cells)
      if (earlier.method == result.method && earlier.seed == result.seed)
        throw std::runtime_error("merge " + out_dir.string() + ": cell " + name + " is listed twice in sweep.json");
    cells.push_back(std::move(result));
  }
  const std::vector<MethodSummary> summaries = summarise(record.methods, cells);
  const std::string summary = write_reports(out_dir, record.title, record.config, record.dataset, summaries);
  write_rank_figures(out_dir, summaries);
  return summary;
}

}  // namespace continual
