// cifar-pack: packs an image folder into CIFAR-10 or CIFAR-100 binary files in
// the official layout, so that any folder of images (such as the CIFAR-10 JPEG
// release) can be read like the official binary download.
//
//   cifar-pack [--format cifar10|cifar100] [--split train|test]
//              [--order shuffled|folder] [--seed N] IMAGE_DIR OUT_DIR
//
// cifar10:  IMAGE_DIR/<class>/<image>; train writes data_batch_1.bin, ... (10,000
//           records each, the last one possibly fewer), test writes test_batch.bin;
//           batches.meta.txt holds the class names.
// cifar100: IMAGE_DIR/<superclass>/<class>/<image>; writes train.bin or test.bin,
//           fine_label_names.txt and coarse_label_names.txt.
// Images are decoded with stb_image and resized to 32x32 RGB where they differ.
// Every file is written to a temporary file and renamed into place.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "datasets/cifar.h"
#include "datasets/image_folder.h"
#include "engine/random.h"
#include "experiments/common/cli.h"
#include "experiments/common/tool.h"

namespace fs = std::filesystem;
using namespace datasets;

int main(int argc, char** argv) {
  CLI::App app{"Pack an image folder into CIFAR-10/CIFAR-100 binary files (official layout)."};
  experiments::add_standard_options(app, "cifar-pack", "cifar-pack --format cifar10 --split train /tmp/cifar10/train /tmp/cifar10-bin");
  std::string format_name = "cifar10", split = "train", order_name = "shuffled";
  uint64_t seed = 0;
  bool skip_corrupt = false;
  fs::path image_dir, out_dir;
  app.add_option("--format", format_name, "cifar10 (IMAGE_DIR/class/image) or cifar100 (IMAGE_DIR/superclass/class/image)")
      ->check(CLI::IsMember({"cifar10", "cifar100"}))
      ->capture_default_str();
  app.add_option("--split", split, "train or test: which official file names to write")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  app.add_option("--order", order_name, "record order: shuffled (seeded) or folder (classes, then file names, sorted)")
      ->check(CLI::IsMember({"shuffled", "folder"}))
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the shuffled order")->capture_default_str();
  app.add_flag("--skip-corrupt", skip_corrupt, "skip images that do not decode, with a warning, instead of failing");
  app.add_option("IMAGE_DIR", image_dir, "image folder to pack")->required()->check(CLI::ExistingDirectory);
  app.add_option("OUT_DIR", out_dir, "output directory (created if missing)")->required();
  return tool::run_main("cifar-pack", app, argc, argv, [&] {
    const auto start = std::chrono::steady_clock::now();
    const CifarFormat format = format_name == "cifar10" ? CifarFormat::cifar10 : CifarFormat::cifar100;
    ImageFolderOptions folder;
    folder.channels = 3;
    folder.height = folder.width = kCifarSide;
    folder.superclasses = format == CifarFormat::cifar100;
    folder.skip_corrupt = skip_corrupt;
    const ImageDataset data = read_image_folder(image_dir, folder);

    std::vector<int64_t> order(static_cast<size_t>(data.size()));
    std::iota(order.begin(), order.end(), 0);
    if (order_name == "shuffled") engine::Generator(seed).shuffle(order);

    check_cifar_packable(data, format, "IMAGE_DIR " + image_dir.string());  // before OUT_DIR is made
    fs::create_directories(out_dir);
    std::vector<fs::path> written;
    const auto write = [&](const fs::path& path, std::span<const int64_t> records) {
      write_cifar_file(path, data, records, format);
      written.push_back(path);
    };
    if (format == CifarFormat::cifar100) {
      write(out_dir / (split + ".bin"), order);
    } else if (split == "test") {
      write(out_dir / "test_batch.bin", order);
    } else {
      for (int64_t begin = 0, batch = 1; begin < data.size(); begin += kCifarBatchRecords, ++batch) {
        const int64_t count = std::min(kCifarBatchRecords, data.size() - begin);
        write(out_dir / ("data_batch_" + std::to_string(batch) + ".bin"), std::span(order).subspan(begin, count));
      }
      // Batches left by an earlier, larger pack would be read as part of this one.
      for (int64_t batch = static_cast<int64_t>(written.size()) + 1;
           fs::exists(out_dir / ("data_batch_" + std::to_string(batch) + ".bin")); ++batch)
        fs::remove(out_dir / ("data_batch_" + std::to_string(batch) + ".bin"));
    }
    write_cifar_meta(out_dir, data, format);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "packed " << data.size() << " images of " << data.num_classes() << " classes";
    if (format == CifarFormat::cifar100) std::cout << " (" << data.coarse_class_names.size() << " superclasses)";
    std::cout << " from " << image_dir.string() << " in " << order_name << " order in " << seconds << " s:\n";
    for (const fs::path& path : written) std::cout << "  " << path.string() << "\n";
    return 0;
  });
}
