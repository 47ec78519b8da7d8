// What every CUDA kernel call needs: the one stream all work is queued on, the
// one cuBLAS handle (bound to that stream) and the caching allocator.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <array>
#include <mutex>

#include "cuda/caching_allocator.h"

namespace engine::cuda {

// Pinned (page-locked) host buffers that small uploads pass through, so that
// an upload is queued on the stream and the host goes on at once: a copy
// from pageable memory would make it wait for the stream. The slots are used
// in turn; a slot is written again only after the copy that read it has run
// (its event), so the host waits only when kSlots uploads are still queued.
class PinnedStaging {
 public:
  // Copies `bytes` of host memory into the next slot and queues their copy
  // to `device` on `stream`; the host array may be reused at once.
  void copy_to_device(void* device, const void* host, size_t bytes, cudaStream_t stream);

 private:
  static constexpr size_t kSlots = 8;
  struct Slot {
    void* host = nullptr;  // cudaMallocHost, grown to the largest upload
    size_t capacity = 0;
    cudaEvent_t copied = nullptr;  // recorded after the slot's last copy
  };
  std::mutex mutex_;
  std::array<Slot, kSlots> slots_;
  size_t next_ = 0;
};

struct CudaContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  CachingAllocator allocator;
  PinnedStaging staging;

  // Copies between host and device memory, in stream order. Both return when
  // the copy is done: the host array may be reused or read at once.
  void copy_from_host(void* device, const void* host, size_t bytes) const;
  void copy_to_host(void* host, const void* device, size_t bytes) const;
  // Scratch device copy of a small host array (the loss kernels' labels and
  // mask), queued through the pinned staging without waiting for the stream.
  DeviceBuffer upload(const void* host, size_t bytes);
};

}  // namespace engine::cuda
