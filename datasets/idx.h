// IDX files, the format of MNIST, Fashion-MNIST and KMNIST, plain or gzip'd.
//
// Layout (big-endian): two zero bytes, a type byte (0x08: unsigned byte, the
// only type these data sets use), the number of dimensions d, then d 32-bit
// sizes, then the values row-major. Images are (N, H, W), labels (N).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/image_dataset.h"

namespace datasets {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;  // row-major, product of dims
};

// Reads one IDX file; a file starting with the gzip magic (1f 8b) is inflated
// first. Throws std::runtime_error naming the file on a broken gzip stream, a
// wrong magic number or type, or a size that disagrees with the header.
IdxArray read_idx(const std::filesystem::path& path);

// Images (N, H, W) and labels (N) into a one-channel data set. Labels are
// checked against class_names (empty: ten classes named by their digit).
ImageDataset read_idx_dataset(const std::filesystem::path& images, const std::filesystem::path& labels,
                              std::vector<std::string> class_names = {});

// A directory in the MNIST layout: train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally ending in .gz
// (the plain file is used when both exist). The test files are optional.
TrainTestData read_idx_directory(const std::filesystem::path& dir, std::vector<std::string> class_names = {});

// Class names of the data sets that share the MNIST layout.
std::vector<std::string> mnist_class_names();          // "0" ... "9"
std::vector<std::string> fashion_mnist_class_names();  // "T-shirt/top" ... "Ankle boot"
std::vector<std::string> kmnist_class_names();         // "o", "ki", ... (romanised hiragana)

}  // namespace datasets
