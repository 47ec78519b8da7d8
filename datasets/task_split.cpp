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
    options.class_order_seed = 1993;  // iCaRL's seed, but drawn by the engine's generator, not numpy's
  } else if (name == "study-cifar100") {
    options.num_tasks = 10;
    options.class_order = study_cifar100_class_order();
  } else {
    throw std::invalid_argument("split_preset: unknown preset '" + name +
                                "' (split-fashion-mnist, split-cifar10, split-cifar100, study-cifar100)");
  }
  return options;
}

const std::vector<int64_t>& study_cifar100_class_order() {
  static const std::vector<int64_t> order = {
      75, 67, 30, 51, 48, 19, 18, 34, 1,  46,  // task 1
      13, 69, 22, 14, 39, 92, 76, 66, 7,  16,  // task 2
      78, 72, 94, 56, 11, 82, 77, 64, 6,  36,  // task 3
      24, 87, 21, 9,  5,  50, 70, 8,  62, 33,  // task 4
      91, 80, 74, 98, 79, 44, 59, 68, 83, 37,  // task 5
      10, 0,  55, 73, 90, 96, 20, 57, 40, 31,  // task 6
      86, 88, 42, 52, 93, 81, 3,  60, 47, 43,  // task 7
      99, 85, 97, 38, 27, 84, 71, 17, 45, 32,  // task 8
      23, 89, 35, 58, 15, 61, 28, 53, 2,  26,  // task 9
      65, 12, 29, 4,  49, 41, 25, 95, 54, 63,  // task 10
  };
  return order;
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
