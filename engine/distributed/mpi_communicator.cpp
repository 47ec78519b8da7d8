// MPI collectives over host buffers. MPI reports errors by aborting the job
// (MPI_ERRORS_ARE_FATAL, inherited by our duplicate of MPI_COMM_WORLD), so
// return codes are not checked.
#include "engine/distributed/mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <stdexcept>

#include "engine/backend.h"

namespace engine::distributed {

namespace {

// MPI communicators alive, and whether one of them initialised MPI (and so the
// last to go must finalise it).
int live_communicators = 0;
bool initialised_here = false;

template <class T> MPI_Datatype mpi_type();
template <> MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <> MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

// MPI counts are int: larger buffers go in chunks.
constexpr int64_t kMaxCount = INT_MAX;

// Calls f(offset, count) over [0, total) in pieces of at most kMaxCount
// elements, the most one MPI call can take (its counts are int).
template <class F>
void for_each_mpi_chunk(int64_t total, F f) {
  for (int64_t start = 0; start < total; start += kMaxCount)
    f(start, static_cast<int>(std::min(kMaxCount, total - start)));
}

// The tensors of dtype T, concatenated into one host buffer (empty if none).
template <class T>
std::vector<T> gather_to_host(const std::vector<Tensor>& tensors) {
  int64_t total = 0;
  for (const Tensor& t : tensors)
    if (t.dtype() == dtype_of<T>()) total += t.numel();
  std::vector<T> flat(static_cast<size_t>(total));
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (t.dtype() != dtype_of<T>()) continue;
    backend(t.device()).copy_to_host(flat.data() + offset, t.raw_data(), t.nbytes());
    offset += t.numel();
  }
  return flat;
}

// The inverse of gather_to_host: each tensor of dtype T takes its part of `flat`.
template <class T>
void scatter_from_host(const std::vector<T>& flat, const std::vector<Tensor>& tensors) {
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    if (t.dtype() != dtype_of<T>()) continue;
    Tensor target = t;
    backend(t.device()).copy_from_host(target.raw_data(), flat.data() + offset, t.nbytes());
    offset += t.numel();
  }
}

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (finalised)
    throw std::runtime_error(
        "MpiCommunicator: MPI was already finalised in this process and cannot be started "
        "again: keep one communicator for the whole run");
  if (!initialised) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    initialised_here = true;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  ++live_communicators;
}

MpiCommunicator::~MpiCommunicator() {
  MPI_Comm_free(&comm_);
  if (--live_communicators == 0 && initialised_here) MPI_Finalize();
}

std::string MpiCommunicator::name() const {
  return "MPI (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")";
}

void MpiCommunicator::allreduce_mean(const std::vector<Tensor>& tensors) {
  check_same_layout(tensors, "allreduce_mean");
  for (const DType dtype : {DType::f32, DType::f64}) {
    dispatch_dtype(dtype, [&]<class T>() {
      std::vector<T> flat = gather_to_host<T>(tensors);
      if (flat.empty()) return;
      for_each_mpi_chunk(static_cast<int64_t>(flat.size()), [&](int64_t start, int count) {
        MPI_Allreduce(MPI_IN_PLACE, flat.data() + start, count, mpi_type<T>(), MPI_SUM, comm_);
      });
      const T inverse = T(1) / static_cast<T>(size_);
      for (T& value : flat) value *= inverse;
      scatter_from_host(flat, tensors);
    });
  }
}

void MpiCommunicator::broadcast(const std::vector<Tensor>& tensors, int root) {
  check_root(root, "broadcast");
  check_same_layout(tensors, "broadcast");
  for (const DType dtype : {DType::f32, DType::f64}) {
    dispatch_dtype(dtype, [&]<class T>() {
      std::vector<T> flat = gather_to_host<T>(tensors);
      if (flat.empty()) return;
      for_each_mpi_chunk(static_cast<int64_t>(flat.size()), [&](int64_t start, int count) {
        MPI_Bcast(flat.data() + start, count, mpi_type<T>(), root, comm_);
      });
      if (rank_ != root) scatter_from_host(flat, tensors);
    });
  }
}

void MpiCommunicator::barrier() { MPI_Barrier(comm_); }

void MpiCommunicator::abort(int exit_code) {
  MPI_Abort(comm_, exit_code);
  std::exit(exit_code);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

std::vector<uint64_t> MpiCommunicator::allgather(const std::vector<uint64_t>& values) {
  std::vector<uint64_t> gathered(values.size() * static_cast<size_t>(size_));
  MPI_Allgather(values.data(), static_cast<int>(values.size()), MPI_UINT64_T, gathered.data(),
                static_cast<int>(values.size()), MPI_UINT64_T, comm_);
  return gathered;
}

void MpiCommunicator::check_root(int root, const std::string& op) const {
  if (root < 0 || root >= size_)
    throw std::invalid_argument(op + ": root " + std::to_string(root) + " out of range for " +
                                std::to_string(size_) + " ranks");
}

}  // namespace engine::distributed
