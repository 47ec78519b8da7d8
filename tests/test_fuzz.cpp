// Seeded fuzzing of every reader of outside files: CIFAR binary (both
// layouts), IDX (plain and gzip), .npz checkpoints and image files (PNG, JPEG,
// BMP) go through the real readers after random mutations of valid seed files.
// Each case must end in one of two ways, within a time limit:
//   - accepted: the result is self-consistent (ImageDataset::validate, arrays
//     whose bytes match their shape);
//   - rejected: one std::exception whose what() is non-empty, names the
//     file and holds no control characters (bytes of the file are quoted
//     through engine/printable.h), and no partial output (load_into leaves its tensors unchanged;
//     the readers write nothing beside the file).
// A crash, a hang, another exception type or a sanitizer report fails; CI
// runs this program in the AddressSanitizer/UBSan build too (scripts/test.sh).
//
// Mutations: bit flips, bytes set to random or boundary values (0, 0x7f,
// 0x80, 0xff), 32-bit fields set to boundary sizes, truncation, appended
// garbage, deleted and repeated chunks. The inner data of the compressed and
// checksummed formats is mutated too, then re-wrapped: the gzip stream is
// recompressed (the IDX header parser is reached) and each .npz entry's CRC-32
// recomputed (the .npy header parser is reached).
//
// FUZZ_CASES (default 600) sets the number of cases per format, 7 formats;
// FUZZ_SEED (default 1) the first seed. Seeds come from self-made files, plus
// the JPEGs of ../shared/data/golden where present.
#define BOOST_TEST_MODULE fuzz
#include <boost/test/unit_test.hpp>

#include <stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "datasets/cifar.h"
#include "datasets/idx.h"
#include "datasets/image_folder.h"
#include "engine/io.h"
#include "engine/npz.h"
#include "engine/parallel.h"
#include "engine/printable.h"

namespace fs = std::filesystem;
using Bytes = std::vector<char>;

namespace {

int64_t env_int(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::stoll(value) : fallback;
}

// ---- seed files -----------------------------------------------------------------

// Images with a smooth gradient and some noise, so codecs have work to do.
std::vector<uint8_t> pattern(int w, int h, int channels, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> pixels;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) pixels.push_back(static_cast<uint8_t>(x * 7 + y * 5 + c * 40 + gen() % 16));
  return pixels;
}

datasets::ImageDataset cifar_seed_data(bool coarse) {
  datasets::ImageDataset data;
  data.channels = 3, data.height = 32, data.width = 32;
  for (int i = 0; i < 3; ++i) {
    const auto image = pattern(32, 32, 3, static_cast<uint32_t>(i));
    data.pixels.insert(data.pixels.end(), image.begin(), image.end());
    data.labels.push_back(i * 3);
    if (coarse) data.coarse_labels.push_back(i);
  }
  for (int c = 0; c < (coarse ? 100 : 10); ++c) data.class_names.push_back(std::to_string(c));
  if (coarse)
    for (int c = 0; c < 20; ++c) data.coarse_class_names.push_back(std::to_string(c));
  return data;
}

Bytes cifar_seed(const fs::path& dir, datasets::CifarFormat format) {
  const fs::path path = dir / "seed.bin";
  const auto data = cifar_seed_data(format == datasets::CifarFormat::cifar100);
  const std::vector<int64_t> order{0, 1, 2};
  datasets::write_cifar_file(path, data, order, format);
  return engine::read_file(path);
}

// An IDX file of 3 images of 5x4 bytes (idx3), as MNIST's layout.
Bytes idx_seed() {
  Bytes bytes{0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 4};
  for (uint8_t v : pattern(4, 15, 1, 9)) bytes.push_back(static_cast<char>(v));
  return bytes;
}

Bytes gzip(const Bytes& plain) {
  z_stream stream{};
  BOOST_REQUIRE(deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes out(deflateBound(&stream, plain.size()) + 64);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  stream.avail_in = static_cast<uInt>(plain.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  BOOST_REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// The tensors of the .npz seed; load_into gets copies of the same shapes.
engine::NamedTensors npz_tensors() {
  const std::vector<float> w{1, -2, 3.5f, 4, 5, 6};
  const std::vector<double> b{0.25, -0.5};
  return {{"features.0.weight", engine::Tensor::from_vector({2, 3}, std::span<const float>(w))},
          {"features.0.bias", engine::Tensor::from_vector({2}, std::span<const double>(b))},
          {"step", engine::Tensor::from_vector({}, std::span<const double>(b.data(), 1))}};
}

Bytes npz_seed(const fs::path& dir) {
  save_npz(dir / "seed.npz", npz_tensors());
  return engine::read_file(dir / "seed.npz");
}

Bytes image_seed(const fs::path& dir, const std::string& ext, int channels) {
  const fs::path path = dir / ("seed" + ext);
  const int w = 12, h = 9;
  const auto pixels = pattern(w, h, channels, 5);
  int ok = 0;
  if (ext == ".png") ok = stbi_write_png(path.c_str(), w, h, channels, pixels.data(), w * channels);
  if (ext == ".bmp") ok = stbi_write_bmp(path.c_str(), w, h, channels, pixels.data());
  if (ext == ".jpg") ok = stbi_write_jpg(path.c_str(), w, h, channels, pixels.data(), 90);
  BOOST_REQUIRE_MESSAGE(ok, "cannot write the seed " << path);
  return engine::read_file(path);
}

// ../shared/data/golden beside the source tree (meson test sets PROJECT_SOURCE_DIR).
std::vector<Bytes> golden_jpegs() {
  std::vector<Bytes> seeds;
  const char* root = std::getenv("PROJECT_SOURCE_DIR");
  if (!root) return seeds;
  const fs::path folder = fs::path(root) / ".." / "shared" / "data" / "golden" / "cifar10-folder-sample" / "cat";
  if (!fs::is_directory(folder)) return seeds;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size() && i < 2; ++i) seeds.push_back(engine::read_file(files[i]));
  return seeds;
}

// ---- mutations ------------------------------------------------------------------

void mutate_once(Bytes& bytes, std::mt19937_64& gen) {
  const auto pick = [&](size_t n) { return static_cast<size_t>(gen() % std::max<size_t>(n, 1)); };
  switch (gen() % 8) {
    case 0:  // flip one bit
      if (!bytes.empty()) bytes[pick(bytes.size())] ^= static_cast<char>(1 << (gen() % 8));
      break;
    case 1:  // a random byte
      if (!bytes.empty()) bytes[pick(bytes.size())] = static_cast<char>(gen());
      break;
    case 2: {  // a boundary byte
      const char values[] = {0, 0x7f, static_cast<char>(0x80), static_cast<char>(0xff), 1};
      if (!bytes.empty()) bytes[pick(bytes.size())] = values[pick(std::size(values))];
      break;
    }
    case 3: {  // a boundary 32-bit field, either byte order
      const uint32_t values[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xffff, 0x10000, 3073};
      const uint32_t v = values[pick(std::size(values))];
      if (bytes.size() >= 4) {
        const size_t at = pick(bytes.size() - 3);
        const bool big = gen() % 2;
        for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(v >> (8 * (big ? 3 - i : i)));
      }
      break;
    }
    case 4:  // truncate
      bytes.resize(pick(bytes.size() + 1));
      break;
    case 5:  // append garbage
      for (size_t i = 0, n = 1 + pick(64); i < n; ++i) bytes.push_back(static_cast<char>(gen()));
      break;
    case 6: {  // delete a chunk
      if (bytes.empty()) break;
      const size_t at = pick(bytes.size()), n = 1 + pick(std::min<size_t>(bytes.size() - at, 32));
      bytes.erase(bytes.begin() + at, bytes.begin() + std::min(bytes.size(), at + n));
      break;
    }
    default: {  // repeat a chunk
      if (bytes.empty()) break;
      const size_t at = pick(bytes.size()), n = 1 + pick(std::min<size_t>(bytes.size() - at, 32));
      const Bytes chunk(bytes.begin() + at, bytes.begin() + std::min(bytes.size(), at + n));
      bytes.insert(bytes.begin() + pick(bytes.size()), chunk.begin(), chunk.end());
    }
  }
}

void mutate(Bytes& bytes, std::mt19937_64& gen) {
  for (uint64_t i = 0, n = 1 + gen() % 3; i < n; ++i) mutate_once(bytes, gen);
}

uint16_t le16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
uint32_t le32(const Bytes& b, size_t at) { return le16(b, at) | static_cast<uint32_t>(le16(b, at + 2)) << 16; }
void put_le32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}

// Mutates the data of one stored entry of a zip archive whose sizes stay the
// same, then writes its CRC-32 into the local header and the central directory
// (the seed is ours: every entry is stored, sizes in the local header).
void mutate_npz_entry(Bytes& zip, std::mt19937_64& gen) {
  struct Entry { size_t header, data, size; };
  std::vector<Entry> entries;
  for (size_t at = 0; at + 30 <= zip.size() && le32(zip, at) == 0x04034b50;) {
    const size_t data = at + 30 + le16(zip, at + 26) + le16(zip, at + 28), size = le32(zip, at + 18);
    entries.push_back({at, data, size});
    at = data + size;
  }
  if (entries.empty()) return;
  const Entry e = entries[gen() % entries.size()];
  // Mostly the .npy header (its first 128 bytes), where the parser is.
  const size_t span = std::min<size_t>(e.size, gen() % 4 ? 128 : e.size);
  for (uint64_t i = 0, n = 1 + gen() % 3; i < n && span; ++i) {
    const size_t at = e.data + gen() % span;
    if (gen() % 2)
      zip[at] = static_cast<char>(gen());
    else {  // a digit or a Python token where the header spells the dict
      const char tokens[] = "0123456789(),: '{}-LFTrue";
      zip[at] = tokens[gen() % (sizeof tokens - 1)];
    }
  }
  const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(zip.data() + e.data),
                                                    static_cast<uInt>(e.size)));
  put_le32(zip, e.header + 14, crc);
  for (size_t at = 0; at + 46 <= zip.size(); ++at)
    if (le32(zip, at) == 0x02014b50 && le32(zip, at + 42) == e.header) put_le32(zip, at + 16, crc);
}

// ---- one case -------------------------------------------------------------------

// Aborts the program, naming the case, when one case runs past the limit.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void start(std::string name) {
    std::lock_guard lock(mutex_);
    name_ = std::move(name), started_ = std::chrono::steady_clock::now(), running_ = true;
  }
  void stop() {
    std::lock_guard lock(mutex_);
    running_ = false;
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!done_) {
      wake_.wait_for(lock, std::chrono::milliseconds(200));
      if (running_ && std::chrono::steady_clock::now() - started_ > limit_) {
        std::cerr << "fuzz: " << name_ << " ran past " << limit_.count() << " s: a hang" << std::endl;
        std::abort();
      }
    }
  }
  std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string name_;
  std::chrono::steady_clock::time_point started_;
  bool running_ = false, done_ = false;
  std::thread thread_;
};

struct Outcomes {
  int64_t accepted = 0, rejected = 0, bad = 0;
  int64_t unprintable = 0;  // rejections whose message holds control characters
  std::string unprintable_example;
};

// A rejection must be a non-empty message that names the file.
std::string bad_message(const std::string& what, const fs::path& file) {
  if (what.empty()) return "an empty message";
  if (what.find(file.filename().string()) == std::string::npos) return "a message not naming the file";
  return "";
}

// Control characters (newlines, or bytes of the file echoed raw) break the
// "one readable line" of a message.
bool unprintable(const std::string& what) {
  return std::any_of(what.begin(), what.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// Runs `read` (which throws on a rejection and checks what it accepts) on the
// mutated bytes written at `file`; the folder must hold only that file after.
void run_case(const std::string& name, const Bytes& bytes, const fs::path& file,
              const std::function<void()>& read, Watchdog& watchdog, Outcomes& outcomes) {
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  BOOST_TEST_CHECKPOINT(name);  // named in the report of a crash
  watchdog.start(name);
  std::string failure;
  try {
    read();
    ++outcomes.accepted;
  } catch (const std::exception& e) {
    failure = bad_message(e.what(), file);
    if (failure.empty()) ++outcomes.rejected;
    else failure += ": \"" + std::string(e.what()) + "\"";
    if (unprintable(e.what()) && outcomes.unprintable++ == 0) outcomes.unprintable_example = name + ": " + e.what();
  } catch (...) {
    failure = "an exception not derived from std::exception";
  }
  watchdog.stop();
  size_t entries = 0;
  for (const auto& entry : fs::recursive_directory_iterator(file.parent_path()))
    entries += entry.is_regular_file();
  if (failure.empty() && entries != 1) failure = "files written beside the input";
  if (!failure.empty()) {
    ++outcomes.bad;
    if (outcomes.bad <= 5) BOOST_ERROR(name << ": " << failure);
  }
}

struct Format {
  std::string name;
  std::vector<Bytes> seeds;
  std::string file_name;                      // the mutated file, in its own folder
  std::function<void(const fs::path&)> read;  // throws on a rejection
  bool gzip_inner = false;                    // mutate the inflated bytes and recompress, half the time
  bool npz_inner = false;                     // mutate an entry and fix its CRC, half the time
};

// An accepted array holds exactly numel * itemsize bytes ("<f4": 4).
void check_accepted_array(const engine::NpyArray& a) {
  const size_t itemsize = std::stoul(a.descr.substr(2));
  BOOST_REQUIRE_EQUAL(a.bytes.size(), static_cast<size_t>(engine::shape_numel(a.shape)) * itemsize);
}

}  // namespace

BOOST_AUTO_TEST_CASE(mutated_files_are_read_or_rejected_with_one_message) {
  engine::set_num_threads(1);  // the files are tiny: threads would only wait on each other
  const int64_t cases = env_int("FUZZ_CASES", 600);
  const uint64_t first_seed = static_cast<uint64_t>(env_int("FUZZ_SEED", 1));
  const fs::path root = fs::temp_directory_path() / ("fuzz-" + std::to_string(::getpid()));
  fs::create_directories(root / "seeds");
  struct Cleanup {
    fs::path root;
    ~Cleanup() { fs::remove_all(root); }
  } cleanup{root};

  using datasets::CifarFormat;
  const auto check_image_set = [](const datasets::ImageDataset& data, const fs::path& file) {
    data.validate(file.string());
    BOOST_REQUIRE(data.size() > 0);
  };
  std::vector<Format> formats;
  formats.push_back({"cifar10", {cifar_seed(root / "seeds", CifarFormat::cifar10)}, "data_batch_1.bin",
                     [&](const fs::path& f) { check_image_set(read_cifar_files({f}, CifarFormat::cifar10), f); }});
  formats.push_back({"cifar100", {cifar_seed(root / "seeds", CifarFormat::cifar100)}, "train.bin",
                     [&](const fs::path& f) { check_image_set(read_cifar_files({f}, CifarFormat::cifar100), f); }});
  const auto read_idx_checked = [](const fs::path& f) {
    const datasets::IdxArray a = datasets::read_idx(f);
    int64_t n = 1;
    for (int64_t d : a.dims) n *= d;
    BOOST_REQUIRE(static_cast<int64_t>(a.values.size()) == n);
  };
  formats.push_back({"idx", {idx_seed()}, "train-images-idx3-ubyte", read_idx_checked});
  formats.push_back({"idx.gz", {gzip(idx_seed())}, "train-images-idx3-ubyte.gz", read_idx_checked, true});
  formats.push_back({"npz", {npz_seed(root / "seeds")}, "model.npz",
                     [](const fs::path& f) {
                       for (const auto& [name, array] : engine::read_npz(f)) check_accepted_array(array);
                       // load_into checks everything before it writes: on a
                       // rejection the destination must keep its values.
                       engine::NamedTensors destination;
                       std::vector<std::vector<double>> before;
                       for (const auto& [name, t] : npz_tensors()) {
                         destination.push_back({name, engine::Tensor::zeros(t.shape(), t.dtype())});
                         before.push_back(destination.back().second.to_double_vector());
                       }
                       try {
                         engine::load_into(f, destination);
                       } catch (...) {
                         for (size_t i = 0; i < destination.size(); ++i)
                           BOOST_REQUIRE_MESSAGE(destination[i].second.to_double_vector() == before[i],
                                                 "load_into changed " << destination[i].first << " and then threw");
                         throw;
                       }
                     },
                     false, true});
  const auto read_folder = [&](const fs::path& f) {
    check_image_set(datasets::read_image_folder(f.parent_path().parent_path()), f);
  };
  std::vector<Bytes> jpegs = golden_jpegs();
  jpegs.push_back(image_seed(root / "seeds", ".jpg", 3));
  formats.push_back({"jpeg", jpegs, "cat/image.jpg", read_folder});
  formats.push_back({"png+bmp", {image_seed(root / "seeds", ".png", 3), image_seed(root / "seeds", ".png", 1),
                                 image_seed(root / "seeds", ".bmp", 3)},
                     "cat/image.png", read_folder});

  // Every seed itself must be accepted, or the mutations test nothing.
  Watchdog watchdog(std::chrono::seconds(env_int("FUZZ_CASE_SECONDS", 20)));
  const auto started = std::chrono::steady_clock::now();
  int64_t total_cases = 0;
  for (const Format& format : formats) {
    const fs::path dir = root / format.name;
    const fs::path file = dir / format.file_name;
    fs::create_directories(file.parent_path());
    const auto read = [&] { format.read(file); };
    Outcomes seeds;
    for (size_t s = 0; s < format.seeds.size(); ++s)
      run_case(format.name + " seed " + std::to_string(s), format.seeds[s], file, read, watchdog, seeds);
    BOOST_TEST(seeds.accepted == static_cast<int64_t>(format.seeds.size()), format.name << ": a seed is rejected");

    Outcomes outcomes;
    for (int64_t i = 0; i < cases; ++i) {
      const uint64_t seed = first_seed + static_cast<uint64_t>(i);
      std::mt19937_64 gen(seed * 0x9E3779B97F4A7C15ull + std::hash<std::string>{}(format.name));
      Bytes bytes = format.seeds[gen() % format.seeds.size()];
      if (format.gzip_inner && gen() % 2) {
        Bytes inner = idx_seed();
        mutate(inner, gen);
        bytes = gzip(inner);
      } else if (format.npz_inner && gen() % 2) {
        mutate_npz_entry(bytes, gen);
      } else {
        mutate(bytes, gen);
      }
      run_case(format.name + " case " + std::to_string(seed) + " (FUZZ_SEED=" + std::to_string(seed) +
                   " FUZZ_CASES=1)",
               bytes, file, read, watchdog, outcomes);
    }
    total_cases += cases;
    BOOST_TEST(outcomes.bad == 0, format.name << ": " << outcomes.bad << " of " << cases << " cases failed");
    BOOST_TEST_MESSAGE(format.name << ": " << cases << " cases, " << outcomes.accepted << " accepted, "
                                   << outcomes.rejected << " rejected with a message naming the file ("
                                   << outcomes.unprintable << " of them with control characters), "
                                   << outcomes.bad << " failed");
    BOOST_TEST(outcomes.rejected > 0, format.name << ": no mutation was rejected");
    BOOST_TEST(outcomes.accepted > 0, format.name << ": no mutation was accepted (do they reach the parser?)");
    BOOST_CHECK_MESSAGE(outcomes.unprintable == 0,
                        format.name << ": " << outcomes.unprintable
                                    << " rejections with control characters in the message, e.g. "
                                    << engine::printable(outcomes.unprintable_example, 1000));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  BOOST_TEST_MESSAGE("fuzz: " << total_cases << " cases in " << seconds << " s");
}
