// Same seed -> same bits: a few training steps of a small CNN (conv2d, batch
// norm, relu, max pooling, linear, dropout, cross-entropy, Adam) give
// bit-identical parameters when run twice, with 1 or 2 threads, and when
// training stops, saves a checkpoint (.npz) and resumes from it.
#define BOOST_TEST_MODULE determinism
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/init.h"
#include "engine/npz.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/random.h"

using namespace engine;
namespace fs = std::filesystem;

namespace {

// Sizes chosen so that element-wise loops (over 2^15 elements) and the GEMMs
// are large enough to be split across threads, and so that GEMM depths (784
// features, 14x14 maps) are long and not multiples of 32, where OpenBLAS's
// one- and multi-threaded drivers block k differently.
constexpr int64_t kBatch = 32, kChannels = 3, kSize = 14, kFeatures = 16, kHidden = 64, kClasses = 10;

// x (N,3,14,14) -> conv 3x3 (16) -> batch norm -> relu -> max pool 2 -> (N,784)
// -> linear (64) -> relu -> dropout -> linear (10)
struct SmallCnn {
  Tensor conv_weight, conv_bias, bn_gamma, bn_beta, bn_mean, bn_var;
  Tensor fc1_weight, fc1_bias, fc2_weight, fc2_bias;

  explicit SmallCnn(Generator& gen) {
    conv_weight = Tensor::empty({kFeatures, kChannels, 3, 3});
    conv_bias = Tensor::empty({kFeatures});
    fc1_weight = Tensor::empty({kHidden, kFeatures * (kSize / 2) * (kSize / 2)});
    fc1_bias = Tensor::empty({kHidden});
    fc2_weight = Tensor::empty({kClasses, kHidden});
    fc2_bias = Tensor::empty({kClasses});
    for (auto [weight, bias] : {std::pair{&conv_weight, &conv_bias}, std::pair{&fc1_weight, &fc1_bias},
                                std::pair{&fc2_weight, &fc2_bias}}) {
      kaiming_uniform_(*weight, std::sqrt(5.0), gen);
      bias_uniform_(*bias, fan_in(*weight), gen);
    }
    bn_gamma = Tensor::full({kFeatures}, 1.0);
    bn_beta = Tensor::zeros({kFeatures});
    bn_mean = Tensor::zeros({kFeatures});
    bn_var = Tensor::full({kFeatures}, 1.0);
    for (Tensor* p : {&conv_weight, &conv_bias, &bn_gamma, &bn_beta, &fc1_weight, &fc1_bias,
                      &fc2_weight, &fc2_bias})
      p->set_requires_grad();
  }

  std::vector<Tensor> parameters() const {
    return {conv_weight, conv_bias, bn_gamma, bn_beta, fc1_weight, fc1_bias, fc2_weight, fc2_bias};
  }
  // Everything a checkpoint holds: parameters and batch-norm running statistics.
  NamedTensors state() const {
    return {{"conv.weight", conv_weight}, {"conv.bias", conv_bias}, {"bn.weight", bn_gamma},
            {"bn.bias", bn_beta},         {"bn.running_mean", bn_mean}, {"bn.running_var", bn_var},
            {"fc1.weight", fc1_weight},   {"fc1.bias", fc1_bias},   {"fc2.weight", fc2_weight},
            {"fc2.bias", fc2_bias}};
  }

  Tensor forward(const Tensor& x, uint64_t dropout_seed, uint64_t step) {
    Tensor h = conv2d(x, conv_weight, conv_bias, {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1});
    h = relu(batch_norm2d(h, bn_gamma, bn_beta, bn_mean, bn_var, /*training=*/true));
    h = flatten(max_pool2d(h, Pool2dOptions{}));
    h = dropout(relu(linear(h, fc1_weight, fc1_bias)), 0.25, /*training=*/true, dropout_seed, step);
    return linear(h, fc2_weight, fc2_bias);
  }
};

// The batch of a step depends on (seed, step) only, so a resumed run sees the
// same data as an uninterrupted one.
std::pair<Tensor, std::vector<int64_t>> batch(uint64_t seed, int64_t step) {
  Generator gen(seed * 1000003 + static_cast<uint64_t>(step));
  std::vector<float> x(kBatch * kChannels * kSize * kSize);
  for (float& v : x) v = static_cast<float>(gen.normal());
  std::vector<int64_t> labels(kBatch);
  for (int64_t& label : labels) label = static_cast<int64_t>(gen.below(kClasses));
  return {Tensor::from_vector({kBatch, kChannels, kSize, kSize}, std::span<const float>(x)), labels};
}

void train_steps(SmallCnn& model, Adam& optimizer, uint64_t seed, int64_t first, int64_t end) {
  for (int64_t step = first; step < end; ++step) {
    const auto [x, labels] = batch(seed, step);
    optimizer.zero_grad();
    cross_entropy(model.forward(x, seed, static_cast<uint64_t>(step)), labels).backward();
    optimizer.step();
  }
}

struct Run {
  SmallCnn model;
  Adam optimizer;
  explicit Run(Generator&& gen) : model(gen), optimizer(model.parameters(), 1e-2) {}
};

// Trains `steps` steps from `seed` on `threads` threads; returns the final state.
NamedTensors train(uint64_t seed, int threads, int64_t steps) {
  set_num_threads(threads);
  Run run(Generator{seed});
  train_steps(run.model, run.optimizer, seed, 0, steps);
  set_num_threads(0);
  return run.model.state();
}

bool bit_identical(const NamedTensors& a, const NamedTensors& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  bool same = true;
  for (size_t i = 0; i < a.size(); ++i) {
    const Tensor& x = a[i].second;
    const Tensor& y = b[i].second;
    BOOST_REQUIRE(x.shape() == y.shape() && x.dtype() == y.dtype());
    if (std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) != 0) {
      BOOST_TEST_MESSAGE(a[i].first << " differs");
      same = false;
    }
  }
  return same;
}

constexpr int64_t kSteps = 4;

}  // namespace

BOOST_AUTO_TEST_CASE(same_seed_same_bits_for_any_thread_count) {
  const NamedTensors one = train(7, 1, kSteps);
  const NamedTensors again = train(7, 1, kSteps);
  const NamedTensors two = train(7, 2, kSteps);
  const NamedTensors three = train(7, 3, kSteps);  // uneven split of the loops
  BOOST_TEST(bit_identical(one, again));
  BOOST_TEST(bit_identical(one, two));
  BOOST_TEST(bit_identical(one, three));

  // The comparison can fail: another seed, or one step less, changes every tensor.
  const NamedTensors other_seed = train(8, 1, kSteps);
  const NamedTensors fewer_steps = train(7, 1, kSteps - 1);
  for (size_t i = 0; i < one.size(); ++i) {
    BOOST_TEST(!bit_identical({one[i]}, {other_seed[i]}), one[i].first);
    BOOST_TEST(!bit_identical({one[i]}, {fewer_steps[i]}), one[i].first);
  }
}

BOOST_AUTO_TEST_CASE(resuming_from_a_checkpoint_gives_the_same_bits) {
  const fs::path dir = fs::temp_directory_path() / ("test_determinism-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const uint64_t seed = 11;
  const NamedTensors uninterrupted = train(seed, 2, kSteps);

  // Half the steps, then a checkpoint of the model and the optimiser...
  {
    Run run(Generator{seed});
    train_steps(run.model, run.optimizer, seed, 0, kSteps / 2);
    save_npz(dir / "model.npz", run.model.state());
    save_npz(dir / "optimizer.npz", run.optimizer.state());
  }
  // ...restored into a differently initialised run, which finishes the steps.
  Run resumed(Generator{seed + 1});
  load_into(dir / "model.npz", resumed.model.state());
  OptimizerState optimizer_state;
  for (const auto& [name, array] : read_npz(dir / "optimizer.npz"))
    optimizer_state.emplace_back(name, to_tensor(array));
  resumed.optimizer.load_state(optimizer_state);
  train_steps(resumed.model, resumed.optimizer, seed, kSteps / 2, kSteps);

  BOOST_TEST(bit_identical(resumed.model.state(), uninterrupted));
  fs::remove_all(dir);
}
