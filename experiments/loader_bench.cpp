// loader-bench: how many images per second the batch loader prepares, with
// augmentation, from a data set held in memory. The loader must outpace
// training (a few hundred to a few thousand images/s) so that it never limits it.
//
//   loader-bench --dataset fashion-mnist
//   loader-bench --dataset folder --data-dir /tmp/cifar10-jpeg
//
// Reports the time to read the data set, then images/s over `--epochs` epochs
// of batches prepared on the calling thread and on the background thread,
// handed to a consumer that does no work.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <numeric>
#include <string>

#include "datasets/load_dataset.h"
#include "datasets/loader.h"
#include "datasets/transforms.h"
#include "experiments/common/cli.h"
#include "experiments/common/tool.h"

using namespace datasets;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measure the batch loader's throughput (images/s) with augmentation."};
  experiments::add_standard_options(app, "loader-bench", "loader-bench --dataset fashion-mnist --batch 64 --epochs 3");
  std::string dataset = "fashion-mnist";
  std::filesystem::path data_dir;
  int64_t batch_size = 64, epochs = 2, image_size = 32;
  std::string augment = "on";
  std::string names;
  for (const std::string& n : dataset_names()) names += (names.empty() ? "" : ", ") + n;
  app.add_option("--dataset", dataset, "one of: " + names)->check(CLI::IsMember(dataset_names()))->capture_default_str();
  app.add_option("--data-dir", data_dir, "data directory (fashion-mnist defaults to Debian's)");
  app.add_option("--batch", batch_size, "images per batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--epochs", epochs, "epochs per measurement")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--image-size", image_size, "side images of a folder are resized to")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--augment", augment, "random crop and flip: on or off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  return tool::run_main("loader-bench", app, argc, argv, [&] {
    tool::require_memory("--batch/--image-size",
                         4.0 * 3 * static_cast<double>(batch_size) * static_cast<double>(image_size) *
                             static_cast<double>(image_size),
                         "a batch of float32 images");
    ImageFolderOptions folder;
    folder.height = folder.width = image_size;
    auto start = std::chrono::steady_clock::now();
    const TrainTestData data = load_dataset(dataset, data_dir, folder);
    const ImageDataset& train = data.train;
    std::cout << "read " << train.size() << " training images (" << train.channels << "x" << train.height << "x"
              << train.width << ", " << train.num_classes() << " classes) in " << seconds_since(start) << " s\n";

    std::vector<int64_t> indices(static_cast<size_t>(train.size()));
    std::iota(indices.begin(), indices.end(), 0);
    LoaderOptions options;
    options.batch_size = batch_size;
    options.seed = 1;
    options.normalization = compute_channel_stats(train, indices);
    if (augment == "on") options.augmentation = Augmentation{};
    std::cout << "augmentation: " << (augment == "on" ? "random crop (padding 4) + horizontal flip" : "none")
              << ", batch size " << batch_size << "\n";

    for (const bool prefetch : {false, true}) {
      options.prefetch = prefetch;
      BatchLoader loader(train, indices, options);
      start = std::chrono::steady_clock::now();
      int64_t images = 0;
      for (int64_t epoch = 0; epoch < epochs; ++epoch) {
        loader.start_epoch(epoch);
        while (const std::optional<Batch> batch = loader.next()) images += batch->images.dim(0);
      }
      const double s = seconds_since(start);
      std::cout << (prefetch ? "background thread: " : "calling thread:    ") << images << " images in " << s
                << " s = " << static_cast<int64_t>(static_cast<double>(images) / s) << " images/s\n";
    }
    return 0;
  });
}
