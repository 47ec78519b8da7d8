// Data-parallel training across processes: the communicator seam.
//
// P processes (ranks), launched together by mpirun or srun, each hold a full
// copy of the model. Each step, every rank runs forward and backward on its own
// 1/P of the global batch (the loss being the mean over its part), then
// allreduce_mean() averages the gradients, so every rank applies the same
// update: with P equal parts, the mean of the P part-mean gradients is the
// full-batch mean gradient (up to float32 reduction order). When P does not
// divide a batch (the last of an epoch), scale each rank's loss by
// P * n_rank / n before backward, so that the average stays the full-batch
// mean; a rank with no images still calls the collectives, with zero
// gradients (grad_buffer() of each trainable parameter).
//
// Implementations (engine/distributed/):
//   single process   size 1; every collective is a no-op.
//   MPI              tensors on any device, staged through one host buffer per
//                    dtype; MPI_Allreduce(MPI_SUM) then a scale by 1/P.
//   NCCL             CUDA tensors, reduced on the GPU in one device buffer per
//                    dtype; bootstrapped (ncclUniqueId) over MPI, and CPU
//                    tensors and the control messages go over MPI. It comes
//                    with the CUDA backend (cuda/nccl_communicator.h), which
//                    registers it (register_device_communicator).
// A reduction leaves the same bits on every rank (each element is reduced once
// and the result is distributed), so parameters stay identical across ranks as
// long as every rank applies the same optimiser to them; check_same_parameters()
// verifies it.
//
// Every rank must call every collective, in the same order, with tensors of
// the same dtypes, devices and shapes (checked: a mismatch throws on every rank).
//
// Batch norm: statistics are computed per rank over its own part of the batch
// (no synchronisation), so a model with batch norm is not step-for-step
// equivalent to one process on the global batch. Running statistics drift
// apart between ranks; broadcast() them from rank 0 (as PyTorch DDP does)
// before evaluating or checkpointing. Dropout likewise: its mask hashes the
// element's index within the rank's part, so ranks draw other masks than one
// process on the whole batch would (equally random, not the same bits).
//
// Errors and failing ranks: MPI errors abort the whole job (MPI's default
// handler, MPI_ERRORS_ARE_FATAL). A rank that dies (crash, kill, out of
// memory) makes mpirun/srun end all the others with a message naming it.
// An exception thrown on one rank only would leave the others waiting in their
// next collective: catch it at the top of main, print it and call abort(),
// which ends every rank. Only rank 0 writes results and checkpoints, each
// written to a temporary file and renamed (engine/io.h), so a job that dies
// leaves the last complete checkpoint intact.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace engine {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;  // 0 .. size()-1
  virtual int size() const = 0;
  // For logs: "single process", "MPI (rank 1 of 2)", "NCCL (rank 1 of 2)".
  virtual std::string name() const = 0;

  // Replaces every tensor's contents with its mean over all ranks, in place.
  // The tensors are flattened into one buffer per dtype, so the call costs one
  // reduction per dtype however many tensors there are.
  virtual void allreduce_mean(const std::vector<Tensor>& tensors) = 0;
  // Copies root's tensors into every other rank's, in place.
  virtual void broadcast(const std::vector<Tensor>& tensors, int root) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;
  // Ends every rank of the job with this exit code (MPI_Abort). For an error
  // seen by one rank only; never returns.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  // Throws std::runtime_error on every rank unless every rank holds the same
  // bytes in `tensors` (same count, dtypes, shapes and values); the message
  // names `where`, the first differing tensor and the ranks that differ from
  // rank 0. Costs one hash pass over the tensors and two small allgathers.
  void check_same_parameters(const std::vector<Tensor>& tensors, const std::string& where);

  // Control messages between ranks (host values, any implementation): the
  // concatenation over ranks 0..size()-1 of each rank's `values`. All ranks
  // must pass the same number of values. E.g. rank 0's decision, so that
  // every rank takes the same branch: allgather({decision})[0].
  virtual std::vector<uint64_t> allgather(const std::vector<uint64_t>& values) = 0;

 protected:
  // Throws std::invalid_argument on every rank, naming `op`, unless all ranks
  // pass tensors of the same dtypes, devices and shapes. Implementations call
  // it before each reduction or broadcast: mismatched buffers would hang or
  // corrupt MPI.
  void check_same_layout(const std::vector<Tensor>& tensors, const std::string& op);
};

// Averages the gradients of `params` over all ranks: every parameter that has
// a gradient this step (the same ones on every rank, as every rank runs the
// same model). Call between backward() and the optimiser's step().
void average_gradients(Communicator& communicator, const std::vector<Tensor>& params);

// True when this process was started by an MPI launcher (mpirun, mpiexec, srun
// with PMI/PMIx): OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK is set.
bool launched_by_mpi();
// True when this build has MPI (the `mpi` Meson option).
bool built_with_mpi();

// A communicator that reduces tensors in a device's own memory (NCCL for
// CUDA). Device backend plugins register one where they have it, when they
// are loaded (cuda/register_backend.cpp); it bootstraps over MPI, so only builds with MPI
// register one. Throws std::logic_error for the CPU or a second registration.
using CommunicatorFactory = std::unique_ptr<Communicator> (*)();
void register_device_communicator(Device device, CommunicatorFactory factory);
// True when `device` has a registered communicator (CUDA: built with NCCL).
bool has_device_communicator(Device device);

// The communicator for data-parallel training of tensors on `device`: when
// launched by MPI, the device's registered communicator (NCCL for CUDA tensors
// where the build has it), else MPI; otherwise a single process. Initialises MPI (once per process; it is
// finalised when the last MPI communicator is destroyed). Throws
// std::runtime_error when launched by MPI but built without it.
std::unique_ptr<Communicator> make_communicator(Device device);
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace engine
