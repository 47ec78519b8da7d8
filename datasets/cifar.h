// CIFAR-10 and CIFAR-100 in their official binary layout.
//
// A record is the label byte(s) followed by 3072 pixel bytes: 1024 red, 1024
// green, 1024 blue, rows top to bottom, i.e. one (3, 32, 32) image.
//   CIFAR-10:  label, pixels                        (3073 bytes)
//   CIFAR-100: coarse label, fine label, pixels     (3074 bytes)
// Official directory layout:
//   CIFAR-10:  data_batch_1.bin ... data_batch_5.bin, test_batch.bin, batches.meta.txt
//   CIFAR-100: train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "datasets/image_dataset.h"

namespace datasets {

enum class CifarFormat { cifar10, cifar100 };

constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarImageBytes = 3 * kCifarSide * kCifarSide;
constexpr int64_t kCifarBatchRecords = 10000;  // records per data_batch_K.bin
int64_t cifar_record_bytes(CifarFormat format);  // 3073 or 3074

// Reads the records of `files`, in order, into one data set. Labels are checked
// against the names given (CIFAR-10: class_names; CIFAR-100: class_names are
// the fine labels, coarse_class_names the superclasses); empty names mean the
// official counts (10; 100 and 20) with the labels' numbers as names. A folder
// packed by cifar-pack may have other class counts; its meta files say so.
// Throws std::runtime_error naming the file (and record) when a file is missing,
// its size is not a whole, non-zero number of records, or a label is out of range.
ImageDataset read_cifar_files(const std::vector<std::filesystem::path>& files, CifarFormat format,
                              std::vector<std::string> class_names = {},
                              std::vector<std::string> coarse_class_names = {});

// Reads a directory in the official layout. Training files: CIFAR-10 reads
// data_batch_1.bin up to the highest-numbered data_batch_K.bin present (a gap is
// a missing file; cifar-pack writes fewer than five for smaller folders),
// CIFAR-100 reads train.bin. The test file is optional: without it `test` is
// empty. Label names come from the meta files when present.
TrainTestData read_cifar_directory(const std::filesystem::path& dir, CifarFormat format);

// Label names from a meta file: one per line, blank lines and trailing spaces
// dropped. Throws std::runtime_error naming the file when it is unreadable or
// holds no names or more than a label byte can index.
std::vector<std::string> read_label_names(const std::filesystem::path& path);

// Throws std::invalid_argument "ORIGIN: ..." saying why `data` cannot be written in `format`:
// images not 3x32x32, more than 256 classes (or superclasses), CIFAR-100
// without coarse labels, or a class name holding a line break. The writers
// below check it; a packer checks it before creating any file.
void check_cifar_packable(const ImageDataset& data, CifarFormat format, const std::string& origin);

// Writes the images `order` (indices into `data`, which must hold 3x32x32 images)
// as CIFAR records into `path`, atomically (temporary file + rename).
// Throws std::invalid_argument when the data set does not fit the format
// (check_cifar_packable) or an index is outside it.
void write_cifar_file(const std::filesystem::path& path, const ImageDataset& data,
                      std::span<const int64_t> order, CifarFormat format);

// Writes the meta files of the official layout with the data set's class names:
// batches.meta.txt (CIFAR-10) or fine_label_names.txt and coarse_label_names.txt.
void write_cifar_meta(const std::filesystem::path& dir, const ImageDataset& data, CifarFormat format);

}  // namespace datasets
