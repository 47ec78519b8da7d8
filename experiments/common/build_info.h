// What a binary was built from: the project's commit (and whether the tree had
// uncommitted changes), its version, and the optional parts compiled in. The
// commit is baked in at build time (meson vcs_tag), so a result can be traced
// to its code; outside a git checkout it reads "unknown".
#pragma once

#include <string>

namespace experiments {

struct BuildInfo {
  std::string version;  // the meson project version, e.g. "0.1.0"
  std::string commit;   // 40 hex digits, or "unknown"
  bool dirty = false;   // the tree had uncommitted changes when it was built
  bool cuda = false;    // the CUDA backend is linked in (registered with the engine)
  bool mpi = false;     // data parallel over MPI is compiled in
};

const BuildInfo& build_info();

// The --version text of `program`, e.g.
// "continual 0.1.0 (commit 3355cbf...)\nbuild options: CUDA yes, MPI yes" (no final newline).
std::string version_text(const std::string& program);

}  // namespace experiments
