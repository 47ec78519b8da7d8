// .npz checkpoints: round trips, the exact bytes of a small file, a file numpy
// wrote, ZIP64 and deflated archives, every kind of damaged file, load_into's checks and its strong
// guarantee, atomic writes.
#define BOOST_TEST_MODULE npz
#include <unistd.h>
#include <zlib.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/io.h"
#include "engine/npz.h"
#include "engine/printable.h"
#include "engine/random.h"
#include "tests/temp_dir.h"

using namespace engine;
namespace fs = std::filesystem;

namespace {

using testing::TempDir;

// A fresh directory per test case, removed afterwards.
Tensor random_tensor(const Shape& shape, DType dtype, Generator& gen) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = gen.uniform(-1.0, 1.0);
  return Tensor::from_vector(shape, std::span<const double>(v)).to(dtype);
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

std::string file_string(const fs::path& path) {
  const std::vector<char> bytes = read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

void write_string(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of the std::runtime_error that f throws ("" if none).
template <class F>
std::string runtime_error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  BOOST_TEST_MESSAGE("'" << part << "' not in: " << text);
  return false;
}

// Layout of a one-entry archive named "a.npy": its data starts after the 30-byte
// local header and the 5-byte name; the central directory follows the data.
constexpr size_t kDataAt = 30 + 5;
constexpr size_t kLocalCrcAt = 14;

// Recomputes the CRC of the single entry after an edit of its bytes (in both
// the local header and the central directory), so that the edit reaches the
// NPY parser instead of failing the CRC check.
void fix_crc(std::string& file, size_t data_size) {
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(file.data() + kDataAt), static_cast<uInt>(data_size)));
  const size_t central_crc_at = kDataAt + data_size + 16;
  for (size_t at : {kLocalCrcAt, central_crc_at})
    for (int i = 0; i < 4; ++i) file[at + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
}

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  BOOST_REQUIRE(at != std::string::npos);
  BOOST_REQUIRE(from.size() == to.size());  // keeps every offset valid
  text.replace(at, from.size(), to);
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_keeps_names_order_shapes_and_bits) {
  TempDir dir("test_npz");
  Generator gen(1);
  const Tensor weight = random_tensor({3, 4}, DType::f32, gen);
  const Tensor mean = random_tensor({4}, DType::f32, gen);
  const Tensor cube = random_tensor({2, 2, 2}, DType::f64, gen);
  const Tensor scalar = random_tensor({}, DType::f32, gen);
  const Tensor empty = Tensor::zeros({0, 3}, DType::f64);
  const std::vector<int64_t> labels{0, 9, -3, int64_t{1} << 40, 7, 2};

  const NamedArrays saved{{"features.0.weight", to_npy(weight)},
                          {"features.0.running_mean", to_npy(mean)},
                          {"cube", to_npy(cube)},
                          {"scalar", to_npy(scalar)},
                          {"empty", to_npy(empty)},
                          {"labels", to_npy({2, 3}, labels)}};
  save_npz(dir / "all.npz", saved);
  const NamedArrays loaded = read_npz(dir / "all.npz");

  BOOST_REQUIRE_EQUAL(loaded.size(), saved.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    BOOST_TEST(loaded[i].first == saved[i].first);
    BOOST_TEST(loaded[i].second.descr == saved[i].second.descr);
    BOOST_TEST(loaded[i].second.shape == saved[i].second.shape);
    BOOST_TEST(loaded[i].second.bytes == saved[i].second.bytes);
  }
  BOOST_TEST(loaded[0].second.descr == "<f4");
  BOOST_TEST(loaded[2].second.descr == "<f8");
  BOOST_TEST(loaded[5].second.descr == "<i8");
  BOOST_TEST(same_bytes(to_tensor(loaded[0].second), weight));
  BOOST_TEST(same_bytes(to_tensor(loaded[2].second), cube));
  BOOST_TEST(to_tensor(loaded[3].second).shape() == Shape{});
  BOOST_TEST(to_tensor(loaded[3].second).item() == scalar.item());
  BOOST_TEST(to_tensor(loaded[4].second).shape() == (Shape{0, 3}));
  BOOST_TEST(to_int64(loaded[5].second) == labels);
}

BOOST_AUTO_TEST_CASE(save_tensors_and_load_into_restore_values) {
  TempDir dir("test_npz");
  Generator gen(2);
  const Tensor w = random_tensor({5, 3}, DType::f32, gen), b = random_tensor({5}, DType::f64, gen);
  save_npz(dir / "model.npz", NamedTensors{{"layer.weight", w}, {"layer.bias", b}});

  Tensor w2 = Tensor::zeros({5, 3}, DType::f32), b2 = Tensor::zeros({5}, DType::f64);
  load_into(dir / "model.npz", {{"layer.bias", b2}, {"layer.weight", w2}});  // any order
  BOOST_TEST(same_bytes(w2, w));
  BOOST_TEST(same_bytes(b2, b));
}

BOOST_AUTO_TEST_CASE(same_contents_give_identical_files) {
  TempDir dir("test_npz");
  Generator gen(3);
  const Tensor t = random_tensor({7, 2}, DType::f32, gen);
  save_npz(dir / "a.npz", NamedTensors{{"t", t}});
  save_npz(dir / "b.npz", NamedTensors{{"t", t}});
  BOOST_TEST(file_string(dir / "a.npz") == file_string(dir / "b.npz"));
}

// The whole file, byte by byte, for one (2, 3) float32 array named "a".
BOOST_AUTO_TEST_CASE(bytes_of_a_small_file_follow_the_npy_and_zip_specs) {
  TempDir dir("test_npz");
  const std::vector<float> values{0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f};
  save_npz(dir / "small.npz", NamedTensors{{"a", Tensor::from_vector({2, 3}, std::span<const float>(values))}});

  // NPY 1.0: magic, version, header length 118 (0x76), dict, 58 spaces, '\n':
  // 10 + 118 = 128, a multiple of 64.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string npy_header =
      std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(58, ' ') + "\n";
  BOOST_REQUIRE_EQUAL(npy_header.size(), 128u);
  const std::string data("\x00\x00\x00\x00\x00\x00\x00\x3f\x00\x00\x80\x3f"
                         "\x00\x00\xc0\x3f\x00\x00\x00\x40\x00\x00\x20\x40", 24);
  const std::string entry = npy_header + data;
  // CRC-32 of the entry, from zlib and as Python's zlib.crc32 computes it.
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(entry.data()), static_cast<uInt>(entry.size()));
  BOOST_TEST(crc == 0x76b0c00bu);

  // libzip's fields: version 1.0 needed, no flags (ASCII names), stored, a fixed
  // time stamp (the date is 1980-01-02 everywhere; the time depends on the time zone).
  const std::string written = file_string(dir / "small.npz");
  BOOST_REQUIRE(written.size() > 14u);
  const std::string time = written.substr(10, 2);
  const std::string shared_fields =
      std::string("\x0a\x00\x00\x00\x00\x00", 6) + time + std::string("\x22\x00", 2) +
      std::string("\x0b\xc0\xb0\x76", 4) +                      // CRC-32
      std::string("\x98\x00\x00\x00\x98\x00\x00\x00", 8) +      // sizes 152, 152
      std::string("\x05\x00\x00\x00", 4);                       // name length 5, no extra
  const std::string local = std::string("PK\x03\x04", 4) + shared_fields + "a.npy";
  const std::string central = std::string("PK\x01\x02\x3f\x03", 6) +  // made by libzip 6.3 on Unix
                              shared_fields +
                              std::string(6, '\0') +                // comment, disk, internal attributes
                              std::string("\x00\x00\xb6\x81", 4) +  // external: a regular file, rw-rw-rw-
                              std::string("\x00\x00\x00\x00", 4) +  // local header at 0
                              "a.npy";
  const std::string end = std::string("PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00", 12) +
                          std::string("\x33\x00\x00\x00", 4) +  // directory size 51
                          std::string("\xbb\x00\x00\x00", 4) +  // directory at 187
                          std::string("\x00\x00", 2);
  const std::string expected = local + entry + central + end;
  BOOST_REQUIRE_EQUAL(expected.size(), 260u);
  BOOST_REQUIRE_EQUAL(written.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    BOOST_TEST(static_cast<int>(written[i]) == static_cast<int>(expected[i]), "byte " << i);
}

// np.savez(f, w=np.arange(6, dtype=np.float32).reshape(2, 3)): the .npy bytes
// from numpy 2.5.2 (note its extra header spaces), zipped by Python's zipfile
// as np.savez does it, with ZIP64 size placeholders in the local header.
BOOST_AUTO_TEST_CASE(reads_what_numpy_savez_writes) {
  const std::string hex =
      "504b03042d0000000000000021584fe9002affffffffffffffff05001400772e6e707901001000980000000000000098"
      "00000000000000934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572"
      "273a2046616c73652c20277368617065273a2028322c2033292c207d2020202020202020202020202020202020202020"
      "20202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000803f00"
      "00004000004040000080400000a040504b01022d032d0000000000000021584fe9002a98000000980000000500000000"
      "00000000000000800100000000772e6e7079504b0506000000000100010033000000cf0000000000";
  std::string file;
  for (size_t i = 0; i < hex.size(); i += 2) file += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  TempDir dir("test_npz");
  write_string(dir / "numpy.npz", file);
  const NamedArrays arrays = read_npz(dir / "numpy.npz");
  BOOST_REQUIRE_EQUAL(arrays.size(), 1u);
  BOOST_TEST(arrays[0].first == "w");
  const Tensor w = to_tensor(arrays[0].second);
  BOOST_TEST(w.shape() == (Shape{2, 3}));
  BOOST_TEST(w.to_double_vector() == (std::vector<double>{0, 1, 2, 3, 4, 5}));
}

namespace {

// A one-entry archive "w.npy" built by hand as other writers make them: with
// ZIP64 records throughout (what libzip and numpy write past 4 GiB: sizes and
// offset in a ZIP64 extra field, a ZIP64 end record and its locator), and/or
// deflated as np.savez_compressed does. Small, so that the ZIP64 path is tested
// without writing 4 GiB.
std::string hand_made_archive(const std::string& npy, bool zip64, bool deflated) {
  const auto put = [](std::string& out, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
  };
  std::string data = npy;
  if (deflated) {  // raw deflate (no zlib header), as zip method 8 stores it
    z_stream stream{};
    BOOST_REQUIRE(deflateInit2(&stream, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    data.assign(deflateBound(&stream, npy.size()), '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(npy.data()));
    stream.avail_in = static_cast<uInt>(npy.size());
    stream.next_out = reinterpret_cast<Bytef*>(data.data());
    stream.avail_out = static_cast<uInt>(data.size());
    BOOST_REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
    data.resize(stream.total_out);
    deflateEnd(&stream);
  }
  const uint32_t crc =
      static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(npy.data()), static_cast<uInt>(npy.size())));
  const uint64_t size32 = zip64 ? 0xffffffff : npy.size(), compressed32 = zip64 ? 0xffffffff : data.size();
  const auto common = [&](std::string& out, uint64_t extra_length) {
    put(out, zip64 ? 45 : 20, 2);  // version needed
    put(out, 0, 2);                 // flags
    put(out, deflated ? 8 : 0, 2);  // method
    put(out, 0, 2);                 // time
    put(out, 0x21, 2);              // date 1980-01-01
    put(out, crc, 4);
    put(out, compressed32, 4);
    put(out, size32, 4);
    put(out, 5, 2);  // name length
    put(out, extra_length, 2);
  };
  std::string file;
  put(file, 0x04034b50, 4);
  common(file, zip64 ? 20 : 0);
  file += "w.npy";
  if (zip64) {
    put(file, 1, 2);  // ZIP64 extra field: sizes
    put(file, 16, 2);
    put(file, npy.size(), 8);
    put(file, data.size(), 8);
  }
  file += data;
  const uint64_t directory_at = file.size();
  put(file, 0x02014b50, 4);
  put(file, zip64 ? 45 : 20, 2);  // version made by
  common(file, zip64 ? 28 : 0);
  put(file, 0, 2);  // comment length
  put(file, 0, 2);  // disk
  put(file, 0, 2);  // internal attributes
  put(file, 0, 4);  // external attributes
  put(file, zip64 ? 0xffffffff : 0, 4);  // local header offset
  file += "w.npy";
  if (zip64) {
    put(file, 1, 2);  // ZIP64 extra field: sizes and offset
    put(file, 24, 2);
    put(file, npy.size(), 8);
    put(file, data.size(), 8);
    put(file, 0, 8);
  }
  const uint64_t directory_size = file.size() - directory_at;
  if (zip64) {
    const uint64_t record_at = file.size();
    put(file, 0x06064b50, 4);  // ZIP64 end of central directory record
    put(file, 44, 8);
    put(file, 45, 2);
    put(file, 45, 2);
    put(file, 0, 4);
    put(file, 0, 4);
    put(file, 1, 8);
    put(file, 1, 8);
    put(file, directory_size, 8);
    put(file, directory_at, 8);
    put(file, 0x07064b50, 4);  // its locator
    put(file, 0, 4);
    put(file, record_at, 8);
    put(file, 1, 4);
  }
  put(file, 0x06054b50, 4);
  put(file, 0, 2);
  put(file, 0, 2);
  put(file, zip64 ? 0xffff : 1, 2);
  put(file, zip64 ? 0xffff : 1, 2);
  put(file, zip64 ? 0xffffffff : directory_size, 4);
  put(file, zip64 ? 0xffffffff : directory_at, 4);
  put(file, 0, 2);
  return file;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_zip64_and_deflated_archives) {
  TempDir dir("test_npz");
  const std::vector<float> values{0.5f, -2.0f, 3.25f};
  save_npz(dir / "plain.npz", NamedTensors{{"w", Tensor::from_vector({3}, std::span<const float>(values))}});
  const std::string file = file_string(dir / "plain.npz");
  const size_t npy_at = file.find("\x93NUMPY");
  const std::string npy = file.substr(npy_at, 128 + 12);
  for (const bool zip64 : {false, true})
    for (const bool deflated : {false, true}) {
      const fs::path path = dir / ("hand-" + std::to_string(zip64) + std::to_string(deflated) + ".npz");
      write_string(path, hand_made_archive(npy, zip64, deflated));
      const NamedArrays arrays = read_npz(path);
      BOOST_REQUIRE_EQUAL(arrays.size(), 1u);
      BOOST_TEST(arrays[0].first == "w");
      BOOST_TEST(to_tensor(arrays[0].second).to_double_vector() == (std::vector<double>{0.5, -2.0, 3.25}),
                 "zip64 " << zip64 << ", deflated " << deflated);
    }
  // A damaged deflated entry fails its CRC check like a stored one.
  std::string damaged = hand_made_archive(npy, true, true);
  damaged[30 + 5 + 20 + 3] ^= 0x10;
  write_string(dir / "damaged.npz", damaged);
  BOOST_TEST(contains(runtime_error_of([&] { read_npz(dir / "damaged.npz"); }), "entry 'w'"));
}

BOOST_AUTO_TEST_CASE(npy_headers_spell_shapes_as_python_tuples_and_align_data) {
  TempDir dir("test_npz");
  const std::vector<int64_t> one{4};
  save_npz(dir / "shapes.npz", NamedArrays{{"scalar", to_npy({}, one)},
                                           {"vector", to_npy({1}, one)},
                                           {"empty", to_npy({0, 5}, {})}});
  const std::string file = file_string(dir / "shapes.npz");
  for (const std::string shape : {"'shape': (), }", "'shape': (1,), }", "'shape': (0, 5), }"}) {
    const size_t at = file.find(shape);
    BOOST_REQUIRE(at != std::string::npos);
    // Every header ends with '\n' at a 64-byte boundary of its entry.
    const size_t header_at = file.rfind("\x93NUMPY", at);
    const size_t newline = file.find('\n', at);
    BOOST_TEST((newline + 1 - header_at) % 64 == 0u);
    BOOST_TEST(file.find_first_not_of(' ', at + shape.size()) == newline);
  }
}

BOOST_AUTO_TEST_CASE(to_int64_reads_every_integer_dtype) {
  const auto array = [](std::string descr, Shape shape, std::vector<uint8_t> bytes) {
    return NpyArray{std::move(descr), std::move(shape), std::move(bytes)};
  };
  BOOST_TEST(to_int64(array("|u1", {3}, {0, 7, 255})) == (std::vector<int64_t>{0, 7, 255}));
  BOOST_TEST(to_int64(array("|i1", {2}, {0x80, 0x05})) == (std::vector<int64_t>{-128, 5}));
  BOOST_TEST(to_int64(array("<i2", {2}, {0xfe, 0xff, 0x34, 0x12})) == (std::vector<int64_t>{-2, 0x1234}));
  BOOST_TEST(to_int64(array("<i4", {1}, {0xff, 0xff, 0xff, 0xff})) == (std::vector<int64_t>{-1}));
  BOOST_TEST(to_int64(array("<u4", {1}, {0xff, 0xff, 0xff, 0xff})) == (std::vector<int64_t>{0xffffffff}));
  BOOST_TEST(to_int64(array("|b1", {2}, {1, 0})) == (std::vector<int64_t>{1, 0}));
  BOOST_TEST(to_int64(array("<u8", {1}, {1, 0, 0, 0, 0, 0, 0, 0x7f})) ==
             (std::vector<int64_t>{0x7f00000000000001}));
  BOOST_CHECK_THROW(to_int64(array("<u8", {1}, {0, 0, 0, 0, 0, 0, 0, 0x80})), std::invalid_argument);
  BOOST_CHECK_THROW(to_int64(array("<f4", {1}, {0, 0, 0, 0})), std::invalid_argument);
  BOOST_CHECK_THROW(to_int64(array("<i4", {2}, {0, 0, 0, 0})), std::invalid_argument);
  BOOST_CHECK_THROW(to_tensor(array("<i8", {1}, std::vector<uint8_t>(8))), std::invalid_argument);

  // Other integer dtypes survive a save and read as they are.
  TempDir dir("test_npz");
  save_npz(dir / "ints.npz", NamedArrays{{"u", array("|u1", {3}, {0, 7, 255})}});
  const NamedArrays loaded = read_npz(dir / "ints.npz");
  BOOST_TEST(loaded[0].second.descr == "|u1");
  BOOST_TEST(to_int64(loaded[0].second) == (std::vector<int64_t>{0, 7, 255}));
}

BOOST_AUTO_TEST_CASE(every_truncation_is_an_error_and_changes_nothing) {
  TempDir dir("test_npz");
  Generator gen(4);
  const Tensor w = random_tensor({3, 2}, DType::f32, gen), b = random_tensor({3}, DType::f32, gen);
  save_npz(dir / "full.npz", NamedTensors{{"w", w}, {"b", b}});
  const std::string full = file_string(dir / "full.npz");

  Tensor w_dest = Tensor::full({3, 2}, 7.0), b_dest = Tensor::full({3}, 7.0);
  const Tensor w_before = w_dest.clone(), b_before = b_dest.clone();
  const fs::path cut = dir / "cut.npz";
  for (size_t length = 0; length < full.size(); ++length) {
    write_string(cut, full.substr(0, length));
    const std::string error = runtime_error_of([&] { load_into(cut, {{"w", w_dest}, {"b", b_dest}}); });
    BOOST_TEST(contains(error, cut.string()), "length " << length);
    BOOST_TEST(same_bytes(w_dest, w_before));
    BOOST_TEST(same_bytes(b_dest, b_before));
  }
  write_string(cut, full.substr(0, 100));
  BOOST_TEST(contains(runtime_error_of([&] { read_npz(cut); }), "not a zip archive"));
}

BOOST_AUTO_TEST_CASE(a_flipped_data_byte_fails_the_crc_check) {
  TempDir dir("test_npz");
  const Tensor t = Tensor::full({2, 3}, 1.0);
  save_npz(dir / "a.npz", NamedTensors{{"a", t}});
  std::string file = file_string(dir / "a.npz");
  file[kDataAt + 128 + 5] ^= 0x01;  // inside the array data
  write_string(dir / "a.npz", file);

  Tensor dest = Tensor::zeros({2, 3});
  const std::string error = runtime_error_of([&] { load_into(dir / "a.npz", {{"a", dest}}); });
  BOOST_TEST(contains(error, (dir / "a.npz").string()));
  BOOST_TEST(contains(error, "entry 'a'"));
  BOOST_TEST(contains(error, "CRC-32"));
  BOOST_TEST(dest.to_double_vector() == std::vector<double>(6, 0.0));
}

BOOST_AUTO_TEST_CASE(damaged_npy_headers_are_named_errors) {
  TempDir dir("test_npz");
  save_npz(dir / "a.npz", NamedTensors{{"a", Tensor::full({2, 3}, 1.0)}});
  const std::string original = file_string(dir / "a.npz");
  const size_t entry_size = 128 + 24;
  const std::vector<std::tuple<std::string, std::string, std::string>> edits = {
      {"'descr'", "'dexcr'", "unexpected key 'dexcr'"},
      {"'shape': (2, 3)", "'shape': (2, x)", "expected a non-negative integer"},
      {"False", "True ", "Fortran order"},
      {"'<f4'", "'>f4'", "unsupported dtype '>f4'"},
      {"'<f4'", "'<c8'", "unsupported dtype '<c8'"},
      {"(2, 3)", "(2, 4)", "data has 24 bytes, but shape (2, 4) of float32 ('<f4') needs 32"},
      {"(2, 3)", "(3, 1)", "data has 24 bytes, but shape (3, 1) of float32 ('<f4') needs 12"},
      {"\x93NUMPY", "\x93NUMPZ", "bad magic"},
      {", }", ",,}", "expected a string"},
      // Bytes of the file are quoted printably: the message stays one line.
      {"'descr'", "'d\ncr\x1b'", "unexpected key 'd\\x0acr\\x1b'"},
      {"'<f4'", "'\x7f\t4'", "unsupported dtype '\\x7f\\x094'"},
  };
  for (const auto& [from, to, message] : edits) {
    std::string file = original;
    replace_once(file, from, to);
    fix_crc(file, entry_size);
    write_string(dir / "bad.npz", file);
    const std::string error = runtime_error_of([&] { read_npz(dir / "bad.npz"); });
    BOOST_TEST(contains(error, (dir / "bad.npz").string() + ": entry 'a'"));
    BOOST_TEST(contains(error, message), error);
    BOOST_TEST(error.find_first_of("\n\t\x1b\x7f") == std::string::npos, error);
  }
}

BOOST_AUTO_TEST_CASE(printable_escapes_what_is_not_printable_ascii_and_truncates) {
  BOOST_TEST(printable("descr 'f4'") == "descr 'f4'");
  BOOST_TEST(printable(std::string("a\nb\0c\x7f\xff\\", 8)) == "a\\x0ab\\x00c\\x7f\\xff\\\\");
  BOOST_TEST(printable(std::string(300, 'x')) == std::string(200, 'x') + "... (300 bytes)");
  BOOST_TEST(printable("abcdef", 3) == "abc... (6 bytes)");
  BOOST_TEST(printable("abc", 3) == "abc");
}

BOOST_AUTO_TEST_CASE(missing_and_foreign_files_are_named_errors) {
  TempDir dir("test_npz");
  BOOST_TEST(contains(runtime_error_of([&] { read_npz(dir / "none.npz"); }), (dir / "none.npz").string()));
  write_string(dir / "text.npz", "this is not a zip archive, just some text that is long enough");
  BOOST_TEST(contains(runtime_error_of([&] { read_npz(dir / "text.npz"); }), "not a zip archive"));
  BOOST_TEST(contains(runtime_error_of([&] { read_npz(dir.path); }), "is a directory"));
}

BOOST_AUTO_TEST_CASE(load_into_checks_names_shapes_and_dtypes_before_writing) {
  TempDir dir("test_npz");
  const fs::path path = dir / "x.npz";
  Generator gen(5);
  save_npz(path, NamedTensors{{"features.0.bias", random_tensor({64}, DType::f32, gen)},
                              {"features.0.weight", random_tensor({64, 3, 3, 3}, DType::f32, gen)},
                              {"head.weight", random_tensor({10, 64}, DType::f64, gen)}});
  const std::string checkpoint = "checkpoint " + path.string();

  // The bias would load fine; the error in the next entry must still leave it untouched.
  Tensor bias = Tensor::zeros({64});
  Tensor small_weight = Tensor::zeros({32, 3, 3, 3});
  Tensor weight = Tensor::zeros({64, 3, 3, 3});
  Tensor head32 = Tensor::zeros({10, 64}, DType::f32);
  Tensor head64 = Tensor::zeros({10, 64}, DType::f64);
  const auto untouched = [&] {
    for (const Tensor* t : {&bias, &small_weight, &weight, &head32, &head64})
      for (double v : t->to_double_vector())
        if (v != 0.0) return false;
    return true;
  };

  BOOST_TEST(runtime_error_of([&] { load_into(path, {{"features.0.bias", bias}, {"features.1.weight", weight}}, true); }) ==
             checkpoint + " has no entry 'features.1.weight'");
  BOOST_TEST(runtime_error_of([&] { load_into(path, {{"features.0.bias", bias}, {"features.0.weight", small_weight}}, true); }) ==
             checkpoint + ": entry 'features.0.weight' has shape (64, 3, 3, 3), model expects (32, 3, 3, 3)");
  BOOST_TEST(runtime_error_of([&] { load_into(path, {{"features.0.bias", bias}, {"head.weight", head32}}, true); }) ==
             checkpoint + ": entry 'head.weight' has dtype float64 ('<f8'), model expects float32 ('<f4')");
  const std::string unused = runtime_error_of([&] { load_into(path, {{"features.0.bias", bias}}); });
  BOOST_TEST(contains(unused, "'features.0.weight', 'head.weight'"));
  BOOST_TEST(contains(unused, "allow_unused"));
  BOOST_CHECK_THROW(load_into(path, {{"features.0.bias", bias}, {"features.0.bias", bias}}, true),
                    std::invalid_argument);
  BOOST_CHECK_THROW(load_into(path, {{"features.0.bias", Tensor()}}, true), std::invalid_argument);
  BOOST_TEST(untouched());

  load_into(path, {{"features.0.bias", bias}, {"head.weight", head64}}, /*allow_unused=*/true);
  BOOST_TEST(!untouched());
}

BOOST_AUTO_TEST_CASE(save_rejects_bad_arguments_without_touching_the_file) {
  TempDir dir("test_npz");
  const fs::path path = dir / "keep.npz";
  save_npz(path, NamedTensors{{"a", Tensor::full({2}, 3.0)}});
  const std::string before = file_string(path);
  const Tensor t = Tensor::zeros({2});
  BOOST_CHECK_THROW(save_npz(path, NamedTensors{{"a", t}, {"a", t}}), std::invalid_argument);
  BOOST_CHECK_THROW(save_npz(path, NamedTensors{{"", t}}), std::invalid_argument);
  BOOST_CHECK_THROW(save_npz(path, NamedTensors{{"a", Tensor()}}), std::invalid_argument);
  BOOST_CHECK_THROW(save_npz(path, NamedArrays{{"a", NpyArray{"<f4", {3}, std::vector<uint8_t>(8)}}}),
                    std::invalid_argument);
  BOOST_CHECK_THROW(save_npz(path, NamedArrays{{"a", NpyArray{"<c8", {1}, std::vector<uint8_t>(8)}}}),
                    std::invalid_argument);
  BOOST_TEST(file_string(path) == before);
}

BOOST_AUTO_TEST_CASE(writes_are_atomic) {
  TempDir dir("test_npz");
  // A missing directory: a clear error, nothing created.
  const std::string error = runtime_error_of(
      [&] { save_npz(dir / "missing" / "x.npz", NamedTensors{{"a", Tensor::zeros({1})}}); });
  BOOST_TEST(contains(error, (dir / "missing" / "x.npz").string()));
  BOOST_TEST(!fs::exists(dir / "missing"));

  // A write that fails half way leaves the old file and no temporary behind.
  const fs::path path = dir / "keep.bin";
  write_file_atomic(path, std::span<const char>("old contents", 12));
  BOOST_CHECK_THROW(write_file_atomic(path,
                                      [](std::ostream& out) {
                                        out << "new, partial";
                                        throw std::runtime_error("disk on fire");
                                      }),
                    std::runtime_error);
  BOOST_TEST(file_string(path) == "old contents");
  // A directory in the way of the rename fails too, again without leftovers.
  fs::create_directory(dir / "taken");
  fs::create_directory(dir / "taken" / "inner");
  BOOST_CHECK_THROW(write_file_atomic(dir / "taken", std::span<const char>("x", 1)), std::runtime_error);
  BOOST_TEST(fs::is_directory(dir / "taken" / "inner"));

  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
  BOOST_TEST(files == 1u);  // keep.bin only

  write_file_atomic(path, std::span<const char>("new", 3));
  BOOST_TEST(file_string(path) == "new");
}

BOOST_AUTO_TEST_CASE(conversion_errors_name_the_file_and_the_entry) {
  TempDir dir("test_npz");
  const std::vector<int64_t> labels{1, 2};
  save_npz(dir / "mixed.npz", NamedArrays{{"labels", to_npy({2}, labels)},
                                          {"weight", to_npy(Tensor::full({2}, 1.0))}});
  const NamedArrays arrays = read_npz(dir / "mixed.npz");
  const auto message = [](auto&& f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string where = (dir / "mixed.npz").string();
  BOOST_TEST(message([&] { to_tensor(arrays[0].second); }) ==
             "to_tensor " + where + ": entry 'labels': dtype int64 ('<i8') is neither float32 ('<f4') nor float64 ('<f8')");
  BOOST_TEST(contains(message([&] { to_int64(arrays[1].second); }), "to_int64 " + where + ": entry 'weight': dtype"));
  // Arrays built in memory have no file to name.
  BOOST_TEST(contains(message([] { to_tensor(NpyArray{"<i8", {1}, std::vector<uint8_t>(8)}); }), "to_tensor: dtype"));
}
