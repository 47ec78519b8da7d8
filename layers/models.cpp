#include "layers/models.h"

#include <cctype>
#include <sstream>
#include <stdexcept>

#include "layers/basic.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"

namespace layers {

namespace {

int64_t parse_positive(const std::string& text, const std::string& what) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || value <= 0)
    throw std::invalid_argument(what + ": expected a positive integer, got '" + text + "'");
  return value;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.push_back("");
  return parts;
}

// Builders thread one generator for the tensors and one for dropout seeds, so
// that dropout seeds do not depend on whether tensors were initialised.
struct Builder {
  explicit Builder(const ModelInit& init)
      : gen(init.seed), dropout_seeds(init.seed ^ 0x5deece66dULL), initialise(init.initialise) {}
  engine::Generator* weights() { return initialise ? &gen : nullptr; }
  std::shared_ptr<Dropout> dropout(double p) { return std::make_shared<Dropout>(p, dropout_seeds.next_u64()); }

  engine::Generator gen, dropout_seeds;
  bool initialise;
};

void check_input(const InputShape& input, const std::string& arch) {
  if (input.height <= 0 || input.width <= 0 || input.channels <= 0)
    throw std::invalid_argument(arch + ": input " + to_string(input) + " must be positive");
}

void check_classes(int64_t classes, const std::string& arch) {
  if (classes <= 0) throw std::invalid_argument(arch + ": classes must be positive, got " + std::to_string(classes));
}

}  // namespace

InputShape parse_input(const std::string& text) {
  const std::vector<std::string> parts = split(text, 'x');
  if (parts.size() != 3) throw std::invalid_argument("input: expected HxWxC such as 32x32x3, got '" + text + "'");
  return {parse_positive(parts[0], "input height"), parse_positive(parts[1], "input width"),
          parse_positive(parts[2], "input channels")};
}

std::string to_string(const InputShape& input) {
  return std::to_string(input.height) + "x" + std::to_string(input.width) + "x" + std::to_string(input.channels);
}

VggConfig vgg_config(int depth, bool batch_norm) {
  const int64_t M = kMaxPool;
  VggConfig config;
  config.batch_norm = batch_norm;
  switch (depth) {
    case 11: config.features = {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M}; break;
    case 13: config.features = {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M}; break;
    case 16:
      config.features = {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M};
      break;
    case 19:
      config.features = {64,  64,  M,   128, 128, M,   256, 256, 256, 256, M,
                         512, 512, 512, 512, M,   512, 512, 512, 512, M};
      break;
    default: throw std::invalid_argument("vgg_config: depth must be 11, 13, 16 or 19, got " + std::to_string(depth));
  }
  return config;
}

std::shared_ptr<Sequential> make_vgg(const VggConfig& config, const InputShape& input, int64_t classes,
                                     const ModelInit& init) {
  check_input(input, "vgg");
  check_classes(classes, "vgg");
  if (config.features.empty()) throw std::invalid_argument("vgg: the configuration has no layers");
  Builder b(init);
  auto features = std::make_shared<Sequential>();
  int64_t channels = input.channels, h = input.height, w = input.width;
  for (int64_t entry : config.features) {
    if (entry == kMaxPool) {
      const int64_t padding = (h < 2 || w < 2) ? 1 : 0;  // keep a 1-pixel map instead of emptying it
      auto pool = std::make_shared<MaxPool2d>(2, 2, padding);
      h = pool->output_size(h);
      w = pool->output_size(w);
      features->add(pool);
      continue;
    }
    if (entry < 0) throw std::invalid_argument("vgg: negative conv width " + std::to_string(entry));
    features->add(std::make_shared<Conv2d>(channels, entry, 3, 1, 1, true, b.weights()));
    if (config.batch_norm) features->add(std::make_shared<BatchNorm2d>(entry));
    features->add(std::make_shared<ReLU>());
    channels = entry;
  }
  auto model = std::make_shared<Sequential>();
  model->add("features", features);
  if (config.adaptive_pool < 0)
    throw std::invalid_argument("vgg: negative adaptive pool size " + std::to_string(config.adaptive_pool));
  if (config.adaptive_pool > 0) {
    model->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(config.adaptive_pool, config.adaptive_pool));
    h = w = config.adaptive_pool;
  }
  model->add("flatten", std::make_shared<Flatten>());
  auto classifier = std::make_shared<Sequential>();
  int64_t width = channels * h * w;
  for (int64_t hidden : config.classifier) {
    classifier->add(std::make_shared<Linear>(width, hidden, true, b.weights()));
    classifier->add(std::make_shared<ReLU>());
    classifier->add(b.dropout(config.dropout));
    width = hidden;
  }
  classifier->add(std::make_shared<Linear>(width, classes, true, b.weights()));
  model->add("classifier", classifier);
  return model;
}

std::shared_ptr<Sequential> make_sena32(const InputShape& input, int64_t classes, const ModelInit& init,
                                        double dropout) {
  check_input(input, "sena32");
  check_classes(classes, "sena32");
  // Valid 3x3 convs take 2 pixels each, the pool (3, stride 2) halves.
  const auto after = [](int64_t size) { return ((size - 4) - 3) / 2 + 1 - 4; };
  if (input.height < 15 || input.width < 15)
    throw std::invalid_argument("sena32: input " + to_string(input) + " is too small (at least 15x15)");
  Builder b(init);
  const int64_t h = after(input.height), w = after(input.width);
  auto model = std::make_shared<Sequential>();
  model->add(std::make_shared<Conv2d>(input.channels, 32, 3, 1, 0, true, b.weights()))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<Conv2d>(32, 32, 3, 1, 0, true, b.weights()))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<MaxPool2d>(3, 2))
      .add(b.dropout(dropout))
      .add(std::make_shared<Conv2d>(32, 64, 3, 1, 0, true, b.weights()))
      .add(std::make_shared<ReLU>())
      .add(b.dropout(dropout))
      .add(std::make_shared<Conv2d>(64, 64, 3, 1, 0, true, b.weights()))
      .add(std::make_shared<ReLU>())
      .add(b.dropout(dropout))
      .add(std::make_shared<Flatten>())
      .add(std::make_shared<Linear>(64 * h * w, 512, true, b.weights()))
      .add(std::make_shared<Linear>(512, classes, true, b.weights()));
  return model;
}

std::shared_ptr<Sequential> make_tiny_cnn(const InputShape& input, int64_t classes, const ModelInit& init) {
  check_input(input, "tiny");
  check_classes(classes, "tiny");
  if (input.height < 4 || input.width < 4)
    throw std::invalid_argument("tiny: input " + to_string(input) + " is too small (at least 4x4)");
  Builder b(init);
  const int64_t h = input.height / 4, w = input.width / 4;
  auto model = std::make_shared<Sequential>();
  model->add(std::make_shared<Conv2d>(input.channels, 8, 3, 1, 1, true, b.weights()))
      .add(std::make_shared<BatchNorm2d>(8))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<MaxPool2d>(2, 2))
      .add(std::make_shared<Conv2d>(8, 16, 3, 1, 1, true, b.weights()))
      .add(std::make_shared<BatchNorm2d>(16))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<MaxPool2d>(2, 2))
      .add(std::make_shared<Flatten>())
      .add(std::make_shared<Linear>(16 * h * w, 32, true, b.weights()))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<Linear>(32, classes, true, b.weights()));
  return model;
}

namespace {
// "64,64,M,128,M[:fc=W1,W2][:bn][:pool=N][:dropout=P]"
VggConfig parse_vgg_config(const std::string& arch) {
  const std::vector<std::string> parts = split(arch, ':');
  VggConfig config;
  config.adaptive_pool = 0;
  for (const std::string& entry : split(parts[0], ','))
    config.features.push_back(entry == "M" ? kMaxPool : parse_positive(entry, "arch '" + arch + "' layer"));
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& option = parts[i];
    if (option == "bn") {
      config.batch_norm = true;
    } else if (option.rfind("fc=", 0) == 0) {
      config.classifier.clear();
      if (option.size() > 3)
        for (const std::string& width : split(option.substr(3), ','))
          config.classifier.push_back(parse_positive(width, "arch '" + arch + "' fc width"));
    } else if (option.rfind("pool=", 0) == 0) {
      config.adaptive_pool = parse_positive(option.substr(5), "arch '" + arch + "' pool");
    } else if (option.rfind("dropout=", 0) == 0) {
      try {
        config.dropout = std::stod(option.substr(8));
      } catch (const std::exception&) {
        throw std::invalid_argument("arch '" + arch + "': bad dropout '" + option + "'");
      }
    } else {
      throw std::invalid_argument("arch '" + arch + "': unknown option '" + option +
                                  "' (expected fc=..., bn, pool=N, dropout=P)");
    }
  }
  return config;
}
}  // namespace

std::shared_ptr<Sequential> make_model(const std::string& arch, const InputShape& input, int64_t classes,
                                       const ModelInit& init) {
  if (arch == "sena32") return make_sena32(input, classes, init);
  if (arch == "tiny") return make_tiny_cnn(input, classes, init);
  for (int depth : {11, 13, 16, 19}) {
    const std::string name = "vgg" + std::to_string(depth);
    for (bool batch_norm : {false, true}) {
      VggConfig config = vgg_config(depth, batch_norm);
      const std::string torchvision_name = name + (batch_norm ? "_bn" : "");
      if (arch == torchvision_name) return make_vgg(config, input, classes, init);
      config.adaptive_pool = 0;
      if (arch == torchvision_name + "_compact") return make_vgg(config, input, classes, init);
    }
  }
  if (!arch.empty() && std::isdigit(static_cast<unsigned char>(arch[0])))
    return make_vgg(parse_vgg_config(arch), input, classes, init);
  throw std::invalid_argument("unknown arch '" + arch +
                              "' (expected sena32, tiny, vgg11..vgg19, vgg11_bn..vgg19_bn, vgg11_compact.."
                              "vgg19_bn_compact or a VGG configuration such as 64,M,128,M:fc=256)");
}

}  // namespace layers
