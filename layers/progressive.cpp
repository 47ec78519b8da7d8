#include "layers/progressive.h"

#include <cmath>
#include <stdexcept>

#include "engine/ops.h"
#include "layers/basic.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/sequential.h"

namespace layers {

namespace {

struct Leaf {
  std::string path;  // "features.3"
  const Module* module;
};

// Leaves in forward order, looking through containers (Sequential).
void collect_leaves(const Module& module, const std::string& prefix, std::vector<Leaf>& out) {
  for (const auto& [name, child] : module.children()) {
    const std::string path = join_name(prefix, name);
    if (child->is_container())
      collect_leaves(*child, path, out);
    else
      out.push_back({path, child.get()});
  }
}

std::string where(const Leaf& leaf) { return "layer '" + leaf.path + "' (" + leaf.module->describe() + ")"; }

[[noreturn]] void refuse(const Leaf& leaf, const std::string& why) {
  throw std::invalid_argument("ProgressiveNetwork: cannot build columns from " + where(leaf) + ": " + why);
}

// The path's components, "features.3" -> {"features", "3"}.
std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    parts.push_back(path.substr(start, dot - start));
    start = dot + 1;
  }
  parts.push_back(path.substr(start));
  return parts;
}

// Puts `layer` at `path` under `root`, creating the Sequentials on the way,
// so that a column's names are the layout's.
void place(Sequential& root, const std::string& path, std::shared_ptr<Module> layer) {
  const std::vector<std::string> parts = components(path);
  Sequential* parent = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    Module* child = parent->find_child(parts[i]);
    if (!child) {
      auto container = std::make_shared<Sequential>();
      child = container.get();
      parent->add(parts[i], std::move(container));
    }
    parent = static_cast<Sequential*>(child);  // place() made every container on the way
  }
  parent->add(parts.back(), std::move(layer));
}

Module& descend(Module& root, const std::string& path) {
  Module* module = &root;
  for (const std::string& part : components(path)) {
    module = module->find_child(part);
    if (!module) throw std::logic_error("ProgressiveNetwork: no layer '" + path + "' in a column");
  }
  return *module;
}

}  // namespace

ProgressiveNetwork::ProgressiveNetwork(std::vector<LayerPlan> plan, double width)
    : plan_(std::move(plan)), width_(width) {}

ProgressiveNetwork::ProgressiveNetwork(const Module& layout, double width) : width_(width) {
  if (!(width > 0) || !std::isfinite(width))
    throw std::invalid_argument("ProgressiveNetwork: width must be a positive finite factor, got " +
                                repr_number(width));
  std::vector<Leaf> leaves;
  collect_leaves(layout, "", leaves);
  if (leaves.empty() || !dynamic_cast<const Linear*>(leaves.back().module))
    throw std::invalid_argument("ProgressiveNetwork: the layout must end in a Linear output layer, but its last "
                                "layer is " + (leaves.empty() ? std::string("missing") : where(leaves.back())));
  const auto scaled = [width](int64_t size, const Leaf& leaf) {
    const int64_t columns_size = std::llround(width * static_cast<double>(size));
    if (columns_size < 1)
      throw std::invalid_argument("ProgressiveNetwork: width " + repr_number(width) + " leaves " + where(leaf) +
                                  " with round(" + std::to_string(size) + " x " + repr_number(width) + ") = " +
                                  std::to_string(columns_size) + " channels");
    return columns_size;
  };
  // What flows between layers: a feature map of `channels` in the layout
  // (`column_channels` in a column), then, once flattened, `features`
  // (`column_features`). 0: not known yet (the input).
  int64_t channels = 0, column_channels = 0, features = 0, column_features = 0;
  bool flattened = false, first_weighted = true;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const Leaf& leaf = leaves[i];
    const Module& m = *leaf.module;
    if (!m.children().empty()) refuse(leaf, "it carries adapters or other sublayers");
    LayerPlan layer;
    layer.path = leaf.path;
    if (const auto* conv = dynamic_cast<const Conv2d*>(&m)) {
      if (flattened) refuse(leaf, "a convolution after Flatten");
      if (channels != 0 && conv->in_channels() != channels)
        refuse(leaf, "it takes " + std::to_string(conv->in_channels()) + " channels, the layer before gives " +
                         std::to_string(channels));
      const int64_t in = channels == 0 ? conv->in_channels() : column_channels;  // the image's channels are kept
      const int64_t out = scaled(conv->out_channels(), leaf);
      layer.make = [in, out, kernel = conv->kernel(), stride = conv->stride(), padding = conv->padding(),
                    bias = conv->bias().defined()](int64_t, engine::Generator* gen) {
        return std::make_shared<Conv2d>(in, out, kernel, stride, padding, bias, gen);
      };
      layer.lateral = first_weighted ? LayerPlan::Lateral::none : LayerPlan::Lateral::into_input;
      layer.in = in;
      channels = conv->out_channels();
      column_channels = out;
      first_weighted = false;
    } else if (const auto* bn = dynamic_cast<const BatchNorm2d*>(&m)) {
      if (flattened || bn->channels() != channels)
        refuse(leaf, "it normalises " + std::to_string(bn->channels()) + " channels, the layer before gives " +
                         (flattened ? std::string("flat features") : std::to_string(channels)));
      layer.make = [c = column_channels, eps = bn->eps(), momentum = bn->momentum()](int64_t, engine::Generator*) {
        return std::make_shared<BatchNorm2d>(c, eps, momentum);
      };
    } else if (const auto* linear = dynamic_cast<const Linear*>(&m)) {
      if (!flattened) refuse(leaf, "a Linear on a feature map (no Flatten before it)");
      int64_t in = 0;
      if (features != 0) {
        if (linear->in_features() != features)
          refuse(leaf, "it takes " + std::to_string(linear->in_features()) + " features, the layer before gives " +
                           std::to_string(features));
        in = column_features;
      } else if (channels != 0) {
        // The first Linear after the convolutions: channels x positions of the flattened map.
        if (linear->in_features() % channels != 0)
          refuse(leaf, std::to_string(linear->in_features()) + " input features are not a multiple of the " +
                           std::to_string(channels) + " channels before Flatten");
        in = column_channels * (linear->in_features() / channels);
      } else {
        in = linear->in_features();  // a dense network on the flattened image
      }
      const bool output = i + 1 == leaves.size();
      const int64_t out = output ? 0 : scaled(linear->out_features(), leaf);
      const bool bias = linear->bias().defined();
      layer.make = [in, out, bias](int64_t classes, engine::Generator* gen) {
        return std::make_shared<Linear>(in, out == 0 ? classes : out, bias, gen);
      };
      layer.lateral = first_weighted ? LayerPlan::Lateral::none : LayerPlan::Lateral::onto_output;
      layer.in = in;
      layer.out = out;
      features = linear->out_features();
      column_features = out;
      first_weighted = false;
    } else if (const auto* dropout = dynamic_cast<const Dropout*>(&m)) {
      // Each column's dropout draws its own masks.
      layer.make = [p = dropout->p()](int64_t, engine::Generator* gen) {
        return std::make_shared<Dropout>(p, gen ? gen->next_u64() : 0);
      };
    } else if (dynamic_cast<const ReLU*>(&m) || dynamic_cast<const MaxPool2d*>(&m) ||
               dynamic_cast<const AvgPool2d*>(&m) || dynamic_cast<const AdaptiveAvgPool2d*>(&m) ||
               dynamic_cast<const Flatten*>(&m)) {
      if (dynamic_cast<const Flatten*>(&m)) flattened = true;
      layer.make = [prototype = m.clone()](int64_t, engine::Generator*) { return prototype->clone(); };
    } else {
      refuse(leaf, "columns are built from Conv2d, BatchNorm2d, ReLU, Dropout, MaxPool2d, AvgPool2d, "
                   "AdaptiveAvgPool2d, Flatten and Linear layers in Sequentials");
    }
    plan_.push_back(std::move(layer));
  }
}

std::string ProgressiveNetwork::lateral_name(int64_t column, int64_t from, const std::string& path) {
  return "column" + std::to_string(column) + ".lateral" + std::to_string(from) + "." + path;
}

int64_t ProgressiveNetwork::add_column(int64_t classes, engine::Generator* gen) {
  if (classes <= 0)
    throw std::invalid_argument("ProgressiveNetwork::add_column: classes must be positive, got " +
                                std::to_string(classes));
  freeze();  // the earlier columns and their laterals never change again
  const int64_t k = num_columns();
  auto column = std::make_shared<Sequential>();
  for (const LayerPlan& layer : plan_) place(*column, layer.path, layer.make(classes, gen));
  column->set_owner_task(k);
  register_module("column" + std::to_string(k), column);
  for (int64_t j = 0; j < k; ++j)
    for (const LayerPlan& layer : plan_) {
      std::shared_ptr<Module> lateral;
      switch (layer.lateral) {
        case LayerPlan::Lateral::none: continue;
        case LayerPlan::Lateral::into_input:
          lateral = std::make_shared<Conv2d>(layer.in, layer.in, 1, 1, 0, false, gen);
          break;
        case LayerPlan::Lateral::onto_output:
          lateral = std::make_shared<Linear>(layer.in, layer.out == 0 ? classes : layer.out, false, gen);
          break;
      }
      lateral->set_owner_task(k);
      register_module(lateral_name(k, j, layer.path), std::move(lateral));
    }
  classes_.push_back(classes);
  index_column(k);
  return k;
}

void ProgressiveNetwork::index_column(int64_t k) {
  Column column;
  column.root = find_child("column" + std::to_string(k));
  if (!column.root) throw std::logic_error("ProgressiveNetwork: no column " + std::to_string(k));
  column.laterals.resize(plan_.size());
  for (size_t i = 0; i < plan_.size(); ++i) {
    column.layers.push_back(&descend(*column.root, plan_[i].path));
    if (plan_[i].lateral == LayerPlan::Lateral::none) continue;
    for (int64_t j = 0; j < k; ++j) {
      Module* lateral = find_child(lateral_name(k, j, plan_[i].path));
      if (!lateral) throw std::logic_error("ProgressiveNetwork: no " + lateral_name(k, j, plan_[i].path));
      column.laterals[i].push_back(lateral);
    }
  }
  columns_.push_back(std::move(column));
}

int64_t ProgressiveNetwork::classes(int64_t column) const {
  if (column < 0 || column >= num_columns())
    throw std::out_of_range("ProgressiveNetwork: no column " + std::to_string(column) + " (have " +
                            std::to_string(num_columns()) + ")");
  return classes_[static_cast<size_t>(column)];
}

int64_t ProgressiveNetwork::total_classes() const {
  int64_t total = 0;
  for (int64_t c : classes_) total += c;
  return total;
}

// x (N,C,H,W) -> (N, total_classes())
Tensor ProgressiveNetwork::forward(const Tensor& x) {
  if (columns_.empty()) throw std::logic_error("ProgressiveNetwork::forward: no column yet; call add_column first");
  // inputs[k][l]: what column k's layer l received from its own layer below,
  // which the laterals of later columns read.
  std::vector<std::vector<Tensor>> inputs(columns_.size());
  std::vector<Tensor> outputs;
  for (size_t k = 0; k < columns_.size(); ++k) {
    const Column& column = columns_[k];
    Tensor h = x;
    for (size_t l = 0; l < plan_.size(); ++l) {
      inputs[k].push_back(h);
      Module& layer = *column.layers[l];
      const std::vector<Module*>& laterals = column.laterals[l];  // one per earlier column
      switch (plan_[l].lateral) {
        case LayerPlan::Lateral::none: h = layer.forward(h); break;
        case LayerPlan::Lateral::into_input: {
          Tensor sum = h;
          for (size_t j = 0; j < laterals.size(); ++j) sum = engine::add(sum, laterals[j]->forward(inputs[j][l]));
          h = layer.forward(sum);
          break;
        }
        case LayerPlan::Lateral::onto_output: {
          Tensor y = layer.forward(h);
          for (size_t j = 0; j < laterals.size(); ++j) y = engine::add(y, laterals[j]->forward(inputs[j][l]));
          h = y;
          break;
        }
      }
    }
    outputs.push_back(h);
  }
  return outputs.size() == 1 ? outputs[0] : engine::concat(outputs, 1);
}

void ProgressiveNetwork::train_newest_column(bool on) {
  train(false);
  if (columns_.empty()) return;
  const Column& newest = columns_.back();
  newest.root->train(on);
  for (const std::vector<Module*>& laterals : newest.laterals)
    for (Module* lateral : laterals) lateral->train(on);
}

std::string ProgressiveNetwork::describe() const {
  std::string s = "ProgressiveNetwork(width=" + repr_number(width_) + ", classes=[";
  for (size_t k = 0; k < classes_.size(); ++k) s += (k ? ", " : "") + std::to_string(classes_[k]);
  return s + "])";
}

std::shared_ptr<Module> ProgressiveNetwork::clone() const {
  std::shared_ptr<ProgressiveNetwork> shell(new ProgressiveNetwork(plan_, width_));
  finish_clone(shell);
  shell->classes_ = classes_;
  for (int64_t k = 0; k < num_columns(); ++k) shell->index_column(k);
  return shell;
}

}  // namespace layers
