// NCCL collectives over device buffers. NCCL runs on a stream of its own: the
// backend's queued work is finished (synchronize) before each collective, and
// the collective is finished before the backend's kernels touch the results.
#include "cuda/nccl_communicator.h"

#include <stdexcept>

#include "cuda/cuda_check.h"
#include "engine/backend.h"

namespace engine::cuda {

namespace {

void check_nccl(ncclResult_t status, const char* call) {
  if (status != ncclSuccess)
    throw std::runtime_error(std::string("NCCL error in ") + call + ": " +
                             ncclGetErrorString(status));
}

template <class T> ncclDataType_t nccl_type();
template <> ncclDataType_t nccl_type<float>() { return ncclFloat32; }
template <> ncclDataType_t nccl_type<double>() { return ncclFloat64; }

// True when every tensor is on the GPU (NCCL's part), false when every one is
// on the CPU (MPI's part); a mix throws.
bool all_on_cuda(const std::vector<Tensor>& tensors, const std::string& op) {
  size_t on_cuda = 0;
  for (const Tensor& t : tensors) on_cuda += t.device() == Device::cuda;
  if (on_cuda != 0 && on_cuda != tensors.size())
    throw std::invalid_argument(op + " (NCCL): " + std::to_string(on_cuda) + " of " +
                                std::to_string(tensors.size()) +
                                " tensors are on cuda, the others on cpu; pass them in two calls");
  return on_cuda != 0;
}

// The tensors of dtype T, concatenated into one device tensor (undefined if none).
template <class T>
Tensor flatten_on_device(const std::vector<Tensor>& tensors) {
  int64_t total = 0;
  for (const Tensor& t : tensors)
    if (t.dtype() == dtype_of<T>()) total += t.numel();
  if (total == 0) return {};
  Tensor flat = Tensor::empty({total}, dtype_of<T>(), Device::cuda);
  const Kernels<T>& kern = backend(Device::cuda).kernels<T>();
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (t.dtype() != dtype_of<T>()) continue;
    kern.copy(flat.data<T>() + offset, t.data<T>(), t.numel());
    offset += t.numel();
  }
  return flat;
}

// The inverse of flatten_on_device: each tensor of dtype T takes its part of `flat`.
template <class T>
void unflatten_on_device(const Tensor& flat, const std::vector<Tensor>& tensors) {
  const Kernels<T>& kern = backend(Device::cuda).kernels<T>();
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (t.dtype() != dtype_of<T>()) continue;
    Tensor target = t;
    kern.copy(target.data<T>(), flat.data<T>() + offset, t.numel());
    offset += t.numel();
  }
}

}  // namespace

NcclCommunicator::NcclCommunicator() {
  backend(Device::cuda);  // selects and initialises the GPU, or throws why it cannot
  ncclUniqueId id{};
  if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm_);
  check_nccl(ncclCommInitRank(&nccl_, size_, id, rank_), "ncclCommInitRank");
  check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                   "cudaStreamCreateWithFlags");
}

NcclCommunicator::~NcclCommunicator() {
  cudaStreamDestroy(stream_);
  ncclCommDestroy(nccl_);
}

std::string NcclCommunicator::name() const {
  return "NCCL (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")";
}

void NcclCommunicator::allreduce_mean(const std::vector<Tensor>& tensors) {
  if (!all_on_cuda(tensors, "allreduce_mean")) return MpiCommunicator::allreduce_mean(tensors);
  check_same_layout(tensors, "allreduce_mean");
  for (const DType dtype : {DType::f32, DType::f64}) {
    dispatch_dtype(dtype, [&]<class T>() {
      Tensor flat = flatten_on_device<T>(tensors);
      if (!flat.defined()) return;
      const Backend& be = backend(Device::cuda);
      be.synchronize();
      check_nccl(ncclAllReduce(flat.data<T>(), flat.data<T>(), static_cast<size_t>(flat.numel()),
                               nccl_type<T>(), ncclSum, nccl_, stream_),
                 "ncclAllReduce");
      check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
      be.kernels<T>().scale(flat.numel(), T(1) / static_cast<T>(size_), flat.data<T>(), flat.data<T>());
      unflatten_on_device<T>(flat, tensors);
    });
  }
}

void NcclCommunicator::broadcast(const std::vector<Tensor>& tensors, int root) {
  if (!all_on_cuda(tensors, "broadcast")) return MpiCommunicator::broadcast(tensors, root);
  check_root(root, "broadcast");
  check_same_layout(tensors, "broadcast");
  for (const DType dtype : {DType::f32, DType::f64}) {
    dispatch_dtype(dtype, [&]<class T>() {
      Tensor flat = flatten_on_device<T>(tensors);
      if (!flat.defined()) return;
      backend(Device::cuda).synchronize();
      check_nccl(ncclBroadcast(flat.data<T>(), flat.data<T>(), static_cast<size_t>(flat.numel()),
                               nccl_type<T>(), root, nccl_, stream_),
                 "ncclBroadcast");
      check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
      if (rank_ != root) unflatten_on_device<T>(flat, tensors);
    });
  }
}

}  // namespace engine::cuda
