#include "datasets/loader.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/random.h"

namespace datasets {

namespace {

// Seeds of independent streams, derived by hashing; the tags keep the epoch
// order and the augmentation streams apart.
uint64_t mix(uint64_t a, uint64_t b) { return engine::splitmix64(a ^ engine::splitmix64(b)); }
constexpr uint64_t kOrderStream = 1, kAugmentationStream = 2;

}  // namespace

BatchLoader::BatchLoader(const ImageDataset& data, std::vector<int64_t> indices, LoaderOptions options)
    : data_(data), indices_(std::move(indices)), options_(std::move(options)) {
  if (options_.batch_size < 1)
    throw std::invalid_argument("BatchLoader: batch_size " + std::to_string(options_.batch_size) + " must be >= 1");
  if (options_.prefetch_depth < 1)
    throw std::invalid_argument("BatchLoader: prefetch_depth " + std::to_string(options_.prefetch_depth) +
                                " must be >= 1");
  for (int64_t i : indices_) {
    if (i < 0 || i >= data_.size())
      throw std::invalid_argument("BatchLoader: index " + std::to_string(i) + " outside the data set of " +
                                  std::to_string(data_.size()) + " images");
    output_label(i);
  }
  if (!options_.normalization.mean.empty() &&
      (static_cast<int64_t>(options_.normalization.mean.size()) != data_.channels ||
       static_cast<int64_t>(options_.normalization.std.size()) != data_.channels))
    throw std::invalid_argument("BatchLoader: normalisation for " + std::to_string(options_.normalization.mean.size()) +
                                " channels, images have " + std::to_string(data_.channels));
  if (options_.prefetch) worker_ = std::thread([this] { worker_loop(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t BatchLoader::output_label(int64_t index) const {
  const int64_t label = data_.labels[index];
  if (options_.label_map.empty()) return label;
  if (label < 0 || label >= static_cast<int64_t>(options_.label_map.size()) || options_.label_map[label] < 0)
    throw std::invalid_argument("BatchLoader: sample " + std::to_string(index) + " has label " +
                                std::to_string(label) + ", which label_map does not map");
  return options_.label_map[label];
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> BatchLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order = indices_;
  if (options_.shuffle) {
    engine::Generator gen(mix(mix(options_.seed, kOrderStream), static_cast<uint64_t>(epoch)));
    gen.shuffle(order);
  }
  return order;
}

Batch BatchLoader::make_batch(int64_t epoch, int64_t batch_index) const {
  return make_batch(epoch_order(epoch), epoch, batch_index);
}

// order[batch_index * B, ...) -> images (B, C, H, W), labels (B)
Batch BatchLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index) const {
  if (batch_index < 0 || batch_index >= batches_per_epoch())
    throw std::out_of_range("BatchLoader: batch " + std::to_string(batch_index) + " outside the epoch's " +
                            std::to_string(batches_per_epoch()) + " batches");
  const int64_t begin = batch_index * options_.batch_size;
  const int64_t count = std::min(options_.batch_size, size() - begin);
  Batch batch;
  batch.images = engine::Tensor::empty({count, data_.channels, data_.height, data_.width}, engine::DType::f32);
  float* out = batch.images.data<float>();
  const uint64_t augmentation_seed = mix(mix(options_.seed, kAugmentationStream), static_cast<uint64_t>(epoch));
  const Augmentation* augmentation = options_.augmentation ? &*options_.augmentation : nullptr;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t index = order[begin + k];
    // A generator per sample, from (seed, epoch, sample): independent of the
    // batch size and of which thread prepares the batch.
    engine::Generator gen(mix(augmentation_seed, static_cast<uint64_t>(index)));
    image_to_float(data_, index, options_.normalization, augmentation, &gen, out + k * data_.image_bytes());
    batch.labels.push_back(output_label(index));
    batch.indices.push_back(index);
  }
  return batch;
}

void BatchLoader::start_epoch(int64_t epoch) {
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  {
    std::lock_guard lock(mutex_);
    order_ = std::move(order);
    epoch_ = epoch;
    ++generation_;
    next_to_prepare_ = next_to_hand_out_ = 0;
    ready_.clear();
    error_ = nullptr;
  }
  changed_.notify_all();
}

std::optional<Batch> BatchLoader::next() {
  std::unique_lock lock(mutex_);
  if (!order_) throw std::logic_error("BatchLoader::next: call start_epoch() first");
  if (next_to_hand_out_ >= batches_per_epoch()) return std::nullopt;
  if (!options_.prefetch) return make_batch(*order_, epoch_, next_to_hand_out_++);
  changed_.wait(lock, [&] { return !ready_.empty() || error_; });
  if (ready_.empty()) {
    // The batch could not be prepared: the epoch ends here, with the error.
    const std::exception_ptr error = error_;
    error_ = nullptr;
    next_to_hand_out_ = next_to_prepare_ = batches_per_epoch();
    std::rethrow_exception(error);
  }
  Batch batch = std::move(ready_.front());
  ready_.pop_front();
  ++next_to_hand_out_;
  lock.unlock();
  changed_.notify_all();
  return batch;
}

void BatchLoader::worker_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] {
      return stop_ || (order_ && !error_ && next_to_prepare_ < batches_per_epoch() &&
                       static_cast<int64_t>(ready_.size()) < options_.prefetch_depth);
    });
    if (stop_) return;
    const std::shared_ptr<const std::vector<int64_t>> order = order_;
    const uint64_t generation = generation_;
    const int64_t epoch = epoch_, batch_index = next_to_prepare_++;
    lock.unlock();
    std::optional<Batch> batch;
    std::exception_ptr error;
    try {
      batch = make_batch(*order, epoch, batch_index);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (generation != generation_) continue;  // start_epoch() moved on meanwhile
    if (error) error_ = error;
    else ready_.push_back(std::move(*batch));
    changed_.notify_all();
  }
}

}  // namespace datasets
