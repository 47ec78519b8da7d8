#include "cuda/cuda_context.h"

#include <cstring>

#include "cuda/cuda_check.h"

namespace engine::cuda {

void PinnedStaging::copy_to_device(void* device, const void* host, size_t bytes,
                                   cudaStream_t stream) {
  if (bytes == 0) return;
  std::lock_guard lock(mutex_);
  Slot& slot = slots_[next_];
  next_ = (next_ + 1) % kSlots;
  if (!slot.copied)
    check_cuda(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming), "cudaEventCreate");
  // The slot's previous copy must have read it (at once unless kSlots uploads are queued).
  check_cuda(cudaEventSynchronize(slot.copied), "cudaEventSynchronize (pinned staging)");
  if (slot.capacity < bytes) {
    if (slot.host) check_cuda(cudaFreeHost(slot.host), "cudaFreeHost");
    slot.host = nullptr, slot.capacity = 0;
    const size_t capacity = bytes < 4096 ? 4096 : bytes;
    check_cuda(cudaMallocHost(&slot.host, capacity), "cudaMallocHost (pinned staging)");
    slot.capacity = capacity;
  }
  std::memcpy(slot.host, host, bytes);
  check_cuda(cudaMemcpyAsync(device, slot.host, bytes, cudaMemcpyHostToDevice, stream),
             "cudaMemcpyAsync (pinned staging to device)");
  check_cuda(cudaEventRecord(slot.copied, stream), "cudaEventRecord (pinned staging)");
}

void CudaContext::copy_from_host(void* device, const void* host, size_t bytes) const {
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream),
             "cudaMemcpyAsync (host to device)");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (host to device)");
}

void CudaContext::copy_to_host(void* host, const void* device, size_t bytes) const {
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream),
             "cudaMemcpyAsync (device to host)");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (device to host)");
}

DeviceBuffer CudaContext::upload(const void* host, size_t bytes) {
  DeviceBuffer buffer(allocator, bytes);
  staging.copy_to_device(buffer.as<void>(), host, bytes, stream);
  return buffer;
}

}  // namespace engine::cuda
