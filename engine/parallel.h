// Thread control for the CPU backend. One setting drives both OpenMP (our own
// loops) and OpenBLAS, so the two never oversubscribe the cores.
//
// Determinism: parallel loops only split work whose outputs are disjoint, and
// every reduction runs in a fixed order inside one iteration, so results are
// bit-identical for any thread count.
#pragma once

namespace engine {

// Sets the number of threads (>= 1). 0 means all cores.
void set_num_threads(int threads);
int num_threads();

}  // namespace engine
