// The data of a continual run: the data set read once, cut into tasks, with
// the normalisation, the augmentation and the description of the data set
// (files and sizes) that results.json records.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "datasets/image_dataset.h"
#include "datasets/task_split.h"
#include "datasets/transforms.h"
#include "experiments/continual/config.h"

namespace continual {

struct TaskData {
  datasets::TrainTestData data;
  datasets::TaskSplit split;
  datasets::ChannelStats stats;  // over every task's training images
  std::optional<datasets::Augmentation> augmentation;  // training batches only
  nlohmann::json identity;
  // label_positions[label] = the label's position in split.class_order, -1 for
  // labels in no task: the loaders' label map, matching the learners' logits.
  std::vector<int64_t> label_positions;

  // The images a task is evaluated on for the accuracy matrix: the test split
  // where there is one, else validation.
  const datasets::ImageDataset& eval_set() const { return split.has_test ? *data.test : data.train; }
  const std::vector<int64_t>& eval_indices(int64_t task) const {
    return split.has_test ? split.tasks[task].test : split.tasks[task].validation;
  }
  std::string eval_split() const { return split.has_test ? "test" : "validation"; }
};

// Reads the data set and splits it as `config` says; --train-limit and
// --eval-limit keep a seeded random subset of each task's images (in data set
// order). Throws the readers' and the splitter's errors.
TaskData load_task_data(const RunConfig& config);

}  // namespace continual
