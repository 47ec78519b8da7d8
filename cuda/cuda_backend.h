// The CUDA backend: device memory, one stream, one cuBLAS handle, and the
// kernels of cuda/cuda_kernels.h. Registered with the engine as the factory of
// Device::cuda (cuda/register_backend.cpp), which runs it on first use.
#pragma once

#include <memory>
#include <string>

#include "engine/backend.h"

namespace engine::cuda {

// The backend of GPU `index` (cuda:N, counting the visible GPUs from 0), or
// nullptr with the reason in *why_not when it is not usable (no device, fewer
// GPUs than index + 1, driver too old, no kernel image for this GPU). Never
// aborts: a binary built with CUDA runs on the CPU without a GPU.
std::unique_ptr<engine::Backend> try_create_backend(int index, std::string* why_not);

}  // namespace engine::cuda
