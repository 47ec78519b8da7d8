#include "cuda/cuda_check.h"

#include <stdexcept>
#include <string>

namespace engine::cuda {

void check_cuda(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // reset the runtime's last error, so later checks see only their own
  throw std::runtime_error(std::string("CUDA error in ") + call + ": " + cudaGetErrorName(status) +
                           ": " + cudaGetErrorString(status));
}

void check_cublas(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string("cuBLAS error in ") + call + ": " +
                           cublasGetStatusName(status) + ": " + cublasGetStatusString(status));
}

}  // namespace engine::cuda
