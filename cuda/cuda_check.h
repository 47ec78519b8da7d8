// CUDA and cuBLAS status codes turned into exceptions that name the call.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace engine::cuda {

// Throws std::runtime_error("CUDA error in <call>: <name>: <description>")
// unless status is cudaSuccess.
void check_cuda(cudaError_t status, const char* call);
// Throws std::runtime_error("cuBLAS error in <call>: <name>: <description>")
// unless status is CUBLAS_STATUS_SUCCESS.
void check_cublas(cublasStatus_t status, const char* call);

}  // namespace engine::cuda
