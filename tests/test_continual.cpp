// The runner end to end on a small real subset of Split Fashion-MNIST (tiny
// network, a few hundred images per task, 2 epochs): adapter methods and
// SenaCNN keep every earlier task's accuracy exactly; naive forgets; a run
// killed mid-task and resumed gives the same numbers as one never stopped; a
// NaN loss stops the cell and keeps the last good checkpoint; a sweep run as
// two shards and merged equals the same sweep run in one process.
#define BOOST_TEST_MODULE continual
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "engine/io.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "experiments/continual/checkpoint.h"
#include "experiments/continual/learners/replay.h"
#include "experiments/continual/learners/wrapped_learner.h"
#include "experiments/continual/merge.h"
#include "experiments/continual/methods.h"
#include "experiments/continual/run.h"
#include "experiments/continual/trainer.h"
#include "tests/preconditions.h"

using namespace continual;
namespace fs = std::filesystem;

namespace {

using testing::fashion_mnist_present;
using testing::kFashionMnistDir;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("continual-e2e-" + tag + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

constexpr int64_t kTrainImages = 160, kBatch = 32;
constexpr int64_t kBatchesPerEpoch = (kTrainImages + kBatch - 1) / kBatch;

RunConfig small_config(const fs::path& out) {
  RunConfig c;
  c.dataset = "fashion-mnist";
  c.data_dir = kFashionMnistDir;
  c.arch = "tiny";
  c.train_limit = kTrainImages;
  c.eval_limit = 100;
  c.epochs = 2;
  c.patience = 2;
  c.batch = kBatch;
  c.lr = 3e-3;
  c.rank = 2;
  c.rank_fc = 4;
  c.alpha = 2;
  c.threads = 2;
  c.out = out;
  return c;
}

// The data is read once for every test (reading the gzip'd IDX files takes a moment).
const TaskData& small_data() {
  static const TaskData data = load_task_data(small_config("unused"));
  return data;
}

CellResult run_method(const RunConfig& c, const std::string& method, uint64_t seed = 0, bool resume = false) {
  std::ostringstream log;
  auto learner = make_learner(c, method, small_data(), seed);
  return train_cell(c, small_data(), *learner, {method, seed, resume, &log, false});
}

// Wraps a learner and breaks it on the n-th training forward: throws (a
// killed process) or returns NaN logits (a diverged run).
class FaultyLearner final : public WrappedLearner {
 public:
  enum class Fault { kill, nan };
  FaultyLearner(std::unique_ptr<Learner> inner, int64_t fail_at, Fault fault)
      : WrappedLearner(std::move(inner)), fail_at_(fail_at), fault_(fault) {}
  engine::Tensor forward(const engine::Tensor& images, int64_t task, bool training) override {
    engine::Tensor logits = base().forward(images, task, training);
    if (training && ++calls_ == fail_at_) {
      if (fault_ == Fault::kill) throw std::runtime_error("simulated kill");
      return engine::mul_scalar(logits, std::numeric_limits<double>::quiet_NaN());
    }
    return logits;
  }

 private:
  int64_t fail_at_, calls_ = 0;
  Fault fault_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(adapters_and_sena_never_forget_naive_does,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("forget");
  const RunConfig c = small_config(dir.path);
  for (const std::string method : {"lora", "cp-lora", "sena"}) {
    const CellResult r = run_method(c, method);
    const AccuracyMatrix& m = r.accuracy_matrix;
    BOOST_REQUIRE(m.size() == 5u);
    // Bit-identical, not approximately: the old tasks' paths are untouched.
    for (size_t j = 0; j + 1 < m.size(); ++j)
      for (size_t i = j + 1; i < m.size(); ++i)
        BOOST_TEST(m[i][j] == m[j][j], method << ": task " << j << " after task " << i);
    BOOST_TEST(backward_transfer(m) == 0.0, method);
    BOOST_TEST(forgetting(m) == 0.0, method);
    // It learnt something: well above chance (0.5) on a 2-class task.
    BOOST_TEST(average_accuracy(m) > 0.7, method << " ACC " << average_accuracy(m));
    // Later tasks store new parameters (adapters, branches) and the first task the whole network.
    BOOST_TEST(r.params.new_per_task[1] > 0);
    BOOST_TEST(r.params.new_per_task[1] < r.params.base);
  }
  const CellResult naive = run_method(c, "naive");
  BOOST_TEST(naive.accuracy_matrix[4][0] < naive.accuracy_matrix[0][0]);
  BOOST_TEST(backward_transfer(naive.accuracy_matrix) < 0.0);
  // Naive stores only a new head block per task: 32 * 2 weights + 2 biases in the tiny net.
  BOOST_TEST(naive.params.new_per_task[1] == 66);
  BOOST_TEST(naive.params.new_conv_per_task[1] == 0);
}

BOOST_AUTO_TEST_CASE(resume_after_a_kill_gives_identical_numbers,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir whole("whole"), killed("killed");
  RunConfig c = small_config(whole.path);
  c.tasks = 5;
  const CellResult reference = run_method(c, "lora");

  c.out = killed.path;
  // Batch 3 of epoch 2 of task 3 fails.
  const int64_t fail_at = 2 * (2 * kBatchesPerEpoch) + kBatchesPerEpoch + 3;
  auto faulty = std::make_unique<FaultyLearner>(make_learner(c, "lora", small_data(), 0), fail_at,
                                                FaultyLearner::Fault::kill);
  std::ostringstream log;
  BOOST_CHECK_THROW(train_cell(c, small_data(), *faulty, {"lora", 0, false, &log, false}), std::runtime_error);
  const auto checkpoint = load_checkpoint(checkpoint_file(killed.path, "lora-seed0"));
  BOOST_REQUIRE(checkpoint.has_value());
  BOOST_TEST(checkpoint->progress.at("task") == 2);
  BOOST_TEST(checkpoint->progress.at("epoch") == 1);

  const CellResult resumed = run_method(c, "lora", 0, /*resume=*/true);
  BOOST_TEST(resumed.accuracy_matrix == reference.accuracy_matrix);
  BOOST_TEST(resumed.validation_matrix == reference.validation_matrix);
  BOOST_TEST(resumed.epochs_per_task == reference.epochs_per_task);
  for (size_t t = 0; t < reference.curves.size(); ++t) {
    BOOST_TEST(resumed.curves[t].train_loss == reference.curves[t].train_loss);
    BOOST_TEST(resumed.curves[t].val_accuracy == reference.curves[t].val_accuracy);
  }
  BOOST_TEST(to_json(resumed).at("params") == to_json(reference).at("params"));
}

// EWC's Fisher and anchors and LwF's teacher travel in the checkpoint; the
// replay memory is rebuilt and its draws counted.
BOOST_AUTO_TEST_CASE(ewc_lwf_and_replay_resume_after_a_kill_give_identical_numbers,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  for (const std::string method : {"ewc", "lwf", "replay"}) {
    TempDir whole("whole-" + method), killed("killed-" + method);
    RunConfig c = small_config(whole.path);
    c.tasks = 2;
    c.class_order = "0,1,2,3";
    const CellResult reference = run_method(c, method);
    c.out = killed.path;
    // Batch 3 of epoch 2 of task 2 fails.
    const int64_t fail_at = 2 * kBatchesPerEpoch + kBatchesPerEpoch + 3;
    auto faulty = std::make_unique<FaultyLearner>(make_learner(c, method, small_data(), 0), fail_at,
                                                  FaultyLearner::Fault::kill);
    std::ostringstream log;
    BOOST_CHECK_THROW(train_cell(c, small_data(), *faulty, {method, 0, false, &log, false}), std::runtime_error);
    const CellResult resumed = run_method(c, method, 0, /*resume=*/true);
    BOOST_TEST(resumed.accuracy_matrix == reference.accuracy_matrix, method);
    for (size_t t = 0; t < reference.curves.size(); ++t)
      BOOST_TEST(resumed.curves[t].train_loss == reference.curves[t].train_loss, method << " task " << t);
  }
}

// The methods' terms are wired in: each changes naive training, learns, and
// with its term switched off (lambda, alpha or memory 0) is naive training bit
// for bit.
BOOST_AUTO_TEST_CASE(ewc_lwf_and_replay_are_naive_plus_their_loss_term,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("families");
  RunConfig c = small_config(dir.path);
  c.tasks = 2;
  c.class_order = "0,1,2,3";
  c.epochs = 1;
  const AccuracyMatrix naive = run_method(c, "naive").accuracy_matrix;
  for (const std::string method : {"ewc", "lwf", "replay"}) {
    const AccuracyMatrix on = run_method(c, method).accuracy_matrix;
    BOOST_TEST(on != naive, method);
    BOOST_TEST(on[0] == naive[0], method << ": task 0 has nothing to keep yet");
    BOOST_TEST(average_accuracy(on) > 0.8, method << " ACC " << average_accuracy(on));
  }
  RunConfig off = c;
  off.ewc_lambda = 0;
  off.lwf_alpha = 0;
  off.memory = 0;
  for (const std::string method : {"ewc", "lwf", "replay"})
    BOOST_TEST(run_method(off, method).accuracy_matrix == naive, method);
}

BOOST_AUTO_TEST_CASE(replay_memory_is_class_balanced_seeded_and_of_training_images_only,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  const TaskData& data = small_data();
  // 3 tasks seen: 6 classes share 50 slots, 8 each and one more for the first two.
  const std::vector<int64_t> memory = fill_replay_memory(data, 3, 50, 7);
  BOOST_REQUIRE(memory.size() == 50u);
  std::map<int64_t, int64_t> per_class;
  for (int64_t i : memory) ++per_class[data.data.train.labels[static_cast<size_t>(i)]];
  const std::vector<int64_t>& order = data.split.class_order;
  for (size_t k = 0; k < 6; ++k) BOOST_TEST(per_class[order[k]] == (k < 2 ? 9 : 8), "class " << order[k]);
  BOOST_TEST(per_class.size() == 6u);
  std::set<int64_t> training, held_out;
  for (int64_t t = 0; t < 3; ++t) {
    training.insert(data.split.tasks[t].train.begin(), data.split.tasks[t].train.end());
    held_out.insert(data.split.tasks[t].validation.begin(), data.split.tasks[t].validation.end());
  }
  for (int64_t i : memory) {
    BOOST_TEST(training.count(i) == 1u, i);
    BOOST_TEST(held_out.count(i) == 0u, i);
  }
  BOOST_TEST(std::set<int64_t>(memory.begin(), memory.end()).size() == memory.size());  // no image twice
  // The same seed gives the same memory; another seed another sample.
  BOOST_TEST(fill_replay_memory(data, 3, 50, 7) == memory, boost::test_tools::per_element());
  BOOST_TEST(fill_replay_memory(data, 3, 50, 8) != memory);
  // Nothing seen yet, or no room: an empty memory.
  BOOST_TEST(fill_replay_memory(data, 0, 50, 7).empty());
  BOOST_TEST(fill_replay_memory(data, 3, 0, 7).empty());
}

BOOST_AUTO_TEST_CASE(nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("nan");
  const RunConfig c = small_config(dir.path);
  // Batch 5 of epoch 2 of task 1: epoch 1 has been checkpointed.
  auto faulty = std::make_unique<FaultyLearner>(make_learner(c, "naive", small_data(), 0), kBatchesPerEpoch + 5,
                                                FaultyLearner::Fault::nan);
  std::ostringstream log;
  try {
    train_cell(c, small_data(), *faulty, {"naive", 0, false, &log, false});
    BOOST_FAIL("a NaN loss did not stop training");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("loss is nan") != std::string::npos, what);
    BOOST_TEST(what.find("epoch 2, batch 5") != std::string::npos, what);
    BOOST_TEST(what.find("lora") == std::string::npos);
  }
  const auto checkpoint = load_checkpoint(checkpoint_file(dir.path, "naive-seed0"));
  BOOST_REQUIRE(checkpoint.has_value());
  BOOST_TEST(checkpoint->progress.at("epoch") == 1);
  for (const auto& [name, tensor] : checkpoint->model)
    for (float v : tensor.to_float_vector()) BOOST_REQUIRE(std::isfinite(v));
}

BOOST_AUTO_TEST_CASE(two_shards_merged_equal_one_process,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir one("one"), sharded("sharded");
  RunConfig c = small_config(one.path);
  c.tasks = 2;
  c.class_order = "0,1,2,3";
  c.train_limit = 64;
  c.epochs = 1;
  c.methods = {"naive", "finetune-head"};
  c.seeds = {0, 1};
  std::ostringstream out, log;
  run_sweep(c, out, log, false);
  BOOST_TEST(out.str().find("| naive |") != std::string::npos);

  c.out = sharded.path;
  for (const char* shard : {"0/2", "1/2"}) {
    c.shard = shard;
    std::ostringstream shard_out;
    run_sweep(c, shard_out, log, false);
  }
  // The second shard finds the sweep complete and writes the reports itself;
  // an explicit merge gives the same files.
  merge_sweep(sharded.path);
  auto runs = [](const fs::path& dir) {
    const std::vector<char> bytes = engine::read_file(dir / "results.json");
    nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end());
    nlohmann::json kept = nlohmann::json::object();
    for (auto& [method, entry] : j.at("methods").items())
      for (auto& run : entry.at("runs"))
        kept[method].push_back({run.at("seed"), run.at("accuracy_matrix"), run.at("params"), run.at("curves")});
    return kept;
  };
  BOOST_TEST(runs(one.path) == runs(sharded.path));
  BOOST_TEST(runs(one.path).at("naive").size() == 2u);

  // A missing cell is named.
  fs::remove(cell_file(sharded.path, "finetune-head-seed1"));
  try {
    merge_sweep(sharded.path);
    BOOST_FAIL("merge accepted a missing cell");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("finetune-head-seed1") != std::string::npos, e.what());
  }
}
