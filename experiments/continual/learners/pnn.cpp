#include "experiments/continual/learners/pnn.h"

#include <stdexcept>

namespace continual {

using engine::Tensor;

Pnn::Pnn(const layers::Module& layout, double width, uint64_t seed, engine::Device device)
    : network_(std::make_shared<layers::ProgressiveNetwork>(layout, width)), gen_(seed), device_(device) {}

std::vector<Tensor> Pnn::begin_task(int64_t task, const std::vector<int64_t>& classes) {
  if (task != network_->num_columns())
    throw std::logic_error("pnn: task " + std::to_string(task) + " begun after " +
                           std::to_string(network_->num_columns()) + " tasks");
  const layers::ParameterCounts before = layers::count_parameters(*network_);
  network_->add_column(static_cast<int64_t>(classes.size()), &gen_);
  network_->to(device_);
  const layers::ParameterCounts after = layers::count_parameters(*network_);
  new_params_.push_back({after.features - before.features, after.classifier - before.classifier});
  return network_->trainable_parameters();
}

NewParams Pnn::new_params(int64_t task) const { return new_params_.at(static_cast<size_t>(task)); }

Tensor Pnn::forward(const Tensor& images, [[maybe_unused]] int64_t task, bool training) {
  network_->train_newest_column(training);
  return network_->forward(images);
}

std::vector<uint8_t> Pnn::class_mask(int64_t task) const {
  std::vector<uint8_t> mask(static_cast<size_t>(network_->total_classes()), 0);
  int64_t offset = 0;
  for (int64_t k = 0; k < task; ++k) offset += network_->classes(k);
  for (int64_t c = 0; c < network_->classes(task); ++c) mask[static_cast<size_t>(offset + c)] = 1;
  return mask;
}

engine::NamedTensors Pnn::trained_state() { return task_state(network_->num_columns() - 1); }

engine::NamedTensors Pnn::task_state(int64_t task) {
  network_->classes(task);  // checks the task
  const std::string prefix = "column" + std::to_string(task) + ".";
  engine::NamedTensors tensors;
  for (auto& entry : network_->state_dict())
    if (entry.first.starts_with(prefix)) tensors.push_back(std::move(entry));
  return tensors;
}

}  // namespace continual
