// SGD, Adam, AdamW against hand-derived numbers and an independent reference
// loop of PyTorch's documented algorithms; state export/import; ReduceLROnPlateau.
#define BOOST_TEST_MODULE optim
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <memory>
#include <set>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"

using namespace engine;
namespace tt = boost::test_tools;

namespace {

Tensor parameter(const std::vector<double>& values) {
  Tensor p = Tensor::from_vector({static_cast<int64_t>(values.size())}, std::span<const double>(values));
  p.set_requires_grad();
  return p;
}

// Sets p.grad = c by back-propagating L = sum(p * c).
void set_gradient(Optimizer& opt, const Tensor& p, const std::vector<double>& c) {
  opt.zero_grad();
  sum(mul(p, Tensor::from_vector(p.shape(), std::span<const double>(c)))).backward();
}

// L = sum(c * p^2), so grad = 2 c p depends on the parameter's current value.
void quadratic_backward(Optimizer& opt, const Tensor& p, const Tensor& c) {
  opt.zero_grad();
  sum(mul(mul(p, p), c)).backward();
}

}  // namespace

// ---- SGD -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sgd_momentum_weight_decay_hand_derived) {
  // p = 1, grad 0.5 every step, lr 0.1, momentum 0.9, weight decay 0.1:
  //   1: g = 0.5 + 0.1       = 0.6,     buf = 0.6,                    p = 1 - 0.06      = 0.94
  //   2: g = 0.5 + 0.094     = 0.594,   buf = 0.54 + 0.594 = 1.134,   p = 0.94 - 0.1134 = 0.8266
  //   3: g = 0.5 + 0.08266   = 0.58266, buf = 1.0206 + 0.58266 = 1.60326, p = 0.8266 - 0.160326 = 0.666274
  Tensor p = parameter({1.0});
  SGD opt({p}, 0.1, 0.9, 0.0, 0.1);
  for (const double expected : {0.94, 0.8266, 0.666274}) {
    set_gradient(opt, p, {0.5});
    opt.step();
    BOOST_TEST(p.item() == expected, tt::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(sgd_plain_nesterov_and_dampening_hand_derived) {
  Tensor plain = parameter({2.0});
  SGD sgd({plain}, 0.5);
  set_gradient(sgd, plain, {3.0});
  sgd.step();
  BOOST_TEST(plain.item() == 0.5);  // 2 - 0.5 * 3

  // Nesterov, momentum 0.5, lr 0.1, grad 1: step 1 buf = 1, update 1 + 0.5 = 1.5;
  // step 2 buf = 0.5 + 1 = 1.5, update 1 + 0.75 = 1.75. p = 0 - 0.15 - 0.175.
  Tensor nesterov = parameter({0.0});
  SGD nag({nesterov}, 0.1, 0.5, 0.0, 0.0, true);
  set_gradient(nag, nesterov, {1.0});
  nag.step();
  BOOST_TEST(nesterov.item() == -0.15, tt::tolerance(1e-12));
  set_gradient(nag, nesterov, {1.0});
  nag.step();
  BOOST_TEST(nesterov.item() == -0.325, tt::tolerance(1e-12));

  // Dampening 0.5 (first step undamped): buf 1, then 0.5 * 1 + 0.5 * 1 = 1.
  Tensor damped = parameter({0.0});
  SGD dsgd({damped}, 0.1, 0.5, 0.5);
  for (int i = 0; i < 2; ++i) {
    set_gradient(dsgd, damped, {1.0});
    dsgd.step();
  }
  BOOST_TEST(damped.item() == -0.2, tt::tolerance(1e-12));
  BOOST_CHECK_THROW(SGD({damped}, 0.1, 0.0, 0.0, 0.0, true), std::invalid_argument);
}

// ---- Adam / AdamW ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(adam_and_adamw_hand_derived) {
  // A constant gradient g gives m_hat = g and v_hat = g^2 at every step, so
  // each step moves by lr * g / (|g| + eps) = 0.1 * 0.5 / 0.50000001 = 0.099999998.
  Tensor p = parameter({1.0});
  Adam adam({p}, 0.1);
  for (const double expected : {0.900000002, 0.800000004, 0.700000006}) {
    set_gradient(adam, p, {0.5});
    adam.step();
    BOOST_TEST(p.item() == expected, tt::tolerance(1e-14));
  }
  // AdamW with weight decay 0.1 first shrinks p by 1 - lr * wd = 0.99:
  //   1: 1 * 0.99 - 0.099999998           = 0.890000002
  //   2: 0.890000002 * 0.99 - 0.099999998 = 0.88110000198 - 0.099999998 = 0.78110000398
  Tensor q = parameter({1.0});
  AdamW adamw({q}, 0.1, 0.9, 0.999, 1e-8, 0.1);
  for (const double expected : {0.890000002, 0.78110000398}) {
    set_gradient(adamw, q, {0.5});
    adamw.step();
    BOOST_TEST(q.item() == expected, tt::tolerance(1e-14));
  }
}

// PyTorch's documented Adam / AdamW, written out independently in double.
struct ReferenceAdam {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  std::vector<double> m, v;
  int step = 0;

  void update(std::vector<double>& p, std::vector<double> g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++step;
    for (size_t i = 0; i < p.size(); ++i) {
      if (decoupled) p[i] -= lr * weight_decay * p[i];
      else g[i] += weight_decay * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const double m_hat = m[i] / (1 - std::pow(beta1, step));
      const double v_hat = v[i] / (1 - std::pow(beta2, step));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

BOOST_AUTO_TEST_CASE(adam_and_adamw_match_reference_loop) {
  const std::vector<double> start = {0.5, -1.5, 2.0, 0.01};
  const Tensor c = Tensor::from_vector({4}, std::span<const double>(std::vector<double>{1.0, 0.3, -0.7, 2.0}));
  for (const bool decoupled : {false, true}) {
    Tensor p = parameter(start);
    const double lr = 0.05, b1 = 0.8, b2 = 0.95, eps = 1e-6, wd = 0.2;
    std::unique_ptr<Optimizer> opt;
    if (decoupled) opt = std::make_unique<AdamW>(std::vector<Tensor>{p}, lr, b1, b2, eps, wd);
    else opt = std::make_unique<Adam>(std::vector<Tensor>{p}, lr, b1, b2, eps, wd);
    ReferenceAdam ref{lr, b1, b2, eps, wd, decoupled, {}, {}};
    std::vector<double> expected = start;
    for (int iteration = 0; iteration < 3; ++iteration) {
      std::vector<double> grad(4);
      for (size_t i = 0; i < 4; ++i) grad[i] = 2 * c.data<double>()[i] * expected[i];
      ref.update(expected, grad);
      quadratic_backward(*opt, p, c);
      opt->step();
      BOOST_TEST(p.to_double_vector() == expected, tt::tolerance(1e-12) << tt::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(float32_adam_tracks_float64) {
  const std::vector<double> start = {0.5, -1.5, 2.0};
  Tensor p64 = parameter(start);
  Tensor p32 = p64.detach().to(DType::f32);
  p32.set_requires_grad();
  Adam a64({p64}, 0.01), a32({p32}, 0.01);
  const Tensor c64 = Tensor::full({3}, 0.3, DType::f64), c32 = Tensor::full({3}, 0.3, DType::f32);
  for (int i = 0; i < 5; ++i) {
    quadratic_backward(a64, p64, c64);
    a64.step();
    quadratic_backward(a32, p32, c32);
    a32.step();
  }
  BOOST_TEST(p32.to_double_vector() == p64.to_double_vector(), tt::tolerance(1e-5) << tt::per_element());
}

// ---- common behaviour ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parameters_without_gradient_are_skipped) {
  Tensor used = parameter({1.0, 2.0}), frozen = parameter({3.0});
  Adam opt({used, frozen}, 0.1);
  set_gradient(opt, used, {1.0, 1.0});
  opt.step();
  BOOST_TEST(frozen.item() == 3.0);
  BOOST_TEST(used.to_double_vector() != std::vector<double>({1.0, 2.0}));
  std::set<std::string> names;
  for (const auto& [name, tensor] : opt.state()) names.insert(name);
  BOOST_TEST((names == std::set<std::string>{"lr", "param.0.step", "param.0.exp_avg", "param.0.exp_avg_sq"}));
  opt.zero_grad();
  BOOST_TEST(!used.grad().defined());
  // An update without any gradient changes nothing.
  const std::vector<double> before = used.to_double_vector();
  opt.step();
  BOOST_TEST(used.to_double_vector() == before, tt::per_element());

  BOOST_CHECK_THROW(Adam({}, 0.1), std::invalid_argument);
  BOOST_CHECK_THROW(Adam({Tensor::zeros({2})}, 0.1), std::invalid_argument);  // no requires_grad
  BOOST_CHECK_THROW(opt.set_lr(-1), std::invalid_argument);
}

// Runs `steps` updates of L = sum(c * p^2) in float32.
template <class Opt>
void train(Opt& opt, const Tensor& p, int steps) {
  const Tensor c = Tensor::from_vector({3}, std::span<const float>(std::vector<float>{0.7f, -0.2f, 1.3f}));
  for (int i = 0; i < steps; ++i) {
    quadratic_backward(opt, p, c);
    opt.step();
  }
}

BOOST_AUTO_TEST_CASE(state_round_trip_gives_identical_next_step) {
  auto fresh = [] {
    Tensor p = Tensor::from_vector({3}, std::span<const float>(std::vector<float>{0.5f, -1.5f, 2.0f}));
    p.set_requires_grad();
    return p;
  };
  auto check = [&](auto make_optimizer) {
    Tensor original = fresh();
    auto first = make_optimizer(original);
    train(*first, original, 2);
    first->set_lr(first->lr() * 0.5);
    // Export as a checkpoint would: deep copies of every entry.
    OptimizerState saved;
    for (const auto& [name, tensor] : first->state()) saved.emplace_back(name, tensor.clone());

    Tensor resumed = original.detach().clone();
    resumed.set_requires_grad();
    auto second = make_optimizer(resumed);
    second->load_state(saved);
    BOOST_TEST(second->lr() == first->lr());
    train(*first, original, 1);
    train(*second, resumed, 1);
    BOOST_TEST(resumed.to_float_vector() == original.to_float_vector(), tt::per_element());
  };
  check([](const Tensor& p) { return std::make_unique<Adam>(std::vector<Tensor>{p}, 0.1, 0.9, 0.999, 1e-8, 0.01); });
  check([](const Tensor& p) { return std::make_unique<AdamW>(std::vector<Tensor>{p}, 0.1); });
  check([](const Tensor& p) {
    return std::make_unique<SGD>(std::vector<Tensor>{p}, 0.1, 0.9, 0.0, 0.01, true);
  });
  // Without the state the resumed run would differ (bias correction restarts).
  Tensor a = fresh(), b = fresh();
  Adam with_state({a}, 0.1), without_state({b}, 0.1);
  train(with_state, a, 2);
  train(without_state, b, 1);
  Adam restarted({b}, 0.1);
  train(restarted, b, 1);
  BOOST_TEST(a.to_float_vector() != b.to_float_vector());
}

BOOST_AUTO_TEST_CASE(load_state_rejects_mismatches) {
  Tensor p = parameter({1.0, 2.0});
  Adam opt({p}, 0.1);
  auto message = [&](const OptimizerState& state) -> std::string {
    try {
      opt.load_state(state);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  const std::string shape = message({{"param.0.exp_avg", Tensor::zeros({3}, DType::f64)}});
  BOOST_TEST(shape.find("param.0.exp_avg") != std::string::npos);
  BOOST_TEST(shape.find("(3)") != std::string::npos);
  BOOST_TEST(message({{"param.0.momentum_buffer", Tensor::zeros({2}, DType::f64)}}).find("unknown") != std::string::npos);
  BOOST_TEST(message({{"param.4.exp_avg", Tensor::zeros({2}, DType::f64)}}).find("parameter 4") != std::string::npos);
  BOOST_TEST(message({{"param.0.exp_avg", Tensor::zeros({2}, DType::f32)}}) != "");
  BOOST_TEST(message({{"param.0.step", Tensor::full({}, -1.0, DType::f64)}}) != "");
}

// ---- ReduceLROnPlateau ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(plateau_reduces_after_patience_with_cooldown) {
  Tensor p = parameter({0.0});
  SGD opt({p}, 1.0);
  ReduceLROnPlateau scheduler(opt, ReduceLROnPlateau::Mode::min, 0.5, /*patience=*/2,
                              /*threshold=*/1e-4, /*cooldown=*/1);
  // Epoch 1 sets the best; epochs 2, 3 are bad (2 = patience, no change); the
  // third bad epoch (4) halves the lr. Epoch 5 is in cooldown (not counted), so
  // bad epochs 6, 7 wait and 8 halves again.
  const std::vector<bool> expected = {false, false, false, true, false, false, false, true};
  for (size_t epoch = 0; epoch < expected.size(); ++epoch)
    BOOST_TEST(scheduler.step(1.0) == expected[epoch], "epoch " << epoch + 1);
  BOOST_TEST(opt.lr() == 0.25);

  // An improvement smaller than the relative threshold is still a bad epoch.
  SGD opt2({p}, 1.0);
  ReduceLROnPlateau strict(opt2, ReduceLROnPlateau::Mode::min, 0.5, 0);
  BOOST_TEST(!strict.step(1.0));
  BOOST_TEST(strict.step(0.99995));  // not below 1 * (1 - 1e-4)
  BOOST_TEST(!strict.step(0.5));     // a real improvement
  BOOST_TEST(strict.state().best == 0.5);
}

BOOST_AUTO_TEST_CASE(plateau_max_mode_and_min_lr) {
  Tensor p = parameter({0.0});
  SGD opt({p}, 1.0);
  ReduceLROnPlateau scheduler(opt, ReduceLROnPlateau::Mode::max, 0.1, 0, 1e-4, 0, 0.05);
  BOOST_TEST(!scheduler.step(0.5));  // best accuracy so far
  BOOST_TEST(!scheduler.step(0.6));  // better
  BOOST_TEST(scheduler.step(0.6));   // not better: 1 -> 0.1
  BOOST_TEST(opt.lr() == 0.1, tt::tolerance(1e-15));
  BOOST_TEST(scheduler.step(0.2));   // 0.1 -> max(0.01, 0.05) = 0.05
  BOOST_TEST(opt.lr() == 0.05);
  BOOST_TEST(!scheduler.step(0.2));  // already at min_lr
  BOOST_TEST(opt.lr() == 0.05);

  // The scheduler's state resumes where it was.
  ReduceLROnPlateau resumed(opt, ReduceLROnPlateau::Mode::max, 0.1, 0, 1e-4, 0, 0.05);
  resumed.load_state(scheduler.state());
  BOOST_TEST(resumed.state().best == 0.6);
  BOOST_CHECK_THROW(ReduceLROnPlateau(opt, ReduceLROnPlateau::Mode::min, 1.0), std::invalid_argument);
}
