// The forgetting solutions of other families (experiments/continual/learners/)
// piece by piece: EWC's Fisher against a per-image computation by hand and its
// penalty's gradient; LwF's distillation loss against a hand value and its
// gradient. Whole runs on Fashion-MNIST are in test_continual.cpp.
#define BOOST_TEST_MODULE methods
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "engine/ops.h"
#include "experiments/continual/config.h"
#include "experiments/continual/learners/ewc.h"
#include "tests/gradcheck.h"
#include "tests/small_run.h"

using namespace continual;
using engine::Tensor;

namespace {

// A linear classifier of 3 classes on (1,2,2) images: logits = W x + b, one
// task of all 3 classes, so the per-image gradient can be written by hand.
constexpr int64_t kClasses = 3, kPixels = 4;

class LinearLearner final : public Learner {
 public:
  LinearLearner() {
    engine::Generator gen(7);
    w_ = testing::random_input({kClasses, kPixels}, gen).to(engine::DType::f32);
    b_ = testing::random_input({kClasses}, gen).to(engine::DType::f32);
    w_.set_requires_grad(true);
    b_.set_requires_grad(true);
  }
  std::vector<Tensor> begin_task(int64_t, const std::vector<int64_t>&) override { return {w_, b_}; }
  NewParams new_params(int64_t) const override { return {}; }
  Tensor forward(const Tensor& images, int64_t, bool) override {
    return engine::linear(engine::flatten(images), w_, b_);
  }
  std::vector<uint8_t> class_mask(int64_t) const override { return std::vector<uint8_t>(kClasses, 1); }
  engine::NamedTensors state() override { return {{"w", w_}, {"b", b_}}; }
  engine::NamedTensors trained_state() override { return state(); }
  engine::NamedTensors task_state(int64_t) override { return state(); }
  std::vector<std::pair<std::string, uint64_t>> counters() const override { return {}; }
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>&) override {}

  Tensor w_, b_;
};

datasets::ImageDataset five_images() {
  datasets::ImageDataset d;
  d.channels = 1, d.height = 2, d.width = 2;
  d.pixels = {255, 0, 51, 102, 0, 255, 255, 0, 10, 20, 30, 40, 200, 100, 0, 50, 128, 128, 128, 128};
  d.labels = {0, 1, 2, 1, 0};
  d.class_names = {"a", "b", "c"};
  return d;
}

// The per-image gradient of cross-entropy for a linear classifier, written
// out: dL/dz = softmax(z) - onehot, dL/dW = dL/dz x^T, dL/db = dL/dz. Returns
// the mean over images of the squared gradients, W's entries then b's.
std::vector<double> fisher_by_hand(const datasets::ImageDataset& d, const std::vector<float>& w,
                                   const std::vector<float>& b) {
  std::vector<double> fisher(kClasses * kPixels + kClasses, 0.0);
  for (int64_t i = 0; i < d.size(); ++i) {
    double x[kPixels], z[kClasses], total = 0;
    for (int64_t p = 0; p < kPixels; ++p) x[p] = d.image(i)[p] / 255.0;
    for (int64_t k = 0; k < kClasses; ++k) {
      z[k] = b[k];
      for (int64_t p = 0; p < kPixels; ++p) z[k] += w[k * kPixels + p] * x[p];
      total += std::exp(z[k]);
    }
    for (int64_t k = 0; k < kClasses; ++k) {
      const double dz = std::exp(z[k]) / total - (k == d.labels[i] ? 1.0 : 0.0);
      for (int64_t p = 0; p < kPixels; ++p) fisher[k * kPixels + p] += dz * x[p] * dz * x[p] / d.size();
      fisher[kClasses * kPixels + k] += dz * dz / d.size();
    }
  }
  return fisher;
}

Tensor state_tensor(Learner& learner, const std::string& name) {
  for (const auto& [n, t] : learner.state())
    if (n == name) return t;
  BOOST_FAIL("no tensor " << name << " in the learner's state");
  return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ewc)

BOOST_AUTO_TEST_CASE(fisher_is_the_mean_squared_per_image_gradient_and_decays_online) {
  auto linear = std::make_unique<LinearLearner>();
  LinearLearner& net = *linear;
  Ewc ewc(std::move(linear), /*lambda=*/1.0, /*gamma=*/0.5);
  const datasets::ImageDataset data = five_images();
  datasets::LoaderOptions options;
  options.batch_size = 2;  // images 0-1, 2-3, 4: each image's gradient must still be its own
  options.shuffle = false;
  datasets::BatchLoader loader(data, {0, 1, 2, 3, 4}, options);

  ewc.begin_task(0, {0, 1, 2});
  BOOST_TEST(!ewc.extra_loss(Tensor(), Tensor(), 0).defined());  // nothing to keep during task 0
  const std::vector<double> first = fisher_by_hand(data, net.w_.to_float_vector(), net.b_.to_float_vector());
  ewc.end_task(0, loader);
  std::vector<float> measured = state_tensor(ewc, "ewc.fisher.w").to_float_vector();
  for (float v : state_tensor(ewc, "ewc.fisher.b").to_float_vector()) measured.push_back(v);
  BOOST_REQUIRE(measured.size() == first.size());
  for (size_t i = 0; i < first.size(); ++i) BOOST_TEST(measured[i] == first[i], boost::test_tools::tolerance(1e-5));
  BOOST_TEST(state_tensor(ewc, "ewc.anchor.w").to_float_vector() == net.w_.to_float_vector(),
             boost::test_tools::per_element());

  // Task 1 moves the weights; its Fisher adds to half the first one.
  ewc.begin_task(1, {0, 1, 2});
  {
    engine::NoGradGuard no_grad;
    net.w_.copy_(engine::mul_scalar(net.w_, 1.5));
  }
  // Penalty before task 1 ends: (1/2) sum F_0 (1.5 w - w)^2 over W (b did not move).
  const std::vector<float> w_now = net.w_.to_float_vector();
  double expected_penalty = 0;
  for (size_t i = 0; i < w_now.size(); ++i) {
    const double moved = w_now[i] / 3.0;  // 1.5 w - w = w / 2 = (1.5 w) / 3
    expected_penalty += 0.5 * first[i] * moved * moved;
  }
  BOOST_TEST(ewc.extra_loss(Tensor(), Tensor(), 1).item() == expected_penalty, boost::test_tools::tolerance(1e-5));

  const std::vector<double> second = fisher_by_hand(data, w_now, net.b_.to_float_vector());
  ewc.end_task(1, loader);
  measured = state_tensor(ewc, "ewc.fisher.w").to_float_vector();
  for (float v : state_tensor(ewc, "ewc.fisher.b").to_float_vector()) measured.push_back(v);
  for (size_t i = 0; i < first.size(); ++i)
    BOOST_TEST(measured[i] == 0.5 * first[i] + second[i], boost::test_tools::tolerance(1e-5));
  BOOST_TEST(state_tensor(ewc, "ewc.anchor.w").to_float_vector() == w_now, boost::test_tools::per_element());
  // The Fisher pass leaves no gradient behind for the optimiser.
  BOOST_TEST(!net.w_.grad().defined());
}

BOOST_AUTO_TEST_CASE(penalty_value_by_hand) {
  const Tensor theta = Tensor::from_vector({2}, std::vector<double>{1.0, 2.0});
  const Tensor fisher = Tensor::from_vector({2}, std::vector<double>{0.5, 2.0});
  const Tensor anchor = Tensor::zeros({2}, engine::DType::f64);
  // (3 / 2) * (0.5 * 1^2 + 2 * 2^2) = 1.5 * 8.5
  BOOST_TEST(ewc_penalty({theta}, {fisher}, {anchor}, 3.0).item() == 12.75);
  BOOST_CHECK_THROW(ewc_penalty({theta}, {}, {anchor}, 3.0), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(penalty_gradient) {
  engine::Generator gen(11);
  const Tensor fisher_a = engine::mul(testing::random_input({3, 2}, gen), testing::random_input({3, 2}, gen));
  const Tensor fisher_b = engine::mul(testing::random_input({4}, gen), testing::random_input({4}, gen));
  const Tensor anchor_a = testing::random_input({3, 2}, gen), anchor_b = testing::random_input({4}, gen);
  Tensor a = testing::random_input({3, 2}, gen), b = testing::random_input({4}, gen);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  testing::check_gradients(
      "ewc_penalty",
      [&](const std::vector<Tensor>& x) {
        return ewc_penalty({x[0], x[1]}, {fisher_a, fisher_b}, {anchor_a, anchor_b}, 7.0);
      },
      {a, b});
}

BOOST_AUTO_TEST_CASE(bad_settings_name_the_flag) {
  BOOST_CHECK_EXCEPTION(Ewc(std::make_unique<LinearLearner>(), -1.0, 0.5), std::invalid_argument,
                        [](const std::invalid_argument& e) { return std::string(e.what()).find("--ewc-lambda") == 0; });
  BOOST_CHECK_EXCEPTION(Ewc(std::make_unique<LinearLearner>(), 1.0, 1.5), std::invalid_argument,
                        [](const std::invalid_argument& e) { return std::string(e.what()).find("--ewc-gamma") == 0; });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lwf)

BOOST_AUTO_TEST_CASE(distillation_value_by_hand) {
  // Class 2 masked out, T = 2.
  // Row 0: targets softmax(0/2, 0/2) = (1/2, 1/2); student softmax(1/2, 2/2) =
  //   (1/(1+e^0.5), e^0.5/(1+e^0.5)); loss -1/2 ln(0.37754) - 1/2 ln(0.62246) = 0.724077.
  // Row 1: student softmax(0, 0) = (1/2, 1/2) whatever the targets: ln 2.
  const Tensor logits = Tensor::from_vector({2, 3}, std::vector<double>{1, 2, 0, 0, 0, 3});
  const Tensor teacher = Tensor::from_vector({2, 3}, std::vector<double>{0, 0, 5, 2, 0, -1});
  const std::vector<uint8_t> mask = {1, 1, 0};
  BOOST_TEST(engine::distillation(logits, teacher, mask, 2.0).item() == (0.7240769841801067 + std::log(2.0)) / 2,
             boost::test_tools::tolerance(1e-12));
  // Equal logits: the loss is the targets' entropy and the gradient vanishes.
  Tensor same = teacher.clone();
  same.set_requires_grad(true);
  engine::distillation(same, teacher, mask, 2.0).backward();
  for (double g : same.grad().to_double_vector()) BOOST_TEST(g == 0.0, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(distillation_gradient) {
  engine::Generator gen(5);
  const Tensor teacher = engine::mul_scalar(testing::random_input({4, 5}, gen), 3.0);
  Tensor logits = engine::mul_scalar(testing::random_input({4, 5}, gen), 3.0);
  logits.set_requires_grad(true);
  const std::vector<uint8_t> mask = {0, 1, 1, 0, 1};
  for (double temperature : {1.0, 2.0, 0.5})
    testing::check_gradients(
        "distillation T=" + std::to_string(temperature),
        [&](const std::vector<Tensor>& x) { return engine::distillation(x[0], teacher, mask, temperature); },
        {logits});
}

BOOST_AUTO_TEST_CASE(distillation_rejects_bad_input) {
  const Tensor a = Tensor::zeros({2, 3}, engine::DType::f64), b = Tensor::zeros({2, 4}, engine::DType::f64);
  const std::vector<uint8_t> mask = {1, 1, 0}, none = {0, 0, 0};
  BOOST_CHECK_THROW(engine::distillation(a, b, mask, 2.0), std::invalid_argument);
  BOOST_CHECK_THROW(engine::distillation(a, a, none, 2.0), std::invalid_argument);
  BOOST_CHECK_THROW(engine::distillation(a, a, mask, 0.0), std::invalid_argument);
  BOOST_CHECK_THROW(engine::distillation(a, a, std::vector<uint8_t>{1, 1}, 2.0), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// Every flag of these methods is range-checked with its name in the message.
BOOST_AUTO_TEST_CASE(flags_are_range_checked) {
  auto rejects = [](void (*set)(RunConfig&), const std::string& flag) {
    RunConfig c;
    set(c);
    testing::check_flag_refused(c, flag);
  };
  rejects([](RunConfig& c) { c.ewc_lambda = -1; }, "--ewc-lambda");
  rejects([](RunConfig& c) { c.ewc_gamma = 1.5; }, "--ewc-gamma");
  rejects([](RunConfig& c) { c.ewc_gamma = -0.1; }, "--ewc-gamma");
  rejects([](RunConfig& c) { c.lwf_alpha = -1; }, "--lwf-alpha");
  rejects([](RunConfig& c) { c.lwf_temperature = 0; }, "--lwf-temperature");
  rejects([](RunConfig& c) { c.memory = -1; }, "--memory");
  RunConfig fine;
  fine.methods = {"ewc", "lwf", "replay"};
  fine.memory = 0;
  fine.ewc_gamma = 0;
  BOOST_CHECK_NO_THROW(validate(fine));
}
