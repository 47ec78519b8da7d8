#include "experiments/continual/cell_result.h"

#include <stdexcept>

#include "engine/io.h"

namespace continual {

using nlohmann::json;

std::string cell_name(const std::string& method, uint64_t seed) {
  return method + "-seed" + std::to_string(seed);
}

json to_json(const CellResult& cell) {
  json curves = json::array();
  for (const TaskCurve& c : cell.curves)
    curves.push_back({{"train_loss", c.train_loss},
                      {"val_accuracy", c.val_accuracy},
                      {"best_epoch", c.best_epoch},
                      {"train_seconds", c.train_seconds},
                      {"eval_seconds", c.eval_seconds}});
  const ParamCounts& p = cell.params;
  const auto or_null = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return {
      {"method", cell.method},
      {"seed", cell.seed},
      {"rank", cell.rank},
      {"accuracy_split", cell.accuracy_split},
      {"accuracy_matrix", cell.accuracy_matrix},
      {"validation_matrix", cell.validation_matrix},
      {"acc", average_accuracy(cell.accuracy_matrix)},
      {"bwt", backward_transfer(cell.accuracy_matrix)},
      {"forgetting", forgetting(cell.accuracy_matrix)},
      {"fwt", or_null(forward_transfer(cell.accuracy_before_training, cell.untrained_accuracy))},
      {"accuracy_before_training", cell.accuracy_before_training},
      {"untrained_accuracy", cell.untrained_accuracy},
      {"class_il_acc", or_null(cell.class_il_acc)},
      {"class_il_task_inferred_acc", or_null(cell.class_il_task_inferred_acc)},
      {"params",
       {{"base", p.base},
        {"new_per_task", p.new_per_task},
        {"new_conv_per_task", p.new_conv_per_task},
        {"new_classifier_per_task", p.new_classifier_per_task},
        {"trained_per_task", p.trained_per_task},
        {"total", p.total},
        {"conv", p.conv},
        {"classifier", p.classifier},
        {"method_values_per_task", p.method_values_per_task},
        {"data_bytes_per_task", p.data_bytes_per_task},
        {"stored_bytes", p.stored_bytes}}},
      {"epochs_per_task", cell.epochs_per_task},
      {"seconds_per_task", cell.seconds_per_task},
      {"curves", curves},
      {"peak_memory_bytes", cell.peak_memory_bytes},
      {"provenance", cell.provenance},
      {"peak_device_memory_bytes", cell.peak_device_memory_bytes},
      {"model_bytes_per_task", cell.model_bytes_per_task},
  };
}

namespace {

// j.at(key) with the key named in the error.
const json& field(const json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key)) throw std::runtime_error("cell result: missing key \"" + key + "\"");
  return j.at(key);
}

// For keys added later: cells written before them read as `fallback`.
template <class T>
T get_or(const json& j, const std::string& key, T fallback) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw std::runtime_error("cell result: key \"" + key + "\" malformed: " + e.what());
  }
}

template <class T>
T get(const json& j, const std::string& key) {
  try {
    return field(j, key).get<T>();
  } catch (const json::exception& e) {
    throw std::runtime_error("cell result: key \"" + key + "\" malformed: " + e.what());
  }
}

// A number that may be null (n/a) or absent (cells written before it).
std::optional<double> optional_number(const json& j, const std::string& key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  if (!j.at(key).is_number()) throw std::runtime_error("cell result: key \"" + key + "\" is neither a number nor null");
  return j.at(key).get<double>();
}

}  // namespace

CellResult cell_from_json(const json& j) {
  CellResult cell;
  cell.method = get<std::string>(j, "method");
  cell.seed = get<uint64_t>(j, "seed");
  cell.rank = get_or<int64_t>(j, "rank", 0);
  cell.accuracy_split = get<std::string>(j, "accuracy_split");
  cell.accuracy_matrix = get<AccuracyMatrix>(j, "accuracy_matrix");
  cell.validation_matrix = get<AccuracyMatrix>(j, "validation_matrix");
  check_accuracy_matrix(cell.accuracy_matrix);
  check_accuracy_matrix(cell.validation_matrix);
  const json& p = field(j, "params");
  cell.params.base = get<int64_t>(p, "base");
  cell.params.new_per_task = get<std::vector<int64_t>>(p, "new_per_task");
  cell.params.new_conv_per_task = get<std::vector<int64_t>>(p, "new_conv_per_task");
  cell.params.new_classifier_per_task = get<std::vector<int64_t>>(p, "new_classifier_per_task");
  cell.params.trained_per_task = get_or<std::vector<int64_t>>(p, "trained_per_task", {});
  cell.params.total = get<int64_t>(p, "total");
  cell.params.conv = get<int64_t>(p, "conv");
  cell.params.classifier = get<int64_t>(p, "classifier");
  cell.params.method_values_per_task = get<std::vector<int64_t>>(p, "method_values_per_task");
  cell.params.data_bytes_per_task = get<std::vector<int64_t>>(p, "data_bytes_per_task");
  cell.params.stored_bytes = get<int64_t>(p, "stored_bytes");
  cell.epochs_per_task = get<std::vector<int64_t>>(j, "epochs_per_task");
  cell.seconds_per_task = get<std::vector<double>>(j, "seconds_per_task");
  for (const json& c : field(j, "curves"))
    cell.curves.push_back({get<std::vector<double>>(c, "train_loss"), get<std::vector<double>>(c, "val_accuracy"),
                           get<int64_t>(c, "best_epoch"), get_or<std::vector<double>>(c, "train_seconds", {}),
                           get_or<std::vector<double>>(c, "eval_seconds", {})});
  cell.peak_memory_bytes = get<int64_t>(j, "peak_memory_bytes");
  // Optional: cells written before provenance was recorded have none.
  if (j.contains("provenance")) cell.provenance = j.at("provenance");
  cell.peak_device_memory_bytes = get_or<int64_t>(j, "peak_device_memory_bytes", 0);
  cell.model_bytes_per_task = get_or<std::vector<int64_t>>(j, "model_bytes_per_task", {});
  cell.accuracy_before_training = get_or<std::vector<double>>(j, "accuracy_before_training", {});
  cell.untrained_accuracy = get_or<std::vector<double>>(j, "untrained_accuracy", {});
  cell.class_il_acc = optional_number(j, "class_il_acc");
  cell.class_il_task_inferred_acc = optional_number(j, "class_il_task_inferred_acc");
  return cell;
}

std::filesystem::path cell_file(const std::filesystem::path& out_dir, const std::string& name) {
  return out_dir / "cells" / (name + ".json");
}

void write_cell_file(const std::filesystem::path& path, const CellResult& cell, const json& setting) {
  std::filesystem::create_directories(path.parent_path());
  const std::string text = json{{"setting", setting}, {"result", to_json(cell)}}.dump(1);
  engine::write_file_atomic(path, text);
}

std::optional<CellResult> read_cell_file(const std::filesystem::path& path, const json& setting) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  const std::vector<char> bytes = engine::read_file(path);
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
  if (!j.contains("setting") || j.at("setting") != setting)
    throw std::runtime_error(path.string() +
                             ": written by a run with a different setting (data set, architecture or "
                             "training flags); use another --out or delete the file");
  try {
    return cell_from_json(field(j, "result"));
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

}  // namespace continual
