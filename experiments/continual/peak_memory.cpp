#include "experiments/continual/peak_memory.h"

#include <fstream>
#include <string>

namespace continual {

void reset_peak_memory() {
  // "5" resets the peak RSS counter (Linux >= 4.0); failure just keeps the process-wide peak.
  std::ofstream clear("/proc/self/clear_refs");
  if (clear) clear << "5";
}

int64_t peak_memory_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6)) * 1024;  // the value is in kB
  return 0;
}

}  // namespace continual
