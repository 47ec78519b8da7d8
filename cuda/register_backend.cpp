// Registers the CUDA backend, and the NCCL communicator where it is built,
// with the engine: this file's static initialiser runs when the engine loads
// the plugin (libengine_cuda.so, engine/backend.h), on the first use of
// Device::cuda. Every program built where CUDA is can thus use `--device cuda`
// (or say why not: no GPU, no driver, the plugin missing) with no code of its
// own, the engine never includes a CUDA header, and a program that stays on
// the CPU never loads cuBLAS. tests/test_cuda_kernels.cpp checks that a CUDA
// build's programs load the plugin and get the backend registered.
#include "cuda/cuda_backend.h"
#include "engine/backend.h"

#ifdef ENGINE_WITH_NCCL
#include "cuda/nccl_communicator.h"
#include "engine/distributed.h"
#endif

namespace engine::cuda {

namespace {

bool register_with_engine() {
  engine::register_backend(Device::cuda, &try_create_backend);
#ifdef ENGINE_WITH_NCCL
  engine::register_device_communicator(Device::cuda, []() -> std::unique_ptr<Communicator> {
    return std::make_unique<NcclCommunicator>();
  });
#endif
  return true;
}

[[maybe_unused]] const bool registered = register_with_engine();

}  // namespace

}  // namespace engine::cuda
