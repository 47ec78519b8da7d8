#include "experiments/torch_peer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <csignal>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace experiments {

namespace {

// A whole token as a number of type T; false where any of it is not one.
template <typename T>
bool parse_number(const std::string& token, T& value) {
  const char* end = token.data() + token.size();
  const auto [stop, error] = std::from_chars(token.data(), end, value);
  return error == std::errc() && stop == end && !token.empty();
}

// A resident-set size of the protocol: KiB, or -1 where the peer could not
// measure it (nullopt in `mib`). False where the token is neither.
bool parse_kib(const std::string& token, std::optional<double>& mib) {
  int64_t kib = 0;
  if (!parse_number(token, kib) || kib < -1) return false;
  mib = kib == -1 ? std::nullopt : std::optional<double>(static_cast<double>(kib) / 1024);
  return true;
}

}  // namespace

std::optional<TorchPeer> TorchPeer::start(const std::string& python, const std::string& script,
                                          int threads, std::string& why_not) {
  if (access(script.c_str(), R_OK) != 0) {
    why_not = "cannot read " + script + " (run bench from the repository root, or pass --torch-script)";
    return std::nullopt;
  }
  int to_peer[2], from_peer[2];
  if (pipe(to_peer) != 0) throw std::runtime_error("--compare-torch: pipe() failed");
  if (pipe(from_peer) != 0) {
    close(to_peer[0]), close(to_peer[1]);
    throw std::runtime_error("--compare-torch: pipe() failed");
  }
  // A peer that dies must not kill bench when it next writes a request.
  std::signal(SIGPIPE, SIG_IGN);
  const std::string thread_arg = std::to_string(threads);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("--compare-torch: fork() failed");
  if (pid == 0) {
    dup2(to_peer[0], STDIN_FILENO);
    dup2(from_peer[1], STDOUT_FILENO);
    close(to_peer[0]), close(to_peer[1]), close(from_peer[0]), close(from_peer[1]);
    std::vector<char*> argv = {const_cast<char*>(python.c_str()), const_cast<char*>(script.c_str()),
                               const_cast<char*>("--serve"), const_cast<char*>("--threads"),
                               const_cast<char*>(thread_arg.c_str()), nullptr};
    execvp(argv[0], argv.data());
    _exit(127);  // the parent reads EOF and says python did not start
  }
  close(to_peer[0]), close(from_peer[1]);
  TorchPeer peer(pid, to_peer[1], from_peer[0]);
  const std::string hello = peer.read_line();
  if (hello.rfind("ready ", 0) == 0) {
    const std::string field = " baseline_rss_kib ";
    const size_t at = hello.rfind(field);
    if (at == std::string::npos || !parse_kib(hello.substr(at + field.size()), peer.baseline_rss_mib_))
      throw std::runtime_error("--compare-torch: " + script + " --serve said \"" + hello +
                               "\", not \"ready torch VERSION threads N baseline_rss_kib K\"");
    peer.version_ = hello.substr(6, at - 6);
    return peer;
  }
  why_not = hello.rfind("unavailable: ", 0) == 0
                ? hello.substr(13)
                : python + " " + script + " --serve did not start (is " + python + " installed?)";
  return std::nullopt;
}

TorchPeer::TorchPeer(TorchPeer&& other) noexcept
    : pid_(other.pid_), to_(other.to_), from_(other.from_), version_(std::move(other.version_)),
      buffered_(std::move(other.buffered_)), baseline_rss_mib_(other.baseline_rss_mib_) {
  other.pid_ = other.to_ = other.from_ = -1;
}

TorchPeer::~TorchPeer() {
  if (to_ >= 0) close(to_);  // the peer's stdin ends: it exits
  if (from_ >= 0) close(from_);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

// One line from the peer without its newline; "" at end of file.
std::string TorchPeer::read_line() {
  for (;;) {
    const size_t newline = buffered_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    char chunk[256];
    const ssize_t got = read(from_, chunk, sizeof chunk);
    if (got <= 0) return std::exchange(buffered_, std::string());
    buffered_.append(chunk, static_cast<size_t>(got));
  }
}

TorchPeer::Step TorchPeer::step(const std::string& network, int64_t batch, int reps) {
  const std::string request = network + " " + std::to_string(batch) + " " + std::to_string(reps) + "\n";
  if (write(to_, request.data(), request.size()) != static_cast<ssize_t>(request.size()))
    throw std::runtime_error("--compare-torch: the PyTorch process has gone (writing a request for " + network + ")");
  const std::string answer = read_line();
  if (answer.empty() || answer.rfind("error: ", 0) == 0)
    throw std::runtime_error("--compare-torch: PyTorch's step of " + network + " failed: " +
                             (answer.empty() ? std::string("the process ended") : answer));
  std::istringstream fields(answer);
  std::string seconds_field, peak_field, extra;
  fields >> seconds_field >> peak_field >> extra;
  Step step{};
  if (!parse_number(seconds_field, step.seconds) || !std::isfinite(step.seconds) || step.seconds <= 0 ||
      !parse_kib(peak_field, step.peak_rss_mib) || !extra.empty())
    throw std::runtime_error("--compare-torch: PyTorch's answer for " + network + " is \"" + answer +
                             "\", not \"SECONDS PEAK_KIB\" (seconds > 0, peak in KiB or -1 for unknown)");
  return step;
}

}  // namespace experiments
