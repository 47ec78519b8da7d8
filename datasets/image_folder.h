// Image folders: root/<class>/<image>, one subfolder per class, classes sorted
// by name (byte order) and numbered from 0; images within a class sorted by
// file name. This is how users bring their own data sets (CUB-200 and the like)
// and how cifar-pack reads the folders it packs.
//
// With superclasses the tree is root/<superclass>/<class>/<image> (CIFAR-100's
// layout): fine labels number all classes sorted by class name, coarse labels
// the superclasses sorted by name.
//
// Every regular file in a class folder is an image (hidden files, starting with
// '.', are ignored, as are files directly under the root). JPEG, PNG and BMP are
// decoded with stb_image, converted to the requested channel count (grey is
// replicated to RGB) and resized with stb_image_resize to the requested size
// when it differs (the aspect ratio is not kept).
#pragma once

#include <cstdint>
#include <filesystem>

#include "datasets/image_dataset.h"

namespace datasets {

struct ImageFolderOptions {
  int64_t channels = 3;  // 1 (grey) or 3 (RGB)
  int64_t height = 32, width = 32;
  bool superclasses = false;  // root/<superclass>/<class>/<image>
  // false: a file that does not decode is an error naming it; true: it is
  // skipped with a warning on stderr.
  bool skip_corrupt = false;
};

// Throws std::runtime_error naming the folder or file at fault: a missing or
// empty root, a class folder without images, a file that does not decode.
ImageDataset read_image_folder(const std::filesystem::path& root, const ImageFolderOptions& options = {});

}  // namespace datasets
