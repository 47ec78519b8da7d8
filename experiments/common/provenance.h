// Where and how a result was made, recorded beside it so that a figure can be
// traced to its code and machine: the commit (build_info.h), the command line,
// the host's CPU model, the threads, the BLAS library and the kernel it chose
// (OpenBLAS picks one per CPU at run time; OPENBLAS_CORETYPE overrides it),
// the instruction set of the engine's own CPU loops (engine/cpu/isa.h), the
// GPU where the CUDA backend is used, and start and end times (UTC).
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"

namespace experiments {

// Keeps the command line and the start time; call once at the top of main.
// Without it, the command line is empty and the start is the first use.
void record_invocation(int argc, char** argv);

// "2026-11-30T05:12:31Z".
std::string utc_timestamp(std::chrono::system_clock::time_point when);

// {"commit", "dirty", "version", "build": {"cuda", "mpi"}, "command_line",
//  "host_cpu", "threads", "blas", "blas_kernel", "openblas_coretype" (null
//  when unset), "cpu_loops" ("AVX-512", ...), "gpu" (null unless `device` is
//  CUDA and usable), "started",
//  "finished" (now)}.
nlohmann::json provenance_json(engine::Device device);

// The same as Markdown lines ("- commit: ...") for the head of a summary.
// Tolerates missing keys (results written before provenance was recorded).
std::string provenance_markdown(const nlohmann::json& provenance);

}  // namespace experiments
