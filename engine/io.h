// Whole-file reads and atomic writes: the one way the project touches files
// it owns (checkpoints, metrics, logs of results).
//
// A write goes to a temporary file in the target's directory, is flushed to
// disk (fsync), and is then renamed over the target. rename() within one file
// system is atomic, so a reader sees either the old file or the complete new
// one, never a partial file, even if the process dies mid-write.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <ostream>
#include <span>
#include <vector>

namespace engine {

// Writes `bytes` to `path` atomically. Throws std::runtime_error naming the path
// when the directory is missing or any step fails; the old file, if any, is
// then left untouched and no temporary file remains.
void write_file_atomic(const std::filesystem::path& path, std::span<const char> bytes);

// Same, with the contents produced by `write` into a binary stream (for files
// too large to assemble in memory first). An exception thrown by `write`
// abandons the write and propagates.
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(std::ostream&)>& write);

// The whole contents of a file. Throws std::runtime_error naming the path.
std::vector<char> read_file(const std::filesystem::path& path);

// Removes the temporary files (".NAME.tmp-PID-N") that writes interrupted by
// a kill left under `dir` (and its subfolders): those whose writing process is
// gone from this machine and that have not changed for `quiet_for` (a process
// of that PID on another machine sharing the folder, a shard of the same run,
// may still be writing one). Returns the files removed; never throws.
std::vector<std::filesystem::path> remove_abandoned_temporaries(const std::filesystem::path& dir,
                                                               std::chrono::seconds quiet_for);

}  // namespace engine
