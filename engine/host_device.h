// ENGINE_HOST_DEVICE marks a function that runs on both the CPU and the GPU:
// __host__ __device__ under nvcc, nothing under a plain C++ compiler. The CUDA
// kernels call such functions from device code and the CPU tests call the very
// same functions from host code (tests/test_cuda_kernels.cpp).
#pragma once

#ifdef __CUDACC__
#define ENGINE_HOST_DEVICE __host__ __device__
#else
#define ENGINE_HOST_DEVICE
#endif
