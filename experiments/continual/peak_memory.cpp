#include "experiments/continual/peak_memory.h"

#include <fstream>
#include <string>
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace continual {

bool reset_peak_memory() {
  // "5" resets the peak RSS counter (Linux >= 4.0).
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5" << std::flush;
  return static_cast<bool>(clear);
}

namespace {

// A size field of /proc/self/status ("VmHWM:", "VmRSS:") in bytes, 0 where absent.
int64_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with(field)) return std::stoll(line.substr(field.size())) * 1024;  // the value is in kB
  return 0;
}

}  // namespace

int64_t peak_memory_bytes() { return status_bytes("VmHWM:"); }

int64_t resident_memory_bytes() { return status_bytes("VmRSS:"); }

void release_freed_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace continual
