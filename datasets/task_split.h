// Class-incremental task splits: a data set's classes, in a class order drawn
// from a seed or given explicitly, are cut into T tasks (equal tasks, or a
// larger first task such as CUB-200's 100 + 4 x 25). Each task gets its
// training, validation and test samples.
//
// Indices, not copies: every task lists indices into the data sets it came from
// (train and validation into the training set, test into the test set), in
// ascending order. Labels are KEPT as the data set's labels; a task's `classes`
// says which labels it holds, and local_label_map() turns them into 0..k-1 for a
// per-task head.
//
// Validation is carved out of the training set per class, seeded: a class's
// validation samples depend only on the seed and the class, not on the class
// order or the tasks. Early stopping watches validation accuracy. Where the data
// set has no test split (the CIFAR-10 JPEG folder), has_test is false, every
// task's test list is empty, and validation accuracy is what gets reported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image_dataset.h"

namespace datasets {

struct SplitOptions {
  int64_t num_tasks = 5;
  // Classes in the first task; 0 means all tasks are equal. The other tasks
  // share the remaining classes equally.
  int64_t first_task_classes = 0;
  // Explicit class order (distinct labels of the data set; may be a subset).
  // Empty: all classes, in label order when shuffle_classes is false, otherwise
  // shuffled with class_order_seed.
  std::vector<int64_t> class_order;
  bool shuffle_classes = false;
  uint64_t class_order_seed = 0;
  double validation_fraction = 0.1;  // of each class's training samples
  uint64_t validation_seed = 0;
};

struct Task {
  std::vector<int64_t> classes;     // the data set's labels, in class order
  std::vector<int64_t> train;       // indices into the training set
  std::vector<int64_t> validation;  // indices into the training set, disjoint from train
  std::vector<int64_t> test;        // indices into the test set; empty without one
};

struct TaskSplit {
  std::vector<int64_t> class_order;  // all tasks' classes, concatenated
  std::vector<Task> tasks;
  bool has_test = false;  // false: no test split, report validation accuracy
};

// Throws std::invalid_argument when the options do not fit the data set (class
// order not distinct or out of range, classes not divisible into the tasks,
// validation fraction outside [0, 1)), naming the option at fault, or when a
// class would have no training, validation (fraction > 0) or test images.
TaskSplit make_task_split(const ImageDataset& train, const ImageDataset* test, const SplitOptions& options);

// The presets of the study and its usual benchmarks:
//   "split-fashion-mnist": 5 tasks x 2 classes, label order
//   "split-cifar10":       5 tasks x 2 classes, label order
//   "split-cifar100":      10 tasks x 10 classes, class order the engine's shuffle
//                          (engine::Generator) with seed 1993; not iCaRL's order,
//                          which numpy draws with that seed
//   "study-cifar100":      10 tasks x 10 classes in the study's order (study_cifar100_class_order)
// validation_fraction 0.1, validation_seed as given. Throws std::invalid_argument
// for an unknown name.
SplitOptions split_preset(const std::string& name, uint64_t validation_seed = 0);

// The study's CIFAR-100 class order, task by task: Avalanche's SplitCIFAR100
// with seed 1234, i.e. torch.randperm(100) after torch.manual_seed(1234).
const std::vector<int64_t>& study_cifar100_class_order();

// map[label] = the label's position within task.classes, -1 for labels outside
// the task; size num_classes. For per-task heads (task-incremental learning).
std::vector<int64_t> local_label_map(const Task& task, int64_t num_classes);

}  // namespace datasets
