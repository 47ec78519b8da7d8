#include "cuda/cuda_backend.h"

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_kernels.h"

namespace engine::cuda {

namespace {

class CudaBackend final : public Backend {
 public:
  // cudaSetDevice binds the calling thread only: the engine makes its CUDA
  // calls from one thread, the one that first uses the device.
  explicit CudaBackend(int index) : f32_(&ctx_), f64_(&ctx_) {
    check_cuda(cudaSetDevice(index), "cudaSetDevice");
    cudaDeviceProp properties{};
    check_cuda(cudaGetDeviceProperties(&properties, index), "cudaGetDeviceProperties");
    name_ = "cuda:" + std::to_string(index) + " (" + properties.name + ")";
    // Non-blocking: the legacy default stream must not serialise with ours.
    check_cuda(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check_cublas(cublasCreate(&ctx_.cublas), "cublasCreate");
    check_cublas(cublasSetStream(ctx_.cublas, ctx_.stream), "cublasSetStream");
  }
  // The backend lives until the process ends: the CUDA runtime may already be
  // torn down when static destructors run, so nothing is released here.

  Device device() const override { return Device::cuda; }
  std::string name() const override { return name_; }

  void* allocate(size_t bytes) override { return ctx_.allocator.allocate(bytes); }
  void deallocate(void* ptr, size_t bytes) override { ctx_.allocator.deallocate(ptr, bytes); }
  void copy_to_host(void* host_dst, const void* src, size_t bytes) const override {
    ctx_.copy_to_host(host_dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* host_src, size_t bytes) const override {
    ctx_.copy_from_host(dst, host_src, bytes);
  }
  void synchronize() const override {
    check_cuda(cudaStreamSynchronize(ctx_.stream), "cudaStreamSynchronize");
  }
  int64_t peak_memory_bytes() override { return static_cast<int64_t>(ctx_.allocator.peak_bytes()); }
  void reset_peak_memory() override { ctx_.allocator.reset_peak(); }
  // 128 MiB of float32: every chunk costs its own im2col, GEMMs and col2im
  // launches, so a GPU wants few, large chunks, and its memory has room for
  // them (VGG's 32x32 layers take 1 to 3 chunks of a batch of 128). Still a
  // bound, so a large batch does not grow the cols without limit.
  int64_t conv_chunk_elements() const override { return int64_t{1} << 25; }

  // The math mode of the one cuBLAS handle, which every GEMM goes through
  // (cuda/blas_kernels.cpp). TF32 applies to the float32 GEMMs only; the
  // float64 ones are unchanged.
  void set_tf32(bool on) override {
    check_cublas(cublasSetMathMode(ctx_.cublas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                 "cublasSetMathMode");
    tf32_ = on;
  }
  bool tf32() const override { return tf32_; }

  const Kernels<float>& f32() const override { return f32_; }
  const Kernels<double>& f64() const override { return f64_; }

  // Runs one kernel and reads its result back: fails when the driver cannot
  // load this binary's kernels for the GPU (an architecture not compiled in).
  void probe() {
    float* x = static_cast<float*>(allocate(sizeof(float)));
    f32_.fill(x, 1, 42.0f);
    float value = 0;
    copy_to_host(&value, x, sizeof(float));
    deallocate(x, sizeof(float));
    if (value != 42.0f) throw std::runtime_error("a test kernel on the GPU gave a wrong result");
  }

 private:
  CudaContext ctx_;
  CudaKernels<float> f32_;
  CudaKernels<double> f64_;
  std::string name_;
  bool tf32_ = false;
};

}  // namespace

std::unique_ptr<Backend> try_create_backend(int index, std::string* why_not) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    *why_not = std::string("no usable CUDA GPU or driver (cudaGetDeviceCount: ") +
               cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")";
    return nullptr;
  }
  if (count == 0) {
    *why_not = "no CUDA GPU found (cudaGetDeviceCount returned 0)";
    return nullptr;
  }
  if (index >= count) {
    // CUDA numbers only the visible GPUs (CUDA_VISIBLE_DEVICES), from 0.
    *why_not = "cuda:" + std::to_string(index) + " does not exist: " + std::to_string(count) + " CUDA GPU" +
               (count == 1 ? " is" : "s are") + " visible (cuda:0" +
               (count == 1 ? std::string() : " to cuda:" + std::to_string(count - 1)) + ")";
    return nullptr;
  }
  try {
    auto backend = std::make_unique<CudaBackend>(index);
    backend->probe();
    return backend;
  } catch (const std::exception& e) {
    *why_not = std::string("the CUDA GPU could not be used: ") + e.what();
    return nullptr;
  }
}

}  // namespace engine::cuda
