// The --device and --tf32 flags, read in one place for every program.
//
// --device is "cpu", "cuda" (the first GPU, the same as cuda:0) or "cuda:N"
// (GPU N as CUDA numbers the visible ones, so CUDA_VISIBLE_DEVICES renumbers
// them). The GPU is one choice per process (engine::set_device_index), made
// here before anything uses it. --tf32 lets cuBLAS's float32 GEMMs use TF32
// tensor cores (engine::Backend::set_tf32); it means nothing on the CPU and is
// refused there rather than ignored.
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

// Throws std::invalid_argument "--tf32: ..." when tf32 is asked for a device
// without it (the CPU).
void check_tf32(const DeviceChoice& choice, bool tf32);

// The device a program computes on: parses `text`, checks --tf32 against it,
// chooses its GPU (before the device's first use), makes sure it can run here
// and sets its TF32 mode. Throws std::invalid_argument for a bad flag value,
// and std::runtime_error "--device TEXT: why" when the device is not usable
// (no GPU or driver, cuda:N past the visible GPUs, a build without CUDA).
engine::Device use_device(const std::string& text, bool tf32);

}  // namespace experiments
