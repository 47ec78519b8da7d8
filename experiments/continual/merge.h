// Combining a sweep's cell files into its reports. Every process of a sweep
// (the only one, or each shard) writes --out/sweep.json describing the whole
// sweep: configuration, setting, data set and the list of cells in order.
// merge_sweep() reads it and every cell file, checks that each listed cell is
// there exactly once and of the same setting, and writes results.json,
// summary.md, the CSVs and the plots: the same files a single process writes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/continual/sweep.h"

namespace continual {

struct SweepRecord {
  nlohmann::json config;
  nlohmann::json setting;
  nlohmann::json dataset;
  std::string title;  // heads summary.md
  std::vector<std::string> methods;
  std::vector<Cell> cells;
};

void write_sweep_record(const std::filesystem::path& out_dir, const SweepRecord& record);
// Throws std::runtime_error naming the file when it is missing or malformed.
SweepRecord read_sweep_record(const std::filesystem::path& out_dir);

// Names of the listed cells whose result file is not there yet.
std::vector<std::string> unfinished_cells(const std::filesystem::path& out_dir, const SweepRecord& record);

// Writes the reports of a finished sweep and returns summary.md's text.
// Throws std::runtime_error naming a missing cell, a cell file holding another
// cell than its name says, or one of another setting.
std::string merge_sweep(const std::filesystem::path& out_dir);

}  // namespace continual
