// model-tool: inspect an architecture, or run it on given weights and data so
// that every number can be compared with PyTorch (scripts/compare_with_torch.py).
//
//   model-tool summary --arch A --input HxWxC --classes K
//       layers, output shapes and parameter counts, like torchsummary
//   model-tool init --arch A --input HxWxC --classes K --out W.npz [--seed S]
//       a freshly initialised model's state_dict (PyTorch-default initialisation,
//       seeded), e.g. for scripts/export_torchvision.py import
//   model-tool run --arch A --input HxWxC --classes K --weights W.npz --data D.npz --out O.npz
//                  [--eval] [--dropout P] [--lora [--adapt P] [--rank R] [--rank-fc R] [--alpha A]]
//       W.npz: the model's tensors under PyTorch's state_dict names, exactly
//              (layers::load_npz_state_dict: a torchvision state_dict loads
//              as saved, "num_batches_tracked" included);
//       D.npz: x (N,C,H,W) float32 (float64 is converted), optionally y (N) integer labels;
//       O.npz: logits (N,K) float32; with y also loss (), grad.input (N,C,H,W) = dL/dx
//              and grad.<name> for every trainable parameter.
//
// --lora (init and run): the model is task 1 of a two-task layers::ContinualModel
// with method lora and per-task heads of K classes each: every tensor is
// frozen but task 1's adapters (LoRA on dense layers, ConvLoRA on conv layers,
// as --adapt places them; scaling alpha / rank), its BatchNorm2d copies and its
// head block. W.npz then holds the whole two-task state_dict under the engine's
// names ("<layer>.adapters.1.A", "<bn>.tasks.1.weight", "<head>.tasks.1.bias",
// ...; `init --lora` writes one), and the gradients are those of task 1's tensors.
//   model-tool merge OUT_DIR --cell C --task N --out O.npz
//       one task's model from the kept models of a `continual` run (OUT_DIR/models/C/):
//       its adapters merged into the backbone, its batch-norm copies, branch and head
//       under the plain network's names (torchvision's for the VGGs), a head of the
//       task's classes; O.npz loads into `model-tool run` and PyTorch alike.
// Without --eval the model runs in training mode: batch norm uses batch
// statistics, and dropout draws its masks from this engine's generator, which
// PyTorch cannot reproduce; --dropout 0 makes a training-mode pass of a model
// with dropout comparable (PyTorch's model then needs p = 0 too).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/npz.h"
#include "engine/ops.h"
#include "experiments/common/cli.h"
#include "experiments/common/device.h"
#include "layers/basic.h"
#include "layers/continual_model.h"
#include "experiments/common/tool.h"
#include "experiments/continual/evaluate.h"
#include "layers/models.h"

namespace {

std::string with_separators(int64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<size_t>(i), ",");
  return digits;
}

std::string shape_text(const engine::Shape& shape) {
  std::string s = "[-1";  // the batch, as torchsummary prints it
  for (size_t i = 1; i < shape.size(); ++i) s += ", " + std::to_string(shape[i]);
  return s + "]";
}

struct SummaryRow {
  std::string name, layer, shape;
  int64_t params;
};

// Runs y through the leaves in order (every container of the builders is a
// Sequential, whose forward is exactly this chain), recording each output.
void walk(layers::Module& module, const std::string& prefix, engine::Tensor& y, std::vector<SummaryRow>& rows) {
  for (const auto& [name, child] : module.children()) {
    const std::string path = layers::join_name(prefix, name);
    if (child->is_container()) {
      walk(*child, path, y, rows);
      continue;
    }
    y = child->forward(y);
    rows.push_back({path, child->describe(), shape_text(y.shape()), layers::count_parameters(*child).total});
  }
}

int summary(const std::string& arch, const layers::InputShape& input, int64_t classes, engine::Device device) {
  auto model = layers::make_model(arch, input, classes, {0, true});
  model->to(device);
  model->eval();
  engine::NoGradGuard no_grad;
  engine::Tensor y = engine::Tensor::zeros({1, input.channels, input.height, input.width}, engine::DType::f32, device);
  std::vector<SummaryRow> rows;
  walk(*model, "", y, rows);

  std::cout << arch << ", input " << layers::to_string(input) << ", " << classes << " classes\n";
  std::cout << std::left << std::setw(16) << "name" << std::setw(58) << "layer" << std::setw(22) << "output shape"
            << std::right << std::setw(14) << "params" << "\n";
  for (const SummaryRow& r : rows)
    std::cout << std::left << std::setw(16) << r.name << std::setw(58) << r.layer << std::setw(22) << r.shape
              << std::right << std::setw(14) << with_separators(r.params) << "\n";
  const layers::ParameterCounts c = layers::count_parameters(*model);
  std::cout << "\ntotal params:         " << with_separators(c.total) << "\n"
            << "trainable params:     " << with_separators(c.trainable) << "\n"
            << "non-trainable params: " << with_separators(c.frozen) << "\n"
            << "conv part:            " << with_separators(c.features) << "\n"
            << "classifier:           " << with_separators(c.classifier) << "\n";
  for (const auto& [type, n] : c.by_type) std::cout << "  " << std::left << std::setw(20) << type << with_separators(n) << "\n";
  std::cout << "parameter size (MB):  " << std::fixed << std::setprecision(2)
            << static_cast<double>(c.total) * 4.0 / (1024.0 * 1024.0) << "\n";
  return 0;
}

// The model init and run work on: the plain network, or with `lora` set task 1
// of a two-task ContinualModel that trains LoRA adapters (header comment).
class ToolModel {
 public:
  ToolModel(const std::string& arch, const layers::InputShape& input, int64_t classes, const layers::ModelInit& init,
            const std::optional<layers::AdapterOptions>& lora) {
    auto network = layers::make_model(arch, input, classes, init);
    if (!lora) {
      network_ = network;
      return;
    }
    layers::ContinualOptions options;
    options.method = layers::Method::lora;
    options.head = layers::HeadMode::per_task;
    options.adapters = *lora;
    options.seed = init.seed;
    options.initialise = init.initialise;
    continual_ = std::make_unique<layers::ContinualModel>(network, options);
    continual_->add_task(classes);
    continual_->add_task(classes);  // the current task: frozen network, task 1's adapters, copies and head
    network_ = network;             // the same root, its head and batch norms now per task
  }
  layers::Module& network() const { return *network_; }
  layers::ForwardResult forward(const engine::Tensor& x) const {
    return continual_ ? continual_->forward(x) : layers::ForwardResult{network_->forward(x), {}, 0};
  }
  void to(engine::Device device) const { continual_ ? continual_->to(device) : network_->to(device); }
  void train(bool on) const { continual_ ? continual_->train(on) : network_->train(on); }

 private:
  std::shared_ptr<layers::Module> network_;
  std::unique_ptr<layers::ContinualModel> continual_;
};

int init(const std::string& arch, const layers::InputShape& input, int64_t classes, uint64_t seed,
         const std::optional<layers::AdapterOptions>& lora, const std::string& out_path) {
  const ToolModel model(arch, input, classes, {seed, true}, lora);
  const layers::NamedTensors state = model.network().state_dict();
  engine::save_npz(out_path, state);
  std::cout << "wrote " << out_path << " (" << state.size() << " tensors of " << arch << (lora ? " with LoRA" : "")
            << ", seed " << seed << ")\n";
  return 0;
}

const engine::NpyArray* find_array(const engine::NamedArrays& arrays, const std::string& name) {
  for (const auto& [n, a] : arrays)
    if (n == name) return &a;
  return nullptr;
}

int run(const std::string& arch, const layers::InputShape& input, int64_t classes, engine::Device device,
        const std::string& weights_path, const std::string& data_path, const std::string& out_path, bool eval,
        std::optional<double> dropout, const std::optional<layers::AdapterOptions>& lora) {
  const ToolModel model(arch, input, classes, {0, false}, lora);
  if (dropout) layers::set_dropout(model.network(), *dropout);
  std::cout << layers::load_npz_state_dict(model.network(), weights_path).describe(weights_path) << "\n";
  model.to(device);
  model.train(!eval);

  const engine::NamedArrays data = engine::read_npz(data_path);
  const engine::NpyArray* x_array = find_array(data, "x");
  if (!x_array) throw std::runtime_error(data_path + ": no array 'x'");
  engine::Tensor x = engine::to_tensor(*x_array).to(engine::DType::f32);
  if (x.ndim() != 4 || x.dim(1) != input.channels || x.dim(2) != input.height || x.dim(3) != input.width)
    throw std::runtime_error(data_path + ": x is " + engine::to_string(x.shape()) + ", expected (N, " +
                             std::to_string(input.channels) + ", " + std::to_string(input.height) + ", " +
                             std::to_string(input.width) + ") for --input " + layers::to_string(input));
  const engine::NpyArray* y_array = find_array(data, "y");
  x = x.to(device);
  if (y_array) x.set_requires_grad();  // dL/dx checks the first layer's input gradient too

  const layers::ForwardResult result = model.forward(x);
  layers::NamedTensors out = {{"logits", result.logits}};
  if (y_array) {
    std::vector<int64_t> labels = engine::to_int64(*y_array);
    if (static_cast<int64_t>(labels.size()) != x.dim(0))
      throw std::runtime_error(data_path + ": y has " + std::to_string(labels.size()) + " labels for " +
                               std::to_string(x.dim(0)) + " inputs");
    for (int64_t& label : labels) label += result.label_offset;
    const engine::Tensor loss = engine::cross_entropy(result.logits, labels, result.class_mask);
    loss.backward();
    out.emplace_back("loss", loss);
    out.emplace_back("grad.input", x.grad());
    for (const auto& [name, param] : model.network().named_trainable_parameters()) {
      const engine::Tensor grad = param.grad();
      out.emplace_back("grad." + name, grad.defined() ? grad : engine::Tensor::zeros(param.shape(), param.dtype()));
    }
    std::cout << "loss " << std::setprecision(9) << loss.item() << "\n";
  }
  engine::save_npz(out_path, out);
  std::cout << "wrote " << out_path << " (" << out.size() << " arrays; logits "
            << engine::to_string(result.logits.shape()) << ")\n";
  return 0;
}

int merge(const std::string& run_dir, const std::string& cell, int64_t task, const std::string& out_path) {
  const continual::TaskNetwork network = continual::task_network(run_dir, cell, task, std::cerr);
  engine::save_npz(out_path, network.tensors);
  std::cout << "wrote " << out_path << ": task " << task << " of " << cell << " as a plain " << network.arch
            << " (" << network.tensors.size() << " tensors); run it with\n  model-tool run --arch " << network.arch
            << " --input " << layers::to_string(network.input) << " --classes " << network.classes << " --weights "
            << out_path << " --data D.npz --out O.npz --eval\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Summarise an architecture, write its initialised weights, or run it on PyTorch-named weights "
               "and write logits, loss and gradients."};
  experiments::add_standard_options(app, "model-tool", "model-tool summary --arch sena32 --input 32x32x3 --classes 10");
  app.require_subcommand(1);
  std::string arch, input_text, device_name = "cpu", weights, data, out;
  int64_t classes = 0;
  uint64_t seed = 0;
  bool eval = false;
  std::optional<double> dropout;
  bool lora = false;
  std::string adapt = "all";
  layers::AdapterOptions adapters;
  auto lora_options = [&](CLI::App* sub) {
    CLI::Option* flag = sub->add_flag("--lora", lora,
                                      "task 1 of a two-task continual model with LoRA adapters (method lora, "
                                      "per-task heads of --classes classes each; tensors under the engine's names)");
    sub->add_option("--adapt", adapt, "where adapters go, as continual --adapt (all, conv, last-N, fc, head, none; "
                                      "comma list)")
        ->capture_default_str()
        ->needs(flag);
    sub->add_option("--rank", adapters.rank_conv, "ConvLoRA rank")->capture_default_str()->needs(flag);
    sub->add_option("--rank-fc", adapters.rank_fc, "LoRA rank of dense layers")->capture_default_str()->needs(flag);
    sub->add_option("--alpha", adapters.alpha, "scaling is alpha / rank (loralib's)")->capture_default_str()->needs(flag);
  };
  auto common = [&](CLI::App* sub) {
    sub->add_option("--arch", arch,
                    "sena32, tiny, vgg11..vgg19[_bn] (torchvision's), vgg11..vgg19[_bn]_compact (no avgpool) "
                    "or a VGG configuration such as 64,M,128,M:fc=256:bn (layers/models.h)")
        ->required();
    sub->add_option("--input", input_text, "input size as HxWxC, e.g. 32x32x3")->required();
    sub->add_option("--classes", classes, "number of classes")->required()->check(CLI::PositiveNumber);
    sub->add_option("--device", device_name, "cpu, cuda (the first GPU) or cuda:N (GPU N)")->capture_default_str();
  };
  CLI::App* summary_cmd = app.add_subcommand("summary", "layers, output shapes and parameter counts");
  common(summary_cmd);
  CLI::App* init_cmd = app.add_subcommand("init", "write a freshly initialised model's tensors to an .npz");
  common(init_cmd);
  init_cmd->add_option("--out", out, ".npz to write, under PyTorch's state_dict names")->required();
  init_cmd->add_option("--seed", seed, "initialisation seed")->capture_default_str();
  lora_options(init_cmd);
  CLI::App* run_cmd = app.add_subcommand("run", "forward (and backward with labels) on given weights and data");
  common(run_cmd);
  run_cmd->add_option("--weights", weights, ".npz of the model's tensors under PyTorch's state_dict names")->required();
  run_cmd->add_option("--data", data, ".npz with x (N,C,H,W) and optionally y (N)")->required();
  run_cmd->add_option("--out", out, ".npz to write: logits, loss, grad.input, grad.<name>")->required();
  run_cmd->add_flag("--eval", eval, "evaluation mode (running batch-norm statistics, no dropout)");
  run_cmd->add_option("--dropout", dropout,
                      "set p of every dropout layer, in [0, 1) (0: a training-mode pass PyTorch can reproduce)");
  lora_options(run_cmd);
  std::string run_dir, cell;
  int64_t task = 0;
  CLI::App* merge_cmd = app.add_subcommand(
      "merge", "one task's model from a continual run's kept models as a plain network .npz (adapters merged); "
               "e.g. model-tool merge runs/continual --cell lora-seed0 --task 2 --out task2.npz");
  merge_cmd->add_option("OUT_DIR", run_dir, "the --out directory of a finished continual run")->required();
  merge_cmd->add_option("--cell", cell, "the cell, as named in OUT_DIR/models/ (e.g. lora-seed0)")->required();
  merge_cmd->add_option("--task", task, "the task, counted from 1")->required()->check(CLI::PositiveNumber);
  merge_cmd->add_option("--out", out, ".npz to write: the plain network's state_dict")->required();
  return tool::run_main("model-tool", app, argc, argv, [&] {
    if (merge_cmd->parsed()) return merge(run_dir, cell, task, out);
    // Bad flag values are usage errors (exit 2, std::invalid_argument); anything failing later exits 1.
    tool::require_memory("--classes", 4.0 * static_cast<double>(classes), "the classifier (4 bytes a class at least)");
    const layers::InputShape input = layers::parse_input(input_text);
    std::optional<layers::AdapterOptions> lora_adapters;
    if (lora) {
      if (adapters.rank_conv < 1 || adapters.rank_fc < 1)
        throw std::invalid_argument("--rank/--rank-fc: must be at least 1, got " +
                                    std::to_string(adapters.rank_conv) + "/" + std::to_string(adapters.rank_fc));
      if (!(adapters.alpha > 0))
        throw std::invalid_argument("--alpha: must be positive, got " + layers::repr_number(adapters.alpha));
      try {
        adapters.where = layers::parse_adapt(adapt);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("--") + e.what());
      }
      lora_adapters = adapters;
    }
    ToolModel(arch, input, classes, {0, false}, lora_adapters);  // checks arch, input, classes and placement
    if (dropout && !(*dropout >= 0 && *dropout < 1))
      throw std::invalid_argument("--dropout: expected p in [0, 1), got " + std::to_string(*dropout));
    const engine::Device device = experiments::use_device(device_name, /*tf32=*/false);
    if (summary_cmd->parsed()) return summary(arch, input, classes, device);
    if (init_cmd->parsed()) return init(arch, input, classes, seed, lora_adapters, out);
    return run(arch, input, classes, device, weights, data, out, eval, dropout, lora_adapters);
  });
}
