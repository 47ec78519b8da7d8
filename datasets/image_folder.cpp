#include "datasets/image_folder.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/printable.h"

namespace datasets {

namespace fs = std::filesystem;

namespace {

struct ImageFile {
  fs::path path;
  int64_t label = 0, coarse_label = 0;
};

bool is_hidden(const fs::path& path) { return path.filename().string().starts_with("."); }

// Visible subfolders or visible regular files of `dir`, sorted by name.
std::vector<fs::path> sorted_entries(const fs::path& dir, bool folders) {
  std::vector<fs::path> entries;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir))
    if (!is_hidden(entry.path()) && (folders ? entry.is_directory() : entry.is_regular_file()))
      entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());
  return entries;
}

std::string name_of(const fs::path& path) { return path.filename().string(); }

// Decodes one image into `out` as (C, H, W) bytes of the requested shape.
// Returns an empty string on success, otherwise why the file is unusable.
std::string decode_image(const fs::path& path, const ImageFolderOptions& options, uint8_t* out) {
  const int channels = static_cast<int>(options.channels);
  int width = 0, height = 0, file_channels = 0;
  // A header may declare far more pixels than the file holds (stb_image pads
  // the missing rows: a 378-byte BMP declaring 12 x 16 million pixels took
  // minutes to decode and resize), or none (a BMP of height 0 decodes, and
  // stb_image_resize then aborts). Refuse both before decoding. No PNG or JPEG
  // packs more than ~1000 pixels into a byte (deflate's limit; a flat JPEG
  // block still takes bits), so 2048 per byte is never a real image.
  std::error_code error;
  const int64_t file_bytes = static_cast<int64_t>(fs::file_size(path, error));
  const int64_t max_pixels = std::min<int64_t>(int64_t{1} << 25, 2048 * (error ? 0 : file_bytes));
  if (stbi_info(path.c_str(), &width, &height, &file_channels) &&
      (width < 1 || height < 1 || int64_t{width} * height > max_pixels))
    return "declares " + std::to_string(width) + "x" + std::to_string(height) + " pixels (1 to " +
           std::to_string(max_pixels) + " allowed for its size)";
  // stb converts to the requested channel count (grey -> RGB by replication).
  uint8_t* decoded = stbi_load(path.c_str(), &width, &height, &file_channels, channels);
  // stb_image's reason may quote the file (a PNG chunk type: any 4 bytes).
  if (decoded == nullptr) return "not a decodable image (stb_image: " + engine::printable(stbi_failure_reason()) + ")";
  std::vector<uint8_t> resized;
  const uint8_t* interleaved = decoded;  // (H, W, C)
  if (width != options.width || height != options.height) {
    resized.resize(static_cast<size_t>(options.width * options.height * channels));
    const int ok = stbir_resize_uint8(decoded, width, height, 0, resized.data(), static_cast<int>(options.width),
                                      static_cast<int>(options.height), 0, channels);
    if (!ok) {
      stbi_image_free(decoded);
      return "cannot resize " + std::to_string(width) + "x" + std::to_string(height) + " image";
    }
    interleaved = resized.data();
  }
  const int64_t plane = options.height * options.width;
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t c = 0; c < channels; ++c) out[c * plane + p] = interleaved[p * channels + c];
  stbi_image_free(decoded);
  return {};
}

}  // namespace

ImageDataset read_image_folder(const fs::path& root, const ImageFolderOptions& options) {
  const std::string origin = "image folder " + root.string();
  if (options.channels != 1 && options.channels != 3)
    throw std::invalid_argument(origin + ": channels must be 1 or 3, got " + std::to_string(options.channels));
  if (options.height <= 0 || options.width <= 0)
    throw std::invalid_argument(origin + ": image size " + std::to_string(options.height) + "x" +
                                std::to_string(options.width) + " is empty");
  if (!fs::is_directory(root)) throw std::runtime_error(origin + ": missing or not a directory");

  ImageDataset data;
  data.channels = options.channels;
  data.height = options.height;
  data.width = options.width;
  data.sources = {root.string()};

  // Class folders, with their superclass where the tree has two levels.
  std::vector<std::pair<fs::path, int64_t>> class_dirs;
  if (options.superclasses) {
    for (const fs::path& super : sorted_entries(root, true)) {
      const std::vector<fs::path> classes = sorted_entries(super, true);
      if (classes.empty()) throw std::runtime_error(origin + ": superclass folder " + super.string() + " has no class folders");
      for (const fs::path& dir : classes) class_dirs.emplace_back(dir, data.coarse_class_names.size());
      data.coarse_class_names.push_back(name_of(super));
    }
    // Fine labels number the classes by name across all superclasses.
    std::sort(class_dirs.begin(), class_dirs.end(),
              [](const auto& a, const auto& b) { return name_of(a.first) < name_of(b.first); });
  } else {
    for (const fs::path& dir : sorted_entries(root, true)) class_dirs.emplace_back(dir, 0);
  }
  if (class_dirs.empty()) throw std::runtime_error(origin + ": no class folders");

  std::vector<ImageFile> files;
  for (const auto& [dir, coarse] : class_dirs) {
    const int64_t label = data.num_classes();
    if (std::find(data.class_names.begin(), data.class_names.end(), name_of(dir)) != data.class_names.end())
      throw std::runtime_error(origin + ": class name " + name_of(dir) + " appears in two superclasses");
    data.class_names.push_back(name_of(dir));
    const std::vector<fs::path> images = sorted_entries(dir, false);
    if (images.empty()) throw std::runtime_error(origin + ": class folder " + dir.string() + " has no images");
    for (const fs::path& image : images) files.push_back({image, label, coarse});
  }

  // Decoding dominates; files decode independently into disjoint slots, so the
  // result does not depend on the thread count.
  const int64_t count = static_cast<int64_t>(files.size());
  std::vector<uint8_t> pixels(static_cast<size_t>(count * data.image_bytes()));
  std::vector<std::string> errors(static_cast<size_t>(count));
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < count; ++i)
    errors[i] = decode_image(files[i].path, options, pixels.data() + i * data.image_bytes());

  int64_t kept = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (!errors[i].empty()) {
      const std::string message = origin + ": " + files[i].path.string() + ": " + errors[i];
      if (!options.skip_corrupt) throw std::runtime_error(message);
      std::cerr << "warning: skipping " << message << "\n";
      continue;
    }
    std::copy_n(pixels.begin() + i * data.image_bytes(), data.image_bytes(),
                pixels.begin() + kept * data.image_bytes());
    data.labels.push_back(files[i].label);
    if (options.superclasses) data.coarse_labels.push_back(files[i].coarse_label);
    ++kept;
  }
  if (kept == 0) throw std::runtime_error(origin + ": no image could be decoded");
  pixels.resize(static_cast<size_t>(kept * data.image_bytes()));
  data.pixels = std::move(pixels);
  data.validate(origin);
  return data;
}

}  // namespace datasets
