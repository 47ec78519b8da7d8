// What every command-line program of experiments/ shares: the checks of flag
// values (one way to do each, every message opening with the flag at fault)
// and main()'s frame, which parses the flags and turns every failure into one
// line on stderr and an exit status:
//   0  done (or --help)
//   2  a bad flag or flag value (CLI11's parse errors, std::invalid_argument)
//   1  anything failing later (bad data files, out of memory, ...)
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace tool {

// Threads a program may ask for: far more than any machine has, far fewer than
// the tens of thousands at which OpenMP runtimes crash creating them.
constexpr int64_t kMaxThreads = 1024;

// Each throws std::invalid_argument "FLAG: ..." when the value is refused.
void require_finite(const std::string& flag, double value);
void require_range(const std::string& flag, int64_t value, int64_t lowest, int64_t highest);

// Refuses (std::invalid_argument naming `flags`) an estimated need of `bytes`
// that exceeds this machine's physical memory; `what` says what was estimated.
void require_memory(const std::string& flags, double bytes, const std::string& what);
uint64_t physical_memory_bytes();

// Parses argv into `app` and runs `body`, catching everything: the exit
// status above, the message "NAME: what" on one line. Before parsing, every
// integer option (of `app` and its subcommands) is made to refuse values its
// type cannot hold: CLI11 2.1 would clamp 99999999999999999999 to INT64_MAX
// and wrap -1 to 2^64-1 for unsigned options.
int run_main(const std::string& name, CLI::App& app, int argc, char** argv, const std::function<int()>& body);

}  // namespace tool
