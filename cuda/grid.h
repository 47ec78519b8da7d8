// How the CUDA kernels map threads to work, written once for the GPU and for
// the CPU tests that emulate a grid (tests/test_cuda_kernels.cpp).
//
// Every per-element or per-output kernel is a grid-stride loop over a body:
// a small struct whose ENGINE_HOST_DEVICE operator()(i) computes element i.
// Per-channel statistics (batch norm) and large sums use a block reduction:
// each thread sums a strided share into a partial, then a tree in shared
// memory halves the active threads until one sum remains. The tree step is a
// host-callable function, and block_sum_reference runs the whole reduction on
// the host in the order the GPU does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/host_device.h"

namespace engine::cuda {

// Threads per block of every launch; a power of two, as the tree needs.
constexpr int64_t kThreads = 256;
// Grid-stride loops let a capped grid cover any size.
constexpr int64_t kMaxBlocks = 1 << 16;

// Blocks of a 1-D launch over n items: enough for one item per thread, capped.
inline int64_t launch_blocks(int64_t n) {
  return std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks);
}

// One thread's place in a 1-D launch: blockIdx.x, threadIdx.x, gridDim.x, blockDim.x.
struct ThreadIndex {
  int64_t block, thread, blocks, threads;
};

// Calls body(i) for the items i < n this thread owns: its global index, then
// steps of the whole grid's size. Threads past the end (the overhang of the
// last block) do nothing.
template <class Body>
ENGINE_HOST_DEVICE void grid_stride(const ThreadIndex& t, int64_t n, const Body& body) {
  const int64_t step = t.blocks * t.threads;
  for (int64_t i = t.block * t.threads + t.thread; i < n; i += step) body(i);
}

// A thread's share of a reduction: value(i) summed over i = first, first + step, ... < count.
template <class Value>
ENGINE_HOST_DEVICE double thread_partial_sum(int64_t first, int64_t step, int64_t count,
                                             const Value& value) {
  double sum = 0;
  for (int64_t i = first; i < count; i += step) sum += value(i);
  return sum;
}

// One step of the tree: the first `half` threads add the partial `half` above them.
ENGINE_HOST_DEVICE inline void tree_step(double* partials, int64_t thread, int64_t half) {
  if (thread < half) partials[thread] += partials[thread + half];
}

// The block reduction of the GPU (block_sum in cuda/launch.cuh), run on the
// host with the same partials and the same tree: the sum of value(i), i < count,
// by the kThreads threads of block `part` of `parts` (the whole sum when parts is 1).
template <class Value>
double block_sum_reference(int64_t part, int64_t parts, int64_t count, const Value& value) {
  std::vector<double> partials(kThreads);
  for (int64_t t = 0; t < kThreads; ++t)
    partials[t] = thread_partial_sum(part * kThreads + t, parts * kThreads, count, value);
  for (int64_t half = kThreads / 2; half > 0; half /= 2)
    for (int64_t t = 0; t < kThreads; ++t) tree_step(partials.data(), t, half);
  return partials[0];
}

}  // namespace engine::cuda
