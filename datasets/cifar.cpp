#include "datasets/cifar.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <stdexcept>

#include "engine/io.h"

namespace datasets {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kCifar10Classes = 10, kCifar100Classes = 100, kCifar100Superclasses = 20;

std::vector<std::string> numbered_names(int64_t count) {
  std::vector<std::string> names;
  for (int64_t k = 0; k < count; ++k) names.push_back(std::to_string(k));
  return names;
}

// Appends the records of one file to `data`; labels are range-checked here so
// the error can name the file and the record.
void append_cifar_file(const fs::path& path, CifarFormat format, ImageDataset& data) {
  if (const std::string problem = data_file_problem(path); !problem.empty())
    throw std::runtime_error("CIFAR file " + path.string() + ": " + problem);
  const std::vector<char> bytes = engine::read_file(path);
  const int64_t record_bytes = cifar_record_bytes(format);
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (size == 0 || size % record_bytes != 0)
    throw std::runtime_error("CIFAR file " + path.string() + ": size " + std::to_string(size) +
                             " bytes is not a whole number of " + std::to_string(record_bytes) +
                             "-byte records (record " + std::to_string(size / record_bytes) +
                             " is incomplete or the file is empty)");
  const int64_t records = size / record_bytes;
  const int64_t label_bytes = record_bytes - kCifarImageBytes;
  const auto check = [&](int64_t record, const char* what, int64_t label, int64_t count) {
    if (label >= count)
      throw std::runtime_error("CIFAR file " + path.string() + ": record " + std::to_string(record) +
                               ": " + what + " " + std::to_string(label) + " out of range [0, " +
                               std::to_string(count) + ")");
  };
  const size_t first_pixel = data.pixels.size();
  data.pixels.resize(first_pixel + static_cast<size_t>(records * kCifarImageBytes));
  for (int64_t r = 0; r < records; ++r) {
    const auto* record = reinterpret_cast<const uint8_t*>(bytes.data()) + r * record_bytes;
    if (format == CifarFormat::cifar100) {
      check(r, "coarse label", record[0], static_cast<int64_t>(data.coarse_class_names.size()));
      data.coarse_labels.push_back(record[0]);
    }
    const int64_t label = record[label_bytes - 1];
    check(r, "label", label, data.num_classes());
    data.labels.push_back(label);
    std::copy(record + label_bytes, record + record_bytes,
              data.pixels.begin() + static_cast<std::ptrdiff_t>(first_pixel + r * kCifarImageBytes));
  }
  data.sources.push_back(path.string());
}

}  // namespace

int64_t cifar_record_bytes(CifarFormat format) {
  return (format == CifarFormat::cifar10 ? 1 : 2) + kCifarImageBytes;
}

ImageDataset read_cifar_files(const std::vector<fs::path>& files, CifarFormat format,
                              std::vector<std::string> class_names,
                              std::vector<std::string> coarse_class_names) {
  if (files.empty()) throw std::invalid_argument("read_cifar_files: no files given");
  ImageDataset data;
  data.channels = 3;
  data.height = data.width = kCifarSide;
  if (format == CifarFormat::cifar10) {
    data.class_names = class_names.empty() ? numbered_names(kCifar10Classes) : std::move(class_names);
  } else {
    data.class_names = class_names.empty() ? numbered_names(kCifar100Classes) : std::move(class_names);
    data.coarse_class_names =
        coarse_class_names.empty() ? numbered_names(kCifar100Superclasses) : std::move(coarse_class_names);
  }
  for (const fs::path& file : files) append_cifar_file(file, format, data);
  data.validate("CIFAR files " + files.front().string() + (files.size() > 1 ? ", ..." : ""));
  return data;
}

std::vector<std::string> read_label_names(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("label names " + path.string() + ": cannot open");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty() || names.size() > 256)
    throw std::runtime_error("label names " + path.string() + ": " + std::to_string(names.size()) +
                             " names, expected 1 to 256 (one per label byte value)");
  return names;
}

TrainTestData read_cifar_directory(const fs::path& dir, CifarFormat format) {
  if (!fs::is_directory(dir)) throw std::runtime_error("CIFAR directory " + dir.string() + ": missing");
  std::vector<fs::path> train_files;
  fs::path test_file;
  std::vector<std::string> names, coarse_names;
  if (format == CifarFormat::cifar10) {
    // data_batch_1.bin up to the highest-numbered one present; a gap is reported
    // as a missing file, and so is an empty directory (data_batch_1.bin).
    int64_t last_batch = 1;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      const std::string prefix = "data_batch_", suffix = ".bin";
      if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
        continue;
      const std::string number = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
      if (number.size() <= 4 && std::all_of(number.begin(), number.end(), ::isdigit))
        last_batch = std::max<int64_t>(last_batch, std::stoll(number));
    }
    for (int64_t k = 1; k <= last_batch; ++k)
      train_files.push_back(dir / ("data_batch_" + std::to_string(k) + ".bin"));
    test_file = dir / "test_batch.bin";
    if (fs::exists(dir / "batches.meta.txt")) names = read_label_names(dir / "batches.meta.txt");
  } else {
    train_files.push_back(dir / "train.bin");
    test_file = dir / "test.bin";
    if (fs::exists(dir / "fine_label_names.txt"))
      names = read_label_names(dir / "fine_label_names.txt");
    if (fs::exists(dir / "coarse_label_names.txt"))
      coarse_names = read_label_names(dir / "coarse_label_names.txt");
  }
  TrainTestData result{read_cifar_files(train_files, format, names, coarse_names), std::nullopt};
  if (fs::exists(test_file)) result.test = read_cifar_files({test_file}, format, names, coarse_names);
  return result;
}

void check_cifar_packable(const ImageDataset& data, CifarFormat format, const std::string& origin) {
  if (data.channels != 3 || data.height != kCifarSide || data.width != kCifarSide)
    throw std::invalid_argument(origin + ": images are (" + std::to_string(data.channels) + ", " + std::to_string(data.height) +
                                ", " + std::to_string(data.width) + "), CIFAR needs (3, 32, 32)");
  if (format == CifarFormat::cifar100 && data.coarse_labels.size() != data.labels.size())
    throw std::invalid_argument(origin + ": CIFAR-100 records need coarse labels");
  if (data.num_classes() > 256 || data.coarse_class_names.size() > 256)
    throw std::invalid_argument(origin + ": " + std::to_string(std::max<size_t>(data.class_names.size(), data.coarse_class_names.size())) +
                                " classes do not fit in a label byte (256 at most)");
  // The meta files hold one name a line: a line break in a name would split it.
  for (const std::vector<std::string>* names : {&data.class_names, &data.coarse_class_names})
    for (const std::string& name : *names)
      if (name.find_first_of("\n\r") != std::string::npos)
        throw std::invalid_argument(origin + ": class name '" + name + "' holds a line break; the meta files hold one name a line");
}

void write_cifar_file(const fs::path& path, const ImageDataset& data, std::span<const int64_t> order,
                      CifarFormat format) {
  const std::string op = "write_cifar_file " + path.string();
  check_cifar_packable(data, format, op);
  for (int64_t i : order)
    if (i < 0 || i >= data.size())
      throw std::invalid_argument(op + ": index " + std::to_string(i) + " outside the data set of " +
                                  std::to_string(data.size()) + " images");
  engine::write_file_atomic(path, [&](std::ostream& out) {
    for (int64_t i : order) {
      if (format == CifarFormat::cifar100) out.put(static_cast<char>(data.coarse_labels[i]));
      out.put(static_cast<char>(data.labels[i]));
      out.write(reinterpret_cast<const char*>(data.image(i)), kCifarImageBytes);
    }
  });
}

void write_cifar_meta(const fs::path& dir, const ImageDataset& data, CifarFormat format) {
  check_cifar_packable(data, format, "write_cifar_meta " + dir.string());
  const auto write_names = [](const fs::path& path, const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names) text += name + "\n";
    engine::write_file_atomic(path, std::span<const char>(text.data(), text.size()));
  };
  if (format == CifarFormat::cifar10) {
    write_names(dir / "batches.meta.txt", data.class_names);
  } else {
    write_names(dir / "fine_label_names.txt", data.class_names);
    write_names(dir / "coarse_label_names.txt", data.coarse_class_names);
  }
}

}  // namespace datasets
