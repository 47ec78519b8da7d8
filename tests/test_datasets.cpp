// Data sets: the CIFAR and IDX readers on golden files and on files written
// here, image folders, every bad input's error, cifar-pack against the golden
// file, task splits, preprocessing and the prefetching loader.
#define BOOST_TEST_MODULE datasets
#include <boost/test/unit_test.hpp>

#include <stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include "datasets/cifar.h"
#include "datasets/idx.h"
#include "datasets/image_folder.h"
#include "datasets/load_dataset.h"
#include "datasets/loader.h"
#include "datasets/task_split.h"
#include "datasets/transforms.h"
#include "tests/preconditions.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace datasets;

namespace {

using testing::TempDir;

// The directory holding this test program.
fs::path program_dir() {
  return fs::absolute(boost::unit_test::framework::master_test_suite().argv[0]).parent_path();
}

// ../shared beside the source tree: from meson test's PROJECT_SOURCE_DIR, else
// from this file's path (relative to the build root, one level above the program).
fs::path shared_dir() {
  if (const char* root = std::getenv("PROJECT_SOURCE_DIR")) return fs::path(root) / ".." / "shared";
  const fs::path source = fs::path(__FILE__).is_absolute() ? fs::path(__FILE__) : program_dir() / ".." / __FILE__;
  return source.parent_path() / ".." / ".." / "shared";
}
fs::path golden_dir() { return shared_dir() / "data" / "golden"; }

boost::test_tools::assertion_result golden_present(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result result(fs::is_directory(golden_dir()));
  result.message() << "SKIPPED: golden files not found at " << golden_dir().string()
                   << " (the ../shared data folder is absent)";
  return result;
}

using testing::fashion_mnist_present;
using testing::kFashionMnistDir;

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_gzip(const fs::path& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  BOOST_REQUIRE(file != nullptr);
  BOOST_REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(file);
}

std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
  bytes.insert(bytes.end(), values.begin(), values.end());
  return bytes;
}

// Tab-separated rows of a golden .tsv, header dropped.
std::vector<std::vector<std::string>> read_tsv(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream fields_in(line);
    for (std::string field; std::getline(fields_in, field, '\t');) fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

int64_t pixel_sum(const ImageDataset& data, int64_t i) {
  return std::accumulate(data.image(i), data.image(i) + data.image_bytes(), int64_t{0});
}

// Checks that f throws E whose message contains every one of `parts`.
template <class E, class F>
void check_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    BOOST_ERROR("no exception; expected one mentioning " << parts.front());
  } catch (const E& e) {
    const std::string what = e.what();
    for (const std::string& part : parts)
      BOOST_TEST(what.find(part) != std::string::npos, "'" << what << "' lacks '" << part << "'");
  }
}

// A synthetic data set: `per_class` images of each of `classes` classes,
// pixel bytes a function of (image, position), labels round-robin.
ImageDataset synthetic_dataset(int64_t classes, int64_t per_class, int64_t channels = 3, int64_t side = 4) {
  ImageDataset data;
  data.channels = channels;
  data.height = data.width = side;
  for (int64_t c = 0; c < classes; ++c) data.class_names.push_back("class" + std::to_string(c));
  for (int64_t i = 0; i < classes * per_class; ++i) {
    data.labels.push_back(i % classes);
    for (int64_t p = 0; p < data.image_bytes(); ++p) data.pixels.push_back(static_cast<uint8_t>((i * 7 + p * 13) % 256));
  }
  return data;
}

// Writes a w x h image with `channels` channels whose pixel (y, x, c) is
// value(y, x, c), in the format the extension names.
template <class F>
void write_image(const fs::path& path, int w, int h, int channels, F value) {
  std::vector<uint8_t> pixels;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) pixels.push_back(static_cast<uint8_t>(value(y, x, c)));
  fs::create_directories(path.parent_path());
  const std::string ext = path.extension().string();
  int ok = 0;
  if (ext == ".png") ok = stbi_write_png(path.c_str(), w, h, channels, pixels.data(), w * channels);
  if (ext == ".bmp") ok = stbi_write_bmp(path.c_str(), w, h, channels, pixels.data());
  if (ext == ".jpg") ok = stbi_write_jpg(path.c_str(), w, h, channels, pixels.data(), 95);
  BOOST_REQUIRE_MESSAGE(ok, "cannot write " << path);
}

}  // namespace

// ---------------------------------------------------------------- golden files

BOOST_AUTO_TEST_CASE(golden_cifar10_sample_reads_to_its_labels_and_sums,
                     *boost::unit_test::precondition(golden_present)) {
  const ImageDataset data = read_cifar_files({golden_dir() / "cifar10-sample.bin"}, CifarFormat::cifar10);
  const auto rows = read_tsv(golden_dir() / "cifar10-sample.tsv");
  BOOST_REQUIRE_EQUAL(rows.size(), 200u);
  BOOST_REQUIRE_EQUAL(data.size(), 200);
  BOOST_TEST(data.channels == 3);
  BOOST_TEST(data.height == 32);
  const int64_t plane = 32 * 32;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];  // index label source pixel_sum r00 g00 b00 r3131
    BOOST_TEST(data.labels[i] == std::stoll(row[1]));
    BOOST_TEST(pixel_sum(data, static_cast<int64_t>(i)) == std::stoll(row[3]));
    const uint8_t* image = data.image(static_cast<int64_t>(i));
    BOOST_TEST(int{image[0]} == std::stoi(row[4]));
    BOOST_TEST(int{image[plane]} == std::stoi(row[5]));
    BOOST_TEST(int{image[2 * plane]} == std::stoi(row[6]));
    BOOST_TEST(int{image[31 * 32 + 31]} == std::stoi(row[7]));
  }
}

BOOST_AUTO_TEST_CASE(golden_cifar100_sample_reads_to_its_labels_and_sums,
                     *boost::unit_test::precondition(golden_present)) {
  const ImageDataset data = read_cifar_files({golden_dir() / "cifar100-format-sample.bin"}, CifarFormat::cifar100);
  const auto rows = read_tsv(golden_dir() / "cifar100-format-sample.tsv");
  BOOST_REQUIRE_EQUAL(rows.size(), 100u);
  BOOST_REQUIRE_EQUAL(data.size(), 100);
  BOOST_TEST(data.num_classes() == 100);
  BOOST_TEST(data.coarse_class_names.size() == 20u);
  for (size_t i = 0; i < rows.size(); ++i) {  // index coarse_label fine_label pixel_sum
    BOOST_TEST(data.coarse_labels[i] == std::stoll(rows[i][1]));
    BOOST_TEST(data.labels[i] == std::stoll(rows[i][2]));
    BOOST_TEST(data.labels[i] == static_cast<int64_t>(37 * i % 100));
    BOOST_TEST(pixel_sum(data, static_cast<int64_t>(i)) == std::stoll(rows[i][3]));
  }
}

// The library path cifar-pack takes; the executable itself is checked below.
BOOST_AUTO_TEST_CASE(packing_the_golden_folder_reproduces_the_golden_file,
                     *boost::unit_test::precondition(golden_present)) {
  TempDir dir("test_datasets");
  const ImageDataset folder = read_image_folder(golden_dir() / "cifar10-folder-sample");
  BOOST_TEST(folder.class_names ==
                 std::vector<std::string>({"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                           "ship", "truck"}),
             boost::test_tools::per_element());
  std::vector<int64_t> order(static_cast<size_t>(folder.size()));
  std::iota(order.begin(), order.end(), 0);
  write_cifar_file(dir.path / "data_batch_1.bin", folder, order, CifarFormat::cifar10);
  const ImageDataset packed = read_cifar_files({dir.path / "data_batch_1.bin"}, CifarFormat::cifar10);
  const ImageDataset golden = read_cifar_files({golden_dir() / "cifar10-sample.bin"}, CifarFormat::cifar10);
  BOOST_REQUIRE_EQUAL(packed.size(), golden.size());
  BOOST_TEST(packed.labels == golden.labels, boost::test_tools::per_element());
  // JPEG decoders differ by a few units in some pixels (data README).
  double total = 0;
  int max_difference = 0;
  for (size_t k = 0; k < packed.pixels.size(); ++k) {
    const int d = std::abs(int{packed.pixels[k]} - int{golden.pixels[k]});
    total += d;
    max_difference = std::max(max_difference, d);
  }
  const double mean = total / static_cast<double>(packed.pixels.size());
  BOOST_TEST_MESSAGE("packed vs golden: mean |difference| " << mean << ", max " << max_difference);
  BOOST_TEST(mean < 0.5);
  BOOST_TEST(max_difference <= 16);
}

// --------------------------------------------------------------- cifar-pack CLI

namespace {
fs::path cifar_pack_path() {
  return program_dir() / ".." / "experiments" / "cifar-pack";
}
boost::test_tools::assertion_result cifar_pack_and_golden_present(boost::unit_test::test_unit_id id) {
  if (!fs::is_directory(golden_dir())) return golden_present(id);
  boost::test_tools::assertion_result result(fs::exists(cifar_pack_path()));
  result.message() << "SKIPPED: cifar-pack not built at " << cifar_pack_path().string();
  return result;
}
int run(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace

BOOST_AUTO_TEST_CASE(cifar_pack_executable_packs_folders_and_reports_bad_input,
                     *boost::unit_test::precondition(cifar_pack_and_golden_present)) {
  TempDir dir("test_datasets");
  const std::string pack = cifar_pack_path().string();
  const std::string sample = (golden_dir() / "cifar10-folder-sample").string();
  BOOST_TEST(run(pack + " --order folder " + sample + " " + (dir.path / "folder").string()) == 0);
  const TrainTestData folder = read_cifar_directory(dir.path / "folder", CifarFormat::cifar10);
  const ImageDataset golden = read_cifar_files({golden_dir() / "cifar10-sample.bin"}, CifarFormat::cifar10);
  BOOST_TEST(folder.train.labels == golden.labels, boost::test_tools::per_element());
  BOOST_TEST(folder.train.class_names[9] == "truck");
  BOOST_TEST(!folder.test.has_value());

  // Shuffled: the same records in another order, the same for the same seed.
  BOOST_TEST(run(pack + " --seed 3 " + sample + " " + (dir.path / "a").string()) == 0);
  BOOST_TEST(run(pack + " --seed 3 " + sample + " " + (dir.path / "b").string()) == 0);
  BOOST_TEST(read_bytes(dir.path / "a" / "data_batch_1.bin") == read_bytes(dir.path / "b" / "data_batch_1.bin"));
  const ImageDataset shuffled = read_cifar_directory(dir.path / "a", CifarFormat::cifar10).train;
  BOOST_TEST((shuffled.labels != golden.labels));
  std::multiset<int64_t> sums_shuffled, sums_folder;
  for (int64_t i = 0; i < shuffled.size(); ++i) {
    sums_shuffled.insert(pixel_sum(shuffled, i));
    sums_folder.insert(pixel_sum(folder.train, i));
  }
  BOOST_TEST((sums_shuffled == sums_folder));

  // The test split goes to test_batch.bin.
  BOOST_TEST(run(pack + " --split test --order folder " + sample + " " + (dir.path / "folder").string()) == 0);
  BOOST_TEST(read_cifar_directory(dir.path / "folder", CifarFormat::cifar10).test->size() == 200);

  BOOST_TEST(run(pack + " --format cifar11 " + sample + " " + dir.path.string()) == 2);
  BOOST_TEST(run(pack + " " + (dir.path / "missing").string() + " " + dir.path.string()) == 2);
  fs::create_directories(dir.path / "empty");
  BOOST_TEST(run(pack + " " + (dir.path / "empty").string() + " " + (dir.path / "out").string()) == 1);
}

// ------------------------------------------------------- CIFAR written here

BOOST_AUTO_TEST_CASE(cifar_directory_round_trip_with_several_batches_and_names) {
  TempDir dir("test_datasets");
  ImageDataset data = synthetic_dataset(10, 3, 3, 32);
  std::vector<int64_t> first(15), second(15);
  std::iota(first.begin(), first.end(), 0);
  std::iota(second.begin(), second.end(), 15);
  write_cifar_file(dir.path / "data_batch_1.bin", data, first, CifarFormat::cifar10);
  write_cifar_file(dir.path / "data_batch_2.bin", data, second, CifarFormat::cifar10);
  const std::vector<int64_t> reversed = {29, 3, 0};
  write_cifar_file(dir.path / "test_batch.bin", data, reversed, CifarFormat::cifar10);
  write_cifar_meta(dir.path, data, CifarFormat::cifar10);
  BOOST_TEST(fs::file_size(dir.path / "data_batch_1.bin") == 15u * 3073u);

  const TrainTestData read = read_cifar_directory(dir.path, CifarFormat::cifar10);
  BOOST_TEST((read.train.pixels == data.pixels));
  BOOST_TEST(read.train.labels == data.labels, boost::test_tools::per_element());
  BOOST_TEST(read.train.class_names == data.class_names, boost::test_tools::per_element());
  BOOST_REQUIRE(read.test.has_value());
  BOOST_TEST(read.test->labels == std::vector<int64_t>({9, 3, 0}), boost::test_tools::per_element());
  BOOST_TEST(std::equal(read.test->image(0), read.test->image(1), data.image(29)));

  // CIFAR-100 keeps both labels.
  data.coarse_class_names = {"even", "odd"};
  for (int64_t label : data.labels) data.coarse_labels.push_back(label % 2);
  write_cifar_file(dir.path / "train.bin", data, first, CifarFormat::cifar100);
  write_cifar_meta(dir.path, data, CifarFormat::cifar100);
  const TrainTestData read100 = read_cifar_directory(dir.path, CifarFormat::cifar100);
  BOOST_TEST(!read100.test.has_value());
  BOOST_TEST(read100.train.size() == 15);
  BOOST_TEST(read100.train.coarse_labels[7] == 1);
  BOOST_TEST(read100.train.labels[7] == 7);
  BOOST_TEST(read100.train.coarse_class_names[1] == "odd");
}

BOOST_AUTO_TEST_CASE(cifar_bad_files_name_the_file_and_record) {
  TempDir dir("test_datasets");
  const ImageDataset data = synthetic_dataset(10, 2, 3, 32);
  std::vector<int64_t> all(20);
  std::iota(all.begin(), all.end(), 0);
  const fs::path good = dir.path / "good.bin";
  write_cifar_file(good, data, all, CifarFormat::cifar10);
  std::vector<uint8_t> bytes = read_bytes(good);

  // Truncated: not a whole number of records.
  const fs::path truncated = dir.path / "truncated.bin";
  write_bytes(truncated, std::vector<uint8_t>(bytes.begin(), bytes.end() - 100));
  check_error<std::runtime_error>([&] { read_cifar_files({truncated}, CifarFormat::cifar10); },
                                  {truncated.string(), "not a whole number", "record 19"});
  // CIFAR-100 records are one byte longer: the CIFAR-10 file does not fit.
  check_error<std::runtime_error>([&] { read_cifar_files({good}, CifarFormat::cifar100); },
                                  {good.string(), "3074-byte records"});
  // Label out of range in record 5.
  const fs::path bad_label = dir.path / "bad_label.bin";
  bytes[5 * 3073] = 10;
  write_bytes(bad_label, bytes);
  check_error<std::runtime_error>([&] { read_cifar_files({good, bad_label}, CifarFormat::cifar10); },
                                  {bad_label.string(), "record 5", "label 10 out of range"});
  // Missing files: a single file, a gap in the batches, an empty directory.
  check_error<std::runtime_error>([&] { read_cifar_files({dir.path / "nope.bin"}, CifarFormat::cifar10); },
                                  {"nope.bin", "missing"});
  fs::create_directories(dir.path / "gap");
  fs::copy_file(good, dir.path / "gap" / "data_batch_1.bin");
  fs::copy_file(good, dir.path / "gap" / "data_batch_3.bin");
  check_error<std::runtime_error>([&] { read_cifar_directory(dir.path / "gap", CifarFormat::cifar10); },
                                  {"data_batch_2.bin", "missing"});
  fs::create_directories(dir.path / "empty");
  check_error<std::runtime_error>([&] { read_cifar_directory(dir.path / "empty", CifarFormat::cifar10); },
                                  {"data_batch_1.bin", "missing"});
  // An empty file.
  write_bytes(dir.path / "zero.bin", {});
  check_error<std::runtime_error>([&] { read_cifar_files({dir.path / "zero.bin"}, CifarFormat::cifar10); },
                                  {"zero.bin", "empty"});
  // The writer refuses images of the wrong shape.
  check_error<std::invalid_argument>(
      [&] { write_cifar_file(dir.path / "x.bin", synthetic_dataset(10, 1), {}, CifarFormat::cifar10); },
      {"(3, 4, 4)", "(3, 32, 32)"});
  BOOST_TEST(!fs::exists(dir.path / "x.bin"));
}

// --------------------------------------------------------------------- IDX

BOOST_AUTO_TEST_CASE(idx_plain_and_gzip_read_the_same_values) {
  TempDir dir("test_datasets");
  std::vector<uint8_t> pixels(3 * 2 * 5);
  std::iota(pixels.begin(), pixels.end(), 100);
  const std::vector<uint8_t> labels = {4, 0, 9};
  write_bytes(dir.path / "train-images-idx3-ubyte", idx_bytes({3, 2, 5}, pixels));
  write_gzip(dir.path / "train-labels-idx1-ubyte.gz", idx_bytes({3}, labels));
  write_gzip(dir.path / "t10k-images-idx3-ubyte.gz", idx_bytes({3, 2, 5}, pixels));
  write_bytes(dir.path / "t10k-labels-idx1-ubyte", idx_bytes({3}, labels));

  const IdxArray array = read_idx(dir.path / "t10k-images-idx3-ubyte.gz");
  BOOST_TEST(array.dims == std::vector<int64_t>({3, 2, 5}), boost::test_tools::per_element());
  BOOST_TEST((array.values == pixels));

  const TrainTestData data = read_idx_directory(dir.path, fashion_mnist_class_names());
  BOOST_TEST(data.train.channels == 1);
  BOOST_TEST(data.train.height == 2);
  BOOST_TEST(data.train.width == 5);
  BOOST_TEST(data.train.labels == std::vector<int64_t>({4, 0, 9}), boost::test_tools::per_element());
  BOOST_TEST((data.train.pixels == pixels));
  BOOST_TEST(data.train.class_names[9] == "Ankle boot");
  BOOST_REQUIRE(data.test.has_value());
  BOOST_TEST((data.test->pixels == pixels));
  BOOST_TEST(int{data.test->image(2)[9]} == 129);
}

BOOST_AUTO_TEST_CASE(idx_bad_files_give_their_errors) {
  TempDir dir("test_datasets");
  const std::vector<uint8_t> pixels(4 * 3 * 3, 7);
  const std::vector<uint8_t> good = idx_bytes({4, 3, 3}, pixels);
  const auto path = [&](const std::string& name) { return dir.path / name; };

  std::vector<uint8_t> wrong_magic = good;
  wrong_magic[1] = 0x03;
  write_bytes(path("magic"), wrong_magic);
  check_error<std::runtime_error>([&] { read_idx(path("magic")); }, {path("magic").string(), "wrong magic"});

  std::vector<uint8_t> wrong_type = good;
  wrong_type[2] = 0x0D;  // float
  write_bytes(path("type"), wrong_type);
  check_error<std::runtime_error>([&] { read_idx(path("type")); }, {"type 13", "unsigned byte"});

  write_bytes(path("truncated"), std::vector<uint8_t>(good.begin(), good.end() - 1));
  check_error<std::runtime_error>([&] { read_idx(path("truncated")); }, {path("truncated").string(), "truncated"});
  write_bytes(path("header"), std::vector<uint8_t>(good.begin(), good.begin() + 9));
  check_error<std::runtime_error>([&] { read_idx(path("header")); }, {"truncated header"});
  write_bytes(path("huge"), idx_bytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, pixels));
  check_error<std::runtime_error>([&] { read_idx(path("huge")); }, {path("huge").string(), "more values"});

  // Broken gzip: a cut-off stream and a stream with corrupted data.
  write_gzip(path("ok.gz"), good);
  std::vector<uint8_t> gz = read_bytes(path("ok.gz"));
  write_bytes(path("cut.gz"), std::vector<uint8_t>(gz.begin(), gz.end() - 12));
  check_error<std::runtime_error>([&] { read_idx(path("cut.gz")); }, {path("cut.gz").string(), "broken gzip"});
  for (size_t k = 12; k < gz.size() - 8; ++k) gz[k] ^= 0x5A;
  write_bytes(path("corrupt.gz"), gz);
  check_error<std::runtime_error>([&] { read_idx(path("corrupt.gz")); }, {path("corrupt.gz").string(), "broken gzip"});

  // Label out of range, and labels that do not match the images.
  write_bytes(path("images"), good);
  write_bytes(path("labels"), idx_bytes({4}, {1, 2, 10, 3}));
  check_error<std::runtime_error>([&] { read_idx_dataset(path("images"), path("labels")); },
                                  {path("labels").string(), "record 2", "label 10 out of range"});
  write_bytes(path("labels3"), idx_bytes({3}, {1, 2, 3}));
  check_error<std::runtime_error>([&] { read_idx_dataset(path("images"), path("labels3")); },
                                  {"3 labels for 4 images"});
  check_error<std::runtime_error>([&] { read_idx_dataset(path("labels3"), path("labels3")); },
                                  {"images need 3"});
  check_error<std::runtime_error>([&] { read_idx_directory(dir.path); }, {"train-images-idx3-ubyte.gz", "missing"});
}

// A directory or a device is named as such, not as "missing"; a zero image
// side is an empty shape, not a truncated file.
BOOST_AUTO_TEST_CASE(data_files_that_are_not_files_and_empty_shapes_say_what_they_are) {
  TempDir dir("test_datasets");
  fs::create_directories(dir.path / "folder");
  check_error<std::runtime_error>([&] { read_idx(dir.path / "folder"); }, {"folder", "is a directory"});
  check_error<std::runtime_error>([&] { read_idx("/dev/zero"); }, {"/dev/zero", "is not a regular file"});
  check_error<std::runtime_error>([&] { read_idx(dir.path / "absent"); }, {"absent", "missing"});
  check_error<std::runtime_error>([&] { read_cifar_files({dir.path / "folder"}, CifarFormat::cifar10); },
                                  {"folder", "is a directory"});
  check_error<std::runtime_error>([&] { read_cifar_files({"/dev/zero"}, CifarFormat::cifar10); },
                                  {"/dev/zero", "is not a regular file"});

  for (const std::vector<uint32_t>& dims : {std::vector<uint32_t>{60000, 0, 28}, std::vector<uint32_t>{60000, 28, 0}}) {
    write_bytes(dir.path / "images", idx_bytes(dims, {}));
    write_bytes(dir.path / "labels", idx_bytes({60000}, std::vector<uint8_t>(60000, 1)));
    try {
      read_idx_dataset(dir.path / "images", dir.path / "labels");
      BOOST_ERROR("an image side of 0 was accepted");
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      BOOST_TEST(what.find("is empty") != std::string::npos, what);
      BOOST_TEST(what.find("truncated") == std::string::npos, what);
    }
  }
}

// Problems of the data that would fail a run tasks later are refused when it is read or split.
BOOST_AUTO_TEST_CASE(data_set_problems_are_refused_up_front) {
  TempDir dir("test_datasets");
  // An image folder given under an unknown name is not read as a folder.
  write_image(dir.path / "cats" / "a.png", 4, 4, 3, [](int y, int x, int c) { return y + x + c; });
  check_error<std::invalid_argument>([&] { load_dataset("foo", dir.path); }, {"--dataset", "'foo'", "known: fashion-mnist"});

  // An IDX test split of another image size.
  std::vector<uint8_t> pixels(3 * 2 * 5, 1);
  write_bytes(dir.path / "train-images-idx3-ubyte", idx_bytes({3, 2, 5}, pixels));
  write_bytes(dir.path / "train-labels-idx1-ubyte", idx_bytes({3}, {1, 2, 3}));
  write_bytes(dir.path / "t10k-images-idx3-ubyte", idx_bytes({2, 4, 4}, std::vector<uint8_t>(2 * 4 * 4, 1)));
  write_bytes(dir.path / "t10k-labels-idx1-ubyte", idx_bytes({2}, {1, 2}));
  check_error<std::runtime_error>([&] { load_dataset("mnist", dir.path); },
                                  {"test images are 1x4x4", "training images 1x2x5"});

  // A class without images, without validation images, or without test images.
  SplitOptions options;
  options.num_tasks = 2;
  ImageDataset no_images = synthetic_dataset(3, 10);
  no_images.class_names.push_back("ghost");
  check_error<std::invalid_argument>([&] { make_task_split(no_images, nullptr, options); },
                                     {"class 3 ('ghost')", "0 training images"});
  ImageDataset few = synthetic_dataset(4, 10);
  // Class 3 keeps 4 of its 10 images: 10% of 4 rounds to no validation image.
  for (int64_t i = 3, moved = 0; moved < 6; i += 4, ++moved) few.labels[i] = 0;
  check_error<std::invalid_argument>([&] { make_task_split(few, nullptr, options); },
                                     {"class 3", "too few for a validation share"});
  const ImageDataset train = synthetic_dataset(4, 10);
  ImageDataset test = synthetic_dataset(4, 2);
  for (int64_t& label : test.labels) label = label == 2 ? 1 : label;
  check_error<std::invalid_argument>([&] { make_task_split(train, &test, options); }, {"class 2", "no test images"});
  BOOST_TEST(make_task_split(train, &train, options).tasks.size() == 2u);

  // A class name with a line break would split in the one-name-a-line meta file.
  ImageDataset broken = synthetic_dataset(2, 1, 3, 32);
  broken.class_names[1] = "two\nlines";
  fs::create_directories(dir.path / "meta");
  check_error<std::invalid_argument>([&] { write_cifar_meta(dir.path / "meta", broken, CifarFormat::cifar10); },
                                     {"two\nlines", "line break"});
  BOOST_TEST(fs::is_empty(dir.path / "meta"));
}

BOOST_AUTO_TEST_CASE(fashion_mnist_from_debian_package, *boost::unit_test::precondition(fashion_mnist_present)) {
  const TrainTestData data = load_dataset("fashion-mnist", "");
  BOOST_TEST(data.train.size() == 60000);
  BOOST_REQUIRE(data.test.has_value());
  BOOST_TEST(data.test->size() == 10000);
  BOOST_TEST(data.train.height == 28);
  BOOST_TEST(data.train.labels[0] == 9);  // the first training image is an ankle boot
  std::vector<int64_t> per_class(10, 0);
  for (int64_t label : data.train.labels) ++per_class[label];
  BOOST_TEST(per_class == std::vector<int64_t>(10, 6000), boost::test_tools::per_element());
}

// ------------------------------------------------------------ image folders

BOOST_AUTO_TEST_CASE(image_folder_decodes_resizes_and_converts) {
  TempDir dir("test_datasets");
  // Classes sorted by name, images by file name; PNG, BMP and JPEG; grey and RGB;
  // 32x32 and other sizes.
  write_image(dir.path / "b_rgb" / "1.png", 32, 32, 3, [](int y, int x, int c) { return c == 0 ? x * 8 : c == 1 ? y * 8 : 200; });
  write_image(dir.path / "b_rgb" / "0.bmp", 32, 32, 3, [](int, int, int c) { return 10 + c; });
  write_image(dir.path / "a_grey" / "img.png", 32, 32, 1, [](int y, int, int) { return y; });
  write_image(dir.path / "a_grey" / "big.png", 64, 48, 3, [](int, int, int c) { return 50 * (c + 1); });
  write_image(dir.path / "c_jpeg" / "x.jpg", 32, 32, 3, [](int, int, int) { return 128; });
  write_bytes(dir.path / "c_jpeg" / ".hidden", {1, 2, 3});
  write_bytes(dir.path / "README", {1, 2, 3});

  const ImageDataset data = read_image_folder(dir.path);
  BOOST_TEST(data.class_names == std::vector<std::string>({"a_grey", "b_rgb", "c_jpeg"}), boost::test_tools::per_element());
  BOOST_TEST(data.labels == std::vector<int64_t>({0, 0, 1, 1, 2}), boost::test_tools::per_element());
  const int64_t plane = 32 * 32;
  // a_grey/big.png (first by name): 64x48 constant colour, resized to 32x32.
  for (int c = 0; c < 3; ++c) BOOST_TEST(int{data.image(0)[c * plane + 17 * 32 + 5]} == 50 * (c + 1));
  // a_grey/img.png: grey replicated to RGB.
  for (int c = 0; c < 3; ++c) BOOST_TEST(int{data.image(1)[c * plane + 20 * 32 + 3]} == 20);
  // b_rgb/0.bmp then 1.png, stored channel-major.
  BOOST_TEST(int{data.image(2)[2 * plane]} == 12);
  BOOST_TEST(int{data.image(3)[0 * plane + 5 * 32 + 7]} == 56);
  BOOST_TEST(int{data.image(3)[1 * plane + 5 * 32 + 7]} == 40);
  BOOST_TEST(int{data.image(3)[2 * plane + 5 * 32 + 7]} == 200);
  BOOST_TEST(std::abs(int{data.image(4)[100]} - 128) <= 2);  // JPEG is lossy

  // Grey output at another size.
  ImageFolderOptions grey;
  grey.channels = 1;
  grey.height = grey.width = 16;
  const ImageDataset small = read_image_folder(dir.path, grey);
  BOOST_TEST(small.image_bytes() == 256);
  BOOST_TEST(int{small.image(2)[0]} == (77 * 10 + 150 * 11 + 29 * 12) / 256);  // stb's luma of (10, 11, 12)

  // Superclass trees give coarse labels; fine labels sort all classes by name.
  write_image(dir.path / "tree" / "vehicles" / "bus" / "0.png", 32, 32, 3, [](int, int, int) { return 1; });
  write_image(dir.path / "tree" / "animals" / "cat" / "0.png", 32, 32, 3, [](int, int, int) { return 2; });
  write_image(dir.path / "tree" / "animals" / "zebra" / "0.png", 32, 32, 3, [](int, int, int) { return 3; });
  ImageFolderOptions tree;
  tree.superclasses = true;
  const ImageDataset two_level = read_image_folder(dir.path / "tree", tree);
  BOOST_TEST(two_level.class_names == std::vector<std::string>({"bus", "cat", "zebra"}), boost::test_tools::per_element());
  BOOST_TEST(two_level.coarse_class_names == std::vector<std::string>({"animals", "vehicles"}), boost::test_tools::per_element());
  BOOST_TEST(two_level.labels == std::vector<int64_t>({0, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(two_level.coarse_labels == std::vector<int64_t>({1, 0, 0}), boost::test_tools::per_element());
  BOOST_TEST(int{two_level.image(0)[0]} == 1);
}

BOOST_AUTO_TEST_CASE(image_folder_bad_inputs_give_their_errors) {
  TempDir dir("test_datasets");
  check_error<std::runtime_error>([&] { read_image_folder(dir.path); }, {dir.path.string(), "no class folders"});
  check_error<std::runtime_error>([&] { read_image_folder(dir.path / "missing"); }, {"missing"});
  fs::create_directories(dir.path / "empty_class");
  write_image(dir.path / "full" / "0.png", 8, 8, 3, [](int, int, int) { return 9; });
  check_error<std::runtime_error>([&] { read_image_folder(dir.path); }, {"empty_class", "no images"});
  fs::remove(dir.path / "empty_class");

  // A text file and a truncated PNG in a class folder.
  write_bytes(dir.path / "full" / "notes.txt", {'h', 'e', 'l', 'l', 'o'});
  check_error<std::runtime_error>([&] { read_image_folder(dir.path); }, {"notes.txt", "not a decodable image"});
  fs::remove(dir.path / "full" / "notes.txt");
  write_image(dir.path / "full" / "1.png", 8, 8, 3, [](int y, int x, int) { return x * y; });
  std::vector<uint8_t> png = read_bytes(dir.path / "full" / "1.png");
  png.resize(png.size() / 2);
  write_bytes(dir.path / "full" / "1.png", png);
  check_error<std::runtime_error>([&] { read_image_folder(dir.path); }, {"1.png", "not a decodable image"});

  // Skipping corrupt files keeps the rest.
  ImageFolderOptions skip;
  skip.skip_corrupt = true;
  const ImageDataset kept = read_image_folder(dir.path, skip);
  BOOST_TEST(kept.size() == 1);
  BOOST_TEST(int{kept.image(0)[0]} == 9);
  check_error<std::invalid_argument>(
      [&] {
        ImageFolderOptions two;
        two.channels = 2;
        read_image_folder(dir.path, two);
      },
      {"channels must be 1 or 3"});
}

// -------------------------------------------------------------- task splits

BOOST_AUTO_TEST_CASE(task_splits_are_disjoint_cover_all_classes_and_follow_the_seed) {
  const ImageDataset train = synthetic_dataset(10, 20, 1, 2);
  const ImageDataset test = synthetic_dataset(10, 5, 1, 2);
  SplitOptions options;
  options.num_tasks = 5;
  options.shuffle_classes = true;
  options.class_order_seed = 7;
  options.validation_fraction = 0.25;
  options.validation_seed = 3;
  const TaskSplit split = make_task_split(train, &test, options);
  BOOST_TEST(split.has_test);
  BOOST_REQUIRE_EQUAL(split.tasks.size(), 5u);
  std::set<int64_t> classes, train_seen, test_seen;
  for (const Task& task : split.tasks) {
    BOOST_TEST(task.classes.size() == 2u);
    BOOST_TEST(task.train.size() == 2u * 15u);
    BOOST_TEST(task.validation.size() == 2u * 5u);
    BOOST_TEST(task.test.size() == 2u * 5u);
    for (int64_t c : task.classes) BOOST_TEST(classes.insert(c).second);
    const std::set<int64_t> task_classes(task.classes.begin(), task.classes.end());
    for (const auto* list : {&task.train, &task.validation}) {
      BOOST_TEST(std::is_sorted(list->begin(), list->end()));
      for (int64_t i : *list) {
        BOOST_TEST(train_seen.insert(i).second);  // train and validation disjoint, across tasks too
        BOOST_TEST(task_classes.count(train.labels[i]) == 1u);
      }
    }
    for (int64_t i : task.test) {
      BOOST_TEST(test_seen.insert(i).second);
      BOOST_TEST(task_classes.count(test.labels[i]) == 1u);
    }
  }
  BOOST_TEST(classes.size() == 10u);
  BOOST_TEST(train_seen.size() == 200u);
  BOOST_TEST(test_seen.size() == 50u);
  std::vector<int64_t> concatenated;
  for (const Task& task : split.tasks) concatenated.insert(concatenated.end(), task.classes.begin(), task.classes.end());
  BOOST_TEST(concatenated == split.class_order, boost::test_tools::per_element());

  // Same seeds, same split; another class-order seed, another order, but each
  // class keeps its validation samples.
  const TaskSplit again = make_task_split(train, &test, options);
  BOOST_TEST(again.class_order == split.class_order, boost::test_tools::per_element());
  BOOST_TEST(again.tasks[3].validation == split.tasks[3].validation, boost::test_tools::per_element());
  options.class_order_seed = 8;
  const TaskSplit reordered = make_task_split(train, &test, options);
  BOOST_TEST((reordered.class_order != split.class_order));
  options.validation_seed = 4;
  const TaskSplit revalidated = make_task_split(train, &test, options);
  BOOST_TEST((revalidated.tasks[0].validation != reordered.tasks[0].validation));

  // No test set: reported, empty test lists.
  const TaskSplit no_test = make_task_split(train, nullptr, options);
  BOOST_TEST(!no_test.has_test);
  BOOST_TEST(no_test.tasks[2].test.empty());

  // Local labels for a per-task head.
  const std::vector<int64_t> map = local_label_map(split.tasks[1], 10);
  BOOST_TEST(map[split.tasks[1].classes[0]] == 0);
  BOOST_TEST(map[split.tasks[1].classes[1]] == 1);
  BOOST_TEST(map[split.tasks[0].classes[0]] == -1);
}

BOOST_AUTO_TEST_CASE(task_splits_with_a_larger_first_task_explicit_orders_and_presets) {
  const ImageDataset birds = synthetic_dataset(200, 2, 1, 1);
  SplitOptions options;
  options.num_tasks = 5;
  options.first_task_classes = 100;
  options.validation_fraction = 0.5;
  const TaskSplit split = make_task_split(birds, nullptr, options);
  const std::vector<size_t> sizes = {100, 25, 25, 25, 25};
  for (size_t t = 0; t < 5; ++t) BOOST_TEST(split.tasks[t].classes.size() == sizes[t]);
  BOOST_TEST(split.tasks[1].classes.front() == 100);  // label order without shuffle
  BOOST_TEST(split.tasks[0].validation.size() == 100u);

  const ImageDataset ten = synthetic_dataset(10, 10, 1, 1);  // 10 a class: 10% validates
  options = SplitOptions{};
  options.num_tasks = 2;
  options.class_order = {9, 1, 5, 0};  // a subset, in this order
  const TaskSplit explicit_order = make_task_split(ten, nullptr, options);
  BOOST_TEST(explicit_order.tasks[0].classes == std::vector<int64_t>({9, 1}), boost::test_tools::per_element());
  BOOST_TEST(explicit_order.tasks[1].classes == std::vector<int64_t>({5, 0}), boost::test_tools::per_element());

  options.class_order = {1, 1};
  check_error<std::invalid_argument>([&] { make_task_split(ten, nullptr, options); }, {"class_order", "twice"});
  options.class_order = {1, 10};
  check_error<std::invalid_argument>([&] { make_task_split(ten, nullptr, options); }, {"10", "outside"});
  options.class_order.clear();
  options.num_tasks = 3;
  check_error<std::invalid_argument>([&] { make_task_split(ten, nullptr, options); }, {"10 classes", "3 tasks"});
  const ImageDataset eight = synthetic_dataset(8, 1, 1, 1);  // 8 = 2 + 3 + 3, but not equal
  check_error<std::invalid_argument>([&] { make_task_split(eight, nullptr, options); }, {"8 classes", "equal tasks"});
  options.num_tasks = 2;
  options.validation_fraction = 1.0;
  check_error<std::invalid_argument>([&] { make_task_split(ten, nullptr, options); }, {"validation_fraction"});

  BOOST_TEST(make_task_split(ten, nullptr, split_preset("split-fashion-mnist")).tasks[4].classes ==
                 std::vector<int64_t>({8, 9}),
             boost::test_tools::per_element());
  BOOST_TEST(split_preset("split-cifar10").num_tasks == 5);
  const ImageDataset hundred = synthetic_dataset(100, 10, 1, 1);
  const TaskSplit cifar100 = make_task_split(hundred, nullptr, split_preset("split-cifar100"));
  BOOST_TEST(cifar100.tasks.size() == 10u);
  BOOST_TEST(cifar100.tasks[9].classes.size() == 10u);
  std::vector<int64_t> identity(100);
  std::iota(identity.begin(), identity.end(), 0);
  BOOST_TEST((cifar100.class_order != identity));
  check_error<std::invalid_argument>([&] { split_preset("split-mnist-17"); }, {"split-mnist-17"});
}

// ------------------------------------------------------------ preprocessing

BOOST_AUTO_TEST_CASE(channel_statistics_normalisation_crop_and_flip) {
  ImageDataset data;
  data.channels = 2;
  data.height = 2;
  data.width = 3;
  data.class_names = {"only"};
  data.labels = {0, 0};
  // image 0: channel 0 = 0..5, channel 1 = constant 51; image 1: channel 0 = 6..11, channel 1 = 51
  data.pixels = {0, 1, 2, 3, 4, 5, 51, 51, 51, 51, 51, 51, 6, 7, 8, 9, 10, 11, 51, 51, 51, 51, 51, 51};
  const std::vector<int64_t> both = {0, 1};
  const ChannelStats stats = compute_channel_stats(data, both);
  // Channel 0: values 0..11, mean 5.5, population variance (144 - 1) / 12.
  BOOST_TEST(stats.mean[0] == 5.5f / 255.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(stats.std[0] == std::sqrt(143.0f / 12.0f) / 255.0f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(stats.mean[1] == 0.2f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(stats.std[1] == 1.0f);  // constant channel

  std::vector<float> out(12);
  image_to_float(data, 1, stats, nullptr, nullptr, out.data());
  BOOST_TEST(out[4] == (10.0f / 255.0f - stats.mean[0]) / stats.std[0], boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(out[7] == 0.0f, boost::test_tools::tolerance(1e-6f));

  // Flip only: each row mirrored.
  const Augmentation flip_only{0, true};
  std::vector<float> flipped(12);
  for (uint64_t seed = 0;; ++seed) {
    engine::Generator probe(seed);
    if (probe.below(2) != 1) continue;
    engine::Generator gen(seed);
    image_to_float(data, 0, {}, &flip_only, &gen, flipped.data());
    break;
  }
  const std::vector<float> mirrored = {2, 1, 0, 5, 4, 3};
  for (int k = 0; k < 6; ++k) BOOST_TEST(flipped[k] == mirrored[k] / 255.0f, boost::test_tools::tolerance(1e-6f));

  // Crop only: the draws give the offsets (rows, then columns), padding is zero.
  const Augmentation crop_only{1, false};
  engine::Generator probe(5);
  const int64_t dy = static_cast<int64_t>(probe.below(3)) - 1, dx = static_cast<int64_t>(probe.below(3)) - 1;
  engine::Generator gen(5);
  std::vector<float> cropped(12);
  image_to_float(data, 1, {}, &crop_only, &gen, cropped.data());
  for (int64_t y = 0; y < 2; ++y)
    for (int64_t x = 0; x < 3; ++x) {
      const int64_t sy = y + dy, sx = x + dx;
      const float expected = (sy >= 0 && sy < 2 && sx >= 0 && sx < 3) ? data.image(1)[sy * 3 + sx] / 255.0f : 0.0f;
      BOOST_TEST(cropped[y * 3 + x] == expected, boost::test_tools::tolerance(1e-6f));
    }
  check_error<std::invalid_argument>([&] { image_to_float(data, 0, {{0.5f}, {1.0f}}, nullptr, nullptr, out.data()); },
                                     {"1 and 1 channels", "have 2"});
}

// ------------------------------------------------------------------- loader

namespace {
std::vector<Batch> whole_epoch(BatchLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> batches;
  while (std::optional<Batch> batch = loader.next()) batches.push_back(std::move(*batch));
  return batches;
}
bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].labels != b[k].labels || a[k].indices != b[k].indices ||
        a[k].images.to_float_vector() != b[k].images.to_float_vector())
      return false;
  return true;
}
}  // namespace

BOOST_AUTO_TEST_CASE(loader_is_deterministic_and_covers_every_sample_once_per_epoch) {
  const ImageDataset data = synthetic_dataset(5, 21, 3, 6);  // 105 images
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < data.size(); ++i)
    if (i != 17) indices.push_back(i);  // 104 of them
  LoaderOptions options;
  options.batch_size = 10;
  options.seed = 42;
  options.normalization = compute_channel_stats(data, indices);
  options.augmentation = Augmentation{2, true};

  BatchLoader loader(data, indices, options);
  BOOST_TEST(loader.batches_per_epoch() == 11);
  BOOST_CHECK_THROW(loader.next(), std::logic_error);
  const std::vector<Batch> epoch0 = whole_epoch(loader, 0);
  BOOST_REQUIRE_EQUAL(epoch0.size(), 11u);
  BOOST_TEST(epoch0.back().images.dim(0) == 4);
  BOOST_TEST((epoch0[0].images.shape() == engine::Shape{10, 3, 6, 6}));
  BOOST_TEST((epoch0[0].images.dtype() == engine::DType::f32));
  std::multiset<int64_t> seen;
  for (const Batch& batch : epoch0)
    for (size_t k = 0; k < batch.indices.size(); ++k) {
      seen.insert(batch.indices[k]);
      BOOST_TEST(batch.labels[k] == data.labels[batch.indices[k]]);
    }
  BOOST_TEST((seen == std::multiset<int64_t>(indices.begin(), indices.end())));
  BOOST_TEST(!loader.next().has_value());  // stays at the end

  // Same seed: same batches, with or without the background thread; another
  // epoch or seed: another order.
  BOOST_TEST(same_batches(whole_epoch(loader, 0), epoch0));
  options.prefetch = false;
  BatchLoader synchronous(data, indices, options);
  BOOST_TEST(same_batches(whole_epoch(synchronous, 0), epoch0));
  BOOST_TEST(same_batches({synchronous.make_batch(0, 3)}, {epoch0[3]}));
  const std::vector<Batch> epoch1 = whole_epoch(synchronous, 1);
  BOOST_TEST((epoch1[0].indices != epoch0[0].indices));
  options.seed = 43;
  BatchLoader other_seed(data, indices, options);
  BOOST_TEST((other_seed.make_batch(0, 0).indices != epoch0[0].indices));

  // A sample's augmentation depends on (seed, epoch, sample), not on the batch size.
  options.seed = 42;
  options.batch_size = 7;
  BatchLoader smaller(data, indices, options);
  const Batch first7 = smaller.make_batch(0, 0);
  const std::vector<float> a = first7.images.to_float_vector(), b = epoch0[0].images.to_float_vector();
  BOOST_TEST(first7.indices[3] == epoch0[0].indices[3]);
  BOOST_TEST(std::equal(a.begin() + 3 * 108, a.begin() + 4 * 108, b.begin() + 3 * 108));

  // Without shuffle and augmentation: the indices' order, plain byte / 255.
  LoaderOptions plain;
  plain.batch_size = 50;
  plain.shuffle = false;
  plain.drop_last = true;
  BatchLoader ordered(data, indices, plain);
  const std::vector<Batch> batches = whole_epoch(ordered, 5);
  BOOST_TEST(batches.size() == 2u);
  BOOST_TEST(batches[1].indices.front() == 51);  // index 17 is left out
  BOOST_TEST(batches[1].images.data<float>()[1] == data.image(51)[1] / 255.0f, boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(loader_remaps_labels_restarts_epochs_and_rethrows_worker_errors) {
  ImageDataset data = synthetic_dataset(4, 10, 1, 3);
  const std::vector<int64_t> task_samples = {1, 3, 5, 7, 9, 11, 13, 15};  // labels 1 and 3
  LoaderOptions options;
  options.batch_size = 3;
  options.label_map = {-1, 0, -1, 1};
  {
    BatchLoader loader(data, task_samples, options);
    for (const Batch& batch : whole_epoch(loader, 0))
      for (size_t k = 0; k < batch.labels.size(); ++k)
        BOOST_TEST(batch.labels[k] == (data.labels[batch.indices[k]] == 1 ? 0 : 1));
    // Restarting mid-epoch drops the old epoch's batches.
    loader.start_epoch(1);
    BOOST_TEST(loader.next().has_value());
    BOOST_TEST(whole_epoch(loader, 1).size() == 3u);
    loader.start_epoch(2);
    loader.next();  // destroyed mid-epoch: the destructor stops the worker
  }
  check_error<std::invalid_argument>([&] { BatchLoader(data, {0, 1}, options); }, {"sample 0", "label 0", "label_map"});
  check_error<std::invalid_argument>([&] { BatchLoader(data, {40}, options); }, {"index 40"});

  // A failure while the worker prepares a batch reaches the caller, in order.
  // The data set changes under the loader once epoch 0 is done (the worker is
  // then idle): six of the eight samples get a label the map does not cover,
  // so epoch 1's first batch of three holds at least one.
  BatchLoader loader(data, task_samples, options);
  BOOST_TEST(whole_epoch(loader, 0).size() == 3u);
  for (size_t k = 0; k < 6; ++k) data.labels[task_samples[k]] = 2;
  loader.start_epoch(1);
  check_error<std::invalid_argument>([&] { loader.next(); }, {"label 2", "label_map"});
  BOOST_TEST(!loader.next().has_value());  // the epoch ended with the error
}
