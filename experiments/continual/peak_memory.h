// Peak memory of the process, measured per cell: Linux's peak resident set
// size (VmHWM), which /proc/self/clear_refs can reset between cells.
#pragma once

#include <cstdint>

namespace continual {

// Starts a new peak from the current resident size (Linux; no-op elsewhere).
void reset_peak_memory();
// Peak resident set size in bytes since the last reset, 0 where unknown.
int64_t peak_memory_bytes();

}  // namespace continual
