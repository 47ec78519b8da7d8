// Launching the bodies of engine/kernels/*.h (nvcc only): one __global__
// grid-stride kernel per body type, and the shared-memory block reduction
// whose host reference is block_sum_reference in cuda/grid.h.
#pragma once

#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "cuda/grid.h"

namespace engine::cuda {

template <class Body>
__global__ void grid_stride_kernel(int64_t n, Body body) {
  grid_stride(ThreadIndex{blockIdx.x, threadIdx.x, gridDim.x, blockDim.x}, n, body);
}

// body(i) for every i < n, queued on the context's stream.
template <class Body>
void launch(const CudaContext& ctx, const char* kernel, int64_t n, const Body& body) {
  if (n <= 0) return;
  grid_stride_kernel<<<launch_blocks(n), kThreads, 0, ctx.stream>>>(n, body);
  check_cuda(cudaGetLastError(), kernel);
}

// Sum of value(i) over i < count by the kThreads threads of this block, as
// part `part` of `parts` blocks sharing the sum (thread t starts at
// part*kThreads + t and steps parts*kThreads). Every thread returns the total.
template <class Value>
__device__ double block_sum(int64_t part, int64_t parts, int64_t count, const Value& value) {
  __shared__ double partials[kThreads];
  const int64_t t = threadIdx.x;
  partials[t] = thread_partial_sum(part * kThreads + t, parts * kThreads, count, value);
  __syncthreads();
  for (int64_t half = kThreads / 2; half > 0; half /= 2) {
    tree_step(partials, t, half);
    __syncthreads();
  }
  const double total = partials[0];
  __syncthreads();  // the next block_sum of this kernel overwrites partials
  return total;
}

}  // namespace engine::cuda
