// param-table: the parameters each continual-learning method trains for a new
// task (task 1 and later), split into the conv part and the classifier, as in
// the reference study's table, and what the task adds to what is stored (the
// growth `continual` reports; naive trains every layer but stores only a head
// block). Every figure is counted on a real ContinualModel built for the
// method (tensors allocated but not initialised), never from a formula typed
// in here.
//
//   param-table --arch vgg19 --input 224x224x3 --classes 200 --ranks 1,3,6,9,12,24 --rank-fc 30
#include <CLI/CLI.hpp>

#include <cstdint>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "experiments/common/cli.h"
#include "experiments/common/tool.h"
#include "layers/continual_model.h"
#include "layers/models.h"
#include "layers/progressive.h"

namespace {

// A row is counted either on a ContinualModel built with `options` or, for
// pnn (not a ContinualModel method), on a ProgressiveNetwork of `pnn_width`.
struct Row {
  std::string method, detail;
  layers::ContinualOptions options;
  double pnn_width = 0;  // > 0: a pnn row
};

std::string with_separators(int64_t n, bool plain) {
  std::string digits = std::to_string(n);
  if (plain) return digits;
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<size_t>(i), ",");
  return digits;
}

// Task 1, as every later task: what it trains, and what it adds to what is stored.
struct TaskCounts {
  layers::ParameterCounts trained;
  int64_t stored_anew = 0;
};

TaskCounts new_per_task(const std::string& arch, const layers::InputShape& input, int64_t classes,
                        layers::ContinualOptions options) {
  options.initialise = false;
  layers::ContinualModel model(layers::make_model(arch, input, classes, {0, false}), options);
  model.add_task(classes);
  const int64_t before = model.counts().total;
  model.add_task(classes);
  const layers::ParameterCounts after = model.counts();
  return {after, after.total - before};
}

// pnn: task 1's column and its laterals from column 0, all of which it trains and stores.
TaskCounts pnn_new_per_task(const std::string& arch, const layers::InputShape& input, int64_t classes, double width) {
  layers::ProgressiveNetwork network(*layers::make_model(arch, input, classes, {0, false}), width);
  network.add_column(classes, nullptr);  // uninitialised: counted, never run
  const layers::ParameterCounts before = layers::count_parameters(network);
  network.add_column(classes, nullptr);
  const layers::ParameterCounts after = layers::count_parameters(network);
  layers::ParameterCounts added;
  added.trainable_features = after.features - before.features;
  added.trainable_classifier = after.classifier - before.classifier;
  added.trainable = added.trainable_features + added.trainable_classifier;
  return {added, added.trainable};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Parameters trained per new task by each continual-learning method, counted on the models."};
  experiments::add_standard_options(app, "param-table", "param-table --arch vgg19 --input 224x224x3 --classes 200 --ranks 1,3,6,9 --rank-fc 30");
  std::string arch = "vgg19", input_text = "224x224x3";
  int64_t classes = 200, rank_fc = 30;
  std::vector<int64_t> ranks = {1, 3, 6, 9, 12, 24};
  bool plain = false;
  app.add_option("--arch", arch,
                 "architecture: sena32, tiny, vgg11..vgg19[_bn] (torchvision's), vgg11..vgg19[_bn]_compact or a VGG "
                 "configuration (layers/models.h)")
      ->capture_default_str();
  app.add_option("--input", input_text, "input size as HxWxC, e.g. 32x32x3")->capture_default_str();
  app.add_option("--classes", classes, "classes per task")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--ranks", ranks, "ConvLoRA ranks, comma separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--rank-fc", rank_fc, "LoRA rank of the dense layers")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--plain", plain, "plain integers (default: thousands separators)");
  return tool::run_main("param-table", app, argc, argv, [&] {
    // Bad flag values are usage errors (exit 2, std::invalid_argument); anything failing later exits 1.
    tool::require_memory("--classes", 4.0 * static_cast<double>(classes), "the classifier (4 bytes a class at least)");
    const layers::InputShape input = layers::parse_input(input_text);
    const int64_t base = layers::count_parameters(*layers::make_model(arch, input, classes, {0, false})).total;
    std::vector<Row> rows;
    auto add = [&](std::string method, std::string detail, auto configure) {
      layers::ContinualOptions options;
      configure(options);
      rows.push_back({std::move(method), std::move(detail), options});
    };
    const std::string r_fc = std::to_string(rank_fc);
    add("finetune-1", "head only", [](auto& o) { o.method = layers::Method::finetune_head; });
    add("finetune-2", "last 2 dense layers", [](auto& o) {
      o.method = layers::Method::finetune_fc;
      o.finetune_fc_layers = 2;
    });
    add("finetune-3", "last 3 dense layers", [](auto& o) {
      o.method = layers::Method::finetune_fc;
      o.finetune_fc_layers = 3;
    });
    for (int64_t r : ranks)
      add("convlora-" + std::to_string(r), "ConvLoRA r=" + std::to_string(r) + " on every conv + head", [&](auto& o) {
        o.method = layers::Method::lora;
        o.adapters.where = layers::parse_adapt("conv");
        o.adapters.rank_conv = r;
      });
    for (int64_t r : ranks)
      add("cp-convlora-" + std::to_string(r), "CP-ConvLoRA r=" + std::to_string(r) + " on every conv + head",
          [&](auto& o) {
            o.method = layers::Method::cp_lora;
            o.adapters.where = layers::parse_adapt("conv");
            o.adapters.rank_conv = r;
          });
    add("lora-fc", "LoRA r=" + r_fc + " on the hidden dense layers + head", [&](auto& o) {
      o.method = layers::Method::lora;
      o.adapters.where = layers::parse_adapt("fc");
      o.adapters.rank_fc = rank_fc;
    });
    add("lora-fc-all", "LoRA r=" + r_fc + " on every dense layer + head", [&](auto& o) {
      o.method = layers::Method::lora;
      o.adapters.where = layers::parse_adapt("fc,head");
      o.adapters.rank_fc = rank_fc;
    });
    for (int64_t r : ranks)
      add("convlora-" + std::to_string(r) + "+lora-fc",
          "ConvLoRA r=" + std::to_string(r) + " + LoRA r=" + r_fc + " + head", [&](auto& o) {
            o.method = layers::Method::lora;
            o.adapters.where = layers::parse_adapt("all");
            o.adapters.rank_conv = r;
            o.adapters.rank_fc = rank_fc;
          });
    add("sena", "SenaCNN: second half of the layers per task", [](auto& o) { o.method = layers::Method::sena; });
    add("separate", "a whole network per task", [](auto& o) { o.method = layers::Method::separate; });
    add("naive", "every layer trains; a head block stored (ewc, lwf, replay, packnet too: packnet trains only "
                 "the weights no earlier task kept)",
        [](auto& o) { o.method = layers::Method::naive; });
    for (double width : {1.0, 0.5})
      rows.push_back({"pnn-" + layers::repr_number(width),
                      "a new column at width " + layers::repr_number(width) + " + laterals from 1 earlier column",
                      {}, width});

    std::cout << "arch " << arch << ", input " << layers::to_string(input) << ", " << classes
              << " classes per task; base model " << with_separators(base, plain) << " parameters\n"
              << "new parameters per task (trained on every task after the first); the conv part includes\n"
              << "per-task BatchNorm2d copies where the architecture has batch norm; stored anew: what the task\n"
              << "adds to the parameters kept (ewc keeps besides 2 values, Fisher and anchor, per parameter a\n"
              << "task trains anew; replay --memory images, as bytes; lwf nothing)\n\n";
    std::cout << std::left << std::setw(22) << "method" << std::right << std::setw(14) << "conv part"
              << std::setw(14) << "classifier" << std::setw(14) << "total" << std::setw(10) << "% base"
              << std::setw(14) << "stored anew" << "  details\n";
    for (const Row& row : rows) {
      TaskCounts counts;
      try {
        counts = row.pnn_width > 0 ? pnn_new_per_task(arch, input, classes, row.pnn_width)
                                   : new_per_task(arch, input, classes, row.options);
      } catch (const std::invalid_argument& e) {
        // A method this network has no room for (finetune-3 with 2 dense layers, ...): said, not counted.
        std::cout << std::left << std::setw(22) << row.method << "  does not apply: " << e.what() << "\n";
        continue;
      }
      const layers::ParameterCounts& c = counts.trained;
      std::ostringstream percent;
      percent << std::fixed << std::setprecision(2) << 100.0 * static_cast<double>(c.trainable) / static_cast<double>(base);
      std::cout << std::left << std::setw(22) << row.method << std::right << std::setw(14)
                << with_separators(c.trainable_features, plain) << std::setw(14)
                << with_separators(c.trainable_classifier, plain) << std::setw(14)
                << with_separators(c.trainable, plain) << std::setw(10) << percent.str() << std::setw(14)
                << with_separators(counts.stored_anew, plain) << "  " << row.detail
                << "\n";
    }
    return 0;
  });
}
