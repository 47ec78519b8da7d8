#include "layers/conv2d.h"

#include <cmath>
#include <stdexcept>

#include "engine/init.h"

namespace layers {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
               int64_t padding, bool bias, engine::Generator* gen)
    : in_(in_channels), out_(out_channels), kernel_(kernel) {
  if (in_channels <= 0 || out_channels <= 0 || kernel <= 0 || stride <= 0 || padding < 0)
    throw std::invalid_argument("Conv2d: bad geometry: channels " + std::to_string(in_channels) + " -> " +
                                std::to_string(out_channels) + ", kernel " + std::to_string(kernel) +
                                ", stride " + std::to_string(stride) + ", padding " + std::to_string(padding));
  options_.stride_h = options_.stride_w = stride;
  options_.pad_h = options_.pad_w = padding;
  weight_ = register_parameter("weight", Tensor::empty({out_channels, in_channels, kernel, kernel}));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_channels}));
  if (gen) reset_parameters(*gen);
}

void Conv2d::reset_parameters(engine::Generator& gen) {
  engine::kaiming_uniform_(weight_, std::sqrt(5.0), gen);
  if (bias_.defined()) engine::bias_uniform_(bias_, engine::fan_in(weight_), gen);
}

// x (N,C,H,W) -> (N,OC,OH,OW)
Tensor Conv2d::forward(const Tensor& x) {
  // With an adapter the convolution sees W + dW; the gradient of that sum
  // reaches only dW's factors because W does not require grad.
  Adapter* adapter = active_adapter();
  const Tensor w = adapter ? adapter->forward(weight_) : weight_;
  return engine::conv2d(x, w, bias_, options_);
}

int64_t Conv2d::output_size(int64_t input_size) const {
  return (input_size + 2 * options_.pad_h - kernel_) / options_.stride_h + 1;
}

std::string Conv2d::describe() const {
  return "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" +
         std::to_string(kernel_) + ", stride=" + std::to_string(options_.stride_h) + ", padding=" +
         std::to_string(options_.pad_h) + (bias_.defined() ? "" : ", bias=False") + ")";
}

std::shared_ptr<Module> Conv2d::clone() const {
  check_not_merged("clone");
  return finish_clone(std::make_shared<Conv2d>(in_, out_, kernel_, options_.stride_h, options_.pad_h,
                                               bias_.defined(), nullptr));
}

void Conv2d::add_adapter(int64_t task, std::shared_ptr<ConvAdapter> adapter) {
  attach_adapter(task, std::move(adapter));
}

}  // namespace layers
