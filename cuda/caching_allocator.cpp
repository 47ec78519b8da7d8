#include "cuda/caching_allocator.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/cuda_check.h"

namespace engine::cuda {

void* CachingAllocator::allocate(size_t bytes) {
  const size_t bucket = allocation_bucket(bytes);
  {
    std::lock_guard lock(mutex_);
    in_use_ += bucket;
    peak_ = std::max(peak_, in_use_);
    auto it = free_blocks_.find(bucket);
    if (it != free_blocks_.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      return ptr;
    }
  }
  struct Undo {  // a failed allocation hands nothing out
    CachingAllocator& self;
    size_t bucket;
    bool done = false;
    ~Undo() {
      if (done) return;
      std::lock_guard lock(self.mutex_);
      self.in_use_ -= bucket;
    }
  } undo{*this, bucket};
  void* ptr = nullptr;
  if (cudaMalloc(&ptr, bucket) == cudaSuccess) {
    undo.done = true;
    return ptr;
  }
  cudaGetLastError();
  release_cached();
  const cudaError_t status = cudaMalloc(&ptr, bucket);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw std::runtime_error("CUDA out of memory: cudaMalloc of " + std::to_string(bucket) +
                             " bytes failed with " + std::to_string(free_bytes) + " of " +
                             std::to_string(total_bytes) + " bytes free");
  }
  check_cuda(status, "cudaMalloc");
  undo.done = true;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  std::lock_guard lock(mutex_);
  in_use_ -= allocation_bucket(bytes);
  free_blocks_[allocation_bucket(bytes)].push_back(ptr);
}

size_t CachingAllocator::peak_bytes() {
  std::lock_guard lock(mutex_);
  return peak_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard lock(mutex_);
  peak_ = in_use_;
}

void CachingAllocator::release_cached() {
  std::lock_guard lock(mutex_);
  for (auto& [bucket, blocks] : free_blocks_)
    for (void* ptr : blocks) check_cuda(cudaFree(ptr), "cudaFree");
  free_blocks_.clear();
}

DeviceBuffer::DeviceBuffer(CachingAllocator& allocator, size_t bytes)
    : allocator_(allocator), bytes_(bytes), data_(allocator.allocate(bytes)) {}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : allocator_(other.allocator_), bytes_(other.bytes_), data_(std::exchange(other.data_, nullptr)) {}

DeviceBuffer::~DeviceBuffer() { allocator_.deallocate(data_, bytes_); }

}  // namespace engine::cuda
