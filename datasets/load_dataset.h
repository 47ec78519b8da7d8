// Data sets by name, the way the command-line tools choose them
// (`--dataset NAME --data-dir DIR`):
//   fashion-mnist, mnist, kmnist  IDX directory (MNIST file names, plain or .gz);
//                                 fashion-mnist defaults to Debian's
//                                 /usr/share/datasets/fashion-mnist
//   cifar10, cifar100             binary directory in the official layout
//                                 (e.g. cifar-pack's output)
//   folder                        image folder: DIR/train (and DIR/test when
//                                 present) when DIR has a train/ subfolder,
//                                 otherwise DIR itself, with no test split
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "datasets/image_dataset.h"
#include "datasets/image_folder.h"

namespace datasets {

std::vector<std::string> dataset_names();

// The directory used when none is given; empty where there is no default.
std::filesystem::path default_data_dir(const std::string& name);

// Throws std::invalid_argument for an unknown name or a missing directory
// without default, and the readers' std::runtime_error for bad files.
TrainTestData load_dataset(const std::string& name, const std::filesystem::path& data_dir,
                           const ImageFolderOptions& folder_options = {});

}  // namespace datasets
