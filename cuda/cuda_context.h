// What every CUDA kernel call needs: the one stream all work is queued on, the
// one cuBLAS handle (bound to that stream) and the caching allocator.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cuda/caching_allocator.h"

namespace engine::cuda {

struct CudaContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  CachingAllocator allocator;

  // Copies between host and device memory, in stream order. Both return when
  // the copy is done: the host array may be reused or read at once.
  void copy_from_host(void* device, const void* host, size_t bytes) const;
  void copy_to_host(void* host, const void* device, size_t bytes) const;
  // Scratch device copy of a host array (the loss kernels' labels and mask).
  DeviceBuffer upload(const void* host, size_t bytes);
};

}  // namespace engine::cuda
