// Registers the CUDA backend, and the NCCL communicator where it is built,
// with the engine before main runs: every program linked with this library
// can use `--device cuda` (or says why not: no GPU, no driver), with no code
// of its own, and the engine never includes a CUDA header.
//
// Why a static initialiser, and why the library is linked whole: a linker
// copies from a static library only the members that define a symbol someone
// needs, and nothing refers to this file, so in a plain link it would be
// dropped and CUDA silently missing. cuda/meson.build gives programs the
// library through `link_whole` (every member kept), and
// tests/test_cuda_kernels.cpp checks that a CUDA build's programs have the
// backend registered. (The alternative, an explicit cuda::register_backend()
// call, would be needed in every main, the Boost.Test ones included, behind
// #ifdefs; a forgotten one would fail the same silent way.)
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
