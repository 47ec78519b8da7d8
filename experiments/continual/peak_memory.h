// Peak memory of the process, measured per cell: Linux's peak resident set
// size (VmHWM), which /proc/self/clear_refs can reset between cells.
#pragma once

#include <cstdint>

namespace continual {

// Starts a new peak from the current resident size (Linux); false where it
// cannot (elsewhere, or /proc/self/clear_refs refused): the peak then stays
// the process's whole-life one.
bool reset_peak_memory();
// Peak resident set size in bytes since the last reset, 0 where unknown.
int64_t peak_memory_bytes();
// Resident set size in bytes now, 0 where unknown.
int64_t resident_memory_bytes();
// Gives the system back the freed memory that malloc keeps for reuse (glibc;
// no-op elsewhere), so that a peak measured next holds what is live, not what
// earlier work freed.
void release_freed_memory();

}  // namespace continual
