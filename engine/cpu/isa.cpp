// Run-time choice of the instruction set for the CPU loops (engine/cpu/isa.h).
#include "engine/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace engine::cpu {

namespace {

Isa detect_isa() {
#if ENGINE_ISA_DISPATCH
  // libgcc checks the CPU's flags and that the OS saves the wider registers.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return Isa::avx512;
  if (__builtin_cpu_supports("x86-64-v3")) return Isa::avx2;
#endif
  return Isa::baseline;
}

Isa checked(Isa isa, const std::string& what) {
  if (isa > best_isa())
    throw std::invalid_argument(what + ": " + isa_name(isa) + " asked for, but this CPU runs at most " +
                                isa_name(best_isa()));
  return isa;
}

std::atomic<Isa>& level() {
  static std::atomic<Isa> isa = [] {
    const char* asked = std::getenv("ENGINE_CPU_ISA");
    return asked ? checked(parse_isa(asked, "ENGINE_CPU_ISA"), "ENGINE_CPU_ISA") : best_isa();
  }();
  return isa;
}

}  // namespace

Isa best_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

Isa active_isa() { return level().load(std::memory_order_relaxed); }

void set_isa(Isa isa) { level().store(checked(isa, "set_isa"), std::memory_order_relaxed); }

std::string isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "AVX-512";
    case Isa::avx2: return "AVX2";
    case Isa::baseline: break;
  }
  return "baseline (SSE2)";
}

Isa parse_isa(const std::string& text, const std::string& what) {
  if (text == "baseline") return Isa::baseline;
  if (text == "avx2") return Isa::avx2;
  if (text == "avx512") return Isa::avx512;
  throw std::invalid_argument(what + ": '" + text + "' is not one of baseline, avx2, avx512");
}

}  // namespace engine::cpu
