#include "experiments/continual/trainer.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>

#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/printable.h"
#include "engine/splitmix64.h"
#include "experiments/common/device.h"
#include "experiments/common/provenance.h"
#include "experiments/continual/checkpoint.h"
#include "experiments/continual/epoch_log.h"
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
constexpr const char* kSettings = "settings";  // the checkpoint progress's entry of resume_record
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
  std::vector<int64_t> trained;  // parameters each task trains
  std::vector<double> before_training;  // each task's accuracy once begun, before its first step
  std::vector<std::pair<std::string, uint64_t>> counters;  // the learner's dropout counters
  engine::ReduceLROnPlateau::State plateau{0.0};  // --lr-plateau's state within the task
};

json to_json(const LoopState& s) {
  json curves = json::array(), params = json::array();
  for (const TaskCurve& c : s.curves)
    curves.push_back({c.train_loss, c.val_accuracy, c.best_epoch, c.train_seconds, c.eval_seconds});
  for (const NewParams& p : s.new_params) params.push_back({p.conv, p.classifier, p.method_values, p.data_bytes});
  return {{"task", s.task},           {"epoch", s.epoch},
          {"best_val", s.best_val},   {"best_epoch", s.best_epoch},
          {"bad_epochs", s.bad_epochs}, {"task_seconds", s.task_seconds},
          {"accuracy_matrix", s.accuracy_matrix}, {"validation_matrix", s.validation_matrix},
          {"curves", curves},         {"epochs_per_task", s.epochs_per_task},
          {"seconds_per_task", s.seconds_per_task}, {"new_params", params},
          {"counters", s.counters},
          {"trained", s.trained},
          {"before_training", s.before_training},
          // The best metric starts infinite, which JSON cannot hold: its bits are stored.
          {"plateau", {std::bit_cast<uint64_t>(s.plateau.best), s.plateau.num_bad_epochs, s.plateau.cooldown_counter}}};
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
    s.curves.push_back({c.at(0).get<std::vector<double>>(), c.at(1).get<std::vector<double>>(), c.at(2).get<int64_t>(),
                        c.size() > 3 ? c.at(3).get<std::vector<double>>() : std::vector<double>{},
                        c.size() > 4 ? c.at(4).get<std::vector<double>>() : std::vector<double>{}});
  j.at("epochs_per_task").get_to(s.epochs_per_task);
  // Absent in checkpoints written before forward transfer was measured: the cell's is then n/a.
  if (j.contains("before_training")) j.at("before_training").get_to(s.before_training);
  j.at("seconds_per_task").get_to(s.seconds_per_task);
  for (const json& p : j.at("new_params"))
    s.new_params.push_back({p.at(0).get<int64_t>(), p.at(1).get<int64_t>(), p.at(2).get<int64_t>(), p.at(3).get<int64_t>()});
  j.at("counters").get_to(s.counters);
  // Checkpoints of earlier versions lack these two.
  s.trained = j.value("trained", std::vector<int64_t>{});
  if (j.contains("plateau")) {
    const json& plateau = j.at("plateau");
    s.plateau = {std::bit_cast<double>(plateau.at(0).get<uint64_t>()), plateau.at(1).get<int64_t>(),
                 plateau.at(2).get<int64_t>()};
  }
  return s;
}

// --lr-plateau's scheduler over `optimizer`, or none.
std::unique_ptr<engine::ReduceLROnPlateau> make_plateau(const RunConfig& c, engine::Optimizer& optimizer) {
  if (c.lr_plateau.empty()) return nullptr;
  const LrPlateau p = parse_lr_plateau(c.lr_plateau);
  return std::make_unique<engine::ReduceLROnPlateau>(optimizer, engine::ReduceLROnPlateau::Mode::max, p.factor,
                                                     p.patience);
}

int64_t count_elements(const std::vector<Tensor>& tensors) {
  int64_t n = 0;
  for (const Tensor& t : tensors) n += t.numel();
  return n;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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

// What decides a cell's numbers, kept in its checkpoint so that --resume never
// continues one made with other settings: the setting's flags, the method,
// the seed and the data (files, sizes, split).
json resume_record(const RunConfig& c, const TaskData& data, const CellRun& run) {
  json record = setting_json(c);
  record["method"] = run.method;
  record["seed"] = run.seed;
  record["data"] = data.identity;
  return record;
}

// Throws, naming every entry that differs, when the checkpoint was made with
// other settings than `current`.
void check_resume_record(const Checkpoint& checkpoint, const json& current, const std::filesystem::path& path) {
  const json* saved = checkpoint.progress.contains(kSettings) ? &checkpoint.progress.at(kSettings) : nullptr;
  if (!saved || !saved->is_object())
    throw std::runtime_error(path.string() + ": --resume: the checkpoint does not record its settings (written by an "
                             "older version); delete it to start the cell afresh");
  std::string differ;
  for (const auto& [key, value] : current.items())
    if (!saved->contains(key) || saved->at(key) != value) differ += (differ.empty() ? "" : ", ") + key;
  for (const auto& [key, value] : saved->items())
    if (!current.contains(key)) differ += (differ.empty() ? "" : ", ") + engine::printable(key);  // from the file
  if (!differ.empty())
    throw std::runtime_error(path.string() + ": --resume: the checkpoint was made with other settings (" + differ +
                             " differ); run with the same settings, or delete it to start the cell afresh");
}

}  // namespace

void load_state(const engine::NamedTensors& target, const engine::NamedTensors& source, const std::string& what) {
  engine::NoGradGuard no_grad;
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, tensor] : source) by_name[name] = &tensor;
  // Check everything before copying anything.
  for (const auto& [name, tensor] : target) {
    const auto found = by_name.find(name);
    if (found == by_name.end()) throw std::runtime_error(what + ": tensor " + name + " is missing");
    if (found->second->shape() != tensor.shape())
      throw std::runtime_error(what + ": tensor " + name + " has shape " + engine::to_string(found->second->shape()) +
                               ", the network's has " + engine::to_string(tensor.shape()));
  }
  if (source.size() != target.size()) {
    std::map<std::string, bool> wanted;
    for (const auto& [name, tensor] : target) wanted[name] = true;
    for (const auto& [name, tensor] : source)
      if (!wanted.contains(name)) throw std::runtime_error(what + ": tensor " + name + " is not in the network");
    throw std::runtime_error(what + ": a tensor name appears twice");
  }
  for (const auto& [name, tensor] : target) {
    Tensor destination = tensor;
    const Tensor& value = *by_name.at(name);
    destination.copy_(value.to(destination.device()).to(destination.dtype()));
  }
}

void restore_finished_tasks(Learner& learner, const TaskData& data, const std::filesystem::path& out_dir,
                            const std::string& cell, int64_t tasks) {
  for (int64_t t = 0; t < tasks; ++t) learner.begin_task(t, data.split.tasks[t].classes);
  for (int64_t t = 0; t < tasks; ++t) {
    const std::filesystem::path file = task_model_file(out_dir, cell, t + 1);
    engine::NamedTensors part;
    for (const auto& [name, array] : engine::read_npz(file)) part.push_back({name, engine::to_tensor(array)});
    load_state(learner.task_state(t), part, file.string());
  }
}

double task_accuracy(Learner& learner, const TaskData& data, int64_t task, engine::Device device) {
  return evaluate(learner, data, data.eval_set(), data.eval_indices(task), task, learner.class_mask(task), device);
}

void count_class_incremental(Learner& learner, const Tensor& images, const std::vector<int64_t>& labels,
                             int64_t tasks, ClassIncrementalCount& count) {
  engine::NoGradGuard no_grad;
  const bool shared = !learner.path_depends_on_task();
  std::vector<LogitMatrix> paths;
  std::vector<std::vector<uint8_t>> masks;
  for (int64_t t = 0; t < tasks; ++t) {
    masks.push_back(learner.class_mask(t));
    if (shared && t > 0) {
      paths.push_back(paths.front());  // the same logits; only the mask differs
      continue;
    }
    const Tensor logits = learner.forward(images, t, false);
    if (logits.ndim() != 2 || logits.dim(0) != static_cast<int64_t>(labels.size()))
      throw std::logic_error("class-incremental evaluation: task " + std::to_string(t) + "'s path gave logits " +
                             engine::to_string(logits.shape()) + " for " + std::to_string(labels.size()) + " images");
    if (shared) {
      const std::vector<int64_t> predicted = engine::masked_argmax(logits);  // every class seen
      for (size_t i = 0; i < predicted.size(); ++i) count.all_classes_correct += predicted[i] == labels[i];
    }
    paths.push_back({logits.dim(0), logits.dim(1), logits.to_double_vector()});
  }
  const std::vector<int64_t> inferred = predict_by_most_confident_path(paths, masks);
  for (size_t i = 0; i < inferred.size(); ++i) count.task_inferred_correct += inferred[i] == labels[i];
  count.images += static_cast<int64_t>(labels.size());
}

ClassIncrementalAccuracy class_incremental_accuracy(Learner& learner, const TaskData& data, engine::Device device) {
  const int64_t tasks = static_cast<int64_t>(data.split.tasks.size());
  std::vector<int64_t> indices;
  for (int64_t t = 0; t < tasks; ++t) {
    const std::vector<int64_t> part = data.eval_indices(t);
    indices.insert(indices.end(), part.begin(), part.end());
  }
  datasets::LoaderOptions options;
  options.batch_size = kEvalBatch;
  options.shuffle = false;
  options.normalization = data.stats;
  options.label_map = data.label_positions;
  datasets::BatchLoader loader(data.eval_set(), indices, options);
  loader.start_epoch(0);
  ClassIncrementalCount count;
  while (std::optional<datasets::Batch> batch = loader.next())
    count_class_incremental(learner, batch->images.to(device), batch->labels, tasks, count);
  const auto fraction = [&](int64_t correct) { return static_cast<double>(correct) / static_cast<double>(count.images); };
  ClassIncrementalAccuracy accuracy;
  if (!learner.path_depends_on_task()) accuracy.all_classes = fraction(count.all_classes_correct);
  accuracy.task_inferred = fraction(count.task_inferred_correct);
  return accuracy;
}

CellResult train_cell(const RunConfig& c, const TaskData& data, Learner& learner, const CellRun& run) {
  const std::string name = cell_name(run.method, run.seed);
  const std::filesystem::path checkpoint_path = checkpoint_file(c.out, name);
  const engine::Device device = experiments::parse_device(c.device).device;
  const int64_t tasks = static_cast<int64_t>(data.split.tasks.size());
  std::ostream& log = *run.log;
  engine::Communicator& comm = communicator_of(run);
  const int64_t ranks = comm.size(), rank = comm.rank();
  reset_peak_memory();
  const auto cell_started = std::chrono::system_clock::now();
  engine::backend(device).reset_peak_memory();

  auto begin_task = [&](int64_t t) { return learner.begin_task(t, data.split.tasks[t].classes); };

  LoopState s;
  std::optional<Checkpoint> checkpoint = run.resume ? load_checkpoint(checkpoint_path) : std::nullopt;
  std::vector<Tensor> trainable;
  const json settings = resume_record(c, data, run);
  const auto progress_record = [&](const LoopState& state) {
    json record = to_json(state);
    record[kSettings] = settings;
    return record;
  };
  bool checkpointed = checkpoint.has_value();  // a good checkpoint of this run is on disk
  if (checkpoint) {
    check_resume_record(*checkpoint, settings, checkpoint_path);
    try {
      s = loop_state_from_json(checkpoint->progress);
    } catch (const json::exception& e) {
      throw std::runtime_error(checkpoint_path.string() + ": progress record malformed: " + e.what());
    }
    log << name << ": resuming from " << checkpoint_path.string() << " at task " << s.task + 1 << ", epoch "
        << s.epoch << " done\n";
    // Rebuild the network's structure as it stood after the finished tasks and
    // load their kept parts (task 0's start is re-derived from the seed or
    // --init); then begin the task in training and load what it has trained.
    restore_finished_tasks(learner, data, c.out, name, s.task);
    if (s.epoch > 0) {
      trainable = begin_task(s.task);
      load_state(learner.trained_state(), checkpoint->model, checkpoint_path.string());
    } else {
      load_state(learner.method_state(), checkpoint->model, checkpoint_path.string());  // at a task boundary
    }
    learner.load_counters(s.counters);
  } else if (std::filesystem::exists(checkpoint_path)) {
    log << name << ": starting afresh (an old checkpoint is there; --resume continues from it)\n";
  }
  // Continues (or starts) OUT/epochs/<cell>.csv from the epoch the loop resumes after.
  std::optional<EpochLog> epoch_log;
  if (rank == 0) epoch_log.emplace(epoch_log_file(c.out, name), s.task + 1, s.epoch);
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
      s.trained.push_back(count_elements(trainable));
      // Forward transfer's measurement: the task's path as begun (its head
      // block fresh), before any step on it; not part of the task's seconds.
      s.before_training.push_back(task_accuracy(learner, data, t, device));
    }
    auto optimizer = make_optimizer(c, trainable);
    auto plateau = make_plateau(c, *optimizer);
    if (mid_task) {
      optimizer->load_state(checkpoint->optimizer);
      best = checkpoint->best;
      if (plateau) plateau->load_state(s.plateau);
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

    // One pass over the task's batches (loader epoch `epoch`), each step
    // followed by the learner's after_step; the parameters then agree on every
    // rank, and batch-norm running statistics (per rank) are taken from rank 0.
    struct EpochSums {
      double loss_sum = 0;
      int64_t seen = 0, correct = 0;
    };
    auto train_epoch = [&](engine::Optimizer& optimizer, int64_t epoch, Progress& progress, const std::string& label) {
      loader.start_epoch(epoch);
      EpochSums sums;
      int64_t batch_index = 0;
      while (std::optional<datasets::Batch> batch = loader.next()) {
        // This rank's slice of the batch: all of it in one process.
        const int64_t n = static_cast<int64_t>(batch->labels.size());
        const int64_t lo = n * rank / ranks, hi = n * (rank + 1) / ranks, part = hi - lo;
        const std::vector<int64_t> labels(batch->labels.begin() + lo, batch->labels.begin() + hi);
        optimizer.zero_grad();
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
                                   ", epoch " + std::to_string(epoch + 1) + ", batch " +
                                   std::to_string(batch_index + 1) + "; training stopped (try a lower --lr). " +
                                   (checkpointed ? "The last good checkpoint is kept: " + checkpoint_path.string()
                                                 : std::string("No checkpoint was written yet.")));
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
        optimizer.step();
        learner.after_step(t);
        sums.correct += batch_correct;
        sums.loss_sum += batch_loss_sum;
        sums.seen += n;
        ++batch_index;
        progress.update(sums.seen, sums.loss_sum / static_cast<double>(sums.seen),
                        static_cast<double>(sums.correct) / static_cast<double>(sums.seen));
      }
      comm.check_same_parameters(trainable, label);
      comm.broadcast(values_of(learner.state()), 0);
      return sums;
    };

    while (s.epoch < c.epochs && s.bad_epochs < c.patience) {
      const auto start = std::chrono::steady_clock::now();
      const std::string label = name + " task " + std::to_string(t + 1) + "/" + std::to_string(tasks) + " epoch " +
                                std::to_string(s.epoch + 1) + "/" + std::to_string(c.epochs);
      Progress progress(label, loader.size(), log, run.terminal);
      const EpochSums sums = train_epoch(*optimizer, s.epoch, progress, label);
      const double loss_sum = sums.loss_sum;
      const int64_t seen = sums.seen, correct = sums.correct;
      engine::backend(device).synchronize();
      const auto eval_start = std::chrono::steady_clock::now();
      s.curves.back().train_seconds.push_back(std::chrono::duration<double>(eval_start - start).count());
      const double val = evaluate(learner, data, data.data.train, val_indices, t, mask, device);
      s.curves.back().eval_seconds.push_back(seconds_since(eval_start));
      if (plateau) {
        plateau->step(val);
        s.plateau = plateau->state();
      }
      ++s.epoch;
      s.curves.back().train_loss.push_back(loss_sum / static_cast<double>(std::max<int64_t>(seen, 1)));
      s.curves.back().val_accuracy.push_back(val);
      // Strictly better only: on a tie the earlier (shorter-trained) weights stay.
      if (val > s.best_val) {
        s.best_val = val;
        s.best_epoch = s.epoch;
        s.bad_epochs = 0;
        best = clone_all(learner.trained_state());
      } else {
        ++s.bad_epochs;
      }
      const double epoch_seconds = seconds_since(start);
      s.task_seconds += epoch_seconds;
      if (epoch_log)
        epoch_log->append({t + 1, s.epoch, s.curves.back().train_loss.back(),
                           static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(seen, 1)), val,
                           optimizer->lr(), epoch_seconds});
      progress.finish("val " + format("%.4f", val) + (s.best_epoch == s.epoch ? " (best)" : ""));
      s.counters = learner.counters();
      if (rank == 0) save_checkpoint(checkpoint_path, {progress_record(s), learner.trained_state(), best, optimizer->state()});
      checkpointed = true;
    }

    // Best weights back; a method that prunes (PackNet) prunes them and
    // retrains what it keeps, so that the row of R measures the network kept.
    // Neither is checkpointed: a resumed run redoes both from the best weights.
    // Then the row of R: every task seen so far, with its task id.
    const auto start = std::chrono::steady_clock::now();
    load_state(learner.trained_state(), best, name + " best weights of task " + std::to_string(t + 1));
    const int64_t retrain_epochs = learner.prune(t);
    if (retrain_epochs > 0) {
      auto retrain_optimizer = make_optimizer(c, trainable);
      for (int64_t r = 0; r < retrain_epochs; ++r) {
        const std::string label = name + " task " + std::to_string(t + 1) + "/" + std::to_string(tasks) +
                                  " retraining after pruning, epoch " + std::to_string(r + 1) + "/" +
                                  std::to_string(retrain_epochs);
        Progress progress(label, loader.size(), log, run.terminal);
        train_epoch(*retrain_optimizer, s.epoch + r, progress, label);
        progress.finish("retrained");
      }
    }
    std::vector<double> row, val_row;
    for (int64_t j = 0; j <= t; ++j) {
      const std::vector<uint8_t> task_mask = learner.class_mask(j);
      row.push_back(task_accuracy(learner, data, j, device));
      val_row.push_back(data.split.has_test
                            ? evaluate(learner, data, data.data.train, data.split.tasks[j].validation, j, task_mask, device)
                            : row.back());
    }
    s.task_seconds += seconds_since(start);
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
    if (rank == 0) {
      // The task's part of the network, and the parts of earlier tasks it
      // trained, then the progress that points past them.
      std::set<std::string> trained;
      for (const auto& [tensor_name, tensor] : learner.trained_state()) trained.insert(tensor_name);
      std::filesystem::create_directories(model_dir(c.out, name));
      for (int64_t j = 0; j <= t; ++j) {
        const engine::NamedTensors part = learner.task_state(j);
        const bool changed =
            std::any_of(part.begin(), part.end(), [&](const auto& entry) { return trained.contains(entry.first); });
        if (j == t || changed) engine::save_npz(task_model_file(c.out, name, j + 1), part);
      }
      save_checkpoint(checkpoint_path, {progress_record(s), learner.method_state(), {}, {}});
      checkpointed = true;
    }
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
  p.trained_per_task = s.trained;
  p.total = p.conv + p.classifier;
  p.base = p.new_per_task.front();
  // The peaks of training, before the evaluations below build a second network.
  result.peak_memory_bytes = peak_memory_bytes();
  result.peak_device_memory_bytes = engine::backend(device).peak_memory_bytes();
  result.provenance = experiments::provenance_json(device);
  result.provenance["started"] = experiments::utc_timestamp(cell_started);
  const ClassIncrementalAccuracy class_il = class_incremental_accuracy(learner, data, device);
  result.class_il_acc = class_il.all_classes;
  result.class_il_task_inferred_acc = class_il.task_inferred;
  // Forward transfer's baseline: the same network as built, each task
  // measured once begun, never trained. A cell resumed from a checkpoint
  // older than the measurement lacks some tasks' accuracies: n/a.
  if (run.untrained && static_cast<int64_t>(s.before_training.size()) == tasks) {
    const std::unique_ptr<Learner> untrained = run.untrained();
    for (int64_t t = 0; t < tasks; ++t) {
      untrained->begin_task(t, data.split.tasks[t].classes);
      result.untrained_accuracy.push_back(task_accuracy(*untrained, data, t, device));
    }
    result.accuracy_before_training = s.before_training;
  }
  if (rank == 0)
    for (int64_t t = 0; t < tasks; ++t)
      result.model_bytes_per_task.push_back(
          static_cast<int64_t>(std::filesystem::file_size(task_model_file(c.out, name, t + 1))));
  return result;
}

}  // namespace continual
