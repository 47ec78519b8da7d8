// ImageDataset: a whole image data set held in memory as bytes, the one form
// every reader produces and the loader consumes. CIFAR-10's 50,000 training
// images take 150 MB this way; conversion to float happens per batch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace datasets {

struct ImageDataset {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;               // (N, C, H, W) row-major, 0..255
  std::vector<int64_t> labels;               // (N), each in [0, class_names.size())
  std::vector<std::string> class_names;      // one per class, in label order
  // CIFAR-100's superclasses (and any two-level image folder); empty otherwise.
  std::vector<int64_t> coarse_labels;        // (N), each in [0, coarse_class_names.size())
  std::vector<std::string> coarse_class_names;
  std::vector<std::string> sources;          // the files or folders read, for reports

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  int64_t image_bytes() const { return channels * height * width; }
  // First byte of image i: (C, H, W) bytes follow.
  const uint8_t* image(int64_t i) const { return pixels.data() + i * image_bytes(); }

  // Throws std::runtime_error("<origin>: ...") when the sizes disagree or a
  // label is out of range; every reader calls it before handing a data set out.
  void validate(const std::string& origin) const;
};

// A data set's training split and, where the data set has one, its test split.
// The CIFAR-10 JPEG folder has no test split: test is empty and the runner
// reports validation accuracy instead.
struct TrainTestData {
  ImageDataset train;
  std::optional<ImageDataset> test;
};

// Why `path` cannot be read as a data file, for the readers' messages:
// "missing", "is a directory" or "is not a regular file" (a device such as
// /dev/zero, a pipe, a socket); empty when it is a regular file.
std::string data_file_problem(const std::filesystem::path& path);

}  // namespace datasets
