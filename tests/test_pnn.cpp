// Progressive Neural Networks (layers/progressive.h, learners/pnn.h): earlier
// columns and their logits bit-identical after a later task trains; the
// laterals receive gradients; the float64 gradient check of a 2-column
// forward; growth against a hand count of the tiny network at two widths;
// names; bad widths and layouts refused. On Fashion-MNIST: a whole run never
// forgets, its kept models re-evaluate to the same bits, and a run killed
// mid-task resumes to the same numbers.
#define BOOST_TEST_MODULE pnn
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "experiments/continual/cell_result.h"
#include "experiments/continual/config.h"
#include "experiments/continual/evaluate.h"
#include "experiments/continual/learners/pnn.h"
#include "experiments/continual/learners/wrapped_learner.h"
#include "experiments/continual/methods.h"
#include "experiments/continual/metrics.h"
#include "experiments/continual/run.h"
#include "experiments/continual/trainer.h"
#include "layers/basic.h"
#include "layers/conv2d.h"
#include "layers/models.h"
#include "tests/gradcheck.h"
#include "tests/preconditions.h"
#include "tests/small_run.h"
#include "tests/temp_dir.h"

using namespace continual;
using engine::Tensor;
namespace fs = std::filesystem;

namespace {

using testing::TempDir;

// A VGG of two convs (batch norm, max-pool) and one hidden dense layer with
// dropout: every kind of layer a column copies. Children: features.0 conv,
// .1 bn, .2 relu, .3 pool, .4 conv, .5 bn, .6 relu, .7 pool; flatten;
// classifier.0 linear, .1 relu, .2 dropout, .3 linear (the output).
constexpr const char* kSmallVgg = "4,M,8,M:bn:fc=16:dropout=0.5";
const layers::InputShape kSmallInput{8, 8, 1};

// Images (N,1,8,8) uniform in [-1, 1] and labels of `classes` classes, local to the task.
std::pair<Tensor, std::vector<int64_t>> batch(uint64_t seed, int64_t n, int64_t classes) {
  engine::Generator gen(seed);
  const Tensor images = testing::random_input({n, 1, 8, 8}, gen).to(engine::DType::f32);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<int64_t>(gen.next_u64() % classes));
  return {images, labels};
}

// Labels of task `task` in class-order positions (the shared head's logits).
std::vector<int64_t> positions(const std::vector<int64_t>& local, int64_t offset) {
  std::vector<int64_t> out;
  for (int64_t y : local) out.push_back(y + offset);
  return out;
}

// `steps` Adam steps of task `task` on one fixed batch, in training mode.
void train(Pnn& pnn, int64_t task, const std::vector<Tensor>& trainable, int64_t offset, int steps) {
  engine::Adam adam(trainable, 1e-2);
  const auto [images, labels] = batch(100 + static_cast<uint64_t>(task), 16, 2);
  for (int s = 0; s < steps; ++s) {
    adam.zero_grad();
    engine::cross_entropy(pnn.forward(images, task, true), positions(labels, offset), pnn.class_mask(task)).backward();
    adam.step();
  }
}

std::vector<std::vector<float>> values(const engine::NamedTensors& tensors) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, t] : tensors) out.push_back(std::vector<float>(t.data<float>(), t.data<float>() + t.numel()));
  return out;
}

std::set<std::string> names(const engine::NamedTensors& tensors) {
  std::set<std::string> out;
  for (const auto& [name, t] : tensors) out.insert(name);
  return out;
}

std::shared_ptr<layers::Sequential> small_vgg() {
  return layers::make_model(kSmallVgg, kSmallInput, 2, {0, false});
}

}  // namespace

BOOST_AUTO_TEST_CASE(earlier_columns_and_their_logits_are_bit_identical_after_a_later_task) {
  Pnn pnn(*small_vgg(), 1.0, 7, engine::Device::cpu);
  train(pnn, 0, pnn.begin_task(0, {0, 1}), 0, 5);
  const engine::NamedTensors column0 = pnn.task_state(0);
  const std::vector<std::vector<float>> column0_before = values(column0);
  const Tensor probe = batch(55, 8, 2).first;
  std::vector<double> logits0_before;
  {
    engine::NoGradGuard no_grad;
    logits0_before = pnn.forward(probe, 0, false).to_double_vector();
  }

  const std::vector<Tensor> trainable = pnn.begin_task(1, {2, 3});
  const std::vector<std::vector<float>> column1_start = values(pnn.task_state(1));
  train(pnn, 1, trainable, 2, 5);

  BOOST_TEST(values(column0) == column0_before);  // weights, batch-norm statistics
  BOOST_TEST(values(pnn.task_state(1)) != column1_start);  // the later task did train
  engine::NoGradGuard no_grad;
  const std::vector<double> logits = pnn.forward(probe, 0, false).to_double_vector();
  BOOST_REQUIRE(logits.size() == 8u * 4);
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t c = 0; c < 2; ++c)
      BOOST_TEST(logits[static_cast<size_t>(i * 4 + c)] == logits0_before[static_cast<size_t>(i * 2 + c)],
                 "image " << i << " class " << c);
}

BOOST_AUTO_TEST_CASE(laterals_receive_gradients_and_frozen_columns_none) {
  Pnn pnn(*small_vgg(), 1.0, 7, engine::Device::cpu);
  pnn.begin_task(0, {0, 1});
  const std::vector<Tensor> trainable = pnn.begin_task(1, {2, 3});
  const auto [images, labels] = batch(3, 16, 2);
  engine::cross_entropy(pnn.forward(images, 1, true), positions(labels, 2), pnn.class_mask(1)).backward();
  int64_t laterals = 0;
  for (const auto& [name, t] : pnn.state()) {
    if (name.starts_with("column0.")) {
      BOOST_TEST(!t.requires_grad(), name);
      BOOST_TEST(!t.grad().defined(), name);
    }
    if (name.find(".lateral0.") == std::string::npos) continue;
    ++laterals;
    BOOST_REQUIRE_MESSAGE(t.grad().defined(), name << " has no gradient");
    double size = 0;
    for (double g : t.grad().to_double_vector()) size += std::abs(g);
    BOOST_TEST(size > 0, name);
  }
  BOOST_TEST(laterals == 3);  // features.4 (1x1 conv), classifier.0, classifier.3 (the head)
  BOOST_TEST(trainable.size() == pnn.trained_state().size() - 4);  // less column 1's two bn statistics pairs
}

// Column 1 in training mode (batch statistics) over the frozen column 0 in
// evaluation mode: the gradient of the image, column 1's parameters and the
// laterals against central differences. The conv biases are left out: batch
// statistics cancel them, so their gradient is 0 and its relative error
// would compare rounding noise.
BOOST_AUTO_TEST_CASE(gradient_check_of_a_two_column_forward) {
  auto layout = layers::make_model("2,M,3:bn:fc=4:dropout=0", {4, 4, 1}, 2, {0, false});
  layers::ProgressiveNetwork network(*layout, 1.0);
  engine::Generator gen(11);
  network.add_column(2, &gen);
  network.add_column(3, &gen);
  network.to(engine::DType::f64);
  network.train_newest_column(true);
  engine::Generator inputs_gen(5);
  std::vector<Tensor> inputs = {testing::random_input({3, 1, 4, 4}, inputs_gen, true)};
  inputs.front().set_requires_grad(true);
  for (const auto& [name, p] : network.named_trainable_parameters())
    if (name != "column1.features.0.bias" && name != "column1.features.4.bias") inputs.push_back(p);
  BOOST_TEST(inputs.size() == 1u + 10 + 3);  // image; conv, bn, conv, bn weights, 2 linear (weights, biases); 3 laterals
  testing::check_gradients(
      "ProgressiveNetwork", [&](const std::vector<Tensor>& x) { return network.forward(x.front()); }, inputs);
}

// tiny on 28x28x1: conv 1->8 (80), bn 8 (16), conv 8->16 (1,168), bn 16 (32):
// 1,296 conv; dense 784->32 (25,120), head 32->2 (66): 25,186 classifier.
// Laterals into column 1: conv 1x1 8->8 (64); dense 784->32 (25,088), head 32->2 (64).
BOOST_AUTO_TEST_CASE(growth_is_the_column_and_its_laterals_counted_by_hand) {
  auto tiny = layers::make_model("tiny", {28, 28, 1}, 2, {0, false});
  Pnn full(*tiny, 1.0, 1, engine::Device::cpu);
  full.begin_task(0, {0, 1});
  full.begin_task(1, {2, 3});
  full.begin_task(2, {4, 5, 6});
  BOOST_TEST(full.new_params(0).conv == 1296);
  BOOST_TEST(full.new_params(0).classifier == 25186);
  BOOST_TEST(full.new_params(1).conv == 1296 + 64);
  BOOST_TEST(full.new_params(1).classifier == 25186 + 25088 + 64);
  // Three classes: head 32*3+3 = 99; two columns' laterals.
  BOOST_TEST(full.new_params(2).conv == 1296 + 2 * 64);
  BOOST_TEST(full.new_params(2).classifier == 25120 + 99 + 2 * (25088 + 96));

  // Half width: conv 1->4 (40), bn 4 (8), conv 4->8 (296), bn 8 (16): 360;
  // dense 392->16 (6,288), head 16->2 (34); laterals 4*4 = 16, 392*16 = 6,272, 16*2 = 32.
  Pnn half(*tiny, 0.5, 1, engine::Device::cpu);
  half.begin_task(0, {0, 1});
  half.begin_task(1, {2, 3});
  BOOST_TEST(half.new_params(0).conv == 360);
  BOOST_TEST(half.new_params(0).classifier == 6288 + 34);
  BOOST_TEST(half.new_params(1).conv == 360 + 16);
  BOOST_TEST(half.new_params(1).classifier == 6288 + 34 + 6272 + 32);
  // The reported growth is what the task's state holds.
  int64_t stored = 0;
  for (const auto& [name, t] : half.task_state(1))
    if (!name.ends_with("running_mean") && !name.ends_with("running_var")) stored += t.numel();
  BOOST_TEST(stored == half.new_params(1).total());
}

BOOST_AUTO_TEST_CASE(names_follow_the_layout_and_tasks_partition_the_state) {
  Pnn pnn(*layers::make_model("4,M,8:fc=6", kSmallInput, 2, {0, false}), 1.0, 3, engine::Device::cpu);
  pnn.begin_task(0, {0, 1});
  pnn.begin_task(1, {2, 3});
  pnn.begin_task(2, {4, 5});
  const std::set<std::string> all = names(pnn.state());
  for (const char* name : {"column0.features.0.weight", "column1.features.3.bias", "column1.classifier.3.weight",
                           "column1.lateral0.features.3.weight", "column1.lateral0.classifier.0.weight",
                           "column1.lateral0.classifier.3.weight", "column2.lateral1.features.3.weight"})
    BOOST_TEST(all.contains(name), name);
  BOOST_TEST(!all.contains("column1.lateral0.features.0.weight"));  // the first layer sees the image in every column
  BOOST_TEST(!all.contains("column1.lateral0.classifier.0.bias"));  // laterals have no bias
  std::set<std::string> parts;
  for (int64_t t = 0; t < 3; ++t)
    for (const std::string& name : names(pnn.task_state(t))) {
      BOOST_TEST(name.starts_with("column" + std::to_string(t) + "."), name);
      BOOST_TEST(parts.insert(name).second, name << " in two tasks");
    }
  BOOST_TEST(parts == all);
  BOOST_TEST(names(pnn.trained_state()) == names(pnn.task_state(2)));
  BOOST_TEST(pnn.class_mask(1) == (std::vector<uint8_t>{0, 0, 1, 1, 0, 0}));
  // Each column's dropout has its own seed (different masks), and its counter is kept.
  BOOST_TEST(pnn.counters().size() == 3u);
}

BOOST_AUTO_TEST_CASE(bad_widths_and_layouts_are_refused) {
  auto rejects = [](void (*set)(RunConfig&), const std::string& flag) {
    RunConfig c;
    c.methods = {"naive", "pnn"};
    set(c);
    testing::check_flag_refused(c, flag);
  };
  rejects([](RunConfig& c) { c.pnn_width = 0; }, "--pnn-width");
  rejects([](RunConfig& c) { c.pnn_width = -0.5; }, "--pnn-width");
  rejects([](RunConfig& c) { c.pnn_width = std::numeric_limits<double>::quiet_NaN(); }, "--pnn-width");
  rejects([](RunConfig& c) { c.pnn_width = std::numeric_limits<double>::infinity(); }, "--pnn-width");
  rejects([](RunConfig& c) { c.methods = {"naive"}, c.pnn_width = 0.5; }, "--pnn-width");  // no pnn listed
  rejects([](RunConfig& c) { c.init = "backbone.npz"; }, "--init");
  RunConfig fine;
  fine.methods = {"pnn"};
  fine.pnn_width = 0.25;
  BOOST_CHECK_NO_THROW(validate(fine));

  // tiny's first conv has 8 channels: 8 x 0.05 rounds to 0, 8 x 0.07 to 1.
  auto tiny = layers::make_model("tiny", {28, 28, 1}, 2, {0, false});
  const auto message = [&](const layers::Module& layout, double width) -> std::string {
    try {
      layers::ProgressiveNetwork network(layout, width);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  BOOST_TEST(message(*tiny, 0.05).find("layer '0' (Conv2d(1, 8,") != std::string::npos, message(*tiny, 0.05));
  BOOST_TEST(message(*tiny, 0.05).find("= 0 channels") != std::string::npos, message(*tiny, 0.05));
  BOOST_TEST(message(*tiny, 0.07).empty(), message(*tiny, 0.07));
  BOOST_TEST(message(*tiny, 0).find("positive") != std::string::npos);

  // Not a column: no Linear output last; a layer carrying adapters; an unknown layer.
  layers::Sequential no_output;
  no_output.add(std::make_shared<layers::Conv2d>(1, 2, 3, 1, 1, true, nullptr)).add(std::make_shared<layers::ReLU>());
  BOOST_TEST(message(no_output, 1).find("must end in a Linear") != std::string::npos, message(no_output, 1));
  auto adapted = layers::make_model("tiny", {8, 8, 1}, 2, {0, false});
  auto& conv = static_cast<layers::Conv2d&>(adapted->child(4));
  conv.add_adapter(0, std::make_shared<layers::ConvLoRA>(8, 16, 3, 2, 1.0, nullptr));
  BOOST_TEST(message(*adapted, 1).find("layer '4' (Conv2d(8, 16,") != std::string::npos, message(*adapted, 1));
  BOOST_TEST(message(*adapted, 1).find("adapters") != std::string::npos, message(*adapted, 1));
  auto pooled = layers::make_model("tiny", {8, 8, 1}, 2, {0, false});
  pooled->replace_child(2, std::make_shared<layers::TaskHead>(8, layers::HeadMode::shared));
  BOOST_TEST(message(*pooled, 1).find("layer '2' (TaskHead") != std::string::npos, message(*pooled, 1));
}

// ---- whole runs on Fashion-MNIST ------------------------------------------------

namespace {

RunConfig tiny_run(const fs::path& out) {
  RunConfig c = testing::small_run(out, 160, 100, 2);
  c.methods = {"pnn"};
  c.tasks = 3;
  c.class_order = "0,1,2,3,4,5";
  c.threads = 1;
  return c;
}

// The learner, stopped (as a killed process) at its n-th training forward.
class KilledAt final : public WrappedLearner {
 public:
  KilledAt(std::unique_ptr<Learner> inner, int64_t forward) : WrappedLearner(std::move(inner)), left_(forward) {}
  Tensor forward(const Tensor& images, int64_t task, bool training) override {
    if (training && --left_ == 0) throw std::runtime_error("simulated kill");
    return base().forward(images, task, training);
  }

 private:
  int64_t left_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_run_never_forgets_and_its_kept_models_reevaluate_to_the_same_bits,
                     *boost::unit_test::precondition(testing::fashion_mnist_present)) {
  TempDir dir("pnn-run");
  const RunConfig c = tiny_run(dir.path);
  std::ostringstream out, log;
  run_sweep(c, out, log, false);
  const CellResult r = *read_cell_file(cell_file(dir.path, "pnn-seed0"), setting_json(c));
  const AccuracyMatrix& m = r.accuracy_matrix;
  BOOST_REQUIRE(m.size() == 3u);
  for (size_t j = 0; j + 1 < m.size(); ++j)
    for (size_t i = j + 1; i < m.size(); ++i) BOOST_TEST(m[i][j] == m[j][j], "task " << j << " after task " << i);
  BOOST_TEST(average_accuracy(m) > 0.7, "ACC " << average_accuracy(m));
  BOOST_TEST(r.params.new_per_task == (std::vector<int64_t>{26482, 26482 + 25216, 26482 + 2 * 25216}),
             boost::test_tools::per_element());
  std::ostringstream evaluate_log;
  const std::vector<EvaluatedCell> cells = evaluate_run(dir.path, evaluate_log);
  BOOST_REQUIRE(cells.size() == 1u);
  BOOST_TEST(cells.front().identical(), evaluate_log.str());
  // No plain --arch network holds a column: merging says so, naming the method.
  BOOST_CHECK_EXCEPTION(task_network(dir.path, "pnn-seed0", 2, evaluate_log), std::runtime_error,
                        [](const std::runtime_error& e) {
                          return std::string(e.what()).find("is a pnn run: task 2's network is column 2") !=
                                 std::string::npos;
                        });
}

BOOST_AUTO_TEST_CASE(a_run_killed_mid_task_resumes_to_the_same_numbers,
                     *boost::unit_test::precondition(testing::fashion_mnist_present)) {
  TempDir whole("pnn-whole"), killed("killed");
  RunConfig c = tiny_run(whole.path);
  const TaskData data = load_task_data(c);
  std::ostringstream log;
  auto fresh = make_learner(c, "pnn", data, 0);
  const CellResult reference = train_cell(c, data, *fresh, {"pnn", 0, false, &log, false});

  c.out = killed.path;
  // Batch 2 of epoch 2 of task 3 (5 batches an epoch).
  KilledAt faulty(make_learner(c, "pnn", data, 0), 2 * 2 * 5 + 5 + 2);
  BOOST_CHECK_THROW(train_cell(c, data, faulty, {"pnn", 0, false, &log, false}), std::runtime_error);
  auto again = make_learner(c, "pnn", data, 0);
  const CellResult resumed = train_cell(c, data, *again, {"pnn", 0, true, &log, false});
  BOOST_TEST(log.str().find("resuming from") != std::string::npos, log.str());
  BOOST_TEST(resumed.accuracy_matrix == reference.accuracy_matrix);
  for (size_t t = 0; t < reference.curves.size(); ++t)
    BOOST_TEST(resumed.curves[t].train_loss == reference.curves[t].train_loss, "task " << t);
}
