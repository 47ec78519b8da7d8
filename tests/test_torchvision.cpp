// torchvision's VGG layouts and moving weights in and out: names, shapes and
// parameter counts of every vggNN[_bn] against torchvision's (the listing in
// ../shared/reference/torchvision-vgg.md, and hard-coded counts that run
// everywhere), the adaptive pool that replicates small maps, and
// load_npz_state_dict: round trips, PyTorch's num_batches_tracked, and files
// that do not fit (missing, extra, mis-shaped), refused with names and shapes.
#define BOOST_TEST_MODULE torchvision
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "engine/npz.h"
#include "engine/ops.h"
#include "layers/basic.h"
#include "layers/continual_model.h"
#include "layers/models.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"

using namespace layers;
using engine::DType;
using engine::NamedArrays;
using engine::Shape;
using testing::random_input;
namespace fs = std::filesystem;

namespace {

using testing::TempDir;

const ModelInit kNoInit{0, false};

// ../shared beside the source tree (meson test sets PROJECT_SOURCE_DIR).
fs::path listing_path() {
  const char* root = std::getenv("PROJECT_SOURCE_DIR");
  const fs::path source = root ? fs::path(root) : fs::path(__FILE__).parent_path() / "..";
  return source / ".." / "shared" / "reference" / "torchvision-vgg.md";
}

boost::test_tools::assertion_result listing_present(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result result(fs::is_regular_file(listing_path()));
  result.message() << "SKIPPED: " << listing_path().string() << " not found (the ../shared folder is absent)";
  return result;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// "(4096, 25088)" -> {4096, 25088}; "(64,)" -> {64}; "()" -> {}.
Shape parse_shape(const std::string& text) {
  Shape shape;
  std::stringstream in(text.substr(1, text.size() - 2));
  std::string part;
  while (std::getline(in, part, ','))
    if (part.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(part));
  return shape;
}

struct ListedTensor {
  std::string name;
  Shape shape;
  std::string dtype;
};

// The listing's "name (shape) dtype" lines.
std::vector<ListedTensor> listed_vgg19_bn_100() {
  const std::regex line(R"(^(\S+) (\([0-9, ]*\)) (float32|int64)$)");
  std::vector<ListedTensor> out;
  std::stringstream in(read_text(listing_path()));
  std::string text;
  std::smatch m;
  while (std::getline(in, text))
    if (std::regex_match(text, m, line)) out.push_back({m[1], parse_shape(m[2]), m[3]});
  return out;
}

// The listing's parameter-count table: model -> classes -> count.
std::map<std::string, std::map<int64_t, int64_t>> listed_counts() {
  const std::regex row(R"(^\| (vgg\d+(_bn)?) \| ([0-9,]+) \| ([0-9,]+) \| ([0-9,]+) \| ([0-9,]+) \|$)");
  const auto number = [](std::string s) {
    std::erase(s, ',');
    return std::stoll(s);
  };
  std::map<std::string, std::map<int64_t, int64_t>> out;
  std::stringstream in(read_text(listing_path()));
  std::string text;
  std::smatch m;
  while (std::getline(in, text))
    if (std::regex_match(text, m, row))
      out[m[1]] = {{10, number(m[3])}, {100, number(m[4])}, {200, number(m[5])}, {1000, number(m[6])}};
  return out;
}

std::vector<std::string> vgg_names() {
  std::vector<std::string> out;
  for (const char* depth : {"11", "13", "16", "19"})
    for (const char* suffix : {"", "_bn"}) out.push_back(std::string("vgg") + depth + suffix);
  return out;
}

// What `what` throws as std::invalid_argument; empty when it throws nothing.
template <class F>
std::string invalid_argument_of(F what) {
  try {
    what();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::vector<double>> values(const Module& model) {
  std::vector<std::vector<double>> out;
  for (const auto& [name, t] : model.state_dict()) out.push_back(t.to_double_vector());
  return out;
}

// A small VGG with torchvision's layout (batch norm, avgpool 7x7 on a 2x2 map),
// 3 classes: quick to build, save and load.
std::shared_ptr<Sequential> small_vgg(uint64_t seed, int64_t classes = 3) {
  return make_model("8,M,16,M:fc=16:bn:pool=7", parse_input("8x8x3"), classes, {seed, true});
}

// The model's state_dict as PyTorch saves it: with an int64 scalar
// "<bn>.num_batches_tracked" after each batch norm's running_var.
NamedArrays torch_style_arrays(const Module& model) {
  NamedArrays arrays;
  for (const auto& [name, t] : model.state_dict()) {
    arrays.emplace_back(name, engine::to_npy(t));
    if (name.ends_with(".running_var")) {
      const int64_t batches = 7;
      arrays.emplace_back(name.substr(0, name.size() - 11) + "num_batches_tracked",
                          engine::to_npy(Shape{}, std::span<const int64_t>(&batches, 1)));
    }
  }
  return arrays;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layouts)

BOOST_AUTO_TEST_CASE(vgg19_bn_names_and_shapes_match_the_torchvision_listing,
                     *boost::unit_test::precondition(listing_present)) {
  const std::vector<ListedTensor> listed = listed_vgg19_bn_100();
  BOOST_TEST_REQUIRE(listed.size() == 16u * 7 + 6);  // 16 conv + bn blocks, 3 Linear
  // At 32x32 as at 224x224: torchvision's layout does not depend on the input size.
  for (const char* input : {"32x32x3", "224x224x3"}) {
    BOOST_TEST_CONTEXT("vgg19_bn at " << input) {
      auto net = make_model("vgg19_bn", parse_input(input), 100, kNoInit);
      const NamedTensors state = net->state_dict();
      size_t at = 0;
      for (const ListedTensor& want : listed) {
        // num_batches_tracked is PyTorch's int64 counter, not kept here (batch_norm.h).
        if (want.dtype == "int64") {
          BOOST_TEST(want.name.ends_with(".num_batches_tracked"));
          BOOST_TEST(want.shape.empty());
          continue;
        }
        BOOST_TEST_REQUIRE(at < state.size());
        BOOST_TEST(state[at].first == want.name);
        BOOST_TEST(state[at].second.shape() == want.shape, want.name);
        BOOST_TEST((state[at].second.dtype() == DType::f32));
        ++at;
      }
      BOOST_TEST(at == state.size());
    }
  }
}

BOOST_AUTO_TEST_CASE(every_vgg_has_torchvisions_parameter_count, *boost::unit_test::precondition(listing_present)) {
  const auto counts = listed_counts();
  BOOST_TEST_REQUIRE(counts.size() == 8u);
  for (const std::string& arch : vgg_names())
    for (const auto& [classes, want] : counts.at(arch))
      BOOST_TEST(count_parameters(*make_model(arch, parse_input("32x32x3"), classes, kNoInit)).total == want,
                 arch << " with " << classes << " classes");
}

BOOST_AUTO_TEST_CASE(torchvision_counts_at_every_input_size) {
  // torchvision's figures (../shared/reference/torchvision-vgg.md), which do not depend on the input.
  for (const char* input : {"32x32x3", "64x48x3", "224x224x3"}) {
    BOOST_TEST(count_parameters(*make_model("vgg19_bn", parse_input(input), 100, kNoInit)).total == 139990948,
               input);
    BOOST_TEST(count_parameters(*make_model("vgg11", parse_input(input), 10, kNoInit)).total == 128807306, input);
  }
  // One input channel: the first conv has 2 * 64 * 3 * 3 weights fewer.
  BOOST_TEST(count_parameters(*make_model("vgg11", parse_input("28x28x1"), 10, kNoInit)).total ==
             128807306 - 2 * 64 * 9);
  BOOST_TEST(count_parameters(*make_model("vgg16_bn", parse_input("224x224x3"), 1000, kNoInit)).total == 138365992);
  BOOST_TEST(count_parameters(*make_model("vgg13", parse_input("224x224x3"), 200, kNoInit)).total == 129770248);
  // The compact variant: no avgpool, the classifier takes 512 * 1 * 1 at 32x32
  // (the figure the issue quotes for the study's small-input VGG).
  auto compact = make_model("vgg19_bn_compact", parse_input("32x32x3"), 100, kNoInit);
  BOOST_TEST(count_parameters(*compact).total == 39327652);
  BOOST_TEST(compact->find_child("avgpool") == nullptr);
  // At 224x224 the compact variant has torchvision's tensors (no avgpool needed: the map is 7x7).
  BOOST_TEST(count_parameters(*make_model("vgg19_bn_compact", parse_input("224x224x3"), 100, kNoInit)).total ==
             139990948);
  auto torchvision = make_model("vgg19_bn", parse_input("32x32x3"), 100, kNoInit);
  BOOST_TEST_REQUIRE(torchvision->find_child("avgpool") != nullptr);
  BOOST_TEST(torchvision->find_child("avgpool")->describe() == "AdaptiveAvgPool2d(output_size=(7, 7))");
  BOOST_TEST(invalid_argument_of([] { make_model("vgg19_compact_bn", parse_input("32x32x3"), 10, kNoInit); })
                 .starts_with("unknown arch 'vgg19_compact_bn'"));
}

BOOST_AUTO_TEST_CASE(a_small_torchvision_layout_runs_and_pools_a_2x2_map_to_7x7) {
  auto net = small_vgg(1);
  net->eval();
  engine::Generator gen(5);
  const Tensor x = random_input({2, 3, 8, 8}, gen).to(DType::f32);
  BOOST_TEST(net->forward(x).shape() == (Shape{2, 3}));
  BOOST_TEST(net->named_parameters().at(8).second.shape() == (Shape{16, 16 * 7 * 7}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(adaptive_pool)

// PyTorch's windows: output i of n over a size-H axis averages [floor(i*H/n), ceil((i+1)*H/n)).
BOOST_AUTO_TEST_CASE(a_map_smaller_than_the_output_is_replicated_as_pytorch_does) {
  AdaptiveAvgPool2d pool(7, 7);
  const Tensor one = Tensor::from_vector({1, 1, 1, 1}, std::span<const double>(std::vector<double>{2.5}));
  BOOST_TEST(pool.forward(one).to_double_vector() == std::vector<double>(49, 2.5), boost::test_tools::per_element());
  // A 1x2 map to 1x7: windows [0,1) x3, [0,2), [1,2) x3.
  const Tensor row = Tensor::from_vector({1, 1, 1, 2}, std::span<const double>(std::vector<double>{1, 3}));
  BOOST_TEST(engine::adaptive_avg_pool2d(row, 1, 7).to_double_vector() ==
                 (std::vector<double>{1, 1, 1, 2, 3, 3, 3}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(gradients_when_replicating) {
  engine::Generator gen(9);
  testing::check_gradients("adaptive_avg_pool2d 1x1->7x7",
                           [](const auto& t) { return engine::adaptive_avg_pool2d(t[0], 7, 7); },
                           {random_input({2, 3, 1, 1}, gen).set_requires_grad(true)});
  testing::check_gradients("adaptive_avg_pool2d 2x3->7x7",
                           [](const auto& t) { return engine::adaptive_avg_pool2d(t[0], 7, 7); },
                           {random_input({2, 2, 2, 3}, gen).set_requires_grad(true)});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(loading)

BOOST_AUTO_TEST_CASE(engine_to_npz_to_engine_is_bit_exact) {
  TempDir dir("test_torchvision");
  auto source = small_vgg(1);
  engine::Generator gen(2);
  source->train();
  source->forward(random_input({4, 3, 8, 8}, gen).to(DType::f32));  // non-trivial running statistics
  const fs::path file = dir.path / "weights.npz";
  engine::save_npz(file, source->state_dict());

  auto target = small_vgg(3);
  BOOST_TEST_REQUIRE(values(*target) != values(*source));
  const LoadReport report = load_npz_state_dict(*target, file);
  BOOST_TEST(report.loaded == static_cast<int64_t>(source->state_dict().size()));
  BOOST_TEST(report.skipped.empty());
  BOOST_TEST(report.batch_counters == 0);
  BOOST_TEST(values(*target) == values(*source));  // bit for bit
}

BOOST_AUTO_TEST_CASE(pytorchs_num_batches_tracked_is_checked_and_accepted) {
  TempDir dir("test_torchvision");
  auto source = small_vgg(1);
  const fs::path file = dir.path / "torch.npz";
  engine::save_npz(file, torch_style_arrays(*source));
  auto target = small_vgg(3);
  const LoadReport report = load_npz_state_dict(*target, file);
  BOOST_TEST(report.batch_counters == 2);
  BOOST_TEST(values(*target) == values(*source));
  BOOST_TEST(contains(report.describe(file), "2 num_batches_tracked counters checked"));

  // Only beside a batch norm's running statistics, and only as a 0-d integer.
  NamedArrays arrays = torch_style_arrays(*source);
  const int64_t one = 1;
  arrays.emplace_back("classifier.0.num_batches_tracked", engine::to_npy(Shape{}, std::span<const int64_t>(&one, 1)));
  engine::save_npz(file, arrays);
  BOOST_TEST(contains(invalid_argument_of([&] { load_npz_state_dict(*target, file); }),
                      "extra 'classifier.0.num_batches_tracked' ()"));
  arrays = torch_style_arrays(*source);
  arrays.at(6).second = engine::to_npy(Tensor::zeros({1}));  // features.1.num_batches_tracked as float (1)
  BOOST_TEST_REQUIRE(arrays.at(6).first == "features.1.num_batches_tracked");
  engine::save_npz(file, arrays);
  BOOST_TEST(contains(invalid_argument_of([&] { load_npz_state_dict(*target, file); }),
                      "'features.1.num_batches_tracked' is (1) <f4, expected a 0-d integer"));
}

BOOST_AUTO_TEST_CASE(missing_extra_and_mis_shaped_tensors_are_refused_with_names_and_shapes) {
  TempDir dir("test_torchvision");
  auto source = small_vgg(1);
  auto target = small_vgg(3);
  const auto before = values(*target);
  const fs::path file = dir.path / "bad.npz";
  const auto message_for = [&](const NamedArrays& arrays) {
    engine::save_npz(file, arrays);
    return invalid_argument_of([&] { load_npz_state_dict(*target, file); });
  };

  NamedArrays missing = torch_style_arrays(*source);
  missing.erase(missing.begin() + 4);  // features.1.running_mean
  std::string message = message_for(missing);
  BOOST_TEST(contains(message, file.string() + " does not fit the model (1 problem)"), message);
  BOOST_TEST(contains(message, "missing 'features.1.running_mean' (8): not in the file"), message);

  NamedArrays extra = torch_style_arrays(*source);
  extra.emplace_back("features.9.weight", engine::to_npy(Tensor::zeros({4, 8, 3, 3})));
  message = message_for(extra);
  BOOST_TEST(contains(message, "extra 'features.9.weight' (4, 8, 3, 3): the model has no such tensor"), message);

  NamedArrays mis_shaped = torch_style_arrays(*source);
  mis_shaped.at(0).second = engine::to_npy(Tensor::zeros({8, 3, 5, 5}));
  mis_shaped.at(1).second = engine::to_npy(Tensor::zeros({8}, DType::f64));
  message = message_for(mis_shaped);
  BOOST_TEST(contains(message, "(2 problems)"), message);
  BOOST_TEST(contains(message, "'features.0.weight' is (8, 3, 5, 5) in the file, the model has (8, 3, 3, 3) float32"),
             message);
  BOOST_TEST(contains(message, "'features.0.bias' is (8) <f8 in the file, the model has (8) float32"), message);

  // A head of another class count is mis-shaped when the file is the whole model.
  auto five_classes = small_vgg(1, 5);
  message = message_for(torch_style_arrays(*five_classes));
  BOOST_TEST(contains(message, "'classifier.3.weight' is (5, 16) in the file, the model has (3, 16) float32"), message);
  BOOST_TEST(values(*target) == before);  // nothing was written

  // Strict in-memory loading too: no name is accepted that the model lacks.
  NamedTensors tensors = source->state_dict();
  tensors.emplace_back("features.1.num_batches_tracked", Tensor::zeros({}));
  BOOST_TEST(contains(invalid_argument_of([&] { target->load_state_dict(tensors); }),
                      "unexpected 'features.1.num_batches_tracked'"));
}

BOOST_AUTO_TEST_CASE(a_backbone_loads_without_its_head) {
  TempDir dir("test_torchvision");
  // A backbone trained for 5 classes, loaded into a 3-class model and into a
  // continual model before its first task (its head has no blocks yet).
  auto backbone = small_vgg(1, 5);
  const fs::path file = dir.path / "backbone.npz";
  engine::save_npz(file, torch_style_arrays(*backbone));

  auto target = small_vgg(3);
  const std::vector<double> head_before = target->state_dict().back().second.to_double_vector();
  const LoadReport report = load_npz_state_dict(*target, file, FileHead::skip);
  BOOST_TEST(report.skipped == (std::vector<std::string>{"classifier.3.weight (5, 16)", "classifier.3.bias (5)"}),
             boost::test_tools::per_element());
  BOOST_TEST(report.loaded == static_cast<int64_t>(target->state_dict().size()) - 2);
  BOOST_TEST(target->state_dict().back().second.to_double_vector() == head_before);
  BOOST_TEST(target->state_dict().front().second.to_double_vector() ==
             backbone->state_dict().front().second.to_double_vector());
  BOOST_TEST(contains(report.describe(file), "not loaded: the file's head classifier.3.weight (5, 16)"));

  ContinualModel continual(small_vgg(4), ContinualOptions{});
  const LoadReport into_continual = load_npz_state_dict(continual.network(), file, FileHead::skip);
  BOOST_TEST(into_continual.loaded == static_cast<int64_t>(backbone->state_dict().size()) - 2);
  BOOST_TEST(continual.state_dict().front().second.to_double_vector() ==
             backbone->state_dict().front().second.to_double_vector());

  // Skipping the head does not relax anything else.
  NamedArrays arrays = torch_style_arrays(*backbone);
  arrays.erase(arrays.begin());
  engine::save_npz(file, arrays);
  BOOST_TEST(contains(invalid_argument_of([&] { load_npz_state_dict(continual.network(), file, FileHead::skip); }),
                      "missing 'features.0.weight' (8, 3, 3, 3)"));
}

BOOST_AUTO_TEST_CASE(set_dropout_sets_every_dropout_layer) {
  auto net = make_model("vgg11_bn_compact", parse_input("32x32x3"), 10, kNoInit);
  BOOST_TEST(set_dropout(*net, 0.0) == 2);
  BOOST_CHECK_THROW(set_dropout(*net, 1.0), std::invalid_argument);
  // With p = 0 a training-mode pass is deterministic: two passes agree.
  auto small = small_vgg(1);
  set_dropout(*small, 0.0);
  small->train();
  engine::Generator gen(3);
  const Tensor x = random_input({2, 3, 8, 8}, gen).to(DType::f32);
  BOOST_TEST(small->forward(x).to_double_vector() == small->forward(x).to_double_vector());
}

BOOST_AUTO_TEST_SUITE_END()
