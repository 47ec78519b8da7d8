#include "cuda/cuda_context.h"

#include "cuda/cuda_check.h"

namespace engine::cuda {

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
  copy_from_host(buffer.as<void>(), host, bytes);
  return buffer;
}

}  // namespace engine::cuda
