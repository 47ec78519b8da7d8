// Device memory for tensors and kernel scratch. cudaMalloc and cudaFree
// synchronise the device and cost far more than a kernel, so freed blocks are
// kept in free lists, one per size bucket, and handed out again. All work runs
// on one stream, so a block freed by the host may be reused at once: the
// kernels that read it were queued before the ones that will write it.
#pragma once

#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace engine::cuda {

// The size actually reserved for a request of `bytes`: a multiple of 512
// bytes, or of an eighth of the request's power of two when that is larger,
// so a bucket wastes at most 511 bytes or 12.5%, and nearby sizes share a
// free list.
constexpr size_t allocation_bucket(size_t bytes) {
  size_t power = 512;
  while (power * 2 <= bytes) power *= 2;
  const size_t step = power / 8 > 512 ? power / 8 : 512;
  return bytes == 0 ? step : (bytes + step - 1) / step * step;
}

class CachingAllocator {
 public:
  CachingAllocator() = default;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` from the free list of its bucket, or a new one.
  // When the device is full, the cached blocks are released and it tries again.
  void* allocate(size_t bytes);
  // Returns a block to its free list; `bytes` is the size passed to allocate.
  void deallocate(void* ptr, size_t bytes);
  // cudaFree of every cached block.
  void release_cached();
  // Most bytes handed out at once (in buckets, cache excluded) since the last reset.
  size_t peak_bytes();
  void reset_peak();

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_blocks_;  // by bucket
  size_t in_use_ = 0, peak_ = 0;  // bytes handed out now, and their most since reset_peak
};

// Scratch device memory for the length of one kernel call (uploaded labels,
// batch norm's per-channel statistics), returned to the allocator's cache on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer(CachingAllocator& allocator, size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <class T> T* as() const { return static_cast<T*>(data_); }

 private:
  CachingAllocator& allocator_;
  size_t bytes_;
  void* data_;
};

}  // namespace engine::cuda
