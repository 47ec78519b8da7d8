// The CPU loops compiled for several instruction sets (engine/cpu/isa.h): the
// level names, the refusal of levels the CPU lacks, and, the point of it all,
// every dispatched kernel giving the same bits at every level this CPU runs
// (baseline SSE2, AVX2, AVX-512), on 1 and 2 threads. The max-pool fast path
// (K x K windows, stride 2, no padding) is also checked against the generic
// body the CUDA backend runs, value and index, with NaNs, ties and signed zeros.
#define BOOST_TEST_MODULE isa
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu/isa.h"
#include "engine/kernels/window_bodies.h"
#include "engine/parallel.h"
#include "engine/random.h"

namespace engine::cpu {
std::ostream& operator<<(std::ostream& out, Isa isa) { return out << isa_name(isa); }
}  // namespace engine::cpu

using namespace engine;
using engine::cpu::Isa;

namespace {

// Restores the level and the thread count a test changed.
struct LevelGuard {
  Isa level = cpu::active_isa();
  int threads = num_threads();
  ~LevelGuard() {
    cpu::set_isa(level);
    set_num_threads(threads);
  }
};

std::vector<Isa> levels_here() {
  std::vector<Isa> levels{Isa::baseline};
  if (cpu::best_isa() >= Isa::avx2) levels.push_back(Isa::avx2);
  if (cpu::best_isa() >= Isa::avx512) levels.push_back(Isa::avx512);
  return levels;
}

// Values with the cases that tell implementations apart: signed zeros, ties,
// infinities, NaNs, denormals, and ordinary values of both signs.
template <class T>
std::vector<T> awkward_values(int64_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<T> v(static_cast<size_t>(n));
  const T specials[] = {T(0), -T(0), T(1), T(1), std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity(), std::numeric_limits<T>::quiet_NaN(),
                        std::numeric_limits<T>::denorm_min(), T(-2.5)};
  for (auto& x : v)
    x = gen.below(8) == 0 ? specials[gen.below(std::size(specials))] : static_cast<T>(gen.normal());
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// The outputs of every dispatched kernel on fixed inputs, one vector each.
template <class T>
std::vector<std::vector<T>> run_dispatched_kernels() {
  const Kernels<T>& k = backend(Device::cpu).kernels<T>();
  // Longer than kParallelGrain, and not a multiple of any vector width.
  const int64_t n = (int64_t{1} << 15) + 37;
  const std::vector<T> x = awkward_values<T>(n, 1), dy = awkward_values<T>(n, 2);
  std::vector<std::vector<T>> out;
  auto add = [&](std::vector<T> v) { out.push_back(std::move(v)); };

  std::vector<T> y(static_cast<size_t>(n));
  k.fill(y.data(), n, T(-0.0));
  add(y);
  y = dy;
  k.axpy(n, T(0.3), x.data(), y.data());
  add(y);
  k.scale(n, T(-1.7), x.data(), y.data());
  add(y);
  k.relu_forward(n, x.data(), y.data());
  add(y);
  y = dy;
  k.relu_backward(n, x.data(), dy.data(), y.data());
  add(y);
  k.dropout_forward(n, T(0.3), 7, 11, x.data(), y.data());
  add(y);
  y = dy;
  k.dropout_backward(n, T(0.3), 7, 11, dy.data(), y.data());
  add(y);

  // Optimisers on finite values (a NaN would only spread).
  std::vector<T> grad(static_cast<size_t>(n)), param(static_cast<size_t>(n));
  Generator gen(3);
  for (int64_t i = 0; i < n; ++i) {
    grad[static_cast<size_t>(i)] = static_cast<T>(gen.normal());
    param[static_cast<size_t>(i)] = static_cast<T>(gen.normal());
  }
  for (const bool nesterov : {false, true}) {
    std::vector<T> p = param, momentum(static_cast<size_t>(n));
    for (int step = 0; step < 3; ++step)
      k.sgd_step(n, p.data(), grad.data(), momentum.data(), T(0.1), T(0.9), T(0.1), T(1e-4), nesterov, step == 0);
    add(p);
    add(momentum);
  }
  for (const bool decoupled : {false, true}) {
    std::vector<T> p = param, m(static_cast<size_t>(n)), v(static_cast<size_t>(n));
    for (int step = 1; step <= 3; ++step)
      k.adam_step(n, p.data(), grad.data(), m.data(), v.data(), T(1e-3), T(0.9), T(0.999), T(1e-8), T(0.01),
                  decoupled, step);
    add(p);
    add(m);
    add(v);
  }

  // Max pooling through both fast paths and the generic one (3x3, stride 1).
  for (const auto& [kernel, stride] : {std::pair{2, 2}, std::pair{3, 2}, std::pair{3, 1}}) {
    Window2d g;
    g.channels = 3;
    g.height = 33;
    g.width = 31;
    g.kernel_h = g.kernel_w = kernel;
    g.stride_h = g.stride_w = stride;
    const int64_t batch = 40, out = batch * g.channels * g.out_height() * g.out_width();
    const std::vector<T> image = awkward_values<T>(batch * g.channels * g.height * g.width, 4);
    std::vector<T> pooled(static_cast<size_t>(out));
    std::vector<int32_t> argmax(static_cast<size_t>(out));
    k.max_pool_forward(g, batch, image.data(), pooled.data(), argmax.data());
    add(pooled);
    add(std::vector<T>(argmax.begin(), argmax.end()));
  }
  return out;
}

template <class T>
void check_levels_agree() {
  LevelGuard guard;
  cpu::set_isa(Isa::baseline);
  set_num_threads(1);
  const auto reference = run_dispatched_kernels<T>();
  for (const Isa level : levels_here())
    for (const int threads : {1, 2}) {
      cpu::set_isa(level);
      set_num_threads(threads);
      const auto results = run_dispatched_kernels<T>();
      BOOST_REQUIRE_EQUAL(results.size(), reference.size());
      for (size_t i = 0; i < results.size(); ++i)
        BOOST_TEST(same_bits(results[i], reference[i]),
                   "output " << i << " at " << cpu::isa_name(level) << ", " << threads << " threads");
    }
}

// The fast path's values and indices against the generic body, output by output.
template <class T>
void check_pool_fast_path(int kernel, const std::vector<T>& image, int64_t height, int64_t width) {
  Window2d g;
  g.channels = 1;
  g.height = height;
  g.width = width;
  g.kernel_h = g.kernel_w = kernel;
  g.stride_h = g.stride_w = 2;
  const int64_t out = g.out_height() * g.out_width();
  std::vector<T> fast(static_cast<size_t>(out)), generic(static_cast<size_t>(out));
  std::vector<int32_t> fast_index(static_cast<size_t>(out)), generic_index(static_cast<size_t>(out));
  backend(Device::cpu).kernels<T>().max_pool_forward(g, 1, image.data(), fast.data(), fast_index.data());
  const kernels::MaxPoolForward<T> body{kernels::window_geometry(g), image.data(), generic.data(),
                                        generic_index.data()};
  for (int64_t o = 0; o < out; ++o) body(o);
  BOOST_TEST(same_bits(fast, generic));
  BOOST_TEST(fast_index == generic_index, boost::test_tools::per_element());
}

}  // namespace

BOOST_AUTO_TEST_CASE(levels_have_names_and_unknown_ones_are_refused) {
  BOOST_TEST(cpu::parse_isa("baseline", "test") == Isa::baseline);
  BOOST_TEST(cpu::parse_isa("avx2", "test") == Isa::avx2);
  BOOST_TEST(cpu::parse_isa("avx512", "test") == Isa::avx512);
  BOOST_TEST(cpu::isa_name(Isa::avx512) == "AVX-512");
  try {
    cpu::parse_isa("sse4", "ENGINE_CPU_ISA");
    BOOST_FAIL("parse_isa accepted 'sse4'");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()) == "ENGINE_CPU_ISA: 'sse4' is not one of baseline, avx2, avx512");
  }
}

BOOST_AUTO_TEST_CASE(a_level_is_set_only_where_the_cpu_has_it) {
  LevelGuard guard;
  for (const Isa level : levels_here()) {
    cpu::set_isa(level);
    BOOST_TEST(cpu::active_isa() == level);
  }
  if (cpu::best_isa() == Isa::avx512) {
    BOOST_TEST_MESSAGE("this CPU has AVX-512: no level above it to refuse");
    return;
  }
  const Isa above = cpu::best_isa() == Isa::baseline ? Isa::avx2 : Isa::avx512;
  try {
    cpu::set_isa(above);
    BOOST_FAIL("set_isa accepted " << cpu::isa_name(above));
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()) == "set_isa: " + cpu::isa_name(above) + " asked for, but this CPU runs at most " +
                                            cpu::isa_name(cpu::best_isa()));
  }
  BOOST_TEST(cpu::active_isa() == cpu::best_isa());  // unchanged by the refusal
}

BOOST_AUTO_TEST_CASE(every_dispatched_kernel_gives_the_same_bits_at_every_level_float) {
  BOOST_TEST_MESSAGE("levels on this CPU: up to " << cpu::isa_name(cpu::best_isa()));
  check_levels_agree<float>();
}

BOOST_AUTO_TEST_CASE(every_dispatched_kernel_gives_the_same_bits_at_every_level_double) {
  check_levels_agree<double>();
}

BOOST_AUTO_TEST_CASE(max_pool_fast_path_is_the_generic_window_scan) {
  LevelGuard guard;
  for (const Isa level : levels_here()) {
    cpu::set_isa(level);
    for (const int kernel : {2, 3}) {
      // Random maps with NaNs, ties and signed zeros; odd sizes leave a last
      // row and column that no window covers.
      for (const auto& [h, w] : {std::pair{7, 9}, std::pair{32, 32}, std::pair{28, 28}, std::pair{5, 37}})
        check_pool_fast_path<float>(kernel, awkward_values<float>(h * w, static_cast<uint64_t>(h * w + kernel)), h, w);
      // Every window the same value, -0 then +0: the first (the -0) wins.
      std::vector<double> zeros(6 * 6);
      for (size_t i = 0; i < zeros.size(); ++i) zeros[i] = i % 2 == 0 ? -0.0 : 0.0;
      check_pool_fast_path<double>(kernel, zeros, 6, 6);
      // Two NaNs and a larger value after them in one window: the first NaN wins.
      std::vector<double> nans = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
      nans[1] = std::nan("1");
      nans[4] = -std::nan("2");
      check_pool_fast_path<double>(kernel, nans, 4, 4);
    }
  }
}
