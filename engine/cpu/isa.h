// Which x86 instruction set the CPU backend's own element loops run, chosen at
// run time, and the loop that dispatches on it.
//
// The engine is built for baseline x86-64 (SSE2, no -march=native: the
// machines differ), so a loop compiled once only ever gets 4-wide SSE2. Each
// element loop is therefore compiled three times, for baseline x86-64,
// x86-64-v3 (AVX2) and x86-64-v4 (AVX-512), and for_each_element runs the
// best copy this CPU supports. Dropout's hash, for instance, needs 64-bit
// multiplies that only AVX-512 has as vector instructions: about 8x faster.
//
// The copies give the same bits: they run the same IEEE operations (add,
// multiply, divide, sqrt, compare, select) on more lanes at once, the
// compiler may not reorder floating-point sums (no -ffast-math), and the
// build forbids fusing a multiply and an add into one FMA (-ffp-contract=off
// in meson.build), which x86-64-v3 would otherwise allow. tests/test_isa.cpp
// runs every dispatched kernel at each level this CPU has and compares bits.
//
// ENGINE_CPU_ISA=baseline|avx2|avx512 (read once, at first use) caps the
// level, like OPENBLAS_CORETYPE for OpenBLAS's kernels: for measuring, or to
// rule the dispatch out. A level above what the CPU has is refused.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "engine/cpu/cpu_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ENGINE_ISA_DISPATCH 1
#else
#define ENGINE_ISA_DISPATCH 0  // elsewhere every loop is the compiler's one build
#endif

namespace engine::cpu {

enum class Isa { baseline, avx2, avx512 };

// The highest level this CPU (and its operating system) supports.
Isa best_isa();
// The level the loops use: best_isa(), or lower where ENGINE_CPU_ISA or
// set_isa asked for it.
Isa active_isa();
// Sets the level (tests, benchmarks); throws std::invalid_argument, naming
// both, when it is above best_isa().
void set_isa(Isa isa);
std::string isa_name(Isa isa);  // "baseline (SSE2)", "AVX2", "AVX-512"
// "baseline", "avx2" or "avx512"; throws std::invalid_argument naming `what`.
Isa parse_isa(const std::string& text, const std::string& what);

namespace detail {

// The body comes by value: a local copy that stores through its output
// pointers cannot alias, so its fields stay in registers and the loop
// vectorises (through a reference, every store could rewrite them).
template <class Body>
void run_elements(int64_t begin, int64_t end, Body body) {
  for (int64_t i = begin; i < end; ++i) body(i);
}

#if ENGINE_ISA_DISPATCH
// The same loop for wider vectors; the body inlines into each copy.
template <class Body>
__attribute__((target("arch=x86-64-v3"))) void run_elements_avx2(int64_t begin, int64_t end, Body body) {
  for (int64_t i = begin; i < end; ++i) body(i);
}
template <class Body>
__attribute__((target("arch=x86-64-v4"))) void run_elements_avx512(int64_t begin, int64_t end, Body body) {
  for (int64_t i = begin; i < end; ++i) body(i);
}
#endif

}  // namespace detail

// body(i) for i in [0, n), each thread a contiguous share (outputs must be
// disjoint per i, as in every element-wise kernel), each share run by the copy
// of the loop for active_isa(). Loops of less than kParallelGrain values
// (n * values_per_element: a body may write a whole row) run on one thread.
template <class Body>
void for_each_element(int64_t n, const Body& body, int64_t values_per_element = 1) {
  const Isa isa = active_isa();
#pragma omp parallel if (n * values_per_element > kParallelGrain)
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int64_t begin = n / threads * thread + std::min<int64_t>(thread, n % threads);
    const int64_t end = begin + n / threads + (thread < n % threads ? 1 : 0);
#if ENGINE_ISA_DISPATCH
    switch (isa) {
      case Isa::avx512: detail::run_elements_avx512(begin, end, body); break;
      case Isa::avx2: detail::run_elements_avx2(begin, end, body); break;
      case Isa::baseline: detail::run_elements(begin, end, body); break;
    }
#else
    (void)isa;
    detail::run_elements(begin, end, body);
#endif
  }
}

}  // namespace engine::cpu
