// ProgressiveNetwork: Progressive Neural Networks (Rusu et al. 2016,
// arXiv:1606.04671), the dynamic-network family of continual learning.
//
// Every task gets a new column: a copy of a plain network's layout (the
// conv/bn/relu/pool/dropout/flatten/linear Sequentials of make_model: tiny,
// sena32, the VGGs), freshly initialised, its widths scaled by a factor, its
// last Linear outputting the task's classes (the task's head block). Earlier
// columns and their laterals are frozen (batch-norm statistics included) and
// always run in evaluation mode, so what they compute never changes.
//
// Laterals. Let x_k^l be what column k's layer l receives from its own layer
// below (after ReLU, pooling, dropout, flatten). Every conv and dense layer but
// the first (whose input is the image in every column) also receives the same
// layer's input in each earlier column j < k:
//   conv:   y = conv_l^k( x_k^l + sum_j P_l^{k:j} x_j^l )   P: 1x1 convolution, C -> C channels, no bias
//   dense:  y = W_l^k x_k^l + b_l^k + sum_j U_l^{k:j} x_j^l  U: Linear, IN -> OUT of the layer, no bias
// The dense form is Rusu et al.'s eq. (1); a conv lateral adds on the input so
// that a 1x1 convolution (the paper's conv variant reduces with 1x1 convs)
// fits any kernel, stride and padding of the layer it feeds. All columns have
// the same widths, so C and IN are the layer's own. No lateral has a bias: the
// layer's own bias already offsets the sum. The output layer (head) is a dense
// layer: it too gets laterals.
//
// Shapes: x (N,C,H,W) -> logits (N, K), K the classes of every column: column
// k's outputs are logits [offset_k, offset_k + classes_k), offset_k the
// classes of the columns before k (the shared head of layers/per_task.h, one
// block per task). Every column runs in every forward (column j needs only
// columns < j, so block j does not depend on later columns).
//
// Names: column k's layers keep the layout's names under "column<k>."
// ("column1.features.0.weight", "column1.3.running_mean"); the lateral from
// column j into its layer P is "column<k>.lateral<j>.<P>"
// ("column1.lateral0.features.3.weight"). Column k and its laterals are owned
// by task k (count_parameters' per_task).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"

namespace layers {

class ProgressiveNetwork final : public Module {
 public:
  // `layout`: a plain network whose last layer is a Linear (the output);
  // only its layout is read (layer types, widths, kernels, strides, dropout
  // rates), not its values. width > 0 scales every conv's channels and every
  // hidden Linear's features, each rounded to the nearest integer. Throws
  // std::invalid_argument naming the layer for a layer it cannot copy
  // (anything but Conv2d, BatchNorm2d, ReLU, Dropout, MaxPool2d, AvgPool2d,
  // AdaptiveAvgPool2d, Flatten, Linear, in Sequentials; a layer carrying
  // adapters), a layout without a Linear output last, and a width that leaves
  // a layer no channel.
  ProgressiveNetwork(const Module& layout, double width);

  // Freezes every existing column and lateral, then adds column
  // num_columns() with `classes` outputs and its laterals from every earlier
  // column, initialised from `gen` (PyTorch's defaults; null: left
  // uninitialised, for counting), in training mode, owned by its task.
  // Returns the column's index.
  int64_t add_column(int64_t classes, engine::Generator* gen);
  int64_t num_columns() const { return static_cast<int64_t>(columns_.size()); }
  int64_t classes(int64_t column) const;
  int64_t total_classes() const;
  double width() const { return width_; }

  // x (N,C,H,W) -> (N, total_classes()): every column's output, in column order.
  Tensor forward(const Tensor& x) override;
  // The newest column (and its laterals) in training mode `on`, every earlier
  // one in evaluation mode (no dropout; frozen batch norm reads its running
  // statistics in either mode, batch_norm.h).
  void train_newest_column(bool on);

  std::string type_name() const override { return "ProgressiveNetwork"; }
  std::string describe() const override;
  std::shared_ptr<Module> clone() const override;

 private:
  // One layer of the layout at the columns' widths.
  struct LayerPlan {
    std::string path;  // its name in the layout, e.g. "features.3"
    enum class Lateral { none, into_input, onto_output } lateral = Lateral::none;
    int64_t in = 0;   // channels (conv) or features (dense) of its input in every column
    int64_t out = 0;  // dense: features of its output in every column; 0 for the output layer (the column's classes)
    // A new layer of a column with `classes` outputs (used by the output layer).
    std::function<std::shared_ptr<Module>(int64_t classes, engine::Generator* gen)> make;
  };
  // A column's modules, found by name among the children.
  struct Column {
    Module* root = nullptr;                      // "column<k>"
    std::vector<Module*> layers;                 // in forward order, as plan_
    std::vector<std::vector<Module*>> laterals;  // [layer][j]: from column j; empty for layers without
  };

  ProgressiveNetwork(std::vector<LayerPlan> plan, double width);  // for clone()
  void index_column(int64_t column);
  static std::string lateral_name(int64_t column, int64_t from, const std::string& path);

  std::vector<LayerPlan> plan_;
  double width_;
  std::vector<Column> columns_;
  std::vector<int64_t> classes_;  // per column
};

}  // namespace layers
