// The command-line programs run as a user would, with bad flags: each must
// exit with status 2 (a bad flag value) or 1 (a failure later), print one line
// on stderr that names the flag, and write nothing. The programs' paths come
// from meson in the environment (CONTINUAL, PARAM_TABLE, ...).
#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/preconditions.h"

namespace fs = std::filesystem;

namespace {

struct Outcome {
  int status = -1;
  std::string stderr_text;
};

std::string program(const char* variable) {
  const char* path = std::getenv(variable);
  BOOST_TEST_REQUIRE(path != nullptr, variable << " is not set (run through meson test)");
  return path;
}

std::string quoted(const std::string& text) {
  std::string q = "'";
  for (char ch : text) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

// A fresh empty working directory for one run, and a place outside it for the
// captured output, so that "nothing written" means the directory stays empty.
struct Sandbox {
  fs::path root = fs::temp_directory_path() / ("cli-test-" + std::to_string(::getpid()));
  fs::path work = root / "work", captured = root / "captured";
  Sandbox() {
    fs::remove_all(root);
    fs::create_directories(work);
    fs::create_directories(captured);
  }
  ~Sandbox() { fs::remove_all(root); }

  Outcome run(const std::string& exe, const std::vector<std::string>& args) const {
    // A program that wrongly accepts its flags must not train for long.
    std::string command = "cd " + quoted(work.string()) + " && timeout 120 " + quoted(exe);
    for (const std::string& a : args) command += " " + quoted(a);
    command += " >" + quoted((captured / "out").string()) + " 2>" + quoted((captured / "err").string());
    const int raw = std::system(command.c_str());
    Outcome o;
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    std::ifstream err(captured / "err");
    std::stringstream text;
    text << err.rdbuf();
    o.stderr_text = text.str();
    return o;
  }

  std::vector<fs::path> written() const {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(work)) files.push_back(entry.path());
    return files;
  }
};

// The refusal every case expects: the status, one line "NAME: ..." naming
// `flag` (the last on stderr, after continual's progress lines; the only one
// so prefixed), no file.
void expect_refusal(const Sandbox& box, const std::string& exe, const std::vector<std::string>& args,
                    int status, const std::string& flag) {
  const Outcome o = box.run(exe, args);
  std::string shown = exe;
  for (const std::string& a : args) shown += " " + a;
  const std::string prefix = fs::path(exe).filename().string() + ": ";
  std::vector<std::string> lines;
  std::stringstream text(o.stderr_text);
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  BOOST_TEST_CONTEXT(shown << "\nstderr: " << o.stderr_text) {
    BOOST_TEST(o.status == status);
    BOOST_TEST_REQUIRE(!lines.empty());
    BOOST_TEST(lines.back().starts_with(prefix));
    BOOST_TEST(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.starts_with(prefix); }) == 1);
    BOOST_TEST(lines.back().find(flag) != std::string::npos);
    BOOST_TEST(box.written().empty());
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(continual_refuses_flag_values_out_of_range) {
  const Sandbox box;
  const std::string continual = program("CONTINUAL");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--batch", "99999999999999999999"}, "--batch"},  // CLI11 alone would clamp it to INT64_MAX
      {{"--tasks", "-99999999999999999999"}, "--tasks"},
      {{"--seeds", "-1"}, "--seeds"},  // would wrap to 2^64-1
      {{"--split-seed", "-5"}, "--split-seed"},
      {{"--threads", "100000"}, "--threads"},
      {{"--alpha", "nan"}, "--alpha"},
      {{"--weight-decay", "nan"}, "--weight-decay"},
      {{"--validation-fraction", "nan"}, "--validation-fraction"},
      {{"--lr", "inf"}, "--lr"},
      {{"--image-size", "100000"}, "--image-size"},
      {{"--batch", "1000000000000"}, "--batch"},
  };
  for (const auto& [args, flag] : cases) {
    std::vector<std::string> all = {"--arch", "tiny", "--train-limit", "32", "--eval-limit", "32", "--epochs", "1"};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"--out", "out"});
    expect_refusal(box, continual, all, 2, flag);
  }
}

BOOST_AUTO_TEST_CASE(continual_refuses_an_unknown_data_set_name) {
  const Sandbox box;
  // DIR is a valid image folder: it used to be read as one under any name.
  expect_refusal(box, program("CONTINUAL"), {"--dataset", "foo", "--data-dir", box.root.string(), "--out", "out"}, 2,
                 "--dataset");
}

// Errors found only with the data loaded must still come before any file.
BOOST_AUTO_TEST_CASE(continual_refuses_unbuildable_cells_before_writing,
                     *boost::unit_test::precondition(testing::fashion_mnist_present)) {
  const Sandbox box;
  const std::string continual = program("CONTINUAL");
  const std::vector<std::string> quick = {"--out", "out", "--arch", "tiny", "--train-limit", "50", "--epochs", "1"};
  const auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), quick.begin(), quick.end());
    return extra;
  };
  expect_refusal(box, continual, with({"--arch", "nonsense"}), 2, "--arch");
  expect_refusal(box, continual, with({"--method", "lora", "--adapt", "last-99"}), 2, "--adapt");
  expect_refusal(box, continual, {"--method", "lora", "--rank", "1000000", "--out", "out"}, 2, "--rank");
  expect_refusal(box, continual, with({"--init", (box.root / "missing.npz").string()}), 1, "--init");
}

BOOST_AUTO_TEST_CASE(param_table_and_model_tool_refuse_huge_class_counts) {
  const Sandbox box;
  expect_refusal(box, program("PARAM_TABLE"), {"--classes", "9223372036854775807"}, 2, "--classes");
  expect_refusal(box, program("PARAM_TABLE"), {"--classes", "99999999999999999999"}, 2, "--classes");
  expect_refusal(box, program("MODEL_TOOL"),
                 {"summary", "--arch", "tiny", "--input", "32x32x3", "--classes", "9223372036854775807"}, 2,
                 "--classes");
}

// A row the network has no room for is said and skipped; the rest (pnn last) is counted.
BOOST_AUTO_TEST_CASE(param_table_says_which_rows_do_not_apply_and_counts_the_rest) {
  const Sandbox box;
  const Outcome o = box.run(program("PARAM_TABLE"), {"--arch", "tiny", "--input", "28x28x1", "--classes", "2", "--plain"});
  std::ifstream out_file(box.captured / "out");
  std::stringstream out;
  out << out_file.rdbuf();
  // The line of a row, "" when absent.
  const auto row = [&](const std::string& method) {
    std::stringstream lines(out.str());
    for (std::string line; std::getline(lines, line);)
      if (line.starts_with(method + " ")) return line;
    return std::string();
  };
  const auto has = [](const std::string& line, const std::string& number) {
    return line.find(" " + number + " ") != std::string::npos;
  };
  BOOST_TEST_CONTEXT("stdout: " << out.str() << "\nstderr: " << o.stderr_text) {
    BOOST_TEST(o.status == 0);
    BOOST_TEST(row("finetune-3").find("does not apply: ") != std::string::npos);
    // tiny's second column (conv 1,296, dense 25,186 at 2 classes) with its laterals
    // from the first: the 1x1 conv 8->8 (64), dense 784->32 (25,088) and 32->2 (64).
    BOOST_TEST(has(row("pnn-1"), "1360"));
    BOOST_TEST(has(row("pnn-1"), "50338"));
    BOOST_TEST(has(row("pnn-1"), "51698"));
  }
}

// One parser for --device in every program (experiments/common/device.h);
// --tf32 is refused without a GPU device rather than ignored.
BOOST_AUTO_TEST_CASE(programs_refuse_bad_device_names_and_tf32_on_the_cpu) {
  const Sandbox box;
  const std::vector<std::string> quick = {"--arch", "tiny", "--train-limit", "32", "--epochs", "1", "--out", "out"};
  const auto continual_with = [&](std::vector<std::string> args) {
    args.insert(args.end(), quick.begin(), quick.end());
    return args;
  };
  expect_refusal(box, program("CONTINUAL"), continual_with({"--device", "cuda:01"}), 2, "--device");
  expect_refusal(box, program("CONTINUAL"), continual_with({"--tf32"}), 2, "--tf32");
  expect_refusal(box, program("BENCH"), {"--device", "gpu"}, 2, "--device");
  expect_refusal(box, program("BENCH"), {"--device", "cpu", "--tf32"}, 2, "--tf32");
  expect_refusal(box, program("MODEL_TOOL"),
                 {"summary", "--arch", "tiny", "--input", "28x28x1", "--classes", "2", "--device", "cuda:x"}, 2,
                 "--device");
  // Well formed, but no machine has GPU 1023: without a GPU, without CUDA or
  // with fewer GPUs, the one line names the device asked for.
  expect_refusal(box, program("BENCH"), {"--device", "cuda:1023"}, 1, "--device cuda:1023");
}

// ENGINE_CPU_ISA (engine/cpu/isa.h) is read at the first kernel: a bad value
// is refused with the variable's name, before anything is written.
BOOST_AUTO_TEST_CASE(programs_refuse_a_bad_engine_cpu_isa) {
  const Sandbox box;
  struct Unset {
    ~Unset() { ::unsetenv("ENGINE_CPU_ISA"); }
  } unset;
  ::setenv("ENGINE_CPU_ISA", "sse4", 1);
  expect_refusal(box, program("CONTINUAL"), {"--arch", "tiny", "--train-limit", "32", "--epochs", "1", "--out", "out"},
                 2, "ENGINE_CPU_ISA: 'sse4' is not one of baseline, avx2, avx512");
  expect_refusal(box, program("BENCH"), {"--quick"}, 1, "ENGINE_CPU_ISA");
  expect_refusal(box, program("MODEL_TOOL"), {"summary", "--arch", "tiny", "--input", "28x28x1", "--classes", "2"}, 2,
                 "ENGINE_CPU_ISA");
}

BOOST_AUTO_TEST_CASE(benchmarks_refuse_bad_sizes) {
  const Sandbox box;
  expect_refusal(box, program("BENCH"), {"--threads", "100000"}, 2, "--threads");
  expect_refusal(box, program("LOADER_BENCH"), {"--batch-size", "99999999999999999999"}, 2, "--batch-size");
  expect_refusal(box, program("LOADER_BENCH"), {"--image-size", "100000"}, 2, "--image-size");
}

// 257 classes do not fit CIFAR's label byte: refused before OUT_DIR exists.
BOOST_AUTO_TEST_CASE(cifar_pack_refuses_too_many_classes_before_creating_out_dir) {
  const Sandbox box;
  const fs::path images = box.root / "images";
  const std::string one_pixel_ppm = std::string("P6\n1 1\n255\n") + std::string(3, '\x80');
  for (int k = 0; k < 257; ++k) {
    const fs::path dir = images / ("class" + std::to_string(1000 + k));
    fs::create_directories(dir);
    std::ofstream(dir / "a.ppm", std::ios::binary) << one_pixel_ppm;
  }
  expect_refusal(box, program("CIFAR_PACK"), {images.string(), "out"}, 2, "257 classes");
}
