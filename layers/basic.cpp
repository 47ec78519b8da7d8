#include "layers/basic.h"

#include <stdexcept>

namespace layers {

namespace {
engine::Pool2dOptions pool_options(const std::string& layer, int64_t kernel, int64_t stride,
                                   int64_t padding) {
  if (kernel <= 0 || stride <= 0 || padding < 0 || 2 * padding > kernel)
    throw std::invalid_argument(layer + ": bad geometry: kernel " + std::to_string(kernel) + ", stride " +
                                std::to_string(stride) + ", padding " + std::to_string(padding) +
                                " (padding at most half the kernel)");
  engine::Pool2dOptions o;
  o.kernel_h = o.kernel_w = kernel;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = padding;
  return o;
}

std::string pool_describe(const std::string& name, const engine::Pool2dOptions& o) {
  return name + "(kernel_size=" + std::to_string(o.kernel_h) + ", stride=" + std::to_string(o.stride_h) +
         ", padding=" + std::to_string(o.pad_h) + ")";
}

int64_t pool_output_size(const engine::Pool2dOptions& o, int64_t input_size) {
  return (input_size + 2 * o.pad_h - o.kernel_h) / o.stride_h + 1;
}
}  // namespace

Tensor ReLU::forward(const Tensor& x) { return engine::relu(x); }
std::shared_ptr<Module> ReLU::clone() const { return finish_clone(std::make_shared<ReLU>()); }

Dropout::Dropout(double p, uint64_t seed) : seed_(seed) {
  set_p(p);
  register_counter("counter", &counter_);
}

void Dropout::set_p(double p) {
  if (!(p >= 0 && p < 1)) throw std::invalid_argument("Dropout: p must be in [0, 1), got " + std::to_string(p));
  p_ = p;
}

int64_t set_dropout(Module& root, double p) {
  int64_t count = 0;
  if (auto* dropout = dynamic_cast<Dropout*>(&root)) {
    dropout->set_p(p);
    ++count;
  }
  for (const auto& [name, child] : root.children()) count += set_dropout(*child, p);
  return count;
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0) return x;
  return engine::dropout(x, p_, true, seed_, counter_++);
}

std::string Dropout::describe() const { return "Dropout(p=" + repr_number(p_) + ")"; }
std::shared_ptr<Module> Dropout::clone() const { return finish_clone(std::make_shared<Dropout>(p_, seed_)); }

Tensor Flatten::forward(const Tensor& x) { return engine::flatten(x, 1); }
std::shared_ptr<Module> Flatten::clone() const { return finish_clone(std::make_shared<Flatten>()); }

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding)
    : options_(pool_options("MaxPool2d", kernel, stride, padding)) {}
Tensor MaxPool2d::forward(const Tensor& x) { return engine::max_pool2d(x, options_); }
std::string MaxPool2d::describe() const { return pool_describe("MaxPool2d", options_); }
int64_t MaxPool2d::output_size(int64_t input_size) const { return pool_output_size(options_, input_size); }
std::shared_ptr<Module> MaxPool2d::clone() const {
  return finish_clone(std::make_shared<MaxPool2d>(options_.kernel_h, options_.stride_h, options_.pad_h));
}

AvgPool2d::AvgPool2d(int64_t kernel, int64_t stride, int64_t padding)
    : options_(pool_options("AvgPool2d", kernel, stride, padding)) {}
Tensor AvgPool2d::forward(const Tensor& x) { return engine::avg_pool2d(x, options_); }
std::string AvgPool2d::describe() const { return pool_describe("AvgPool2d", options_); }
int64_t AvgPool2d::output_size(int64_t input_size) const { return pool_output_size(options_, input_size); }
std::shared_ptr<Module> AvgPool2d::clone() const {
  return finish_clone(std::make_shared<AvgPool2d>(options_.kernel_h, options_.stride_h, options_.pad_h));
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_h_(out_h), out_w_(out_w) {
  if (out_h <= 0 || out_w <= 0)
    throw std::invalid_argument("AdaptiveAvgPool2d: output size must be positive, got " +
                                std::to_string(out_h) + "x" + std::to_string(out_w));
}
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return engine::adaptive_avg_pool2d(x, out_h_, out_w_); }
std::string AdaptiveAvgPool2d::describe() const {
  return "AdaptiveAvgPool2d(output_size=(" + std::to_string(out_h_) + ", " + std::to_string(out_w_) + "))";
}
std::shared_ptr<Module> AdaptiveAvgPool2d::clone() const {
  return finish_clone(std::make_shared<AdaptiveAvgPool2d>(out_h_, out_w_));
}

}  // namespace layers
