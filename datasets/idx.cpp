#include "datasets/idx.h"

#include <zlib.h>

#include <algorithm>
#include <stdexcept>

#include "engine/io.h"

namespace datasets {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void idx_error(const fs::path& path, const std::string& message) {
  throw std::runtime_error("IDX file " + path.string() + ": " + message);
}

bool is_gzip(const std::vector<char>& bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b;
}

// The whole decompressed contents of a gzip stream; a truncated or corrupt
// stream is an error rather than a silently short result.
std::vector<uint8_t> gunzip(const std::vector<char>& compressed, const fs::path& path) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) idx_error(path, "cannot initialise zlib");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::vector<uint8_t> out(compressed.size() * 4 + 1024);
  int status = Z_OK;
  while (status == Z_OK) {
    if (stream.total_out == out.size()) out.resize(out.size() * 2);
    stream.next_out = out.data() + stream.total_out;
    stream.avail_out = static_cast<uInt>(out.size() - stream.total_out);
    status = inflate(&stream, Z_NO_FLUSH);
  }
  const std::string message = stream.msg ? stream.msg : "";
  out.resize(stream.total_out);
  inflateEnd(&stream);
  if (status != Z_STREAM_END)
    idx_error(path, "broken gzip stream (" +
                        (status == Z_BUF_ERROR ? std::string("truncated") : "zlib: " + message) + ")");
  return out;
}

uint32_t read_big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

fs::path plain_or_gzip(const fs::path& dir, const std::string& name) {
  if (fs::exists(dir / name)) return dir / name;
  return dir / (name + ".gz");
}

}  // namespace

IdxArray read_idx(const fs::path& path) {
  if (const std::string problem = data_file_problem(path); !problem.empty()) idx_error(path, problem);
  std::vector<char> raw = engine::read_file(path);
  const std::vector<uint8_t> bytes =
      is_gzip(raw) ? gunzip(raw, path) : std::vector<uint8_t>(raw.begin(), raw.end());
  if (bytes.size() < 4) idx_error(path, "only " + std::to_string(bytes.size()) + " bytes, no header");
  if (bytes[0] != 0 || bytes[1] != 0)
    idx_error(path, "wrong magic number (first bytes " + std::to_string(bytes[0]) + " " +
                        std::to_string(bytes[1]) + ", expected 0 0)");
  if (bytes[2] != 0x08)
    idx_error(path, "value type " + std::to_string(bytes[2]) + " is not unsigned byte (8)");
  const int64_t ndim = bytes[3];
  if (ndim < 1) idx_error(path, "no dimensions");
  const int64_t header = 4 + 4 * ndim;
  if (static_cast<int64_t>(bytes.size()) < header) idx_error(path, "truncated header");
  IdxArray array;
  for (int64_t d = 0; d < ndim; ++d) array.dims.push_back(read_big_endian_u32(bytes.data() + 4 + 4 * d));
  // A zero size means no values, whatever the others say (an empty shape is the
  // caller's to refuse, not a truncated file).
  const bool empty = std::find(array.dims.begin(), array.dims.end(), 0) != array.dims.end();
  int64_t count = empty ? 0 : 1;
  const int64_t size = static_cast<int64_t>(bytes.size());
  for (int64_t d = 0; d < ndim && !empty; ++d) {
    // Stop before the product can overflow: it already exceeds the file.
    if (count > size / array.dims[d])
      idx_error(path, "header sizes describe more values than the file's " + std::to_string(size) + " bytes (truncated)");
    count *= array.dims[d];
  }
  if (size != header + count)
    idx_error(path, "size " + std::to_string(size) + " bytes, header says " + std::to_string(header + count) +
                        (size < header + count ? " (truncated)" : " (trailing bytes)"));
  array.values.assign(bytes.begin() + header, bytes.end());
  return array;
}

ImageDataset read_idx_dataset(const fs::path& images, const fs::path& labels,
                              std::vector<std::string> class_names) {
  const IdxArray image_array = read_idx(images);
  const IdxArray label_array = read_idx(labels);
  if (image_array.dims.size() != 3)
    idx_error(images, "has " + std::to_string(image_array.dims.size()) + " dimensions, images need 3 (N, H, W)");
  if (label_array.dims.size() != 1)
    idx_error(labels, "has " + std::to_string(label_array.dims.size()) + " dimensions, labels need 1 (N)");
  if (image_array.dims[0] != label_array.dims[0])
    idx_error(labels, std::to_string(label_array.dims[0]) + " labels for " + std::to_string(image_array.dims[0]) +
                          " images in " + images.string());
  ImageDataset data;
  data.channels = 1;
  data.height = image_array.dims[1];
  data.width = image_array.dims[2];
  data.pixels = image_array.values;
  data.class_names = class_names.empty() ? mnist_class_names() : std::move(class_names);
  for (size_t i = 0; i < label_array.values.size(); ++i) {
    const int64_t label = label_array.values[i];
    if (label >= data.num_classes())
      idx_error(labels, "record " + std::to_string(i) + ": label " + std::to_string(label) + " out of range [0, " +
                            std::to_string(data.num_classes()) + ")");
    data.labels.push_back(label);
  }
  data.sources = {images.string(), labels.string()};
  data.validate("IDX files " + images.string());
  return data;
}

TrainTestData read_idx_directory(const fs::path& dir, std::vector<std::string> class_names) {
  if (!fs::is_directory(dir)) throw std::runtime_error("IDX directory " + dir.string() + ": missing");
  TrainTestData result{read_idx_dataset(plain_or_gzip(dir, "train-images-idx3-ubyte"),
                                        plain_or_gzip(dir, "train-labels-idx1-ubyte"), class_names),
                       std::nullopt};
  const fs::path test_images = plain_or_gzip(dir, "t10k-images-idx3-ubyte");
  if (fs::exists(test_images))
    result.test = read_idx_dataset(test_images, plain_or_gzip(dir, "t10k-labels-idx1-ubyte"), class_names);
  return result;
}

std::vector<std::string> mnist_class_names() { return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; }

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

std::vector<std::string> kmnist_class_names() { return {"o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"}; }

}  // namespace datasets
