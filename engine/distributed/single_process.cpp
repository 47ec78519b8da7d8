// The communicator of a run with one process: every collective is a no-op.
#include <cstdlib>
#include <stdexcept>

#include "engine/distributed.h"

namespace engine {

namespace {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single process"; }

  void allreduce_mean(const std::vector<Tensor>&) override {}
  void broadcast(const std::vector<Tensor>&, int root) override {
    if (root != 0)
      throw std::invalid_argument("broadcast: root " + std::to_string(root) +
                                  " out of range for a single process (size 1)");
  }
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
  std::vector<uint64_t> allgather(const std::vector<uint64_t>& values) override { return values; }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace engine
