#include "experiments/common/build_info.h"

#include "engine/backend.h"
#include "experiments/build_info_generated.h"  // vcs_tag output, in the build directory

namespace experiments {

namespace {

BuildInfo make_build_info() {
  BuildInfo info;
  info.version = EXPERIMENTS_PROJECT_VERSION;
  // `git describe --dirty` appends "-dirty"; without a tag it prints the bare hash.
  std::string describe = EXPERIMENTS_VCS_DESCRIBE;
  const std::string suffix = "-dirty";
  if (describe.size() > suffix.size() && describe.ends_with(suffix)) {
    info.dirty = true;
    describe.resize(describe.size() - suffix.size());
  }
  info.commit = describe.empty() ? "unknown" : describe;
  info.cuda = engine::backend_built(engine::Device::cuda);  // without loading it
#ifdef ENGINE_WITH_MPI
  info.mpi = true;
#endif
  return info;
}

}  // namespace

const BuildInfo& build_info() {
  static const BuildInfo info = make_build_info();
  return info;
}

std::string version_text(const std::string& program) {
  const BuildInfo& b = build_info();
  return program + " " + b.version + " (commit " + b.commit + (b.dirty ? ", uncommitted changes" : "") +
         ")\nbuild options: CUDA " + (b.cuda ? "yes" : "no") + ", MPI " + (b.mpi ? "yes" : "no");
}

}  // namespace experiments
