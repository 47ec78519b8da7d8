// PackNet (experiments/continual/learners/packnet.h) through the runner on a
// small real subset of Split Fashion-MNIST (tiny network): every earlier
// task's logits and weights stay bit-identical while later tasks train; the
// tasks' weights are disjoint, each task keeps what --prune leaves of its
// free weights per layer and its pruned weights stay zero; a layer with no
// free weight left, or a prune that leaves a task none, is an error naming
// the task and the layer; bad --prune and --retrain-epochs are refused; a run
// killed in training or in retraining resumes to the numbers and weights of
// one never stopped; the kept models re-evaluate to the last accuracy row.
#define BOOST_TEST_MODULE packnet
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

#include "engine/autograd.h"
#include "engine/npz.h"
#include "experiments/continual/checkpoint.h"
#include "experiments/continual/learners/wrapped_learner.h"
#include "experiments/continual/methods.h"
#include "experiments/continual/trainer.h"
#include "tests/gradcheck.h"
#include "tests/preconditions.h"
#include "tests/small_run.h"
#include "tests/temp_dir.h"

using namespace continual;
using engine::Tensor;
namespace fs = std::filesystem;

namespace {

using testing::TempDir;

using testing::fashion_mnist_present;
using testing::kFashionMnistDir;

constexpr int64_t kTrainImages = 160, kBatch = 32;
constexpr int64_t kBatchesPerEpoch = (kTrainImages + kBatch - 1) / kBatch;

RunConfig small_config(const fs::path& out) {
  RunConfig c = testing::small_run(out, kTrainImages, 100, 2);
  c.methods = {"packnet"};
  c.tasks = 3;
  c.class_order = "0,1,2,3,4,5";
  c.threads = 1;
  return c;
}

const TaskData& small_data() {
  static const TaskData data = load_task_data(small_config("unused"));
  return data;
}

CellResult run_cell(const RunConfig& c, Learner& learner, bool resume = false) {
  std::ostringstream log;
  return train_cell(c, small_data(), learner, {"packnet", 0, resume, &log, false});
}

// The tiny network's conv and dense weights (the heads aside), as PackNet masks them.
const std::vector<std::string> kLayers = {"0.weight", "4.weight", "9.weight"};

// What a task's network is, recorded at the end of every task: each task's
// logits on fixed images (its classes only), the owners, every tensor.
struct Snapshot {
  std::vector<std::vector<float>> logits;  // per task so far
  std::map<std::string, std::vector<float>> tensors;
};

class Recorder final : public WrappedLearner {
 public:
  explicit Recorder(std::unique_ptr<Learner> inner) : WrappedLearner(std::move(inner)) {
    engine::Generator gen(11);
    images_ = testing::random_input({6, 1, 28, 28}, gen).to(engine::DType::f32);
  }
  void end_task(int64_t task, datasets::BatchLoader& training_images) override {
    base().end_task(task, training_images);
    Snapshot s;
    engine::NoGradGuard no_grad;
    for (int64_t j = 0; j <= task; ++j) {
      const std::vector<float> all = forward(images_, j, false).to_float_vector();
      const std::vector<uint8_t> mask = class_mask(j);
      std::vector<float> mine;
      for (size_t i = 0; i < all.size(); ++i)
        if (mask[i % mask.size()]) mine.push_back(all[i]);
      s.logits.push_back(mine);
    }
    for (const auto& [name, tensor] : state()) s.tensors[name] = tensor.to_float_vector();
    snapshots.push_back(std::move(s));
  }
  std::vector<Snapshot> snapshots;

 private:
  Tensor images_;
};

// Throws on the n-th training forward (a killed process).
class Killed final : public WrappedLearner {
 public:
  Killed(std::unique_ptr<Learner> inner, int64_t at) : WrappedLearner(std::move(inner)), at_(at) {}
  Tensor forward(const Tensor& images, int64_t task, bool training) override {
    if (training && ++calls_ == at_) throw std::runtime_error("simulated kill");
    return base().forward(images, task, training);
  }

 private:
  int64_t at_, calls_ = 0;
};

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  return true;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

// One run of three tasks, recorded after each.
BOOST_AUTO_TEST_CASE(earlier_tasks_stay_bit_identical_and_masks_are_disjoint,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("packnet-identical");
  const RunConfig c = small_config(dir.path);
  Recorder recorder(make_learner(c, "packnet", small_data(), 0));
  const CellResult result = run_cell(c, recorder);
  BOOST_REQUIRE(recorder.snapshots.size() == 3u);

  // Zero forgetting: each column of R stays as its task left it, and it learnt.
  for (size_t j = 0; j < 3; ++j) {
    BOOST_TEST(result.accuracy_matrix[j][j] > 0.6, "task " << j + 1);
    for (size_t t = j + 1; t < 3; ++t) BOOST_TEST(result.accuracy_matrix[t][j] == result.accuracy_matrix[j][j]);
  }
  const std::vector<Snapshot>& s = recorder.snapshots;
  for (size_t j = 0; j < 3; ++j)
    for (size_t t = j + 1; t < 3; ++t)
      BOOST_TEST(bits_equal(s[t].logits[j], s[j].logits[j]), "task " << j + 1 << "'s logits after task " << t + 1);

  for (const std::string& layer : kLayers) {
    const std::string owner_name = "packnet.owner." + layer;
    BOOST_REQUIRE(s[0].tensors.contains(owner_name));
    const size_t n = s[0].tensors.at(layer).size();
    int64_t free_before = static_cast<int64_t>(n);
    for (size_t t = 0; t < 3; ++t) {
      const std::vector<float>& owner = s[t].tensors.at(owner_name);
      const std::vector<float>& weight = s[t].tensors.at(layer);
      int64_t kept = 0, free = 0;
      for (size_t i = 0; i < n; ++i) {
        if (owner[i] == static_cast<float>(t + 1)) ++kept;
        if (owner[i] == 0) {
          ++free;
          BOOST_TEST(weight[i] == 0.0f, layer << " pruned weight " << i << " after task " << t + 1);
        }
        // Disjoint: a weight an earlier task kept stays that task's, with its value.
        for (size_t j = 0; j < t; ++j)
          if (s[j].tensors.at(owner_name)[i] != 0) {
            BOOST_TEST(owner[i] == s[j].tensors.at(owner_name)[i]);
            BOOST_TEST(std::bit_cast<uint32_t>(weight[i]) == std::bit_cast<uint32_t>(s[j].tensors.at(layer)[i]));
          }
      }
      BOOST_TEST(kept + free == free_before, layer << " task " << t + 1);
      // Half of the task's free weights pruned, per layer, to the nearest weight.
      BOOST_TEST(std::abs(static_cast<double>(free) - 0.5 * static_cast<double>(free_before)) <= 0.5,
                 layer << " task " << t + 1 << ": " << free << " of " << free_before << " pruned");
      free_before = free;
    }
  }
  // Biases and batch norm trained with task 0 only.
  for (const std::string name : {"0.bias", "1.weight", "1.running_mean", "5.running_var", "9.bias"})
    for (size_t t = 1; t < 3; ++t) BOOST_TEST(bits_equal(s[t].tensors.at(name), s[0].tensors.at(name)), name);
  // No growth but a head block per task; the owners stored once, with task 0.
  BOOST_TEST(result.params.method_values_per_task.front() == 72 + 1152 + 784 * 32);
  BOOST_TEST(result.params.method_values_per_task.back() == 0);

  // The kept models rebuild every task's network: the last row again, bit for bit.
  auto fresh = make_learner(c, "packnet", small_data(), 0);
  // Each task's network is its own mask: no argmax over every class without task inference.
  BOOST_TEST(fresh->path_depends_on_task());
  BOOST_TEST(!result.class_il_acc.has_value());
  restore_finished_tasks(*fresh, small_data(), c.out, cell_name("packnet", 0), 3);
  for (int64_t t = 0; t < 3; ++t)
    BOOST_TEST(task_accuracy(*fresh, small_data(), t, engine::Device::cpu) == result.accuracy_matrix.back()[t]);
}

BOOST_AUTO_TEST_CASE(a_layer_without_free_weights_is_an_error_naming_task_and_layer,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("packnet-full");
  RunConfig c = small_config(dir.path);
  c.epochs = 1;
  // 0.001 of the first conv's 72 weights rounds to none pruned: task 2 finds it full.
  c.prune = 0.001;
  auto full = make_learner(c, "packnet", small_data(), 0);
  const std::string message = message_of([&] { run_cell(c, *full); });
  BOOST_TEST(message.find("task 2 has no free weights left in layer 0.weight") != std::string::npos, message);
  // 0.999 of them rounds to all 72: task 1 would keep none of its own.
  c.prune = 0.999;
  auto empty = make_learner(c, "packnet", small_data(), 0);
  const std::string none = message_of([&] { run_cell(c, *empty); });
  BOOST_TEST(none.find("72 free weights of layer 0.weight leaves task 1 none") != std::string::npos, none);
}

BOOST_AUTO_TEST_CASE(bad_prune_and_retrain_epochs_are_refused) {
  const auto refusal = [](void (*set)(RunConfig&)) {
    RunConfig c;
    c.methods = {"naive", "packnet"};
    set(c);
    return message_of([&] { validate(c); });
  };
  for (double bad : {0.0, 1.0, -0.25, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    RunConfig c;
    c.methods = {"packnet"};
    c.prune = bad;
    const std::string message = message_of([&] { validate(c); });
    BOOST_TEST(message.rfind("--prune", 0) == 0, bad << ": " << message);
  }
  BOOST_TEST(refusal([](RunConfig& c) { c.retrain_epochs = -1; }).rfind("--retrain-epochs: must be >= 0", 0) == 0);
  BOOST_TEST(refusal([](RunConfig& c) { c.prune = 0.75; }) == "no error");
  BOOST_TEST(refusal([](RunConfig& c) { c.retrain_epochs = 0; }) == "no error");
  // Given while no listed method is packnet.
  RunConfig other;
  other.methods = {"naive", "ewc"};
  other.prune = 0.5;
  BOOST_TEST(message_of([&] { validate(other); }) == "--prune: applies to packnet, but --method lists none of them");
  other.prune.reset();
  other.retrain_epochs = 2;
  BOOST_TEST(message_of([&] { validate(other); }).rfind("--retrain-epochs: applies to packnet", 0) == 0);
}

// Killed in task 2's second epoch, and in its retraining after pruning.
BOOST_AUTO_TEST_CASE(resume_after_a_kill_gives_identical_numbers_and_weights,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir whole("packnet-whole");
  RunConfig c = small_config(whole.path);
  c.tasks = 2;
  auto uninterrupted = make_learner(c, "packnet", small_data(), 0);
  const CellResult reference = run_cell(c, *uninterrupted);
  const auto kept = [](const fs::path& out) { return engine::read_npz(task_model_file(out, "packnet-seed0", 1)); };
  const auto reference_model = kept(whole.path);

  // Task 1: 2 epochs and 1 of retraining; task 2: epoch 2 batch 3, or retraining batch 3.
  const int64_t task_one = 3 * kBatchesPerEpoch;
  for (const int64_t at : {task_one + kBatchesPerEpoch + 3, task_one + 2 * kBatchesPerEpoch + 3}) {
    TempDir killed("packnet-killed-" + std::to_string(at));
    c.out = killed.path;
    Killed faulty(make_learner(c, "packnet", small_data(), 0), at);
    BOOST_CHECK_THROW(run_cell(c, faulty), std::runtime_error);
    auto fresh = make_learner(c, "packnet", small_data(), 0);
    const CellResult resumed = run_cell(c, *fresh, /*resume=*/true);
    BOOST_TEST(resumed.accuracy_matrix == reference.accuracy_matrix, "killed at " << at);
    for (size_t t = 0; t < reference.curves.size(); ++t)
      BOOST_TEST(resumed.curves[t].train_loss == reference.curves[t].train_loss, "killed at " << at);
    const auto model = kept(killed.path);
    BOOST_REQUIRE(model.size() == reference_model.size());
    for (size_t i = 0; i < model.size(); ++i) {
      BOOST_TEST(model[i].first == reference_model[i].first);
      BOOST_TEST(bits_equal(engine::to_tensor(model[i].second).to_float_vector(),
                            engine::to_tensor(reference_model[i].second).to_float_vector()),
                 model[i].first << " killed at " << at);
    }
  }
}
