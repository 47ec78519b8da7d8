// The study's protocol choices of the continual runner: adapters from the
// first task over a frozen backbone, the upper bound `separate`, branches
// copied from the previous task, per-task batch norm, adapter scaling both
// ways, the study's CIFAR-100 class order, resizing and ImageNet statistics,
// every conflicting pair of flags refused, and the rank sweep's cells, plot
// and per-rank results. Tiny networks on random inputs, or a few hundred
// Fashion-MNIST images where the whole runner is exercised.
#define BOOST_TEST_MODULE protocol
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "datasets/task_split.h"
#include "datasets/transforms.h"
#include "engine/init.h"
#include "engine/io.h"
#include "engine/npz.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "experiments/continual/config.h"
#include "experiments/continual/evaluate.h"
#include "experiments/continual/methods.h"
#include "experiments/continual/run.h"
#include "experiments/continual/sweep.h"
#include "experiments/continual/trainer.h"
#include "layers/adaptable.h"
#include "layers/continual_model.h"
#include "layers/conv2d.h"
#include "layers/models.h"
#include "tests/preconditions.h"
#include "tests/small_run.h"
#include "tests/temp_dir.h"

using namespace continual;
namespace fs = std::filesystem;
using engine::Tensor;

namespace {

using testing::TempDir;

bool same_bits(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_float_vector(), y = b.to_float_vector();
  return a.shape() == b.shape() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

std::map<std::string, Tensor> cloned(const engine::NamedTensors& tensors) {
  std::map<std::string, Tensor> copies;
  for (const auto& [name, t] : tensors) copies.emplace(name, t.clone());
  return copies;
}

std::map<std::string, Tensor> by_name(const engine::NamedTensors& tensors) {
  return {tensors.begin(), tensors.end()};
}

// A tiny BN network (2 conv + BN, 1 dense) over 8x8 grey images, as a continual model.
layers::ContinualModel tiny_model(layers::ContinualOptions options) {
  return layers::ContinualModel(layers::make_model("tiny", layers::parse_input("8x8x1"), 2, {7}), options);
}

// A few SGD steps of the current task on random images: moves every trainable tensor.
void train_a_little(layers::ContinualModel& model, uint64_t seed) {
  engine::Generator gen(seed);
  engine::SGD optimizer(model.trainable_parameters(), 0.1, 0.0, 0.0, 0.0);
  model.train();
  for (int step = 0; step < 3; ++step) {
    Tensor x = Tensor::zeros({4, 1, 8, 8});
    engine::normal_(x, 0, 1, gen);
    const layers::ForwardResult out = model.forward(x);
    std::vector<int64_t> labels = {0, 1, 1, 0};
    for (int64_t& l : labels) l += out.label_offset;
    optimizer.zero_grad();
    engine::cross_entropy(out.logits, labels, out.class_mask).backward();
    optimizer.step();
  }
}

// Arguments as the command line gives them, parsed and validated.
void parse_and_validate(std::vector<std::string> args) {
  RunConfig c;
  CLI::App app;
  add_flags(app, c);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  app.parse(args);
  validate(c);
}

using testing::fashion_mnist_present;
using testing::kFashionMnistDir;

RunConfig small_config(const fs::path& out) {
  RunConfig c = testing::small_run(out, 64, 40, 1);
  c.tasks = 3;
  c.class_order = "0,1,2,3,4,5";
  c.ranks = {2};
  c.rank_fc = 2;
  c.alpha = 2;
  c.threads = 2;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layers_level)

BOOST_AUTO_TEST_CASE(adapt_first_task_leaves_every_backbone_tensor_bit_identical) {
  for (const auto method : {layers::Method::lora, layers::Method::cp_lora}) {
    layers::ContinualOptions options;
    options.method = method;
    options.adapters.rank_conv = 2;
    options.adapters.rank_fc = 2;
    options.adapt_first_task = true;
    layers::ContinualModel model = tiny_model(options);
    // Before the first task: the backbone alone (the head has no blocks yet).
    const std::map<std::string, Tensor> backbone = cloned(model.state_dict());
    BOOST_REQUIRE(backbone.size() >= 10u);
    for (int64_t t = 0; t < 3; ++t) {
      model.add_task(2);
      // Task 0 trains no backbone tensor, only its own parts.
      for (const auto& [name, tensor] : model.named_trainable_parameters())
        BOOST_TEST(!backbone.contains(name), name << " of the backbone trains on task " << t);
      train_a_little(model, 10 + t);
    }
    const std::map<std::string, Tensor> after = by_name(model.state_dict());
    for (const auto& [name, tensor] : backbone) BOOST_TEST(same_bits(tensor, after.at(name)), name);
    // Task 0 did learn: its batch-norm copy moved away from the backbone's.
    BOOST_TEST(!same_bits(after.at("1.tasks.0.weight"), backbone.at("1.weight")));
  }
}

BOOST_AUTO_TEST_CASE(without_adapt_first_task_task0_trains_the_backbone) {
  // The counterpart: the test above would fail if the flag changed nothing.
  layers::ContinualOptions options;
  options.method = layers::Method::lora;
  layers::ContinualModel model = tiny_model(options);
  const std::map<std::string, Tensor> backbone = cloned(model.state_dict());
  model.add_task(2);
  train_a_little(model, 10);
  BOOST_TEST(!same_bits(backbone.at("0.weight"), by_name(model.state_dict()).at("0.weight")));
}

BOOST_AUTO_TEST_CASE(adapt_first_task_is_refused_for_methods_without_adapters) {
  layers::ContinualOptions options;
  options.method = layers::Method::sena;
  options.adapt_first_task = true;
  BOOST_CHECK_THROW(tiny_model(options), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(separate_starts_every_task_from_the_initial_network_and_stores_all_of_it) {
  layers::ContinualOptions options;
  options.method = layers::Method::separate;
  layers::ContinualModel model = tiny_model(options);
  const std::map<std::string, Tensor> initial = cloned(model.state_dict());
  model.add_task(2);
  const int64_t whole = model.counts().total;
  train_a_little(model, 1);
  const std::map<std::string, Tensor> task0 = cloned(model.state_dict());
  model.add_task(2);
  // Every layer is trained anew: the whole network plus a head block, all trainable.
  BOOST_TEST(model.counts().total == 2 * whole);
  BOOST_TEST(model.counts().trainable == whole);
  const std::map<std::string, Tensor> now = by_name(model.state_dict());
  int64_t compared = 0;
  for (const auto& [name, tensor] : initial) {
    const size_t dot = name.find('.');
    const std::string copy = name.substr(0, dot) + ".tasks.1" + name.substr(dot);
    BOOST_REQUIRE(now.contains(copy));
    BOOST_TEST(same_bits(now.at(copy), tensor), copy << " does not start from the initial " << name);
    ++compared;
  }
  BOOST_TEST(compared >= 10);
  train_a_little(model, 2);
  // Task 0's network is untouched by task 1's training.
  const std::map<std::string, Tensor> later = by_name(model.state_dict());
  for (const auto& [name, tensor] : task0) BOOST_TEST(same_bits(tensor, later.at(name)), name);
}

BOOST_AUTO_TEST_CASE(branch_init_copy_starts_from_the_previous_tasks_trained_branch) {
  for (const auto method : {layers::Method::sena, layers::Method::finetune_fc}) {
    for (const auto init : {layers::BranchInit::copy_previous, layers::BranchInit::fresh}) {
      layers::ContinualOptions options;
      options.method = method;
      options.branch_init = init;
      options.finetune_fc_layers = 2;  // the tiny net's hidden dense layer (9) and the head (11)
      layers::ContinualModel model = tiny_model(options);
      model.add_task(2);
      train_a_little(model, 3);
      model.add_task(2);
      train_a_little(model, 4);  // task 1's branch is trained: task 2's copy must be of these values
      const std::map<std::string, Tensor> before = cloned(model.state_dict());
      model.add_task(2);
      const std::map<std::string, Tensor> now = by_name(model.state_dict());
      int64_t copies = 0, equal = 0;
      for (const auto& [name, tensor] : now) {
        const size_t at = name.find(".tasks.2.");
        if (at == std::string::npos || name.starts_with("11."))
          continue;  // not a branch tensor, or the head's new block
        const std::string previous = name.substr(0, at) + ".tasks.1." + name.substr(at + 9);
        ++copies;
        equal += same_bits(tensor, before.at(previous));
      }
      BOOST_TEST(copies > 0);
      if (init == layers::BranchInit::copy_previous)
        BOOST_TEST(equal == copies, layers::to_string(method) << ": copy");
      else
        BOOST_TEST(equal < copies, layers::to_string(method) << ": fresh");
    }
  }
}

BOOST_AUTO_TEST_CASE(task_batch_norm_modes) {
  for (const auto mode : {layers::TaskBatchNorm::copy_previous_frozen, layers::TaskBatchNorm::copy_trainable,
                          layers::TaskBatchNorm::shared}) {
    layers::ContinualOptions options;
    options.method = layers::Method::lora;
    options.adapters.batch_norm = mode;
    layers::ContinualModel model = tiny_model(options);
    model.add_task(2);
    train_a_little(model, 5);
    model.add_task(2);
    const std::map<std::string, Tensor> now = by_name(model.state_dict());
    bool bn_trains = false;
    for (const auto& [name, tensor] : model.named_trainable_parameters()) bn_trains = bn_trains || name.starts_with("1.");
    switch (mode) {
      case layers::TaskBatchNorm::copy_previous_frozen:
        BOOST_TEST(same_bits(now.at("1.tasks.1.weight"), now.at("1.weight")));
        BOOST_TEST(same_bits(now.at("1.tasks.1.running_mean"), now.at("1.running_mean")));
        BOOST_TEST(!bn_trains);
        break;
      case layers::TaskBatchNorm::copy_trainable:
        BOOST_TEST(same_bits(now.at("1.tasks.1.weight"), now.at("1.weight")));
        BOOST_TEST(bn_trains);
        break;
      case layers::TaskBatchNorm::shared:
        BOOST_TEST(!now.contains("1.tasks.1.weight"));
        BOOST_TEST(!bn_trains);
        break;
    }
  }
}

BOOST_AUTO_TEST_CASE(scaling_alpha_over_r_and_r_over_alpha) {
  for (const auto rule : {layers::LoraScaling::alpha_over_r, layers::LoraScaling::r_over_alpha}) {
    layers::ContinualOptions options;
    options.method = layers::Method::lora;
    options.adapters.rank_conv = 4;
    options.adapters.rank_fc = 3;
    options.adapters.alpha = 2;
    options.adapters.scaling = rule;
    layers::ContinualModel model = tiny_model(options);
    model.add_task(2);
    model.add_task(2);
    const auto* conv = dynamic_cast<layers::AdaptableLayer*>(&model.network().child(0));
    BOOST_REQUIRE(conv != nullptr);
    BOOST_REQUIRE(conv->adapter(1) != nullptr);
    BOOST_TEST(conv->adapter(1)->scaling() == (rule == layers::LoraScaling::alpha_over_r ? 0.5 : 2.0));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(flags)

BOOST_AUTO_TEST_CASE(each_conflicting_pair_is_refused_naming_both_flags) {
  struct Pair {
    std::vector<std::string> args;
    std::string first, second;
  };
  const std::vector<Pair> pairs = {
      {{"--method", "sena", "--adapt-first-task", "--init", "x.npz"}, "--adapt-first-task", "--method"},
      {{"--method", "lora", "--adapt-first-task"}, "--adapt-first-task", "--init"},
      {{"--method", "lora", "--branch-init", "copy"}, "--branch-init", "--method"},
      {{"--method", "finetune-fc", "--shared-layers", "2"}, "--shared-layers", "--method"},
      {{"--method", "sena", "--finetune-layers", "3"}, "--finetune-layers", "--method"},
      {{"--method", "sena", "--task-bn", "shared"}, "--task-bn", "--method"},
      {{"--method", "naive", "--scaling", "r-over-alpha"}, "--scaling", "--method"},
      {{"--method", "sena", "--rank", "1,3"}, "--rank", "--method"},
      {{"--dataset", "mnist", "--class-order", "study"}, "--class-order", "--dataset"},
      {{"--dataset", "fashion-mnist", "--normalize", "imagenet"}, "--normalize", "--dataset"},
  };
  for (const Pair& p : pairs) {
    try {
      parse_and_validate(p.args);
      BOOST_ERROR("accepted: " << p.first << " with " << p.second);
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      BOOST_TEST(what.find(p.first) != std::string::npos, what);
      BOOST_TEST(what.find(p.second) != std::string::npos, what);
    }
  }
}

BOOST_AUTO_TEST_CASE(each_choice_is_accepted_with_a_method_that_uses_it) {
  const std::vector<std::vector<std::string>> accepted = {
      {"--method", "naive,lora", "--adapt-first-task", "--init", "x.npz"},
      {"--method", "sena", "--branch-init", "copy", "--shared-layers", "2"},
      {"--method", "finetune-fc", "--branch-init", "fresh", "--finetune-layers", "3"},
      {"--method", "cp-lora", "--task-bn", "copy-previous-frozen", "--scaling", "r-over-alpha"},
      {"--method", "lora,separate", "--rank", "1,3,9,12"},
      {"--dataset", "cifar100", "--class-order", "study", "--normalize", "imagenet", "--image-size", "64"},
      {"--lr-plateau", "4", "--patience", "5"},
      {"--lr-plateau", "2,0.5"},
  };
  for (const auto& args : accepted) BOOST_CHECK_NO_THROW(parse_and_validate(args));
}

BOOST_AUTO_TEST_CASE(malformed_values_are_refused) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--lr-plateau", "x"},
                                                                {"--lr-plateau", "3,1.5"},
                                                                {"--rank", "2,2"},
                                                                {"--method", "sena", "--branch-init", "previous"},
                                                                {"--normalize", "cifar"},
                                                                {"--image-size", "4"}})
    BOOST_CHECK_THROW(parse_and_validate(args), std::invalid_argument);
  const LrPlateau plateau = parse_lr_plateau("4,0.5");
  BOOST_TEST(plateau.patience == 4);
  BOOST_TEST(plateau.factor == 0.5);
  BOOST_TEST(parse_lr_plateau("4").factor == 0.1);
}

// Checked without a GPU: validate looks at the flags, the run at the device.
BOOST_AUTO_TEST_CASE(device_and_tf32_are_validated_and_recorded) {
  for (const std::string bad : {"gpu", "cuda:", "cuda:01", "cuda:-1", "cuda:1024"}) {
    RunConfig c;
    c.device = bad;
    testing::check_flag_refused(c, "--device");
  }
  RunConfig tf32_on_cpu;
  tf32_on_cpu.tf32 = true;
  testing::check_flag_refused(tf32_on_cpu, "--tf32");
  BOOST_CHECK_NO_THROW(parse_and_validate({"--device", "cuda", "--tf32"}));
  BOOST_CHECK_NO_THROW(parse_and_validate({"--device", "cuda:3", "--tf32"}));
  BOOST_CHECK_NO_THROW(parse_and_validate({"--device", "cuda:1"}));

  // The configuration says which GPU and mode; the setting (what decides the
  // numbers, which cells must share) names the kind, and TF32 only when on,
  // so cells of runs before --tf32 existed stay valid.
  RunConfig c;
  c.device = "cuda:3";
  c.tf32 = true;
  BOOST_TEST(config_json(c).at("device") == "cuda:3");
  BOOST_TEST(config_json(c).at("tf32") == true);
  BOOST_TEST(setting_json(c).at("device") == "cuda");
  BOOST_TEST(setting_json(c).at("tf32") == true);
  const RunConfig plain;
  BOOST_TEST(config_json(plain).at("device") == "cpu");
  BOOST_TEST(config_json(plain).at("tf32") == false);
  BOOST_TEST(!setting_json(plain).contains("tf32"));
  // `continual evaluate` rebuilds the configuration from the setting.
  std::vector<std::string> unknown;
  const RunConfig back = config_from_setting(setting_json(c), unknown);
  BOOST_TEST(unknown.empty());
  BOOST_TEST(back.device == "cuda");
  BOOST_TEST(back.tf32);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(data)

BOOST_AUTO_TEST_CASE(the_study_class_order) {
  const std::vector<int64_t>& order = datasets::study_cifar100_class_order();
  BOOST_REQUIRE(order.size() == 100u);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) BOOST_TEST(sorted[i] == i);
  datasets::ImageDataset data;
  data.channels = data.height = data.width = 1;
  for (int64_t label = 0; label < 100; ++label) {
    data.class_names.push_back("c" + std::to_string(label));
    for (int k = 0; k < 10; ++k) {
      data.labels.push_back(label);
      data.pixels.push_back(static_cast<uint8_t>(label));
    }
  }
  const datasets::TaskSplit split = datasets::make_task_split(data, nullptr, datasets::split_preset("study-cifar100"));
  BOOST_REQUIRE(split.tasks.size() == 10u);
  BOOST_TEST(split.tasks[0].classes == (std::vector<int64_t>{75, 67, 30, 51, 48, 19, 18, 34, 1, 46}));
  BOOST_TEST(split.tasks[5].classes == (std::vector<int64_t>{10, 0, 55, 73, 90, 96, 20, 57, 40, 31}));
  BOOST_TEST(split.tasks[9].classes == (std::vector<int64_t>{65, 12, 29, 4, 49, 41, 25, 95, 54, 63}));
}

BOOST_AUTO_TEST_CASE(resize_is_bilinear_and_imagenet_statistics_are_torchvisions) {
  datasets::ImageDataset data;
  data.channels = 2;
  data.height = data.width = 4;
  data.labels = {0};
  data.class_names = {"a"};
  // Channel 0 constant 100; channel 1 a left-to-right ramp 0, 80, 160, 240.
  for (int i = 0; i < 16; ++i) data.pixels.push_back(100);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) data.pixels.push_back(static_cast<uint8_t>(80 * x));
  datasets::resize_images(data, 8, 6);
  BOOST_REQUIRE(data.height == 8);
  BOOST_REQUIRE(data.width == 6);
  BOOST_REQUIRE(data.pixels.size() == 2u * 8 * 6);
  for (int i = 0; i < 48; ++i) BOOST_TEST(data.pixels[i] == 100);
  for (int y = 0; y < 8; ++y) {
    const uint8_t* row = data.pixels.data() + 48 + y * 6;
    for (int x = 0; x + 1 < 6; ++x) BOOST_TEST(row[x] < row[x + 1]);  // the ramp stays a ramp
    BOOST_TEST(row[0] == data.pixels[48]);                               // every row alike
  }
  BOOST_CHECK_THROW(datasets::resize_images(data, 0, 4), std::invalid_argument);
  const datasets::ChannelStats imagenet = datasets::imagenet_channel_stats();
  BOOST_TEST(imagenet.mean == (std::vector<float>{0.485f, 0.456f, 0.406f}));
  BOOST_TEST(imagenet.std == (std::vector<float>{0.229f, 0.224f, 0.225f}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sweep)

BOOST_AUTO_TEST_CASE(rank_sweep_cells) {
  const std::vector<Cell> cells = sweep_cells({"naive", "lora", "cp-lora"}, {0, 1}, {1, 3});
  std::vector<std::string> names;
  for (const Cell& cell : cells) names.push_back(cell_name(cell.label(), cell.seed));
  BOOST_TEST(names == (std::vector<std::string>{"naive-seed0", "naive-seed1", "lora-r1-seed0", "lora-r1-seed1",
                                                "lora-r3-seed0", "lora-r3-seed1", "cp-lora-r1-seed0",
                                                "cp-lora-r1-seed1", "cp-lora-r3-seed0", "cp-lora-r3-seed1"}));
  BOOST_TEST(cell_labels(cells) ==
             (std::vector<std::string>{"naive", "lora-r1", "lora-r3", "cp-lora-r1", "cp-lora-r3"}));
  // One rank: the names of runs before rank sweeps existed, so --resume finds their cells.
  for (const Cell& cell : sweep_cells({"lora"}, {0}, {9})) BOOST_TEST(cell_name(cell.label(), cell.seed) == "lora-seed0");
}

BOOST_AUTO_TEST_CASE(rank_sweep_reports_each_rank_and_plots_it,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  TempDir dir("protocol-ranks");
  RunConfig c = small_config(dir.path);
  c.tasks = 1;
  c.class_order = "0,1";
  c.methods = {"lora"};
  c.ranks = {1, 3};
  std::ostringstream out, log;
  run_sweep(c, out, log, false);
  const std::vector<char> bytes = engine::read_file(dir.path / "results.json");
  const nlohmann::json results = nlohmann::json::parse(bytes.begin(), bytes.end());
  const nlohmann::json& methods = results.at("methods");
  BOOST_REQUIRE(methods.contains("lora-r1"));
  BOOST_REQUIRE(methods.contains("lora-r3"));
  const nlohmann::json& r1 = methods.at("lora-r1").at("runs").at(0);
  const nlohmann::json& r3 = methods.at("lora-r3").at("runs").at(0);
  BOOST_TEST(r1.at("rank") == 1);
  BOOST_TEST(r3.at("rank") == 3);
  // Without --adapt-first-task the first task trains everything at either rank.
  BOOST_TEST(r1.at("params").at("trained_per_task") == r3.at("params").at("trained_per_task"));
  // Timing apart: per epoch, training and evaluation seconds.
  BOOST_TEST(r1.at("curves").at(0).at("train_seconds").size() == 1u);
  BOOST_TEST(r1.at("curves").at(0).at("eval_seconds").size() == 1u);
  BOOST_TEST(r1.at("peak_device_memory_bytes") == 0);
  BOOST_TEST(fs::exists(dir.path / "rank_accuracy.png"));
  BOOST_TEST(fs::exists(dir.path / "rank_params.png"));
  BOOST_TEST(out.str().find("lora-r3") != std::string::npos, out.str());
}

BOOST_AUTO_TEST_CASE(adapt_first_task_through_the_runner,
                     *boost::unit_test::precondition(fashion_mnist_present)) {
  // The runner end to end: a backbone file, lora with adapters from task 0 at
  // two ranks; every backbone tensor keeps its bits, and the parameters a task
  // trains grow with the rank.
  TempDir dir("protocol-first");
  RunConfig c = small_config(dir.path);
  const TaskData data = load_task_data(c);
  auto backbone = make_learner(c, "naive", data, 5);
  const fs::path init = dir.path / "backbone.npz";
  engine::save_npz(init, backbone->state());
  c.init = init;
  c.adapt_first_task = true;
  c.methods = {"lora"};
  validate(c);
  std::map<int64_t, std::vector<int64_t>> trained;
  for (int64_t rank : {1, 3}) {
    auto learner = make_learner(c, "lora", data, 0, rank);
    const std::map<std::string, Tensor> before = cloned(learner->state());
    std::ostringstream log;
    const CellResult result = train_cell(c, data, *learner, {"lora", 0, false, &log, false});
    const std::map<std::string, Tensor> after = by_name(learner->state());
    for (const auto& [name, tensor] : before) BOOST_TEST(same_bits(tensor, after.at(name)), name);
    BOOST_TEST(result.accuracy_matrix.size() == 3u);
    trained[rank] = result.params.trained_per_task;
  }
  for (size_t t = 0; t < 3; ++t) BOOST_TEST(trained[1][t] < trained[3][t]);
}

BOOST_AUTO_TEST_SUITE_END()
