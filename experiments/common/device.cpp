#include "experiments/common/device.h"

#include <stdexcept>

#include "engine/backend.h"

namespace experiments {

namespace {

// N of cuda:N, or -1 unless `digits` is one in canonical form: one spelling
// per GPU, so that two runs on the same GPU record the same name.
int device_index(const std::string& digits) {
  const size_t max_digits = std::to_string(kMaxDeviceIndex).size();
  if (digits.empty() || digits.size() > max_digits) return -1;
  if (digits.size() > 1 && digits.front() == '0') return -1;
  int n = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return -1;
    n = n * 10 + (ch - '0');
  }
  return n <= kMaxDeviceIndex ? n : -1;
}

}  // namespace

DeviceChoice parse_device(const std::string& text) {
  if (text == "cpu") return {engine::Device::cpu, 0};
  if (text == "cuda") return {engine::Device::cuda, 0};
  const std::string prefix = "cuda:";
  if (text.starts_with(prefix))
    if (const int index = device_index(text.substr(prefix.size())); index >= 0) return {engine::Device::cuda, index};
  throw std::invalid_argument("--device: '" + text + "' is not a device; give cpu, cuda (the first GPU) or cuda:N " +
                              "(GPU N, N from 0 to " + std::to_string(kMaxDeviceIndex) +
                              " in decimal without sign or leading zeros)");
}

void check_tf32(const DeviceChoice& choice, bool tf32) {
  if (tf32 && choice.device != engine::Device::cuda)
    throw std::invalid_argument("--tf32: needs --device cuda or cuda:N (TF32 is a GPU tensor-core mode; on the " +
                                engine::to_string(choice.device) + " it would change nothing)");
}

engine::Device use_device(const std::string& text, bool tf32) {
  const DeviceChoice choice = parse_device(text);
  check_tf32(choice, tf32);
  const engine::Device device = choice.device;
  engine::set_device_index(device, choice.index);
  if (!engine::backend_available(device))
    throw std::runtime_error("--device " + text + ": " + engine::backend_unavailable_reason(device));
  engine::backend(device).set_tf32(tf32);
  return device;
}

}  // namespace experiments
