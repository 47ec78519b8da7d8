// Model builders: VGG (torchvision's layout, and a compact variant for small
// inputs), the SenaCNN study's small CNN (sena32) and a tiny CNN for fast tests,
// for any input size.
//
// Architectures by name (make_model):
//   vgg11, vgg13, vgg16, vgg19          torchvision's models.vggNN(num_classes=K) (paper
//                                       configurations A, B, D, E), at every input size
//   vgg11_bn ... vgg19_bn               torchvision's vggNN_bn: BatchNorm2d after every conv
//   vgg11_compact ... vgg19_bn_compact  the same features without avgpool: the classifier
//                                       takes C * h * w of the last feature map (512 at
//                                       32x32, 25088 = torchvision's at 224x224)
//   "64,64,M,128,M[:fc=W1,W2][:bn][:pool=N][:dropout=P]"
//                                       a VGG from a configuration: conv3x3 widths and M
//                                       (max-pool 2x2); fc= the hidden classifier widths
//                                       (default 4096,4096; "fc=" for none), bn, an
//                                       adaptive average pool to NxN (default none), the
//                                       classifier dropout (default 0.5)
//   sena32                              the SenaCNN study's CNN (layout below)
//   tiny                                a 2-conv CNN with batch norm, for tests
//
// VGG layout, as torchvision: Sequential{features, avgpool, classifier}, with
// classifier = Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear (indices
// 0, 3, 6 for the default two hidden layers), so state_dict names are
// "features.0.weight", "features.1.running_mean" (bn), "classifier.6.bias".
// A Flatten child named "flatten" sits between avgpool and classifier (it has
// no tensors, so names are unaffected). avgpool is AdaptiveAvgPool2d(7, 7) at
// every input size, as torchvision's: fc1 always has 512 * 7 * 7 = 25088 inputs,
// and a map smaller than 7x7 is replicated (32x32 inputs: 1x1 -> 7x7, every
// output the one pixel), so ImageNet weights load at any size. The compact
// variants and configurations without pool= have no avgpool (the study's
// small-input VGG: 39,327,652 parameters for vgg19_bn_compact at 32x32, 100
// classes, against torchvision's 139,990,948). A max-pool that meets a 1-pixel
// map gets padding 1 and keeps it (28x28 inputs: 14, 7, 3, 1, 1), where
// torchvision would fail on an empty map. Initialisation is each layer's
// PyTorch default (not torchvision's VGG-specific one).
//
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/sequential.h"

namespace layers {

struct InputShape {
  int64_t height = 0, width = 0, channels = 0;
};
// "HxWxC", e.g. "224x224x3"; throws std::invalid_argument otherwise.
InputShape parse_input(const std::string& text);
std::string to_string(const InputShape& input);

// How a builder fills the tensors: seeded PyTorch-default initialisation, or
// left uninitialised (initialise = false) for counting or loading weights.
// Dropout seeds derive from `seed` either way.
struct ModelInit {
  uint64_t seed = 0;
  bool initialise = true;
};

struct VggConfig {
  std::vector<int64_t> features;                   // conv widths; kMaxPool for 'M'
  std::vector<int64_t> classifier = {4096, 4096};  // hidden widths of the classifier
  bool batch_norm = false;
  double dropout = 0.5;
  int64_t adaptive_pool = 7;  // avgpool to NxN before the classifier; 0: none (compact)
};
constexpr int64_t kMaxPool = 0;
// torchvision's vgg<depth>[_bn], depth 11, 13, 16 or 19.
VggConfig vgg_config(int depth, bool batch_norm);

std::shared_ptr<Sequential> make_vgg(const VggConfig& config, const InputShape& input, int64_t classes,
                                     const ModelInit& init);
std::shared_ptr<Sequential> make_sena32(const InputShape& input, int64_t classes, const ModelInit& init,
                                        double dropout = 0.2);
std::shared_ptr<Sequential> make_tiny_cnn(const InputShape& input, int64_t classes, const ModelInit& init);
// By architecture name (see above); throws std::invalid_argument naming the arch.
std::shared_ptr<Sequential> make_model(const std::string& arch, const InputShape& input, int64_t classes,
                                       const ModelInit& init);

}  // namespace layers
