#include "engine/io.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

namespace engine {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void io_error(const std::string& what, const fs::path& path, int error) {
  throw std::runtime_error(what + " " + path.string() + ": " + std::strerror(error));
}

constexpr const char* kTemporaryTag = ".tmp-";

// A fresh name beside the target, hidden (leading dot) and unique within this
// process (counter) and across processes (pid), so parallel writers never share
// it: ".NAME.tmp-PID-N".
fs::path temporary_path_beside(const fs::path& target) {
  static std::atomic<uint64_t> counter{0};
  std::string name = ".";
  name += target.filename().string();
  name += kTemporaryTag + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  return target.parent_path() / name;
}

// The writer's PID of a name made by temporary_path_beside; nullopt for other names.
std::optional<pid_t> temporary_writer(const std::string& name) {
  const size_t tag = name.rfind(kTemporaryTag);
  if (name.size() < 2 || name[0] != '.' || tag == std::string::npos || tag < 2) return std::nullopt;
  const std::string rest = name.substr(tag + std::strlen(kTemporaryTag));  // "PID-N"
  const size_t dash = rest.find('-');
  const auto digits = [](const std::string& text) {
    return !text.empty() && text.size() <= 9 && text.find_first_not_of("0123456789") == std::string::npos;
  };
  if (dash == std::string::npos || !digits(rest.substr(0, dash)) || !digits(rest.substr(dash + 1))) return std::nullopt;
  return static_cast<pid_t>(std::stol(rest.substr(0, dash)));
}

void fsync_path(const fs::path& path, int flags, const fs::path& target) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) io_error("cannot write", target, errno);
  const int status = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (status != 0) io_error("cannot write", target, error);
}

}  // namespace

void write_file_atomic(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  if (path.filename().empty() || path.filename() == "." || path.filename() == "..")
    throw std::runtime_error("cannot write " + path.string() + ": not a file name");
  const fs::path temporary = temporary_path_beside(path);
  // O_EXCL: never truncate a file that someone else created under this name.
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) io_error("cannot write", path, errno);
  ::close(fd);
  try {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    write(out);
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string() + ": write failed (disk full?)");
    fsync_path(temporary, O_RDONLY, path);  // contents on disk before the rename makes them visible
    if (std::rename(temporary.c_str(), path.c_str()) != 0) io_error("cannot write", path, errno);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  // Persist the rename itself. Best effort: the new file is already in place,
  // and some file systems refuse fsync on directories.
  const fs::path directory = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const fs::path& path, std::span<const char> bytes) {
  write_file_atomic(path, [&](std::ostream& out) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
}

std::vector<char> read_file(const fs::path& path) {
  std::error_code error;
  if (fs::is_directory(path, error)) throw std::runtime_error("cannot read " + path.string() + ": is a directory");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) io_error("cannot read", path, errno);
  const std::streamoff size = in.tellg();
  if (size < 0) throw std::runtime_error("cannot read " + path.string() + ": size unknown");
  std::vector<char> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(bytes.data(), size)) throw std::runtime_error("cannot read " + path.string() + ": read failed");
  return bytes;
}

std::vector<fs::path> remove_abandoned_temporaries(const fs::path& dir, std::chrono::seconds quiet_for) {
  std::vector<fs::path> removed;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return removed;
  const auto now = fs::file_time_type::clock::now();
  for (auto it = fs::recursive_directory_iterator(dir, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    const std::optional<pid_t> writer = temporary_writer(it->path().filename().string());
    std::error_code file_error;  // a file that vanished or cannot be read is skipped
    if (!writer || !it->is_regular_file(file_error)) continue;
    // kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: it
    // exists, owned by someone else).
    const bool writer_alive = *writer == ::getpid() || ::kill(*writer, 0) == 0 || errno != ESRCH;
    const auto modified = fs::last_write_time(it->path(), file_error);
    if (writer_alive || file_error || now - modified < quiet_for) continue;
    if (fs::remove(it->path(), file_error)) removed.push_back(it->path());
  }
  return removed;
}

}  // namespace engine
