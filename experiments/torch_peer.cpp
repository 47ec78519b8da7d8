#include "experiments/torch_peer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>
#include <utility>
#include <vector>

namespace experiments {

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
    peer.version_ = hello.substr(6);
    return peer;
  }
  why_not = hello.rfind("unavailable: ", 0) == 0
                ? hello.substr(13)
                : python + " " + script + " --serve did not start (is " + python + " installed?)";
  return std::nullopt;
}

TorchPeer::TorchPeer(TorchPeer&& other) noexcept
    : pid_(other.pid_), to_(other.to_), from_(other.from_), version_(std::move(other.version_)),
      buffered_(std::move(other.buffered_)) {
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

double TorchPeer::step_seconds(const std::string& network, int64_t batch, int reps) {
  const std::string request = network + " " + std::to_string(batch) + " " + std::to_string(reps) + "\n";
  if (write(to_, request.data(), request.size()) != static_cast<ssize_t>(request.size()))
    throw std::runtime_error("--compare-torch: the PyTorch process has gone (writing a request for " + network + ")");
  const std::string answer = read_line();
  try {
    size_t used = 0;
    const double seconds = std::stod(answer, &used);
    if (used == answer.size() && seconds > 0) return seconds;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("--compare-torch: PyTorch's step of " + network + " failed: " +
                           (answer.empty() ? std::string("the process ended") : answer));
}

}  // namespace experiments
