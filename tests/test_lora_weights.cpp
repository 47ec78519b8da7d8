// The weights contract of `model-tool run --lora` and scripts/compare_with_torch.py
// --lora: task 1 of a two-task ContinualModel (method lora, per-task heads) has
// exactly the names the script writes, loads from an .npz saved as PyTorch saves
// (num_batches_tracked after every batch norm, task 1's copies included) bit for
// bit, trains exactly task 1's adapters, batch-norm copies and head, and a
// factor under another name is refused with both names.
#define BOOST_TEST_MODULE lora_weights
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/npz.h"
#include "engine/ops.h"
#include "layers/continual_model.h"
#include "layers/models.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using engine::Tensor;
using layers::NamedTensors;

namespace {

using testing::TempDir;

// A fresh directory, removed with everything in it at the end of the test.
// What model-tool builds for --lora --arch tiny --input 8x8x3 --classes 3 --rank 2 --rank-fc 3.
std::unique_ptr<layers::ContinualModel> tiny_task_1(bool initialise) {
  layers::ContinualOptions options;
  options.method = layers::Method::lora;
  options.head = layers::HeadMode::per_task;
  options.adapters.rank_conv = 2;
  options.adapters.rank_fc = 3;
  options.adapters.alpha = 4;
  options.initialise = initialise;
  auto model = std::make_unique<layers::ContinualModel>(
      layers::make_model("tiny", layers::parse_input("8x8x3"), 3, {1, initialise}), options);
  model->add_task(3);
  model->add_task(3);
  return model;
}

std::vector<std::string> names(const NamedTensors& tensors) {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors) out.push_back(name);
  return out;
}

// Every tensor random (B non-zero too, so that A's gradient is not zero); in
// [0.5, 1.5) so that running variances stay positive.
void randomise(layers::ContinualModel& model, engine::Generator& gen) {
  NamedTensors values;
  for (const auto& [name, t] : model.state_dict()) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (float& x : v) x = static_cast<float>(gen.uniform(0.5, 1.5));
    values.emplace_back(name, Tensor::from_vector(t.shape(), v));
  }
  model.load_state_dict(values);
}

// The state_dict as PyTorch saves it: an int64 "<bn>.num_batches_tracked" after each running_var.
engine::NamedArrays torch_style(const NamedTensors& state) {
  engine::NamedArrays arrays;
  for (const auto& [name, t] : state) {
    arrays.emplace_back(name, engine::to_npy(t));
    if (name.ends_with(".running_var")) {
      const int64_t batches = 3;
      arrays.emplace_back(name.substr(0, name.size() - 11) + "num_batches_tracked",
                          engine::to_npy(engine::Shape{}, std::span<const int64_t>(&batches, 1)));
    }
  }
  return arrays;
}

// Logits, then every trainable tensor's gradient, of one training-mode batch.
std::vector<std::vector<double>> forward_backward(layers::ContinualModel& model) {
  engine::Generator gen(7);
  std::vector<float> x(4 * 3 * 8 * 8);
  for (float& v : x) v = static_cast<float>(gen.normal());
  const std::vector<int64_t> labels = {0, 2, 1, 2};
  model.train();
  const layers::ForwardResult out = model.forward(Tensor::from_vector({4, 3, 8, 8}, x));
  engine::cross_entropy(out.logits, labels, out.class_mask).backward();
  std::vector<std::vector<double>> result = {out.logits.to_double_vector()};
  for (const auto& [name, p] : model.named_trainable_parameters()) result.push_back(p.grad().to_double_vector());
  return result;
}

}  // namespace

BOOST_AUTO_TEST_CASE(task_1_has_the_names_compare_with_torch_writes) {
  const auto model = tiny_task_1(false);
  const std::vector<std::string> expected = {
      "0.weight", "0.bias", "0.adapters.1.A", "0.adapters.1.B",
      "1.weight", "1.bias", "1.running_mean", "1.running_var",
      "1.tasks.1.weight", "1.tasks.1.bias", "1.tasks.1.running_mean", "1.tasks.1.running_var",
      "4.weight", "4.bias", "4.adapters.1.A", "4.adapters.1.B",
      "5.weight", "5.bias", "5.running_mean", "5.running_var",
      "5.tasks.1.weight", "5.tasks.1.bias", "5.tasks.1.running_mean", "5.tasks.1.running_var",
      "9.weight", "9.bias", "9.adapters.1.A", "9.adapters.1.B",
      "11.weight", "11.bias", "11.tasks.1.weight", "11.tasks.1.bias"};
  BOOST_TEST(names(model->state_dict()) == expected, boost::test_tools::per_element());
  const std::vector<std::string> trainable = {
      "0.adapters.1.A", "0.adapters.1.B", "1.tasks.1.weight", "1.tasks.1.bias",
      "4.adapters.1.A", "4.adapters.1.B", "5.tasks.1.weight", "5.tasks.1.bias",
      "9.adapters.1.A", "9.adapters.1.B", "11.tasks.1.weight", "11.tasks.1.bias"};
  BOOST_TEST(names(model->named_trainable_parameters()) == trainable, boost::test_tools::per_element());
  // ConvLoRA's shapes: A (R*K, C*K), B (OC*K, R*K); LoRA's: A (R, IN), B (OUT, R).
  for (const auto& [name, t] : model->state_dict()) {
    if (name == "0.adapters.1.A") BOOST_TEST(t.shape() == (engine::Shape{6, 9}), boost::test_tools::per_element());
    if (name == "4.adapters.1.B") BOOST_TEST(t.shape() == (engine::Shape{48, 6}), boost::test_tools::per_element());
    if (name == "9.adapters.1.A") BOOST_TEST(t.shape() == (engine::Shape{3, 64}), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(torch_style_npz_loads_bit_for_bit_and_gives_the_same_gradients) {
  TempDir dir("test_lora_weights");
  auto source = tiny_task_1(true);
  engine::Generator gen(3);
  randomise(*source, gen);
  const fs::path file = dir.path / "W.npz";
  engine::save_npz(file, torch_style(source->state_dict()));

  auto target = tiny_task_1(false);
  const layers::LoadReport report = layers::load_npz_state_dict(target->network(), file);
  BOOST_TEST(report.loaded == 32);
  BOOST_TEST(report.batch_counters == 4);  // task 0's and task 1's copy of both batch norms
  const auto expected = forward_backward(*source);
  const auto got = forward_backward(*target);
  BOOST_TEST_REQUIRE(got.size() == 13u);  // logits and 12 gradients
  for (size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == expected[i]);  // bit for bit
  for (size_t i = 1; i < got.size(); ++i) {  // none is trivially zero
    double largest = 0;
    for (double v : got[i]) largest = std::max(largest, std::abs(v));
    BOOST_TEST(largest > 1e-6, "gradient " << i << " is zero");
  }
}

BOOST_AUTO_TEST_CASE(a_factor_under_another_name_is_refused_with_both_names) {
  TempDir dir("test_lora_weights");
  auto source = tiny_task_1(true);
  NamedTensors state = source->state_dict();
  for (auto& [name, t] : state)
    if (name == "0.adapters.1.A") name = "0.lora_A";  // loralib's name, not the engine's
  const fs::path file = dir.path / "W.npz";
  engine::save_npz(file, state);
  auto target = tiny_task_1(false);
  std::string message;
  try {
    layers::load_npz_state_dict(target->network(), file);
  } catch (const std::invalid_argument& e) {
    message = e.what();
  }
  BOOST_TEST(message.find("extra '0.lora_A' (6, 9)") != std::string::npos, message);
  BOOST_TEST(message.find("missing '0.adapters.1.A' (6, 9)") != std::string::npos, message);
}
