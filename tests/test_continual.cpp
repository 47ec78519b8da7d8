// The runner end to end on a small real subset of Split Fashion-MNIST (tiny
// network, a few hundred images per task, 2 epochs): adapter methods and
// SenaCNN keep every earlier task's accuracy exactly; naive forgets; a run
// killed mid-task and resumed gives the same numbers as one never stopped; a
// NaN loss stops the cell and keeps the last good checkpoint; a sweep run as
// two shards and merged equals the same sweep run in one process; the kept
// models of a run re-evaluate to its last accuracy rows bit for bit, and
// `continual evaluate` names a missing or mis-shaped file and tensor.
#define BOOST_TEST_MODULE continual
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/io.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "experiments/continual/checkpoint.h"
#include "experiments/continual/epoch_log.h"
#include "experiments/continual/evaluate.h"
#include "experiments/continual/learners/replay.h"
#include "experiments/continual/learners/wrapped_learner.h"
#include "experiments/continual/merge.h"
#include "experiments/continual/methods.h"
#include "experiments/continual/run.h"
#include "experiments/continual/trainer.h"
#include "layers/models.h"
#include "tests/preconditions.h"
#include "tests/small_run.h"
#include "tests/temp_dir.h"

using namespace continual;
namespace fs = std::filesystem;

namespace {

using testing::TempDir;

using testing::fashion_mnist_present;
using testing::kFashionMnistDir;

constexpr int64_t kTrainImages = 160, kBatch = 32;
constexpr int64_t kBatchesPerEpoch = (kTrainImages + kBatch - 1) / kBatch;

RunConfig small_config(const fs::path& out) {
  RunConfig c = testing::small_run(out, kTrainImages, 100, 2);
  c.ranks = {2};
  c.rank_fc = 4;
  c.alpha = 2;
  c.threads = 2;
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
  const auto untrained = [&] { return make_learner(c, method, small_data(), seed); };
  return train_cell(c, small_data(), *learner, {method, seed, resume, &log, false, nullptr, untrained});
}

// Wraps a learner and breaks it on the n-th training forward: throws (a
// killed process), returns NaN logits or runs with a NaN in its first
// convolution's weight (a diverged run).
class FaultyLearner final : public WrappedLearner {
 public:
  enum class Fault { kill, nan, nan_weight };
  FaultyLearner(std::unique_ptr<Learner> inner, int64_t fail_at, Fault fault)
      : WrappedLearner(std::move(inner)), fail_at_(fail_at), fault_(fault) {}
  engine::Tensor forward(const engine::Tensor& images, int64_t task, bool training) override {
    if (training && fault_ == Fault::nan_weight && calls_ + 1 == fail_at_) poison_first_conv();
    engine::Tensor logits = base().forward(images, task, training);
    if (training && ++calls_ == fail_at_ && fault_ != Fault::nan_weight) {
      if (fault_ == Fault::kill) throw std::runtime_error("simulated kill");
      return engine::mul_scalar(logits, std::numeric_limits<double>::quiet_NaN());
    }
    return logits;
  }

 private:
  void poison_first_conv() {
    for (auto& [name, tensor] : base().state())
      if (tensor.ndim() == 4) {
        tensor.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
        return;
      }
    BOOST_FAIL("no convolution weight to poison");
  }

  int64_t fail_at_, calls_ = 0;
  Fault fault_;
};

}  // namespace

// Hand-set logits for three images over two tasks of two classes (positions
// 0,1 and 2,3): one matrix per task path, or one for every task (a shared path).
class HandLogitsLearner final : public Learner {
 public:
  HandLogitsLearner(std::vector<std::vector<float>> paths, bool depends) : paths_(std::move(paths)), depends_(depends) {}
  std::vector<engine::Tensor> begin_task(int64_t, const std::vector<int64_t>&) override { return {}; }
  NewParams new_params(int64_t) const override { return {}; }
  engine::Tensor forward(const engine::Tensor& images, int64_t task, bool) override {
    ++forwards;
    BOOST_REQUIRE(images.dim(0) == 3);
    return engine::Tensor::from_vector({3, 4}, std::span<const float>(paths_.at(depends_ ? task : 0)));
  }
  std::vector<uint8_t> class_mask(int64_t task) const override {
    return task == 0 ? std::vector<uint8_t>{1, 1, 0, 0} : std::vector<uint8_t>{0, 0, 1, 1};
  }
  bool path_depends_on_task() const override { return depends_; }
  engine::NamedTensors state() override { return {}; }
  engine::NamedTensors trained_state() override { return {}; }
  engine::NamedTensors task_state(int64_t) override { return {}; }
  std::vector<std::pair<std::string, uint64_t>> counters() const override { return {}; }
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>&) override {}

  int64_t forwards = 0;

 private:
  std::vector<std::vector<float>> paths_;
  bool depends_;
};

BOOST_AUTO_TEST_CASE(class_incremental_counts_on_hand_made_logits) {
  const engine::Tensor images = engine::Tensor::zeros({3, 1, 1, 1});
  const std::vector<int64_t> labels = {3, 0, 0};
  // Shared path: argmax over all classes gives 3, 0, 3 (2 right); task inference
  // picks block 2 for image 1 (softmax 0.993 against 0.731), block 1 for image 2
  // (0.731) and image 3 (0.982 against 0.881): 3, 0, 0, all right.
  HandLogitsLearner shared({{0, 1, 0, 5, 3, 0, 1, 2, 4, 0, 3, 5}}, false);
  ClassIncrementalCount count;
  count_class_incremental(shared, images, labels, 2, count);
  BOOST_TEST(count.images == 3);
  BOOST_TEST(count.all_classes_correct == 2);
  BOOST_TEST(count.task_inferred_correct == 3);
  BOOST_TEST(shared.forwards == 1);  // one pass serves every task
  // A path per task. Image 1: task 2's path is surer (0.993 against 0.731): 3, right.
  // Image 2: task 1's (0.953 against 0.731): 0, right. Image 3: task 1's path is
  // unsure (0.5), task 2's sure of class 2 (0.982): wrong.
  HandLogitsLearner branches({{1, 0, 0, 0, 3, 0, 0, 0, 1, 1, 0, 0}, {0, 0, 0, 5, 0, 0, 1, 2, 0, 0, 4, 0}}, true);
  ClassIncrementalCount branch_count;
  count_class_incremental(branches, images, labels, 2, branch_count);
  BOOST_TEST(branches.forwards == 2);
  BOOST_TEST(branch_count.all_classes_correct == 0);  // not counted: no single network to take it over
  BOOST_TEST(branch_count.task_inferred_correct == 2);
}

// Forward transfer's two measurements agree where nothing carries over:
// separate starts every task from the network's initial weights and draws
// the same head block as the untrained network, so FWT is exactly 0; and the
// first task is untrained in both for every method.
BOOST_AUTO_TEST_CASE(forward_transfer_of_separate_is_exactly_zero,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-fwt");
  RunConfig c = small_config(dir.path);
  c.epochs = 1;
  const CellResult separate = run_method(c, "separate");
  BOOST_REQUIRE(separate.accuracy_before_training.size() == 5u);
  BOOST_TEST(separate.accuracy_before_training == separate.untrained_accuracy, boost::test_tools::per_element());
  BOOST_TEST(*forward_transfer(separate.accuracy_before_training, separate.untrained_accuracy) == 0.0);
  const CellResult naive = run_method(c, "naive");
  BOOST_REQUIRE(naive.untrained_accuracy.size() == 5u);
  BOOST_TEST(naive.accuracy_before_training[0] == naive.untrained_accuracy[0]);
  // Later tasks start from trained features: the same fresh head reads other features.
  BOOST_TEST(naive.accuracy_before_training[1] != naive.untrained_accuracy[1]);
  BOOST_TEST(naive.class_il_acc.has_value());
  BOOST_TEST(!separate.class_il_acc.has_value());
  BOOST_TEST(separate.class_il_task_inferred_acc.has_value());
}

BOOST_AUTO_TEST_CASE(adapters_and_sena_never_forget_naive_does,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-forget");
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
  TempDir whole("continual-e2e-whole"), killed("killed");
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
  // Bounded: the epoch checkpoint holds what task 3 trains (its adapters,
  // batch-norm copies and head block), none of the finished tasks' tensors,
  // which are in their kept model files.
  BOOST_TEST(fs::exists(task_model_file(killed.path, "lora-seed0", 2)));
  BOOST_TEST(!fs::exists(task_model_file(killed.path, "lora-seed0", 3)));
  std::set<std::string> finished;
  for (int64_t task = 1; task <= 2; ++task)
    for (const auto& [name, array] : engine::read_npz(task_model_file(killed.path, "lora-seed0", task)))
      finished.insert(name);
  BOOST_TEST(!checkpoint->model.empty());
  BOOST_TEST(checkpoint->best.size() == checkpoint->model.size());
  for (const auto& [name, tensor] : checkpoint->model) BOOST_TEST(!finished.contains(name), name);

  const CellResult resumed = run_method(c, "lora", 0, /*resume=*/true);
  BOOST_TEST(resumed.accuracy_matrix == reference.accuracy_matrix);
  BOOST_TEST(resumed.validation_matrix == reference.validation_matrix);
  BOOST_TEST(resumed.epochs_per_task == reference.epochs_per_task);
  for (size_t t = 0; t < reference.curves.size(); ++t) {
    BOOST_TEST(resumed.curves[t].train_loss == reference.curves[t].train_loss);
    BOOST_TEST(resumed.curves[t].val_accuracy == reference.curves[t].val_accuracy);
  }
  BOOST_TEST(to_json(resumed).at("params") == to_json(reference).at("params"));
  // The per-epoch log goes on across the kill: the uninterrupted run's rows,
  // each epoch once (the seconds column aside).
  auto rows_without_seconds = [](const fs::path& file) {
    const std::vector<char> bytes = engine::read_file(file);
    std::istringstream in(std::string(bytes.begin(), bytes.end()));
    std::vector<std::string> rows;
    for (std::string line; std::getline(in, line);) rows.push_back(line.substr(0, line.rfind(',')));
    return rows;
  };
  const std::vector<std::string> whole_rows = rows_without_seconds(epoch_log_file(whole.path, "lora-seed0"));
  BOOST_TEST(whole_rows.size() == 1u + 5 * 2);  // header, 5 tasks of 2 epochs
  BOOST_TEST(rows_without_seconds(epoch_log_file(killed.path, "lora-seed0")) == whole_rows, boost::test_tools::per_element());
}

// A finished run keeps each task's part of every cell's network; evaluate
// reloads them and reproduces results.json's last rows bit for bit.
BOOST_AUTO_TEST_CASE(kept_models_reevaluate_to_the_same_bits,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-kept");
  RunConfig c = small_config(dir.path);
  c.tasks = 3;
  c.class_order = "0,1,2,3,4,5";
  c.train_limit = 64;
  c.epochs = 1;
  c.methods = {"naive", "lora", "sena"};
  std::ostringstream out, log;
  run_sweep(c, out, log, false);

  std::ostringstream evaluate_log;
  const std::vector<EvaluatedCell> cells = evaluate_run(dir.path, evaluate_log);
  BOOST_REQUIRE(cells.size() == 3u);
  const std::vector<char> bytes = engine::read_file(dir.path / "results.json");
  const nlohmann::json results = nlohmann::json::parse(bytes.begin(), bytes.end());
  for (const EvaluatedCell& cell : cells) {
    const std::string method = cell.cell.substr(0, cell.cell.find("-seed"));
    const auto rows = results.at("methods").at(method).at("runs").at(0).at("accuracy_matrix");
    BOOST_TEST(cell.accuracy == rows.back().get<std::vector<double>>(), cell.cell);
    BOOST_TEST(cell.identical(), cell.cell);
    // Forward transfer and the class-incremental accuracies, null where n/a:
    // sena's and lora's paths depend on the task, naive's does not.
    const nlohmann::json& run = results.at("methods").at(method).at("runs").at(0);
    BOOST_TEST(run.at("fwt").is_number(), cell.cell);
    BOOST_TEST(run.at("accuracy_before_training").size() == 3u, cell.cell);
    BOOST_TEST(run.at("untrained_accuracy").size() == 3u, cell.cell);
    BOOST_TEST(run.at("class_il_task_inferred_acc").is_number(), cell.cell);
    BOOST_TEST(run.at("class_il_acc").is_null() == (method != "naive"), cell.cell);
    BOOST_TEST(results.at("methods").at(method).at("mean").at("class_il_acc").is_null() == (method != "naive"));
    BOOST_TEST(results.at("methods").at(method).at("mean").at("train_seconds_per_epoch").get<double>() > 0.0);
    // Reloaded from the kept models, the same numbers bit for bit.
    BOOST_TEST(cell.class_incremental.task_inferred == run.at("class_il_task_inferred_acc").get<double>(), cell.cell);
    BOOST_TEST(cell.class_incremental.all_classes.has_value() == (method == "naive"), cell.cell);
    if (method == "naive")
      BOOST_TEST(*cell.class_incremental.all_classes == run.at("class_il_acc").get<double>(), cell.cell);
  }
  BOOST_TEST(fs::exists(dir.path / "evaluation.json"));
  BOOST_TEST(evaluate_log.str().find("was made by commit") == std::string::npos, evaluate_log.str());

  // A cell made by another commit is evaluated all the same, and said to be.
  {
    const fs::path file = cell_file(dir.path, "naive-seed0");
    const std::vector<char> cell_bytes = engine::read_file(file);
    nlohmann::json cell = nlohmann::json::parse(cell_bytes.begin(), cell_bytes.end());
    cell["result"]["provenance"]["commit"] = "0123456789abcdef0123456789abcdef01234567";
    const std::string text = cell.dump();
    engine::write_file_atomic(file, std::vector<char>(text.begin(), text.end()));
    std::ostringstream other_log;
    BOOST_TEST(evaluate_run(dir.path, other_log).size() == 3u);
    BOOST_TEST(other_log.str().find("naive-seed0 was made by commit 0123456789abcdef") != std::string::npos,
               other_log.str());
  }

  // Each task's file holds what the task stores: naive's later files a head
  // block (66 parameters), the first the whole network; the result records the bytes.
  const CellResult naive = *read_cell_file(cell_file(dir.path, "naive-seed0"), setting_json(c));
  BOOST_REQUIRE(naive.model_bytes_per_task.size() == 3u);
  for (int64_t t = 0; t < 3; ++t)
    BOOST_TEST(naive.model_bytes_per_task[t] ==
               static_cast<int64_t>(fs::file_size(task_model_file(dir.path, "naive-seed0", t + 1))));
  int64_t head_values = 0;
  for (const auto& [name, array] : engine::read_npz(task_model_file(dir.path, "naive-seed0", 2)))
    head_values += engine::shape_numel(array.shape);
  BOOST_TEST(head_values == naive.params.new_per_task[1]);
  BOOST_TEST(naive.model_bytes_per_task[1] < naive.model_bytes_per_task[0] / 10);

  // One task's model merged into a plain network gives the kept model's logits of its classes.
  const TaskData data = load_task_data(c);
  datasets::LoaderOptions options;
  options.batch_size = 32;
  options.shuffle = false;
  options.normalization = data.stats;
  options.label_map = data.label_positions;
  datasets::BatchLoader loader(data.eval_set(), data.eval_indices(1), options);
  loader.start_epoch(0);
  const engine::Tensor images = loader.next()->images;
  for (const std::string method : {"lora", "sena"}) {
    const std::string cell = method + "-seed0";
    const TaskNetwork network = task_network(dir.path, cell, 2, evaluate_log);
    auto plain = layers::make_model(network.arch, network.input, network.classes, {0, false});
    plain->load_state_dict(network.tensors);
    plain->eval();
    auto learner = make_learner(c, method, data, 0);
    restore_finished_tasks(*learner, data, dir.path, cell, c.tasks);
    engine::NoGradGuard no_grad;
    const engine::Tensor all = learner->forward(images, 1, false);
    const int64_t offset = continual_model(*learner).label_offset(1);
    const engine::Tensor expected = engine::slice(all, 1, offset, offset + network.classes);
    const std::vector<double> want = expected.to_double_vector(), got = plain->forward(images).to_double_vector();
    BOOST_REQUIRE(got.size() == want.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
    BOOST_TEST(worst < 1e-5, cell << ": largest difference " << worst);
  }
}

BOOST_AUTO_TEST_CASE(evaluate_refuses_missing_or_misshaped_models_and_other_data,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-evaluate-bad");
  RunConfig c = small_config(dir.path);
  c.tasks = 2;
  c.class_order = "0,1,2,3";
  c.train_limit = 32;
  c.epochs = 1;
  c.methods = {"lora"};
  std::ostringstream out, log;
  run_sweep(c, out, log, false);
  const fs::path task2 = task_model_file(dir.path, "lora-seed0", 2);
  const auto error_of = [&] {
    std::ostringstream evaluate_log;
    try {
      evaluate_run(dir.path, evaluate_log);
    } catch (const std::runtime_error& e) {
      BOOST_TEST(!fs::exists(dir.path / "evaluation.json"));
      return std::string(e.what());
    }
    return std::string();
  };
  const auto mentions = [](const std::string& text, const std::string& part) {
    BOOST_TEST(text.find(part) != std::string::npos, "'" << part << "' not in: " << text);
  };

  // A tensor of the wrong shape, then one missing: the file and the tensor are named.
  engine::NamedArrays arrays = engine::read_npz(task2);
  const std::string first = arrays.front().first;
  engine::NamedArrays reshaped = arrays;
  reshaped.front().second = engine::to_npy(engine::Tensor::zeros({3}));
  engine::save_npz(task2, reshaped);
  std::string error = error_of();
  mentions(error, task2.string() + ": tensor " + first + " has shape (3)");
  engine::NamedArrays fewer(arrays.begin() + 1, arrays.end());
  engine::save_npz(task2, fewer);
  mentions(error_of(), task2.string() + ": tensor " + first + " is missing");
  engine::save_npz(task2, arrays);

  // Data of another shape than the run's.
  const std::vector<char> bytes = engine::read_file(dir.path / "sweep.json");
  nlohmann::json record = nlohmann::json::parse(bytes.begin(), bytes.end());
  const nlohmann::json original = record;
  record["dataset"]["image_shape"] = {3, 32, 32};
  engine::write_file_atomic(dir.path / "sweep.json", record.dump());
  error = error_of();
  mentions(error, "[1,28,28]");
  mentions(error, "[3,32,32]");
  engine::write_file_atomic(dir.path / "sweep.json", original.dump());

  // A missing task file, then no models at all.
  fs::remove(task2);
  mentions(error_of(), task2.string() + " is missing");
  fs::remove_all(dir.path / "models");
  mentions(error_of(), "has no kept models");
  fs::remove_all(dir.path / "cells");
  mentions(error_of(), "no finished cell");
}

// EWC's Fisher and anchors and LwF's teacher travel in the checkpoint; the
// replay memory is rebuilt and its draws counted.
BOOST_AUTO_TEST_CASE(ewc_lwf_and_replay_resume_after_a_kill_give_identical_numbers,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  for (const std::string method : {"ewc", "lwf", "replay"}) {
    TempDir whole("continual-e2e-whole-" + method), killed("killed-" + method);
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
// Merging and exporting reach the naive network under the methods that wrap it.
BOOST_AUTO_TEST_CASE(continual_model_reaches_the_naive_network_a_method_wraps,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  const RunConfig c = small_config("unused");
  for (const std::string method : {"ewc", "lwf", "replay", "packnet"}) {
    auto learner = make_learner(c, method, small_data(), 0);
    learner->begin_task(0, small_data().split.tasks.front().classes);
    BOOST_TEST(continual_model(*learner).num_tasks() == 1, method);
  }
}

BOOST_AUTO_TEST_CASE(ewc_lwf_and_replay_are_naive_plus_their_loss_term,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-families");
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
  TempDir dir("continual-e2e-nan");
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

BOOST_AUTO_TEST_CASE(nan_weight_reaches_the_loss_and_stops_training,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  // The NaN must pass relu and pooling (it did not when relu(NaN) was 0).
  TempDir dir("continual-e2e-nan-weight");
  const RunConfig c = small_config(dir.path);
  auto faulty = std::make_unique<FaultyLearner>(make_learner(c, "naive", small_data(), 0),
                                                kBatchesPerEpoch + 2, FaultyLearner::Fault::nan_weight);
  std::ostringstream log;
  try {
    train_cell(c, small_data(), *faulty, {"naive", 0, false, &log, false});
    BOOST_FAIL("a NaN weight did not stop training");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("loss is nan") != std::string::npos, what);
    BOOST_TEST(what.find("epoch 2, batch 2") != std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(two_shards_merged_equal_one_process,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir one("continual-e2e-one"), sharded("sharded");
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
      for (auto& run : entry.at("runs")) {
        nlohmann::json curves = run.at("curves");
        for (auto& curve : curves) {  // the seconds differ from run to run; everything else must not
          curve.erase("train_seconds");
          curve.erase("eval_seconds");
        }
        kept[method].push_back({run.at("seed"), run.at("accuracy_matrix"), run.at("params"), curves});
      }
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

BOOST_AUTO_TEST_CASE(resume_refuses_a_checkpoint_of_other_settings_naming_them,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-resume-settings");
  RunConfig c = small_config(dir.path);
  // Killed in epoch 2 of task 1: epoch 1 is checkpointed.
  auto faulty = std::make_unique<FaultyLearner>(make_learner(c, "lora", small_data(), 0), kBatchesPerEpoch + 2,
                                                FaultyLearner::Fault::kill);
  std::ostringstream log;
  BOOST_CHECK_THROW(train_cell(c, small_data(), *faulty, {"lora", 0, false, &log, false}), std::runtime_error);
  BOOST_REQUIRE(fs::exists(checkpoint_file(dir.path, "lora-seed0")));

  const auto refusal = [&](const RunConfig& changed) {
    try {
      run_method(changed, "lora", 0, /*resume=*/true);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("resumed");
  };
  RunConfig other = c;
  other.lr = 1e-2;
  other.train_limit = kTrainImages / 2;
  const std::string message = refusal(other);
  BOOST_TEST(message.find("--resume") != std::string::npos, message);
  BOOST_TEST(message.find("lr, ") != std::string::npos, message);
  BOOST_TEST(message.find("train_limit") != std::string::npos, message);
  BOOST_TEST(message.find("epochs") == std::string::npos, message);  // only what differs
  // Another split seed draws other validation images.
  other = c;
  other.split_seed = 7;
  BOOST_TEST(refusal(other).find("split_seed") != std::string::npos);
  // (Unchanged settings resume: resume_after_a_kill_gives_identical_numbers.)
}

BOOST_AUTO_TEST_CASE(nan_loss_before_any_checkpoint_does_not_promise_one,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-nan-first");
  const RunConfig c = small_config(dir.path);
  auto faulty = std::make_unique<FaultyLearner>(make_learner(c, "naive", small_data(), 0), 2, FaultyLearner::Fault::nan);
  std::ostringstream log;
  try {
    train_cell(c, small_data(), *faulty, {"naive", 0, false, &log, false});
    BOOST_FAIL("a NaN loss did not stop training");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("epoch 1, batch 2") != std::string::npos, what);
    BOOST_TEST(what.find("checkpoint is kept") == std::string::npos, what);
    BOOST_TEST(what.find("No checkpoint was written yet") != std::string::npos, what);
  }
  BOOST_TEST(!fs::exists(checkpoint_file(dir.path, "naive-seed0")));
}

// Temporary files of writes killed midway (".NAME.tmp-PID-N") are removed when
// a run starts in the folder again: those whose process is gone and that have
// not changed for a minute; a live writer's, or a fresh one, stay.
BOOST_AUTO_TEST_CASE(a_new_run_removes_temporary_files_of_killed_writers,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-leftovers");
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  BOOST_REQUIRE(dead > 0);
  int status = 0;
  ::waitpid(dead, &status, 0);  // reaped: no process has this PID now
  const std::string gone = std::to_string(dead), alive = std::to_string(::getpid());
  fs::create_directories(dir.path / "checkpoints");
  const auto make = [&](const fs::path& path, bool old) {
    std::ofstream(path) << "partial";
    if (old) fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::minutes(5));
    return path;
  };
  const fs::path stale = make(dir.path / (".sweep.json.tmp-" + gone + "-0"), true);
  const fs::path stale_nested = make(dir.path / "checkpoints" / (".naive-seed0.npz.tmp-" + gone + "-3"), true);
  const fs::path fresh = make(dir.path / (".results.json.tmp-" + gone + "-1"), false);
  const fs::path live = make(dir.path / (".summary.md.tmp-" + alive + "-2"), true);
  const fs::path user_file = make(dir.path / ".notes.tmp-x-1", true);

  RunConfig c = small_config(dir.path);
  c.tasks = 2;
  c.class_order = "0,1,2,3";
  c.train_limit = 32;
  c.eval_limit = 32;
  c.epochs = 1;
  c.methods = {"naive"};
  std::ostringstream out, log;
  run_sweep(c, out, log, false);
  BOOST_TEST(!fs::exists(stale));
  BOOST_TEST(!fs::exists(stale_nested));
  BOOST_TEST(fs::exists(fresh));
  BOOST_TEST(fs::exists(live));
  BOOST_TEST(fs::exists(user_file));
  BOOST_TEST(log.str().find("removed " + stale.string()) != std::string::npos, log.str());
}

// Nothing is written when a cell cannot be built: the sweep record came first.
BOOST_AUTO_TEST_CASE(unbuildable_cells_are_refused_before_any_file_is_written,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("continual-e2e-unbuildable");
  const fs::path out = dir.path / "out";
  RunConfig c = small_config(out);
  c.methods = {"naive", "lora"};
  const auto refused = [&](const RunConfig& bad, const std::string& part) {
    std::ostringstream sink, log;
    try {
      run_sweep(bad, sink, log, false);
      BOOST_ERROR("accepted; expected a refusal naming " << part);
    } catch (const std::exception& e) {
      BOOST_TEST(std::string(e.what()).find(part) != std::string::npos, e.what());
    }
    BOOST_TEST(!fs::exists(out));
  };
  RunConfig bad = c;
  bad.arch = "nonsense";
  refused(bad, "--arch nonsense");
  bad = c;
  bad.adapt = "last-99";
  refused(bad, "--adapt last-99");
  bad = c;
  bad.init = dir.path / "missing.npz";
  refused(bad, "--init");
  bad = c;
  bad.ranks = {10000000};  // some 10^10 adapter weights on the tiny network
  refused(bad, "--rank");
}
