// Model builders: VGG (torchvision's layout), the SenaCNN study's small CNN
// (sena32) and a tiny CNN for fast tests, for any input size.
//
// Architectures by name (make_model):
//   vgg11, vgg13, vgg16, vgg19          VGG without batch norm (paper configurations A, B, D, E)
//   vgg11_bn ... vgg19_bn               the same with BatchNorm2d after every conv
//   "64,64,M,128,M[:fc=W1,W2][:bn][:pool=N][:dropout=P]"
//                                       a VGG from a configuration: conv3x3 widths and M
//                                       (max-pool 2x2); fc= the hidden classifier widths
//                                       (default 4096,4096; "fc=" for none), bn, the
//                                       adaptive average pool size, the classifier dropout
//   sena32                              the SenaCNN study's CNN (layout below)
//   tiny                                a 2-conv CNN with batch norm, for tests
//
// VGG layout, as torchvision: Sequential{features, avgpool, classifier}, with
// classifier = Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear (indices
// 0, 3, 6 for the default two hidden layers), so state_dict names are
// "features.0.weight", "features.1.running_mean" (bn), "classifier.6.bias".
// A Flatten child named "flatten" sits between avgpool and classifier (it has
// no tensors, so names are unaffected). avgpool is AdaptiveAvgPool2d(7, 7) when
// the input is at least 224x224 (torchvision's fc1 of 25088 inputs) and absent
// otherwise, where the classifier takes C * h * w of the last feature map
// (512 for 32x32). A max-pool that meets a 1-pixel map gets padding 1 and keeps
// it (28x28 inputs: 14, 7, 3, 1, 1). Initialisation is each layer's PyTorch
// default (not torchvision's VGG-specific one).
//
// sena32 layout (nn.Sequential indices; k = 3, no padding, dropout 0.2):
//    0 Conv2d(C,32)   1 ReLU   2 Conv2d(32,32)   3 ReLU   4 MaxPool2d(3, stride 2)
//    5 Dropout        6 Conv2d(32,64)   7 ReLU   8 Dropout
//    9 Conv2d(64,64) 10 ReLU  11 Dropout  12 Flatten  13 Linear(64*h*w, 512)  14 Linear(512, K)
// so the weights are 0, 2, 6, 9, 13, 14 (.weight/.bias). The dropout after conv2
// follows the pool (Keras' order in the original SenaCNN); 32x32x3 gives
// h = w = 9 (5184 inputs to fc1), 28x28x1 gives 7 (3136).
//
// tiny layout: 0 Conv2d(C,8,pad 1) 1 BatchNorm2d 2 ReLU 3 MaxPool2d(2) 4 Conv2d(8,16,pad 1)
//   5 BatchNorm2d 6 ReLU 7 MaxPool2d(2) 8 Flatten 9 Linear(16*h*w, 32) 10 ReLU 11 Linear(32, K)
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
  int64_t adaptive_pool = -1;  // -1: 7 for inputs of at least 224x224, else none; 0 none; N: NxN
};
constexpr int64_t kMaxPool = 0;
// depth 11, 13, 16 or 19.
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
