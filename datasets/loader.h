// BatchLoader: mini-batches of one split of an in-memory data set, as NCHW
// float32 tensors plus int64 labels, reshuffled every epoch from the seed, with
// a background thread preparing the next batches while the current one trains.
//
// Determinism: an epoch's order is a function of (seed, epoch), and a sample's
// augmentation of (seed, epoch, sample index), never of timing, the batch size
// or whether the background thread is used.
//
// Usage:
//   BatchLoader loader(data, task.train, options);
//   for (int64_t epoch = 0; ...; ++epoch) {
//     loader.start_epoch(epoch);
//     while (std::optional<Batch> batch = loader.next()) train_step(batch->images, batch->labels);
//   }
// The data set must outlive the loader.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "datasets/image_dataset.h"
#include "datasets/transforms.h"
#include "engine/tensor.h"

namespace datasets {

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;     // false: the indices' own order every epoch
  bool drop_last = false;  // false: the last batch may be smaller
  uint64_t seed = 0;
  ChannelStats normalization;                // empty: byte / 255
  std::optional<Augmentation> augmentation;  // none: images as stored
  // Empty: labels as stored. Otherwise label_map[label] is the label handed out
  // (local_label_map() of a task); a sample mapping to -1 is an error.
  std::vector<int64_t> label_map;
  bool prefetch = true;     // prepare batches on a background thread
  int64_t prefetch_depth = 2;  // batches prepared ahead
};

struct Batch {
  engine::Tensor images;         // (B, C, H, W) float32 on the CPU
  std::vector<int64_t> labels;   // (B)
  std::vector<int64_t> indices;  // (B) the samples' indices in the data set
};

class BatchLoader {
 public:
  // Throws std::invalid_argument for an index outside the data set, a
  // non-positive batch size, or a label_map that does not cover every label.
  BatchLoader(const ImageDataset& data, std::vector<int64_t> indices, LoaderOptions options);
  ~BatchLoader();  // stops and joins the background thread
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t size() const { return static_cast<int64_t>(indices_.size()); }
  int64_t batches_per_epoch() const;

  // Fixes the order of `epoch` and starts preparing its batches; batches of an
  // unfinished earlier epoch are dropped.
  void start_epoch(int64_t epoch);
  // The epoch's next batch, or nullopt after its last. Re-throws, on this
  // thread, an exception raised while preparing the batch. Throws
  // std::logic_error before the first start_epoch().
  std::optional<Batch> next();

  // Batch `batch_index` of `epoch`, prepared on the calling thread: the same
  // contents next() hands out. It recomputes the epoch's order on every call
  // (O(size)); the training loop uses start_epoch() and next().
  Batch make_batch(int64_t epoch, int64_t batch_index) const;

 private:
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  int64_t output_label(int64_t index) const;  // throws for a label label_map does not map
  Batch make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index) const;
  void worker_loop();

  const ImageDataset& data_;
  std::vector<int64_t> indices_;
  LoaderOptions options_;

  // Shared with the worker, guarded by mutex_.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<const std::vector<int64_t>> order_;  // this epoch's order; null before start_epoch
  int64_t epoch_ = -1;
  uint64_t generation_ = 0;   // bumped by start_epoch, so stale batches are dropped
  int64_t next_to_prepare_ = 0;
  int64_t next_to_hand_out_ = 0;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace datasets
