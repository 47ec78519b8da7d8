// Whole-file reads and atomic writes: the one way the project touches files
// it owns (checkpoints, metrics, logs of results).
//
// A write goes to a temporary file in the target's directory, is flushed to
// disk (fsync), and is then renamed over the target. rename() within one file
// system is atomic, so a reader sees either the old file or the complete new
// one, never a partial file, even if the process dies mid-write.
#pragma once

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

}  // namespace engine
