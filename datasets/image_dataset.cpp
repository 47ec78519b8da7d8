#include "datasets/image_dataset.h"

#include <stdexcept>

namespace datasets {

namespace {

void check_labels(const std::string& origin, const char* what, const std::vector<int64_t>& labels,
                  int64_t num_classes) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw std::runtime_error(origin + ": sample " + std::to_string(i) + ": " + what + " " +
                               std::to_string(labels[i]) + " out of range [0, " +
                               std::to_string(num_classes) + ")");
}

}  // namespace

void ImageDataset::validate(const std::string& origin) const {
  if (channels <= 0 || height <= 0 || width <= 0)
    throw std::runtime_error(origin + ": image shape (" + std::to_string(channels) + ", " +
                             std::to_string(height) + ", " + std::to_string(width) + ") is empty");
  if (static_cast<int64_t>(pixels.size()) != size() * image_bytes())
    throw std::runtime_error(origin + ": " + std::to_string(pixels.size()) + " pixel bytes for " +
                             std::to_string(size()) + " images of " + std::to_string(image_bytes()) +
                             " bytes");
  check_labels(origin, "label", labels, num_classes());
  if (!coarse_labels.empty() || !coarse_class_names.empty()) {
    if (coarse_labels.size() != labels.size())
      throw std::runtime_error(origin + ": " + std::to_string(coarse_labels.size()) +
                               " coarse labels for " + std::to_string(size()) + " images");
    check_labels(origin, "coarse label", coarse_labels,
                 static_cast<int64_t>(coarse_class_names.size()));
  }
}

std::string data_file_problem(const std::filesystem::path& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) return "missing";
  if (std::filesystem::is_directory(status)) return "is a directory";
  if (!std::filesystem::is_regular_file(status)) return "is not a regular file";
  return {};
}

}  // namespace datasets
