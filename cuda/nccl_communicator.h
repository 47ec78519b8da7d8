// The NCCL communicator: reductions and broadcasts of CUDA tensors on the GPU,
// everything else (bootstrap, CPU tensors, barrier, allgather, abort) over MPI.
// Each rank uses the GPU the CUDA backend uses (cuda:N, the first visible one
// unless chosen), so ranks sharing a machine need one GPU each: give every
// rank its own CUDA_VISIBLE_DEVICES (srun --gpus-per-task=1 does; see
// scripts/mpirun-example.sh for mpirun). It lives with the CUDA backend and
// registers itself with the engine (cuda/register_backend.cpp), which picks it
// for CUDA tensors under an MPI launcher (engine::make_communicator).
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "engine/distributed/mpi_communicator.h"

namespace engine::cuda {

class NcclCommunicator final : public distributed::MpiCommunicator {
 public:
  // Rank 0 creates the ncclUniqueId and broadcasts it over MPI; every rank then
  // joins the NCCL communicator. Throws std::runtime_error when no GPU is
  // usable or NCCL fails (two ranks on one GPU, say).
  NcclCommunicator();
  ~NcclCommunicator() override;

  std::string name() const override;
  // CUDA tensors: copied into one device buffer per dtype, reduced with
  // ncclAllReduce(ncclSum) in place, scaled by 1/size, copied back. CPU
  // tensors (loss sums, counts) go over MPI; a list mixing both throws
  // std::invalid_argument.
  void allreduce_mean(const std::vector<Tensor>& tensors) override;
  void broadcast(const std::vector<Tensor>& tensors, int root) override;

 private:
  ncclComm_t nccl_ = nullptr;
  // NCCL's own stream; the backend's stream is synchronised before and after.
  cudaStream_t stream_ = nullptr;
};

}  // namespace engine::cuda
