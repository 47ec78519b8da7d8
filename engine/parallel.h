// Thread control for the CPU backend: the number of OpenMP threads, which run
// our own loops and split every GEMM into bands. OpenBLAS itself always runs
// single-threaded (the CPU backend sets it once, see CpuKernels::gemm), so
// this one setting decides how many cores the engine uses.
//
// Determinism, the one condition every CPU kernel keeps: parallel loops only
// split work whose outputs are disjoint, and each output (a reduction, a GEMM
// band) is computed in an order that depends on the shapes alone, never on the
// thread count. So results are bit-identical for any number of threads.
#pragma once

namespace engine {

// Sets the number of threads (>= 1). 0 means all cores.
void set_num_threads(int threads);
int num_threads();

}  // namespace engine
