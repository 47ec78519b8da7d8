#include "datasets/load_dataset.h"

#include <algorithm>
#include <stdexcept>

#include "datasets/cifar.h"
#include "datasets/idx.h"

namespace datasets {

namespace fs = std::filesystem;

namespace {

std::string shape_text(const ImageDataset& data) {
  return std::to_string(data.channels) + "x" + std::to_string(data.height) + "x" + std::to_string(data.width);
}

TrainTestData read_named(const std::string& name, const fs::path& dir, const ImageFolderOptions& folder_options) {
  if (name == "fashion-mnist") return read_idx_directory(dir, fashion_mnist_class_names());
  if (name == "mnist") return read_idx_directory(dir, mnist_class_names());
  if (name == "kmnist") return read_idx_directory(dir, kmnist_class_names());
  if (name == "cifar10") return read_cifar_directory(dir, CifarFormat::cifar10);
  if (name == "cifar100") return read_cifar_directory(dir, CifarFormat::cifar100);
  if (!fs::is_directory(dir / "train")) return {read_image_folder(dir, folder_options), std::nullopt};
  TrainTestData result{read_image_folder(dir / "train", folder_options), std::nullopt};
  if (fs::is_directory(dir / "test")) {
    result.test = read_image_folder(dir / "test", folder_options);
    if (result.test->class_names != result.train.class_names)
      throw std::runtime_error("image folder " + dir.string() + ": test/ and train/ hold different classes");
  }
  return result;
}

}  // namespace

std::vector<std::string> dataset_names() {
  return {"fashion-mnist", "mnist", "kmnist", "cifar10", "cifar100", "folder"};
}

fs::path default_data_dir(const std::string& name) {
  if (name == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return {};
}

TrainTestData load_dataset(const std::string& name, const fs::path& data_dir,
                           const ImageFolderOptions& folder_options) {
  const fs::path dir = data_dir.empty() ? default_data_dir(name) : data_dir;
  const std::vector<std::string> names = dataset_names();  // one list: its iterators are compared
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("--dataset: unknown data set '" + name + "' (known: " + known + ")");
  }
  if (dir.empty()) throw std::invalid_argument("--data-dir: data set '" + name + "' has no default directory");
  TrainTestData data = read_named(name, dir, folder_options);
  // The network is built for the training images: a test split of another
  // shape would fail only when the first task is evaluated.
  if (data.test && (data.test->channels != data.train.channels || data.test->height != data.train.height ||
                    data.test->width != data.train.width))
    throw std::runtime_error("data set " + name + " in " + dir.string() + ": test images are " +
                             shape_text(*data.test) + ", training images " + shape_text(data.train));
  return data;
}

}  // namespace datasets
