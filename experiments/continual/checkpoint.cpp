#include "experiments/continual/checkpoint.h"

#include <stdexcept>

namespace continual {

namespace {
constexpr const char* kProgress = "progress";
const std::pair<const char*, engine::NamedTensors Checkpoint::*> kGroups[] = {
    {"model.", &Checkpoint::model}, {"best.", &Checkpoint::best}, {"optim.", &Checkpoint::optimizer}};
}  // namespace

std::filesystem::path checkpoint_file(const std::filesystem::path& out_dir, const std::string& cell) {
  return out_dir / "checkpoints" / (cell + ".npz");
}

std::filesystem::path model_dir(const std::filesystem::path& out_dir, const std::string& cell) {
  return out_dir / "models" / cell;
}

std::filesystem::path task_model_file(const std::filesystem::path& out_dir, const std::string& cell,
                                      int64_t task_number) {
  return model_dir(out_dir, cell) / ("task-" + std::to_string(task_number) + ".npz");
}

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint) {
  std::filesystem::create_directories(path.parent_path());
  engine::NamedArrays arrays;
  const std::string text = checkpoint.progress.dump();
  arrays.push_back({kProgress, {"|u1", {static_cast<int64_t>(text.size())}, {text.begin(), text.end()}}});
  for (const auto& [prefix, group] : kGroups)
    for (const auto& [name, tensor] : checkpoint.*group) arrays.push_back({prefix + name, engine::to_npy(tensor)});
  engine::save_npz(path, arrays);
}

std::optional<Checkpoint> load_checkpoint(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  Checkpoint checkpoint;
  bool has_progress = false;
  for (auto& [name, array] : engine::read_npz(path)) {
    if (name == kProgress) {
      try {
        checkpoint.progress = nlohmann::json::parse(array.bytes.begin(), array.bytes.end());
      } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(path.string() + ": progress record damaged: " + e.what());
      }
      has_progress = true;
      continue;
    }
    bool known = false;
    for (const auto& [prefix, group] : kGroups)
      if (name.starts_with(prefix)) {
        (checkpoint.*group).push_back({name.substr(std::string(prefix).size()), engine::to_tensor(array)});
        known = true;
        break;
      }
    if (!known) throw std::runtime_error(path.string() + ": unexpected entry '" + name + "'");
  }
  if (!has_progress) throw std::runtime_error(path.string() + ": no progress record (not a checkpoint of continual)");
  return checkpoint;
}

}  // namespace continual
