#include "engine/backend.h"

#include <mutex>
#include <stdexcept>

#ifdef ENGINE_WITH_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace engine {

int64_t Broadcast::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= out_shape[i];
  return n;
}

Backend& cpu_backend();  // engine/cpu/cpu_backend.cpp

namespace {

// The CUDA backend is created on first use. Where the project was built with
// CUDA but no GPU or driver is usable, the reason is kept for the error message.
struct CudaState {
  Backend* backend = nullptr;
  std::string unavailable_reason = "the project was built without CUDA";
};

CudaState& cuda_state() {
  static CudaState state;
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef ENGINE_WITH_CUDA
    state.backend = cuda::try_create_backend(&state.unavailable_reason);
#endif
  });
  return state;
}

}  // namespace

bool backend_available(Device device) {
  return device == Device::cpu || cuda_state().backend != nullptr;
}

std::string backend_unavailable_reason(Device device) {
  return backend_available(device) ? std::string() : cuda_state().unavailable_reason;
}

Backend& backend(Device device) {
  if (device == Device::cpu) return cpu_backend();
  CudaState& state = cuda_state();
  if (!state.backend)
    throw std::runtime_error("device cuda requested, but it is not available: " +
                             state.unavailable_reason);
  return *state.backend;
}

}  // namespace engine
