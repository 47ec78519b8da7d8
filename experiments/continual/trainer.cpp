#include "experiments/continual/trainer.h"

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>

#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/splitmix64.h"
#include "experiments/continual/checkpoint.h"
#include "experiments/continual/peak_memory.h"
#include "experiments/continual/progress.h"

namespace continual {

using engine::Tensor;
using nlohmann::json;

uint64_t task_stream(uint64_t seed, uint64_t purpose, int64_t task) {
  return engine::splitmix64(engine::splitmix64(engine::splitmix64(seed) ^ purpose) + static_cast<uint64_t>(task));
}

namespace {

enum Purpose : uint64_t { kBatches = 2 };
constexpr int64_t kEvalBatch = 256;

// The training loop's state between epochs: what a checkpoint's "progress" holds.
struct LoopState {
  int64_t task = 0;        // the task in training
  int64_t epoch = 0;       // epochs of it done
  double best_val = -1;    // best validation accuracy of it so far
  int64_t best_epoch = 0;  // 1-based
  int64_t bad_epochs = 0;  // epochs since the best
  double task_seconds = 0;
  AccuracyMatrix accuracy_matrix, validation_matrix;
  std::vector<TaskCurve> curves;
  std::vector<int64_t> epochs_per_task;
  std::vector<double> seconds_per_task;
  std::vector<NewParams> new_params;
  std::vector<std::pair<std::string, uint64_t>> counters;  // the learner's dropout counters
};

json to_json(const LoopState& s) {
  json curves = json::array(), params = json::array();
  for (const TaskCurve& c : s.curves) curves.push_back({c.train_loss, c.val_accuracy, c.best_epoch});
  for (const NewParams& p : s.new_params) params.push_back({p.conv, p.classifier, p.method_values, p.data_bytes});
  return {{"task", s.task},           {"epoch", s.epoch},
          {"best_val", s.best_val},   {"best_epoch", s.best_epoch},
          {"bad_epochs", s.bad_epochs}, {"task_seconds", s.task_seconds},
          {"accuracy_matrix", s.accuracy_matrix}, {"validation_matrix", s.validation_matrix},
          {"curves", curves},         {"epochs_per_task", s.epochs_per_task},
          {"seconds_per_task", s.seconds_per_task}, {"new_params", params},
          {"counters", s.counters}};
}

LoopState loop_state_from_json(const json& j) {
  LoopState s;
  j.at("task").get_to(s.task);
  j.at("epoch").get_to(s.epoch);
  j.at("best_val").get_to(s.best_val);
  j.at("best_epoch").get_to(s.best_epoch);
  j.at("bad_epochs").get_to(s.bad_epochs);
  j.at("task_seconds").get_to(s.task_seconds);
  j.at("accuracy_matrix").get_to(s.accuracy_matrix);
  j.at("validation_matrix").get_to(s.validation_matrix);
  for (const json& c : j.at("curves"))
    s.curves.push_back({c.at(0).get<std::vector<double>>(), c.at(1).get<std::vector<double>>(), c.at(2).get<int64_t>()});
  j.at("epochs_per_task").get_to(s.epochs_per_task);
  j.at("seconds_per_task").get_to(s.seconds_per_task);
  for (const json& p : j.at("new_params"))
    s.new_params.push_back({p.at(0).get<int64_t>(), p.at(1).get<int64_t>(), p.at(2).get<int64_t>(), p.at(3).get<int64_t>()});
  j.at("counters").get_to(s.counters);
  return s;
}

std::unique_ptr<engine::Optimizer> make_optimizer(const RunConfig& c, std::vector<Tensor> params) {
  if (c.optimizer == "adam") return std::make_unique<engine::Adam>(params, c.lr, 0.9, 0.999, 1e-8, c.weight_decay);
  if (c.optimizer == "adamw") return std::make_unique<engine::AdamW>(params, c.lr, 0.9, 0.999, 1e-8, c.weight_decay);
  return std::make_unique<engine::SGD>(params, c.lr, 0.9, 0.0, c.weight_decay);
}

engine::NamedTensors clone_all(const engine::NamedTensors& tensors) {
  engine::NamedTensors copies;
  for (const auto& [name, t] : tensors) copies.push_back({name, t.clone()});
  return copies;
}

// Copies `source` into the learner's tensors, matched by name; every tensor
// of the learner must be there with its shape.
void load_state(Learner& learner, const engine::NamedTensors& source, const std::string& what) {
  engine::NoGradGuard no_grad;
  engine::NamedTensors target = learner.state();
  if (target.size() != source.size())
    throw std::runtime_error(what + ": holds " + std::to_string(source.size()) + " tensors, the network has " +
                             std::to_string(target.size()));
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i].first != source[i].first || target[i].second.shape() != source[i].second.shape())
      throw std::runtime_error(what + ": tensor " + source[i].first + " " + engine::to_string(source[i].second.shape()) +
                               " does not match the network's " + target[i].first + " " +
                               engine::to_string(target[i].second.shape()));
    target[i].second.copy_(source[i].second.to(target[i].second.device()).to(target[i].second.dtype()));
  }
}

std::vector<int64_t> seen_union(const TaskData& data, int64_t task, std::vector<int64_t> datasets::Task::*list) {
  std::vector<int64_t> all;
  for (int64_t t = 0; t <= task; ++t) {
    const auto& part = data.split.tasks[t].*list;
    all.insert(all.end(), part.begin(), part.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

// Accuracy of the learner on `indices` of `set` through task `task`'s path, masked to `mask`.
double evaluate(Learner& learner, const TaskData& data, const datasets::ImageDataset& set,
                const std::vector<int64_t>& indices, int64_t task, const std::vector<uint8_t>& mask,
                engine::Device device) {
  if (indices.empty()) throw std::runtime_error("evaluation of task " + std::to_string(task) + ": no images");
  engine::NoGradGuard no_grad;
  datasets::LoaderOptions options;
  options.batch_size = kEvalBatch;
  options.shuffle = false;
  options.normalization = data.stats;
  options.label_map = data.label_positions;
  datasets::BatchLoader loader(set, indices, options);
  loader.start_epoch(0);
  int64_t correct = 0;
  while (std::optional<datasets::Batch> batch = loader.next()) {
    const Tensor logits = learner.forward(batch->images.to(device), task, false);
    const std::vector<int64_t> predicted = engine::masked_argmax(logits, mask);
    for (size_t i = 0; i < predicted.size(); ++i) correct += predicted[i] == batch->labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(indices.size());
}

engine::Communicator& communicator_of(const CellRun& run) {
  static const std::unique_ptr<engine::Communicator> single = engine::make_single_process_communicator();
  return run.communicator ? *run.communicator : *single;
}

std::vector<Tensor> values_of(const engine::NamedTensors& named) {
  std::vector<Tensor> values;
  for (const auto& [name, t] : named) values.push_back(t);
  return values;
}

// A batch's loss sum and correct predictions over the slices of every rank,
// added in rank order: every rank gets the same numbers, so all stop together
// on a NaN loss and log the same figures.
std::pair<double, int64_t> sum_over_ranks(engine::Communicator& comm, double loss_sum, int64_t correct) {
  const std::vector<uint64_t> all = comm.allgather({std::bit_cast<uint64_t>(loss_sum), static_cast<uint64_t>(correct)});
  double total_loss = 0;
  int64_t total_correct = 0;
  for (size_t i = 0; i < all.size(); i += 2) {
    total_loss += std::bit_cast<double>(all[i]);
    total_correct += static_cast<int64_t>(all[i + 1]);
  }
  return {total_loss, total_correct};
}

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

}  // namespace

CellResult train_cell(const RunConfig& c, const TaskData& data, Learner& learner, const CellRun& run) {
  const std::string name = cell_name(run.method, run.seed);
  const std::filesystem::path checkpoint_path = checkpoint_file(c.out, name);
  const engine::Device device = c.device == "cuda" ? engine::Device::cuda : engine::Device::cpu;
  const int64_t tasks = static_cast<int64_t>(data.split.tasks.size());
  std::ostream& log = *run.log;
  engine::Communicator& comm = communicator_of(run);
  const int64_t ranks = comm.size(), rank = comm.rank();
  reset_peak_memory();

  auto begin_task = [&](int64_t t) { return learner.begin_task(t, data.split.tasks[t].classes); };

  LoopState s;
  std::optional<Checkpoint> checkpoint = run.resume ? load_checkpoint(checkpoint_path) : std::nullopt;
  std::vector<Tensor> trainable;
  if (checkpoint) {
    try {
      s = loop_state_from_json(checkpoint->progress);
    } catch (const json::exception& e) {
      throw std::runtime_error(checkpoint_path.string() + ": progress record malformed: " + e.what());
    }
    log << name << ": resuming from " << checkpoint_path.string() << " at task " << s.task + 1 << ", epoch "
        << s.epoch << " done\n";
    // Rebuild the network's structure as it stood, then load its values.
    for (int64_t t = 0; t < s.task; ++t) begin_task(t);
    if (s.epoch > 0) trainable = begin_task(s.task);
    load_state(learner, checkpoint->model, checkpoint_path.string());
    learner.load_counters(s.counters);
  } else if (std::filesystem::exists(checkpoint_path)) {
    log << name << ": starting afresh (an old checkpoint is there; --resume continues from it)\n";
  }
  // Every rank built (or restored) the same network from the same seed (or file).
  comm.check_same_parameters(values_of(learner.state()), name + " start");

  for (int64_t t = s.task; t < tasks; ++t) {
    const bool mid_task = checkpoint && t == s.task && s.epoch > 0;
    engine::NamedTensors best;
    if (!mid_task) {
      trainable = begin_task(t);
      s.task = t;
      s.epoch = 0;
      s.best_val = -1;
      s.best_epoch = 0;
      s.bad_epochs = 0;
      s.task_seconds = 0;
      s.curves.push_back({});
      s.new_params.push_back(learner.new_params(t));
    }
    auto optimizer = make_optimizer(c, trainable);
    if (mid_task) {
      optimizer->load_state(checkpoint->optimizer);
      best = checkpoint->best;
    }

    const bool joint = learner.trains_on_all_seen_tasks();
    const datasets::Task& task = data.split.tasks[t];
    const std::vector<int64_t> train_indices = joint ? seen_union(data, t, &datasets::Task::train) : task.train;
    const std::vector<int64_t> val_indices = joint ? seen_union(data, t, &datasets::Task::validation) : task.validation;
    const std::vector<uint8_t> mask = learner.training_mask(t);
    datasets::LoaderOptions options;
    options.batch_size = c.batch;
    options.seed = task_stream(run.seed, kBatches, t);
    options.normalization = data.stats;
    options.augmentation = data.augmentation;
    options.label_map = data.label_positions;
    datasets::BatchLoader loader(data.data.train, train_indices, options);

    while (s.epoch < c.epochs && s.bad_epochs < c.patience) {
      const auto start = std::chrono::steady_clock::now();
      const std::string label = name + " task " + std::to_string(t + 1) + "/" + std::to_string(tasks) + " epoch " +
                                std::to_string(s.epoch + 1) + "/" + std::to_string(c.epochs);
      Progress progress(label, loader.size(), log, run.terminal);
      loader.start_epoch(s.epoch);
      double loss_sum = 0;
      int64_t seen = 0, correct = 0, batch_index = 0;
      while (std::optional<datasets::Batch> batch = loader.next()) {
        // This rank's slice of the batch: all of it in one process.
        const int64_t n = static_cast<int64_t>(batch->labels.size());
        const int64_t lo = n * rank / ranks, hi = n * (rank + 1) / ranks, part = hi - lo;
        const std::vector<int64_t> labels(batch->labels.begin() + lo, batch->labels.begin() + hi);
        optimizer->zero_grad();
        std::optional<Tensor> loss;
        double part_loss_sum = 0;
        int64_t part_correct = 0;
        if (part > 0) {
          const Tensor images = ranks == 1 ? batch->images : engine::slice(batch->images, 0, lo, hi);
          const Tensor on_device = images.to(device);
          const Tensor logits = learner.forward(on_device, t, true);
          loss = engine::cross_entropy(logits, labels, mask);
          // A method's own term (EWC's penalty, LwF's distillation, replay's
          // memory batch) is part of the loss that trains and is reported.
          if (const Tensor extra = learner.extra_loss(on_device, logits, t); extra.defined()) loss = *loss + extra;
          part_loss_sum = loss->item() * static_cast<double>(part);
          const std::vector<int64_t> predicted = engine::masked_argmax(logits.detach(), mask);
          for (size_t i = 0; i < predicted.size(); ++i) part_correct += predicted[i] == labels[i];
        }
        const auto [batch_loss_sum, batch_correct] = sum_over_ranks(comm, part_loss_sum, part_correct);
        const double value = batch_loss_sum / static_cast<double>(n);
        if (!std::isfinite(value))
          throw std::runtime_error(name + ": loss is " + format("%f", value) + " at task " + std::to_string(t + 1) +
                                   ", epoch " + std::to_string(s.epoch + 1) + ", batch " +
                                   std::to_string(batch_index + 1) + "; training stopped (try a lower --lr). " +
                                   "The last good checkpoint is kept: " + checkpoint_path.string());
        if (loss) {
          // The mean over ranks of the slices' mean gradients is the batch's
          // mean gradient when the slices are equal; else each weighs P * part / n.
          const double weight = static_cast<double>(part * ranks) / static_cast<double>(n);
          (weight == 1 ? *loss : *loss * weight).backward();
        }
        if (ranks > 1) {
          if (part == 0)  // no images here: zero gradients, as the collective needs every rank's
            for (const Tensor& p : trainable) engine::grad_buffer(p);
          engine::average_gradients(comm, trainable);
        }
        optimizer->step();
        correct += batch_correct;
        loss_sum += batch_loss_sum;
        seen += n;
        ++batch_index;
        progress.update(seen, loss_sum / static_cast<double>(seen), static_cast<double>(correct) / static_cast<double>(seen));
      }
      // Parameters must agree on every rank; batch-norm running statistics
      // (per rank) are taken from rank 0.
      comm.check_same_parameters(trainable,
                                 name + " task " + std::to_string(t + 1) + " epoch " + std::to_string(s.epoch + 1));
      comm.broadcast(values_of(learner.state()), 0);
      const double val = evaluate(learner, data, data.data.train, val_indices, t, mask, device);
      ++s.epoch;
      s.curves.back().train_loss.push_back(loss_sum / static_cast<double>(std::max<int64_t>(seen, 1)));
      s.curves.back().val_accuracy.push_back(val);
      // Strictly better only: on a tie the earlier (shorter-trained) weights stay.
      if (val > s.best_val) {
        s.best_val = val;
        s.best_epoch = s.epoch;
        s.bad_epochs = 0;
        best = clone_all(learner.state());
      } else {
        ++s.bad_epochs;
      }
      s.task_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      progress.finish("val " + format("%.4f", val) + (s.best_epoch == s.epoch ? " (best)" : ""));
      s.counters = learner.counters();
      if (rank == 0) save_checkpoint(checkpoint_path, {to_json(s), learner.state(), best, optimizer->state()});
    }

    // Best weights back, then the row of R: every task seen so far, with its task id.
    const auto start = std::chrono::steady_clock::now();
    load_state(learner, best, name + " best weights of task " + std::to_string(t + 1));
    std::vector<double> row, val_row;
    for (int64_t j = 0; j <= t; ++j) {
      const std::vector<uint8_t> task_mask = learner.class_mask(j);
      row.push_back(evaluate(learner, data, data.eval_set(), data.eval_indices(j), j, task_mask, device));
      val_row.push_back(data.split.has_test
                            ? evaluate(learner, data, data.data.train, data.split.tasks[j].validation, j, task_mask, device)
                            : row.back());
    }
    s.task_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    s.accuracy_matrix.push_back(row);
    s.validation_matrix.push_back(val_row);
    s.curves.back().best_epoch = s.best_epoch;
    s.epochs_per_task.push_back(s.epoch);
    s.seconds_per_task.push_back(s.task_seconds);
    std::string line = name + " after task " + std::to_string(t + 1) + ": " + data.eval_split() + " accuracy";
    for (double a : row) line += " " + format("%.4f", a);
    log << line << "\n" << std::flush;
    // The method's end-of-task work (EWC's Fisher) on the task's training images.
    datasets::LoaderOptions fixed_order;
    fixed_order.batch_size = kEvalBatch;
    fixed_order.shuffle = false;
    fixed_order.normalization = data.stats;
    fixed_order.label_map = data.label_positions;
    datasets::BatchLoader training_images(data.data.train, task.train, fixed_order);
    learner.end_task(t, training_images);
    // A task boundary: the next task starts from these weights.
    s.task = t + 1;
    s.epoch = 0;
    s.counters = learner.counters();
    if (rank == 0) save_checkpoint(checkpoint_path, {to_json(s), learner.state(), {}, {}});
  }

  CellResult result;
  result.method = run.method;
  result.seed = run.seed;
  result.accuracy_split = data.eval_split();
  result.accuracy_matrix = s.accuracy_matrix;
  result.validation_matrix = s.validation_matrix;
  result.epochs_per_task = s.epochs_per_task;
  result.seconds_per_task = s.seconds_per_task;
  result.curves = s.curves;
  ParamCounts& p = result.params;
  for (const NewParams& n : s.new_params) {
    p.new_per_task.push_back(n.total());
    p.new_conv_per_task.push_back(n.conv);
    p.new_classifier_per_task.push_back(n.classifier);
    p.conv += n.conv;
    p.classifier += n.classifier;
    p.method_values_per_task.push_back(n.method_values);
    p.data_bytes_per_task.push_back(n.data_bytes);
    p.stored_bytes += n.data_bytes + static_cast<int64_t>(sizeof(float)) * (n.total() + n.method_values);
  }
  p.total = p.conv + p.classifier;
  p.base = p.new_per_task.front();
  result.peak_memory_bytes = peak_memory_bytes();
  return result;
}

}  // namespace continual
