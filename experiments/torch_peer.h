// TorchPeer: PyTorch's side of `bench --compare-torch`, a long-lived
// `python3 scripts/torch_bench.py --serve` process driven over two pipes, so
// that bench can time its own training step and PyTorch's alternately in one
// run (the machine's load then weighs on both alike).
//
// Protocol, one line each way. On start the peer says
// "ready torch VERSION threads N baseline_rss_kib K" (K: its resident set after
// importing torch, before building any network) or "unavailable: WHY". Then
// bench writes "NETWORK BATCH REPS" and the peer answers "SECONDS PEAK_KIB":
// the seconds of its fastest of REPS training steps (after one untimed warm-up
// the first time it builds NETWORK) and the peak resident set during one more
// step (VmHWM, reset just before it); or "error: ..." (thrown here). A size of
// -1 KiB is unknown (no /proc, or /proc/self/clear_refs not writable).
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
  // in `why_not`; a ready line outside the protocol throws.
  static std::optional<TorchPeer> start(const std::string& python, const std::string& script,
                                        int threads, std::string& why_not);
  TorchPeer(TorchPeer&& other) noexcept;
  TorchPeer& operator=(TorchPeer&&) = delete;
  TorchPeer(const TorchPeer&) = delete;
  ~TorchPeer();  // closes the pipes and waits for the process

  struct Step {
    double seconds;                      // of the fastest of the steps
    std::optional<double> peak_rss_mib;  // of the whole peer process during one more step
  };
  // PyTorch's fastest of `reps` training steps of `network`, and its peak memory.
  Step step(const std::string& network, int64_t batch, int reps);
  const std::string& version() const { return version_; }  // e.g. "torch 1.13.1 threads 2"
  // The peer's resident set after importing torch: the interpreter and libraries.
  std::optional<double> baseline_rss_mib() const { return baseline_rss_mib_; }

 private:
  TorchPeer(pid_t pid, int to_peer, int from_peer) : pid_(pid), to_(to_peer), from_(from_peer) {}
  std::string read_line();
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string version_, buffered_;
  std::optional<double> baseline_rss_mib_;
};

}  // namespace experiments
