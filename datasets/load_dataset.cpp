#include "datasets/load_dataset.h"

#include <algorithm>
#include <stdexcept>

#include "datasets/cifar.h"
#include "datasets/idx.h"

namespace datasets {

namespace fs = std::filesystem;

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
  std::string known;
  for (const std::string& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  if (std::find(dataset_names().begin(), dataset_names().end(), name) == dataset_names().end())
    throw std::invalid_argument("load_dataset: unknown data set '" + name + "' (" + known + ")");
  if (dir.empty()) throw std::invalid_argument("load_dataset: data set '" + name + "' needs a data directory");
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

}  // namespace datasets
