// TorchPeer: PyTorch's side of `bench --compare-torch`, a long-lived
// `python3 scripts/torch_bench.py --serve` process driven over two pipes, so
// that bench can time its own training step and PyTorch's alternately in one
// run (the machine's load then weighs on both alike).
//
// Protocol, one line each way: bench writes "NETWORK BATCH REPS", the peer
// answers the seconds of its fastest of REPS training steps (after one untimed
// warm-up the first time it builds NETWORK), or "error: ..." (thrown here).
// On start the peer says "ready torch VERSION THREADS" or "unavailable: WHY".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

namespace experiments {

class TorchPeer {
 public:
  // Starts `python script --serve --threads N`. When torch is not importable
  // (or python or the script is missing) returns nullopt and puts the reason
  // in `why_not`; nothing else fails.
  static std::optional<TorchPeer> start(const std::string& python, const std::string& script,
                                        int threads, std::string& why_not);
  TorchPeer(TorchPeer&& other) noexcept;
  TorchPeer& operator=(TorchPeer&&) = delete;
  TorchPeer(const TorchPeer&) = delete;
  ~TorchPeer();  // closes the pipes and waits for the process

  // Seconds of PyTorch's fastest of `reps` training steps of `network`.
  double step_seconds(const std::string& network, int64_t batch, int reps);
  const std::string& version() const { return version_; }  // e.g. "torch 1.13.1 threads 2"

 private:
  TorchPeer(pid_t pid, int to_peer, int from_peer) : pid_(pid), to_(to_peer), from_(from_peer) {}
  std::string read_line();
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string version_, buffered_;
};

}  // namespace experiments
