// model-tool: inspect an architecture, or run it on given weights and data so
// that every number can be compared with PyTorch (scripts/compare_with_torch.py).
//
//   model-tool summary --arch A --input HxWxC --classes K
//       layers, output shapes and parameter counts, like torchsummary
//   model-tool run --arch A --input HxWxC --classes K --weights W.npz --data D.npz --out O.npz [--eval]
//       W.npz: the model's tensors under PyTorch's state_dict names (an integer
//              "num_batches_tracked" is ignored);
//       D.npz: x (N,C,H,W) float32 (float64 is converted), optionally y (N) integer labels;
//       O.npz: logits (N,K) float32; with y also loss () and grad.<name> for every parameter.
//   model-tool merge OUT_DIR --cell C --task N --out O.npz
//       one task's model from the kept models of a `continual` run (OUT_DIR/models/C/):
//       its adapters merged into the backbone, its batch-norm copies, branch and head
//       under the plain network's names (torchvision's for the VGGs), a head of the
//       task's classes; O.npz loads into `model-tool run` and PyTorch alike.
// Without --eval the model runs in training mode: batch norm uses batch
// statistics, and dropout draws its masks from this engine's generator, which
// PyTorch cannot reproduce; compare dropout models with --eval.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/npz.h"
#include "engine/ops.h"
#include "experiments/continual/evaluate.h"
#include "layers/models.h"

namespace {

engine::Device parse_device(const std::string& name) {
  if (name == "cpu") return engine::Device::cpu;
  if (name == "cuda") {
    if (!engine::backend_available(engine::Device::cuda))
      throw std::runtime_error("--device cuda: " + engine::backend_unavailable_reason(engine::Device::cuda));
    return engine::Device::cuda;
  }
  throw std::invalid_argument("--device: expected cpu or cuda, got '" + name + "'");
}

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

const engine::NpyArray* find_array(const engine::NamedArrays& arrays, const std::string& name) {
  for (const auto& [n, a] : arrays)
    if (n == name) return &a;
  return nullptr;
}

int run(const std::string& arch, const layers::InputShape& input, int64_t classes, engine::Device device,
        const std::string& weights_path, const std::string& data_path, const std::string& out_path, bool eval) {
  auto model = layers::make_model(arch, input, classes, {0, false});
  layers::NamedTensors weights;
  for (const auto& [name, array] : engine::read_npz(weights_path)) {
    if (name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0) continue;
    weights.emplace_back(name, engine::to_tensor(array));
  }
  try {
    model->load_state_dict(weights);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(weights_path + ": " + e.what());
  }
  model->to(device);
  model->train(!eval);

  const engine::NamedArrays data = engine::read_npz(data_path);
  const engine::NpyArray* x_array = find_array(data, "x");
  if (!x_array) throw std::runtime_error(data_path + ": no array 'x'");
  engine::Tensor x = engine::to_tensor(*x_array).to(engine::DType::f32);
  if (x.ndim() != 4 || x.dim(1) != input.channels || x.dim(2) != input.height || x.dim(3) != input.width)
    throw std::runtime_error(data_path + ": x is " + engine::to_string(x.shape()) + ", expected (N, " +
                             std::to_string(input.channels) + ", " + std::to_string(input.height) + ", " +
                             std::to_string(input.width) + ") for --input " + layers::to_string(input));
  x = x.to(device);

  const engine::Tensor logits = model->forward(x);
  layers::NamedTensors out = {{"logits", logits}};
  if (const engine::NpyArray* y_array = find_array(data, "y")) {
    const std::vector<int64_t> labels = engine::to_int64(*y_array);
    if (static_cast<int64_t>(labels.size()) != x.dim(0))
      throw std::runtime_error(data_path + ": y has " + std::to_string(labels.size()) + " labels for " +
                               std::to_string(x.dim(0)) + " inputs");
    const engine::Tensor loss = engine::cross_entropy(logits, labels);
    loss.backward();
    out.emplace_back("loss", loss);
    for (const auto& [name, param] : model->named_trainable_parameters()) {
      const engine::Tensor grad = param.grad();
      out.emplace_back("grad." + name, grad.defined() ? grad : engine::Tensor::zeros(param.shape(), param.dtype()));
    }
    std::cout << "loss " << std::setprecision(9) << loss.item() << "\n";
  }
  engine::save_npz(out_path, out);
  std::cout << "wrote " << out_path << " (" << out.size() << " arrays; logits " << engine::to_string(logits.shape())
            << ")\n";
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
  CLI::App app{"Summarise an architecture, or run it on PyTorch-named weights and write logits, loss and gradients."};
  app.require_subcommand(1);
  std::string arch, input_text, device_name = "cpu", weights, data, out;
  int64_t classes = 0;
  bool eval = false;
  auto common = [&](CLI::App* sub) {
    sub->add_option("--arch", arch, "sena32, tiny, vgg11..vgg19[_bn] or a VGG configuration")->required();
    sub->add_option("--input", input_text, "input size as HxWxC, e.g. 32x32x3")->required();
    sub->add_option("--classes", classes, "number of classes")->required()->check(CLI::PositiveNumber);
    sub->add_option("--device", device_name, "cpu or cuda")->capture_default_str();
  };
  CLI::App* summary_cmd = app.add_subcommand("summary", "layers, output shapes and parameter counts");
  common(summary_cmd);
  CLI::App* run_cmd = app.add_subcommand("run", "forward (and backward with labels) on given weights and data");
  common(run_cmd);
  run_cmd->add_option("--weights", weights, ".npz of the model's tensors under PyTorch's state_dict names")->required();
  run_cmd->add_option("--data", data, ".npz with x (N,C,H,W) and optionally y (N)")->required();
  run_cmd->add_option("--out", out, ".npz to write: logits, loss, grad.<name>")->required();
  run_cmd->add_flag("--eval", eval, "evaluation mode (running batch-norm statistics, no dropout)");
  std::string run_dir, cell;
  int64_t task = 0;
  CLI::App* merge_cmd = app.add_subcommand(
      "merge", "one task's model from a continual run's kept models as a plain network .npz (adapters merged); "
               "e.g. model-tool merge runs/continual --cell lora-seed0 --task 2 --out task2.npz");
  merge_cmd->add_option("OUT_DIR", run_dir, "the --out directory of a finished continual run")->required();
  merge_cmd->add_option("--cell", cell, "the cell, as named in OUT_DIR/models/ (e.g. lora-seed0)")->required();
  merge_cmd->add_option("--task", task, "the task, counted from 1")->required()->check(CLI::PositiveNumber);
  merge_cmd->add_option("--out", out, ".npz to write: the plain network's state_dict")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (merge_cmd->parsed()) {
    try {
      return merge(run_dir, cell, task, out);
    } catch (const std::exception& e) {
      std::cerr << "model-tool: " << e.what() << "\n";
      return 1;
    }
  }
  // Bad flag values are usage errors (exit 2); anything failing later is a runtime error (exit 1).
  engine::Device device = engine::Device::cpu;
  layers::InputShape input;
  try {
    input = layers::parse_input(input_text);
    layers::make_model(arch, input, classes, {0, false});  // checks arch, input and classes
    device = parse_device(device_name);
  } catch (const std::invalid_argument& e) {
    std::cerr << "model-tool: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "model-tool: " << e.what() << "\n";
    return 1;
  }
  try {
    if (summary_cmd->parsed()) return summary(arch, input, classes, device);
    return run(arch, input, classes, device, weights, data, out, eval);
  } catch (const std::exception& e) {
    std::cerr << "model-tool: " << e.what() << "\n";
    return 1;
  }
}
