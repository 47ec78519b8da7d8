// Modules and models: PyTorch state_dict names, output shapes, initialisation,
// modes, freezing, cloning, device/dtype moves, state round trips, and
// parameter counts against formulas and against the study's table.
#define BOOST_TEST_MODULE layers
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "layers/basic.h"
#include "layers/batch_norm.h"
#include "layers/continual_model.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/models.h"
#include "tests/gradcheck.h"

using namespace layers;
using engine::DType;
using engine::Shape;
using testing::random_input;

namespace {

std::vector<std::string> names(const NamedTensors& tensors) {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors) out.push_back(name);
  return out;
}

// The names torch.nn.Sequential / torchvision give, with the tensors in order.
std::vector<std::string> torch_names(const std::vector<std::pair<std::string, std::string>>& modules) {
  std::vector<std::string> out;
  for (const auto& [prefix, kind] : modules) {
    out.push_back(prefix + ".weight");
    out.push_back(prefix + ".bias");
    if (kind == "bn") {
      out.push_back(prefix + ".running_mean");
      out.push_back(prefix + ".running_var");
    }
  }
  return out;
}

const ModelInit kNoInit{0, false};

}  // namespace

BOOST_AUTO_TEST_CASE(vgg19_state_dict_names_match_torchvision) {
  auto net = make_model("vgg19", parse_input("224x224x3"), 1000, kNoInit);
  std::vector<std::pair<std::string, std::string>> modules;
  for (int index : {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34})
    modules.emplace_back("features." + std::to_string(index), "conv");
  for (int index : {0, 3, 6}) modules.emplace_back("classifier." + std::to_string(index), "fc");
  BOOST_TEST(names(net->state_dict()) == torch_names(modules), boost::test_tools::per_element());
  // torchvision's vgg19 has 143,667,240 parameters.
  BOOST_TEST(count_parameters(*net).total == 143667240);
  BOOST_TEST(net->named_parameters().at(32).second.shape() == (Shape{4096, 25088}));
}

BOOST_AUTO_TEST_CASE(vgg11_bn_state_dict_names_match_torchvision) {
  auto net = make_model("vgg11_bn", parse_input("32x32x3"), 10, kNoInit);
  std::vector<std::pair<std::string, std::string>> modules;
  for (int index : {0, 4, 8, 11, 15, 18, 22, 25}) {
    modules.emplace_back("features." + std::to_string(index), "conv");
    modules.emplace_back("features." + std::to_string(index + 1), "bn");
  }
  for (int index : {0, 3, 6}) modules.emplace_back("classifier." + std::to_string(index), "fc");
  BOOST_TEST(names(net->state_dict()) == torch_names(modules), boost::test_tools::per_element());
  // torchvision's avgpool replicates the 1x1 map of a 32x32 input to 7x7: fc1 takes 25088;
  // the compact variant has no avgpool and takes 512 * 1 * 1.
  BOOST_TEST(net->named_parameters().at(32).second.shape() == (Shape{4096, 25088}));
  auto compact = make_model("vgg11_bn_compact", parse_input("32x32x3"), 10, kNoInit);
  BOOST_TEST(names(compact->state_dict()) == names(net->state_dict()), boost::test_tools::per_element());
  BOOST_TEST(compact->named_parameters().at(32).second.shape() == (Shape{4096, 512}));
}

BOOST_AUTO_TEST_CASE(sena32_layout_and_shapes) {
  auto net = make_model("sena32", parse_input("32x32x3"), 10, {7, true});
  std::vector<std::pair<std::string, std::string>> modules;
  for (int index : {0, 2, 6, 9, 13, 14}) modules.emplace_back(std::to_string(index), "w");
  BOOST_TEST(names(net->state_dict()) == torch_names(modules), boost::test_tools::per_element());
  BOOST_TEST(net->named_parameters().at(8).second.shape() == (Shape{512, 5184}));  // issue 3's benchmark CNN
  BOOST_TEST(net->child(5).type_name() == "Dropout");
  BOOST_TEST(net->child(8).type_name() == "Dropout");
  BOOST_TEST(net->child(11).type_name() == "Dropout");
  net->eval();
  engine::Generator gen(1);
  Tensor x = random_input({2, 3, 32, 32}, gen).to(DType::f32);
  BOOST_TEST(net->forward(x).shape() == (Shape{2, 10}));

  auto fashion = make_model("sena32", parse_input("28x28x1"), 2, kNoInit);
  BOOST_TEST(fashion->named_parameters().at(8).second.shape() == (Shape{512, 3136}));
  BOOST_CHECK_THROW(make_model("sena32", parse_input("12x12x1"), 2, kNoInit), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(vgg_runs_on_small_inputs_and_config_strings) {
  engine::Generator gen(2);
  // 28x28x1: the fifth pool meets a 1-pixel map and keeps it.
  auto net = make_model("64,M,64,M,64,M,64,M,64,M:fc=16:bn", parse_input("28x28x1"), 3, {3, true});
  net->eval();
  Tensor x = random_input({2, 1, 28, 28}, gen).to(DType::f32);
  BOOST_TEST(net->forward(x).shape() == (Shape{2, 3}));
  const auto params = net->named_parameters();
  BOOST_TEST(params.back().first == "classifier.3.bias");
  BOOST_TEST(params.at(params.size() - 4).second.shape() == (Shape{16, 64}));
  BOOST_CHECK_THROW(make_model("vgg20", parse_input("32x32x3"), 10, kNoInit), std::invalid_argument);
  BOOST_CHECK_THROW(make_model("64,X", parse_input("32x32x3"), 10, kNoInit), std::invalid_argument);
  BOOST_CHECK_THROW(parse_input("32x32"), std::invalid_argument);
  BOOST_CHECK_THROW(parse_input("32x-1x3"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(default_init_bounds_and_seeding) {
  engine::Generator gen(3);
  Linear linear(100, 7, true, &gen);
  const double bound = 1.0 / std::sqrt(100.0);
  double largest = 0;
  for (double v : linear.weight().to_double_vector()) largest = std::max(largest, std::abs(v));
  BOOST_TEST(largest <= bound);
  BOOST_TEST(largest > 0.9 * bound);  // a uniform fill reaches close to its bound
  Conv2d conv(4, 5, 3, 1, 1, true, &gen);
  for (double v : conv.bias().to_double_vector()) BOOST_TEST(std::abs(v) <= 1.0 / 6.0);  // 1/sqrt(4*9)
  auto a = make_model("tiny", parse_input("8x8x1"), 3, {11, true});
  auto b = make_model("tiny", parse_input("8x8x1"), 3, {11, true});
  auto c = make_model("tiny", parse_input("8x8x1"), 3, {12, true});
  BOOST_TEST(a->state_dict()[0].second.to_double_vector() == b->state_dict()[0].second.to_double_vector());
  BOOST_TEST(a->state_dict()[0].second.to_double_vector() != c->state_dict()[0].second.to_double_vector());
}

BOOST_AUTO_TEST_CASE(state_dict_round_trip_and_load_errors) {
  auto a = make_model("tiny", parse_input("8x8x1"), 3, {1, true});
  auto b = make_model("tiny", parse_input("8x8x1"), 3, {2, true});
  // In memory every name must be the model's (PyTorch's num_batches_tracked
  // counters are for load_npz_state_dict, tests/test_torchvision.cpp).
  const NamedTensors state = a->state_dict();
  b->load_state_dict(state);
  for (size_t i = 0; i < a->state_dict().size(); ++i)
    BOOST_TEST(a->state_dict()[i].second.to_double_vector() == b->state_dict()[i].second.to_double_vector());

  auto c = make_model("tiny", parse_input("8x8x1"), 3, {3, true});
  const std::vector<double> before = c->state_dict()[0].second.to_double_vector();
  NamedTensors missing(state.begin() + 1, state.end());
  BOOST_CHECK_THROW(c->load_state_dict(missing), std::invalid_argument);
  NamedTensors wrong_shape = state;
  wrong_shape.back().second = Tensor::zeros({5});
  wrong_shape[0].second = Tensor::zeros({1, 1});
  BOOST_CHECK_THROW(c->load_state_dict(wrong_shape), std::invalid_argument);
  NamedTensors extra = state;
  extra.emplace_back("99.weight", Tensor::zeros({1}));
  BOOST_CHECK_THROW(c->load_state_dict(extra), std::invalid_argument);
  c->load_state_dict(extra, /*allow_unused=*/true);
  BOOST_TEST(c->state_dict()[0].second.to_double_vector() == a->state_dict()[0].second.to_double_vector());
  BOOST_TEST(before != a->state_dict()[0].second.to_double_vector());
}

BOOST_AUTO_TEST_CASE(modes_freezing_dtype_and_clone) {
  auto net = make_model("tiny", parse_input("8x8x2"), 3, {4, true});
  net->eval();
  for (const auto& [name, child] : net->children()) BOOST_TEST(!child->is_training());
  net->train();
  BOOST_TEST(net->child(1).is_training());

  net->freeze();
  BOOST_TEST(net->trainable_parameters().empty());
  net->child(9).unfreeze();
  BOOST_TEST(names(net->named_trainable_parameters()) == (std::vector<std::string>{"9.weight", "9.bias"}),
             boost::test_tools::per_element());
  const ParameterCounts counts = count_parameters(*net);
  BOOST_TEST(counts.trainable == 16 * 2 * 2 * 32 + 32);
  BOOST_TEST(counts.frozen == counts.total - counts.trainable);
  BOOST_TEST(counts.by_type.at("Conv2d") == (8 * 2 * 9 + 8) + (16 * 8 * 9 + 16));
  BOOST_TEST(counts.by_type.at("BatchNorm2d") == 2 * (8 + 16));
  BOOST_TEST(counts.features == counts.by_type.at("Conv2d") + counts.by_type.at("BatchNorm2d"));

  // to(DType) converts in place: handles kept elsewhere see it.
  Tensor weight = net->state_dict()[0].second;
  net->to(DType::f64);
  BOOST_TEST((weight.dtype() == DType::f64));
  engine::Generator gen(5);
  Tensor x = random_input({2, 2, 8, 8}, gen);
  net->eval();
  auto copy = net->clone();
  const std::vector<double> y = net->forward(x).to_double_vector();
  BOOST_TEST(copy->forward(x).to_double_vector() == y);
  // The clone is independent: changing it leaves the original alone.
  Tensor copy_weight = copy->state_dict()[0].second;
  copy_weight.copy_(Tensor::zeros(copy_weight.shape(), DType::f64));
  BOOST_TEST(net->forward(x).to_double_vector() == y);
  BOOST_TEST(!copy->state_dict()[0].second.requires_grad());  // frozen stays frozen
}

BOOST_AUTO_TEST_CASE(frozen_batch_norm_keeps_its_statistics) {
  BatchNorm2d bn(3);
  engine::Generator gen(6);
  Tensor x = random_input({4, 3, 2, 2}, gen).to(DType::f32);
  bn.train();
  bn.forward(x);
  const std::vector<double> mean = bn.running_mean().to_double_vector();
  BOOST_TEST(mean != std::vector<double>(3, 0.0));  // training updates them
  bn.freeze();
  const Tensor y = bn.forward(x);  // training mode, but frozen: running statistics normalise
  BOOST_TEST(bn.running_mean().to_double_vector() == mean);
  bn.eval();
  BOOST_TEST(bn.forward(x).to_double_vector() == y.to_double_vector());
}

// Sequential runs a ReLU in place after a layer whose output nothing else
// reads (engine::relu_), or, after batch norm, inside batch norm's op
// (engine::batch_norm2d_relu). Against the modules run one by one (ReLU out
// of place): the same output and the same gradients, bit for bit, in training
// with batch statistics and in evaluation.
BOOST_AUTO_TEST_CASE(sequential_in_place_relu_matches_module_by_module) {
  BOOST_TEST(Conv2d(1, 1, 1, 1, 0, true, nullptr).fresh_output());
  BOOST_TEST(Linear(1, 1, true, nullptr).fresh_output());
  BOOST_TEST(BatchNorm2d(1).fresh_output());
  BOOST_TEST(!ReLU().fresh_output());
  BOOST_TEST(!Dropout(0.5, 1).fresh_output());

  engine::Generator gen(8);
  auto fused = std::make_shared<Sequential>();
  fused->add(std::make_shared<Conv2d>(2, 3, 3, 1, 1, true, nullptr))
      .add(std::make_shared<BatchNorm2d>(3))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<Conv2d>(3, 3, 3, 1, 1, true, nullptr))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<Flatten>())
      .add(std::make_shared<Linear>(3 * 4 * 4, 5, true, nullptr))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<Linear>(5, 2, true, nullptr));
  fused->reset_all(gen);
  for (bool training : {true, false}) {
    const std::shared_ptr<Module> copy = fused->clone();
    fused->train(training);
    copy->train(training);
    const Tensor x = random_input({3, 2, 4, 4}, gen).to(DType::f32);
    const Tensor y_fused = fused->forward(x);
    {
      // Batch norm then ReLU is one node.
      Sequential bn_relu;
      bn_relu.add(fused->children()[1].second).add(std::make_shared<ReLU>());
      const Tensor h = fused->children()[0].second->forward(x);
      BOOST_TEST(bn_relu.forward(h).impl()->grad_fn->op ==
                 (training ? "batch_norm2d_relu" : "batch_norm2d_relu_eval"));
    }
    Tensor y_plain = x;
    for (const auto& [name, child] : copy->children()) y_plain = child->forward(y_plain);
    BOOST_TEST(y_fused.to_double_vector() == y_plain.to_double_vector(), boost::test_tools::per_element());
    engine::sum(engine::mul(y_fused, y_fused)).backward();
    engine::sum(engine::mul(y_plain, y_plain)).backward();
    const NamedTensors a = fused->named_trainable_parameters(), b = copy->named_trainable_parameters();
    BOOST_TEST_REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      BOOST_TEST_REQUIRE(a[i].second.grad().defined(), a[i].first);
      BOOST_TEST(a[i].second.grad().to_double_vector() == b[i].second.grad().to_double_vector(),
                 a[i].first << (training ? " (training)" : " (evaluation)") << boost::test_tools::per_element());
    }
    for (auto [name, p] : fused->named_trainable_parameters()) p.zero_grad();
  }
}

BOOST_AUTO_TEST_CASE(dropout_is_seeded_and_counted) {
  Dropout a(0.5, 9), b(0.5, 9);
  Tensor x = Tensor::full({64}, 1.0);
  const auto first = a.forward(x).to_double_vector();
  BOOST_TEST(b.forward(x).to_double_vector() == first);
  BOOST_TEST(a.forward(x).to_double_vector() != first);  // the counter moved on
  BOOST_TEST(a.named_counters().at(0).second == 2u);
  b.load_counters(a.named_counters());
  BOOST_TEST(b.forward(x).to_double_vector() == a.forward(x).to_double_vector());
  a.eval();
  BOOST_TEST(a.forward(x).to_double_vector() == x.to_double_vector());
}

// ---- parameter counts ------------------------------------------------------------

namespace {
ParameterCounts counts_for_second_task(const std::string& arch, const std::string& input, int64_t classes,
                                       ContinualOptions options) {
  options.initialise = false;
  ContinualModel model(make_model(arch, parse_input(input), classes, kNoInit), options);
  model.add_task(classes);
  model.add_task(classes);
  return model.counts();
}
}  // namespace

BOOST_AUTO_TEST_CASE(adapter_counts_match_formulas) {
  engine::Generator gen(7);
  BOOST_TEST(count_parameters(LoRA(100, 30, 4, 1.0, 0.0, 0, &gen)).total == 4 * (100 + 30));
  BOOST_TEST(count_parameters(ConvLoRA(512, 512, 3, 16, 1.0, &gen)).total == 147456);  // the paper's example
  BOOST_TEST(count_parameters(ConvLoRA(3, 32, 3, 2, 1.0, &gen)).total == 2 * 9 * (3 + 32));
  BOOST_TEST(count_parameters(CPConvLoRA(16, 32, 3, 3, 2, 1.0, false, &gen)).total == 2 * (32 + 3 + 3));
  BOOST_TEST(count_parameters(CPConvLoRA(16, 32, 3, 5, 2, 1.0, true, &gen)).total == 2 * (32 + 3 + 5 + 16));

  // sena32 on 32x32x3, cp-lora rank 2 on every conv, LoRA rank 4 on fc1, 10 classes per task.
  ContinualOptions options;
  options.method = Method::cp_lora;
  options.adapters.rank_conv = 2;
  options.adapters.rank_fc = 4;
  const ParameterCounts c = counts_for_second_task("sena32", "32x32x3", 10, options);
  BOOST_TEST(c.trainable_features == 2 * 2 * (32 + 3 + 3) + 2 * 2 * (64 + 3 + 3));
  BOOST_TEST(c.trainable_classifier == 4 * (5184 + 512) + (512 * 10 + 10));
  BOOST_TEST(c.per_task.at(1) == c.trainable);
  BOOST_TEST(c.by_type.at("CPConvLoRA") == c.trainable_features);
}

BOOST_AUTO_TEST_CASE(paper_table_vgg19_224_200_classes) {
  ContinualOptions conv_only;
  conv_only.method = Method::lora;
  conv_only.adapters.where = parse_adapt("conv");
  const std::vector<std::pair<int64_t, int64_t>> expected = {
      {1, 94491}, {3, 283473}, {6, 566946}, {9, 850419}, {12, 1133892}, {24, 2267784}};
  for (const auto& [rank, trainable] : expected) {
    conv_only.adapters.rank_conv = rank;
    const ParameterCounts c = counts_for_second_task("vgg19", "224x224x3", 200, conv_only);
    BOOST_TEST(c.trainable_features == trainable, "convlora-" << rank);
    BOOST_TEST(c.trainable_classifier == 819400);
  }
  ContinualOptions finetune;
  finetune.method = Method::finetune_head;
  BOOST_TEST(counts_for_second_task("vgg19", "224x224x3", 200, finetune).trainable == 819400);
  finetune.method = Method::finetune_fc;
  finetune.finetune_fc_layers = 2;
  BOOST_TEST(counts_for_second_task("vgg19", "224x224x3", 200, finetune).trainable == 17600712);
  finetune.finetune_fc_layers = 3;
  BOOST_TEST(counts_for_second_task("vgg19", "224x224x3", 200, finetune).trainable == 120365256);

  ContinualOptions fc;
  fc.method = Method::lora;
  fc.adapters.where = parse_adapt("fc");
  fc.adapters.rank_fc = 30;
  BOOST_TEST(counts_for_second_task("vgg19", "224x224x3", 200, fc).trainable == 1940680);
  fc.adapters.where = parse_adapt("fc,head");
  BOOST_TEST(counts_for_second_task("vgg19", "224x224x3", 200, fc).trainable == 2069560);
  ContinualOptions both;
  both.adapters.where = parse_adapt("all");
  both.adapters.rank_conv = 9;
  both.adapters.rank_fc = 30;
  BOOST_TEST(counts_for_second_task("vgg19", "224x224x3", 200, both).trainable == 2791099);
}

BOOST_AUTO_TEST_CASE(adapt_and_method_parsing) {
  const AdapterPlacement p = parse_adapt("last-4,fc");
  BOOST_TEST(p.conv_layers == 4);
  BOOST_TEST(p.dense);
  BOOST_TEST(!p.head);
  BOOST_TEST(parse_adapt("conv").conv_layers == -1);
  BOOST_TEST(!parse_adapt("conv").dense);
  BOOST_CHECK_THROW(parse_adapt("last-0"), std::invalid_argument);
  BOOST_CHECK_THROW(parse_adapt("everything"), std::invalid_argument);
  for (const char* name : {"naive", "joint", "finetune-head", "finetune-fc", "lora", "cp-lora", "sena"})
    BOOST_TEST(to_string(parse_method(name)) == name);
  BOOST_CHECK_THROW(parse_method("ewc"), std::invalid_argument);
}
