// What every communicator shares: the cross-rank checks (tensor hashes
// compared through allgather), gradient averaging, the registry of device
// communicators, and the factory that picks an implementation from how the
// process was launched.
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine/backend.h"
#include "engine/distributed.h"
#include "engine/splitmix64.h"

#if defined(ENGINE_WITH_MPI)
#include "engine/distributed/mpi_communicator.h"
#endif

namespace engine {

namespace {

uint64_t mix(uint64_t hash, uint64_t value) { return splitmix64(hash ^ value); }

// Hash of a tensor's dtype, device and shape.
uint64_t layout_hash(const Tensor& t) {
  uint64_t hash = mix(mix(0, static_cast<uint64_t>(t.dtype())), static_cast<uint64_t>(t.device()));
  for (const int64_t extent : t.shape()) hash = mix(hash, static_cast<uint64_t>(extent));
  return mix(hash, t.shape().size());
}

// Hash of a tensor's layout and bytes, 8 bytes at a time (the tail zero-padded).
uint64_t content_hash(const Tensor& t) {
  const Tensor host = t.to(Device::cpu);
  const auto* bytes = static_cast<const unsigned char*>(host.raw_data());
  const size_t n = host.nbytes();
  uint64_t hash = layout_hash(t);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    hash = mix(hash, word);
  }
  if (i < n) {
    uint64_t word = 0;
    std::memcpy(&word, bytes + i, n - i);
    hash = mix(hash, word);
  }
  return hash;
}

// "rank 1 differs from rank 0" or "ranks 1, 3 differ from rank 0".
std::string differ_from_rank_0(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text + (ranks.size() == 1 ? " differs" : " differ") + " from rank 0";
}

// The ranks whose value (entry `index` of each rank's `per_rank` values)
// differs from rank 0's.
std::vector<int> ranks_differing_from_0(const std::vector<uint64_t>& gathered, size_t per_rank,
                                        size_t index) {
  std::vector<int> ranks;
  for (size_t r = 1; r * per_rank < gathered.size(); ++r)
    if (gathered[r * per_rank + index] != gathered[index]) ranks.push_back(static_cast<int>(r));
  return ranks;
}

bool env_set(const char* name) { return std::getenv(name) != nullptr; }

// The registered device communicators, one entry per Device (the CPU's stays
// null). Function-local: registrations run in other libraries' static
// initialisers.
CommunicatorFactory& device_communicator(Device device) {
  static CommunicatorFactory factories[2] = {};  // Device::cpu, Device::cuda
  return factories[static_cast<size_t>(device)];
}

}  // namespace

void Communicator::check_same_layout(const std::vector<Tensor>& tensors, const std::string& op) {
  uint64_t hash = mix(0, tensors.size());
  for (const Tensor& t : tensors) hash = mix(hash, layout_hash(t));
  const std::vector<int> differing = ranks_differing_from_0(allgather({hash}), 1, 0);
  if (!differing.empty())
    throw std::invalid_argument(
        op + ": the ranks passed tensors of different dtypes or shapes (" + differ_from_rank_0(differing) +
        "); every rank must pass the same list. This is rank " +
        std::to_string(rank()) + " with " + std::to_string(tensors.size()) + " tensors");
}

void Communicator::check_same_parameters(const std::vector<Tensor>& tensors,
                                         const std::string& where) {
  const std::string op = "check_same_parameters (" + where + ")";
  const std::vector<uint64_t> counts = allgather({tensors.size()});
  const std::vector<int> count_differs = ranks_differing_from_0(counts, 1, 0);
  if (!count_differs.empty())
    throw std::runtime_error(op + ": the number of tensors differs across ranks: rank 0 has " +
                             std::to_string(counts[0]) + ", rank " +
                             std::to_string(count_differs[0]) + " has " +
                             std::to_string(counts[static_cast<size_t>(count_differs[0])]));
  std::vector<uint64_t> hashes;
  hashes.reserve(tensors.size());
  for (const Tensor& t : tensors) hashes.push_back(content_hash(t));
  const std::vector<uint64_t> gathered = allgather(hashes);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::vector<int> differing = ranks_differing_from_0(gathered, tensors.size(), i);
    if (!differing.empty())
      throw std::runtime_error(op + ": parameters differ across ranks: tensor " + std::to_string(i) +
                               " of " + std::to_string(tensors.size()) + " (" +
                               to_string(tensors[i].shape()) + ", " +
                               to_string(tensors[i].dtype()) + ") on " + differ_from_rank_0(differing));
  }
}

void average_gradients(Communicator& communicator, const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.requires_grad() && p.grad().defined()) grads.push_back(p.grad());
  communicator.allreduce_mean(grads);
}

bool launched_by_mpi() {
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMI_SIZE") || env_set("PMIX_RANK");
}

bool built_with_mpi() {
#if defined(ENGINE_WITH_MPI)
  return true;
#else
  return false;
#endif
}

void register_device_communicator(Device device, CommunicatorFactory factory) {
  if (device == Device::cpu)
    throw std::logic_error("register_device_communicator: cpu tensors use MPI");
  if (!factory)
    throw std::logic_error("register_device_communicator: null factory for " + to_string(device));
  CommunicatorFactory& slot = device_communicator(device);
  if (slot)
    throw std::logic_error("register_device_communicator: " + to_string(device) +
                           " is already registered");
  slot = factory;
}

bool has_device_communicator(Device device) {
  load_backend_plugin(device);  // the plugin registers its communicator
  return device_communicator(device) != nullptr;
}

std::unique_ptr<Communicator> make_communicator(Device device) {
  if (!launched_by_mpi()) return make_single_process_communicator();
#if defined(ENGINE_WITH_MPI)
  load_backend_plugin(device);  // the plugin registers its communicator
  if (const CommunicatorFactory factory = device_communicator(device)) return factory();
  // CUDA tensors without NCCL are staged through host memory.
  return std::make_unique<distributed::MpiCommunicator>();
#else
  (void)device;
  throw std::runtime_error(
      "make_communicator: this process was started by an MPI launcher (mpirun/srun) but the "
      "engine was built without MPI: install libopenmpi-dev (scripts/setup.sh) and reconfigure "
      "with `meson configure -Dmpi=enabled`, or run without the launcher");
#endif
}

}  // namespace engine
