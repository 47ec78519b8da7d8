// The MPI communicator: one rank per process of MPI_COMM_WORLD (a private
// duplicate of it, so our messages never meet other libraries' ones).
#pragma once

// The C API only: OpenMPI's deprecated C++ bindings would otherwise come along.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include "engine/distributed.h"

namespace engine::distributed {

class MpiCommunicator : public Communicator {
 public:
  // Initialises MPI if no one has (MPI_THREAD_FUNNELED: only the main thread
  // calls MPI; OpenMP threads compute between calls). Throws
  // std::runtime_error when MPI was already finalised in this process.
  MpiCommunicator();
  // The last MPI communicator alive finalises MPI, if it initialised it.
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override;

  // Tensors on any device: copied into one host buffer per dtype, reduced with
  // MPI_Allreduce(MPI_SUM) in place, scaled by 1/size, copied back.
  void allreduce_mean(const std::vector<Tensor>& tensors) override;
  void broadcast(const std::vector<Tensor>& tensors, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int exit_code) override;
  std::vector<uint64_t> allgather(const std::vector<uint64_t>& values) override;

 protected:
  // Throws std::invalid_argument naming `op` unless 0 <= root < size.
  void check_root(int root, const std::string& op) const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace engine::distributed
