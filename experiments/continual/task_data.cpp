#include "experiments/continual/task_data.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "datasets/load_dataset.h"
#include "engine/random.h"
#include "engine/splitmix64.h"

namespace continual {

namespace {

constexpr int64_t kFolderImageSize = 32;  // folder images are decoded to a fixed size; this one by default

datasets::SplitOptions split_options(const RunConfig& c, const datasets::ImageDataset& train) {
  datasets::SplitOptions options;
  options.num_tasks = c.tasks;
  options.first_task_classes = c.first_task_classes;
  options.validation_fraction = c.validation_fraction;
  options.validation_seed = c.split_seed;
  if (c.class_order.empty()) {
    // The benchmark's order: CIFAR-100 in 10 tasks shuffled with the customary
    // seed (split-cifar100), everything else in label order.
    if (c.dataset == "cifar100" && train.num_classes() == 100 && c.tasks == 10 && c.first_task_classes == 0) {
      options.shuffle_classes = true;
      options.class_order_seed = datasets::split_preset("split-cifar100").class_order_seed;
    }
  } else if (c.class_order == "study") {
    if (train.num_classes() != 100)
      throw std::invalid_argument("--class-order study: is CIFAR-100's order of 100 classes, but --dataset " +
                                  c.dataset + " has " + std::to_string(train.num_classes()));
    options.class_order = datasets::study_cifar100_class_order();
  } else if (c.class_order == "shuffle") {
    options.shuffle_classes = true;
    options.class_order_seed = c.split_seed;
  } else {
    std::stringstream list(c.class_order);
    std::string item;
    while (std::getline(list, item, ',')) {
      try {
        size_t used = 0;
        options.class_order.push_back(std::stoll(item, &used));
        if (used != item.size()) throw std::invalid_argument(item);
      } catch (const std::exception&) {
        throw std::invalid_argument("--class-order: '" + item + "' is not a label");
      }
    }
  }
  return options;
}

// A seeded random subset of `indices`, kept in their order.
void limit(std::vector<int64_t>& indices, int64_t count, uint64_t seed) {
  if (count <= 0 || static_cast<int64_t>(indices.size()) <= count) return;
  engine::Generator gen(seed);
  gen.shuffle(indices);
  indices.resize(static_cast<size_t>(count));
  std::sort(indices.begin(), indices.end());
}

nlohmann::json describe_set(const datasets::ImageDataset& set) {
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& source : set.sources) {
    std::error_code error;
    const bool is_file = std::filesystem::is_regular_file(source, error);
    files.push_back({{"path", source}, {"bytes", is_file ? static_cast<int64_t>(std::filesystem::file_size(source)) : -1}});
  }
  return {{"images", set.size()}, {"files", files}};
}

}  // namespace

TaskData load_task_data(const RunConfig& c) {
  TaskData t;
  datasets::ImageFolderOptions folder;
  folder.height = folder.width = c.image_size == 0 ? kFolderImageSize : c.image_size;
  t.data = datasets::load_dataset(c.dataset, c.data_dir, folder);
  if (c.image_size != 0) {
    datasets::resize_images(t.data.train, c.image_size, c.image_size);
    if (t.data.test) datasets::resize_images(*t.data.test, c.image_size, c.image_size);
  }
  if (c.normalize == "imagenet" && t.data.train.channels != 3)
    throw std::invalid_argument("--normalize imagenet: needs RGB images, but --dataset " + c.dataset + " has " +
                                std::to_string(t.data.train.channels) + " channel(s)");
  const datasets::ImageDataset* test = t.data.test ? &*t.data.test : nullptr;
  t.split = datasets::make_task_split(t.data.train, test, split_options(c, t.data.train));
  for (size_t i = 0; i < t.split.tasks.size(); ++i) {
    datasets::Task& task = t.split.tasks[i];
    // One stream per task and list, so limits on one never shift another's subset.
    limit(task.train, c.train_limit, engine::splitmix64(c.split_seed * 3 + 0 + 16 * i));
    limit(task.validation, c.eval_limit, engine::splitmix64(c.split_seed * 3 + 1 + 16 * i));
    limit(task.test, c.eval_limit, engine::splitmix64(c.split_seed * 3 + 2 + 16 * i));
  }
  t.label_positions.assign(static_cast<size_t>(t.data.train.num_classes()), -1);
  for (size_t p = 0; p < t.split.class_order.size(); ++p) t.label_positions[t.split.class_order[p]] = static_cast<int64_t>(p);
  std::vector<int64_t> all_train;
  for (const datasets::Task& task : t.split.tasks) all_train.insert(all_train.end(), task.train.begin(), task.train.end());
  std::sort(all_train.begin(), all_train.end());
  t.stats = c.normalize == "imagenet" ? datasets::imagenet_channel_stats()
                                      : datasets::compute_channel_stats(t.data.train, all_train);
  const bool augment = c.augment == "on" || (c.augment == "auto" && t.data.train.channels == 3);
  if (augment) t.augmentation = datasets::Augmentation{};

  nlohmann::json tasks = nlohmann::json::array();
  for (const datasets::Task& task : t.split.tasks) {
    nlohmann::json names = nlohmann::json::array();
    for (int64_t label : task.classes) names.push_back(t.data.train.class_names[label]);
    tasks.push_back({{"classes", task.classes},
                     {"class_names", names},
                     {"train", task.train.size()},
                     {"validation", task.validation.size()},
                     {"test", task.test.size()}});
  }
  t.identity = {{"name", c.dataset},
                {"image_shape", {t.data.train.channels, t.data.train.height, t.data.train.width}},
                {"classes", t.data.train.num_classes()},
                {"train", describe_set(t.data.train)},
                {"test", test ? describe_set(*test) : nlohmann::json(nullptr)},
                {"reported_split", t.eval_split()},
                {"normalization", {{"source", c.normalize}, {"mean", t.stats.mean}, {"std", t.stats.std}}},
                {"augmentation", augment ? "random crop (padding 4) and horizontal flip" : "none"},
                {"tasks", tasks}};
  return t;
}

}  // namespace continual
