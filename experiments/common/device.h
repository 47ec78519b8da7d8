// The --device flag, read in one place for every program.
//
// --device is "cpu", "cuda" (the first GPU, the same as cuda:0) or "cuda:N"
// (GPU N as CUDA numbers the visible ones, so CUDA_VISIBLE_DEVICES renumbers
// them). The GPU is one choice per process (engine::set_device_index), made
// here before anything uses it.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace experiments {

struct DeviceChoice {
  engine::Device device = engine::Device::cpu;
  int index = 0;  // the N of cuda:N; 0 on the CPU
};

// The largest N of cuda:N: more GPUs than one machine holds.
constexpr int kMaxDeviceIndex = 1023;

// Parses a --device value. Throws std::invalid_argument "--device: ..." naming
// the value and the forms accepted: N in decimal digits, no sign, spaces or
// leading zeros, at most kMaxDeviceIndex.
DeviceChoice parse_device(const std::string& text);

// Parses `text`, chooses its GPU (before the device's first use) and returns
// the device; use_device also makes sure the device can run here. Both throw
// std::invalid_argument for a malformed name; use_device throws
// std::runtime_error "--device TEXT: why" when the device is not usable (no
// GPU or driver, cuda:N past the visible GPUs, a build without CUDA).
engine::Device select_device(const std::string& text);
engine::Device use_device(const std::string& text);

}  // namespace experiments
