#include "experiments/continual/learners/replay.h"

#include <algorithm>
#include <stdexcept>

#include "engine/ops.h"
#include "engine/random.h"
#include "engine/splitmix64.h"

namespace continual {

using engine::Tensor;

namespace {

constexpr uint64_t kMemoryStream = 0x6d656d6f7279ULL;  // "memory": class streams
constexpr uint64_t kDrawStream = 0x6472617773ULL;      // "draws": batches from memory

}  // namespace

std::vector<int64_t> fill_replay_memory(const TaskData& data, int64_t tasks_seen, int64_t capacity, uint64_t seed) {
  std::vector<int64_t> classes;
  for (int64_t t = 0; t < tasks_seen; ++t)
    for (int64_t c : data.split.tasks[t].classes) classes.push_back(c);
  std::vector<int64_t> memory;
  if (classes.empty()) return memory;
  const int64_t share = capacity / static_cast<int64_t>(classes.size());
  const int64_t remainder = capacity % static_cast<int64_t>(classes.size());
  int64_t class_index = 0;
  for (int64_t t = 0; t < tasks_seen; ++t) {
    for (int64_t c : data.split.tasks[t].classes) {
      const size_t slots = static_cast<size_t>(share + (class_index++ < remainder ? 1 : 0));
      engine::Generator gen(engine::splitmix64(engine::splitmix64(seed ^ kMemoryStream) + static_cast<uint64_t>(c)));
      std::vector<int64_t> reservoir;
      uint64_t seen = 0;
      for (int64_t i : data.split.tasks[t].train) {
        if (data.data.train.labels[static_cast<size_t>(i)] != c) continue;
        if (reservoir.size() < slots) {
          reservoir.push_back(i);
        } else if (const uint64_t j = gen.below(seen + 1); j < slots) {
          reservoir[j] = i;
        }
        ++seen;
      }
      memory.insert(memory.end(), reservoir.begin(), reservoir.end());
    }
  }
  return memory;
}

Replay::Replay(std::unique_ptr<Learner> base, const TaskData& data, int64_t capacity, uint64_t seed)
    : WrappedLearner(std::move(base)), data_(data), capacity_(capacity), seed_(seed) {
  if (capacity < 0) throw std::invalid_argument("--memory: must be >= 0");
}

std::vector<Tensor> Replay::begin_task(int64_t task, const std::vector<int64_t>& classes) {
  memory_ = fill_replay_memory(data_, task, capacity_, seed_);
  memory_task_.clear();
  for (int64_t i : memory_)
    for (int64_t t = 0; t < task; ++t) {
      const std::vector<int64_t>& c = data_.split.tasks[t].classes;
      if (std::find(c.begin(), c.end(), data_.data.train.labels[static_cast<size_t>(i)]) != c.end())
        memory_task_.push_back(t);
    }
  if (!memory_.empty()) {
    // The memory's images once, as training batches see them (normalised, no augmentation).
    datasets::LoaderOptions options;
    options.batch_size = static_cast<int64_t>(memory_.size());
    options.shuffle = false;
    options.normalization = data_.stats;
    options.label_map = data_.label_positions;
    options.prefetch = false;
    datasets::BatchLoader loader(data_.data.train, memory_, options);
    const datasets::Batch all = loader.make_batch(0, 0);
    memory_images_ = all.images;
    memory_positions_ = all.labels;
  }
  memory_bytes_.push_back(memory_bytes());
  return base().begin_task(task, classes);
}

NewParams Replay::new_params(int64_t task) const {
  NewParams p = base().new_params(task);
  const size_t t = static_cast<size_t>(task);
  p.data_bytes = memory_bytes_.at(t) - (t > 0 ? memory_bytes_.at(t - 1) : 0);
  return p;
}

Tensor Replay::extra_loss(const Tensor& images, [[maybe_unused]] const Tensor& logits, int64_t task) {
  if (memory_.empty()) return {};
  // Draw n images without replacement (a partial Fisher-Yates shuffle), then
  // order them by task so each task's rows are one slice.
  const int64_t m = static_cast<int64_t>(memory_.size());
  const int64_t n = std::min(images.dim(0), m);
  engine::Generator gen(engine::splitmix64(engine::splitmix64(seed_ ^ kDrawStream) + draws_++));
  std::vector<int64_t> order(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i < n; ++i) std::swap(order[i], order[i + static_cast<int64_t>(gen.below(m - i))]);
  order.resize(static_cast<size_t>(n));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return memory_task_[a] < memory_task_[b]; });

  std::vector<Tensor> rows;
  std::vector<int64_t> positions;
  for (int64_t i : order) {
    rows.push_back(engine::slice(memory_images_, 0, i, i + 1));
    positions.push_back(memory_positions_[static_cast<size_t>(i)]);
  }
  const Tensor drawn = engine::concat(rows, 0).to(images.device());
  const Tensor drawn_logits = forward(drawn, task, true);
  Tensor total;
  for (int64_t start = 0; start < n;) {
    const int64_t t = memory_task_[static_cast<size_t>(order[start])];
    int64_t end = start;
    while (end < n && memory_task_[static_cast<size_t>(order[end])] == t) ++end;
    // Mean over the drawn images: each task's mean weighs by its share.
    const Tensor term = engine::mul_scalar(
        engine::cross_entropy(engine::slice(drawn_logits, 0, start, end),
                              std::span<const int64_t>(positions.data() + start, static_cast<size_t>(end - start)),
                              class_mask(t)),
        static_cast<double>(end - start) / static_cast<double>(n));
    total = total.defined() ? engine::add(total, term) : term;
    start = end;
  }
  return total;
}

std::vector<std::pair<std::string, uint64_t>> Replay::counters() const {
  std::vector<std::pair<std::string, uint64_t>> all = base().counters();
  all.push_back({"replay.draws", draws_});
  return all;
}

void Replay::load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) {
  std::vector<std::pair<std::string, uint64_t>> network;
  for (const auto& [name, value] : counters) {
    if (name == "replay.draws") draws_ = value;
    else network.push_back({name, value});
  }
  base().load_counters(network);
}

int64_t Replay::memory_bytes() const {
  return static_cast<int64_t>(memory_.size()) * data_.data.train.image_bytes();
}

}  // namespace continual
