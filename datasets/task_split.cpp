#include "datasets/task_split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "engine/random.h"

namespace datasets {

namespace {

[[noreturn]] void split_error(const std::string& message) {
  throw std::invalid_argument("make_task_split: " + message);
}

std::vector<int64_t> resolve_class_order(const ImageDataset& train, const SplitOptions& options) {
  const int64_t num_classes = train.num_classes();
  std::vector<int64_t> order = options.class_order;
  if (order.empty()) {
    order.resize(static_cast<size_t>(num_classes));
    std::iota(order.begin(), order.end(), 0);
    if (options.shuffle_classes) {
      engine::Generator gen(options.class_order_seed);
      gen.shuffle(order);
    }
  }
  std::vector<bool> seen(static_cast<size_t>(num_classes), false);
  for (int64_t c : order) {
    if (c < 0 || c >= num_classes)
      split_error("class_order holds " + std::to_string(c) + ", outside [0, " + std::to_string(num_classes) + ")");
    if (seen[c]) split_error("class_order holds " + std::to_string(c) + " twice");
    seen[c] = true;
  }
  return order;
}

// Number of classes in each task.
std::vector<int64_t> task_sizes(int64_t num_classes, const SplitOptions& options) {
  const int64_t tasks = options.num_tasks;
  if (tasks < 1) split_error("num_tasks " + std::to_string(tasks) + " must be at least 1");
  const int64_t first = options.first_task_classes == 0 ? num_classes / tasks : options.first_task_classes;
  const int64_t rest = num_classes - first;
  const bool equal = options.first_task_classes == 0;
  const bool fits = first >= 1 && rest >= 0 && (!equal || num_classes % tasks == 0) &&
                    (tasks == 1 ? rest == 0 : rest % (tasks - 1) == 0 && rest / (tasks - 1) >= 1);
  if (!fits)
    split_error(std::to_string(num_classes) + " classes do not split into " + std::to_string(tasks) +
                " tasks with first_task_classes " + std::to_string(options.first_task_classes) +
                (equal ? " (equal tasks)" : ""));
  std::vector<int64_t> sizes(static_cast<size_t>(tasks), tasks == 1 ? 0 : rest / (tasks - 1));
  sizes[0] = first;
  return sizes;
}

std::vector<std::vector<int64_t>> indices_by_class(const ImageDataset& data) {
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(data.num_classes()));
  for (int64_t i = 0; i < data.size(); ++i) by_class[data.labels[i]].push_back(i);
  return by_class;
}

}  // namespace

TaskSplit make_task_split(const ImageDataset& train, const ImageDataset* test, const SplitOptions& options) {
  if (!(options.validation_fraction >= 0.0 && options.validation_fraction < 1.0))
    split_error("validation_fraction " + std::to_string(options.validation_fraction) + " outside [0, 1)");
  if (test != nullptr && test->num_classes() != train.num_classes())
    split_error("test set has " + std::to_string(test->num_classes()) + " classes, training set " +
                std::to_string(train.num_classes()));
  TaskSplit split;
  split.class_order = resolve_class_order(train, options);
  split.has_test = test != nullptr;
  const std::vector<int64_t> sizes = task_sizes(static_cast<int64_t>(split.class_order.size()), options);
  const auto train_by_class = indices_by_class(train);
  const auto test_by_class = test ? indices_by_class(*test) : std::vector<std::vector<int64_t>>{};

  size_t next_class = 0;
  for (int64_t size : sizes) {
    Task task;
    for (int64_t k = 0; k < size; ++k) {
      const int64_t c = split.class_order[next_class++];
      task.classes.push_back(c);
      // The class's validation samples depend only on (seed, class).
      std::vector<int64_t> samples = train_by_class[c];
      engine::Generator gen(engine::splitmix64(options.validation_seed) ^ static_cast<uint64_t>(c));
      gen.shuffle(samples);
      const auto validation_count = static_cast<int64_t>(
          std::llround(options.validation_fraction * static_cast<double>(samples.size())));
      // Every class must train, validate (early stopping) and be tested, or the
      // run would fail tasks later, at the first epoch or evaluation of this one.
      const std::string name = "class " + std::to_string(c) + " ('" + train.class_names[c] + "')";
      if (validation_count == static_cast<int64_t>(samples.size()))
        split_error(name + " has " + std::to_string(samples.size()) + " training images, none left to train on");
      if (validation_count == 0 && options.validation_fraction > 0)
        split_error(name + " has " + std::to_string(samples.size()) + " training images, too few for a validation " +
                    "share of " + std::to_string(options.validation_fraction));
      if (test && test_by_class[c].empty()) split_error(name + " has no test images");
      task.validation.insert(task.validation.end(), samples.begin(), samples.begin() + validation_count);
      task.train.insert(task.train.end(), samples.begin() + validation_count, samples.end());
      if (test) task.test.insert(task.test.end(), test_by_class[c].begin(), test_by_class[c].end());
    }
    std::sort(task.train.begin(), task.train.end());
    std::sort(task.validation.begin(), task.validation.end());
    std::sort(task.test.begin(), task.test.end());
    split.tasks.push_back(std::move(task));
  }
  return split;
}

SplitOptions split_preset(const std::string& name, uint64_t validation_seed) {
  SplitOptions options;
  options.validation_fraction = 0.1;
  options.validation_seed = validation_seed;
  if (name == "split-fashion-mnist" || name == "split-cifar10") {
    options.num_tasks = 5;
  } else if (name == "split-cifar100") {
    options.num_tasks = 10;
    options.shuffle_classes = true;
    options.class_order_seed = 1993;  // the class-order seed of iCaRL and its successors
  } else {
    throw std::invalid_argument("split_preset: unknown preset '" + name +
                                "' (split-fashion-mnist, split-cifar10, split-cifar100)");
  }
  return options;
}

std::vector<int64_t> local_label_map(const Task& task, int64_t num_classes) {
  std::vector<int64_t> map(static_cast<size_t>(num_classes), -1);
  for (size_t k = 0; k < task.classes.size(); ++k) {
    const int64_t c = task.classes[k];
    if (c < 0 || c >= num_classes)
      throw std::invalid_argument("local_label_map: class " + std::to_string(c) + " outside [0, " +
                                  std::to_string(num_classes) + ")");
    map[c] = static_cast<int64_t>(k);
  }
  return map;
}

}  // namespace datasets
