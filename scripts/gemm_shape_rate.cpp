// How fast is OpenBLAS on the products a network's first conv layer makes?
// conv2d (engine/ops/conv2d.cpp) calls OpenBLAS once per image, with shapes
// fixed by the layer; for a 3-channel first layer they are thin (depth or
// width 27), far from the square product bench's SGEMM figure times. This
// program times one call per product, the way conv2d makes them, for the
// first layers of sena32 (3 -> 32) and VGG (3 -> 64) at 32x32 (padding 1, so
// 1,024 positions), next to a 2048x2048 product on the same thread:
//   forward   y_n (OC, 1024) += W (OC, 27) cols_n (27, 1024)
//   dW        dW (OC, 27) += dy_n (OC, 1024) cols_n^T
//   db        db (OC, 1) += dy_n (OC, 1024) 1   (a product with one column)
// Each figure is the fastest of 20 rounds of 64 calls (one per image of a
// batch of 64, operands distinct per image).
//
//   g++ -O2 -std=c++20 scripts/gemm_shape_rate.cpp -lopenblas -o /tmp/gemm_shape_rate
//   OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell /tmp/gemm_shape_rate
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

namespace {

constexpr int kImages = 64;

std::vector<float> random_floats(size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = uniform(gen);
  return v;
}

// The fastest of `rounds` runs of f, in seconds.
double fastest_seconds(int rounds, const std::function<void()>& f) {
  double best = 1e30;
  for (int round = 0; round < rounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// Seconds per call of call(i), i = 0..kImages-1: the fastest of 20 rounds.
double seconds_per_call(const std::function<void(int)>& call) {
  return fastest_seconds(20, [&] {
           for (int i = 0; i < kImages; ++i) call(i);
         }) /
         kImages;
}

void report(const char* name, double flops, double seconds) {
  std::printf("  %-44s %8.1f us  %6.1f GFLOP/s\n", name, seconds * 1e6, flops / seconds / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    std::fprintf(stderr, "usage: %s (it takes no arguments; OPENBLAS_CORETYPE picks the kernels)\n", argv[0]);
    return 2;
  }
  std::mt19937 gen(1);
  std::printf("OpenBLAS kernel %s, one call per product\n", openblas_get_corename());
  {
    const int n = 2048;
    const size_t size = static_cast<size_t>(n) * n;
    const std::vector<float> a = random_floats(size, gen), b = random_floats(size, gen);
    std::vector<float> c(size);
    report("C (2048,2048) = A (2048,2048) B (2048,2048)", 2.0 * n * n * n, fastest_seconds(5, [&] {
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n,
                         0.f, c.data(), n);
           }));
  }
  const int patch = 27, positions = 1024;
  for (const int oc : {32, 64}) {
    std::printf("first layer 3 -> %d at 32x32:\n", oc);
    const std::vector<float> w = random_floats(static_cast<size_t>(oc) * patch, gen);
    const std::vector<float> cols = random_floats(static_cast<size_t>(kImages) * patch * positions, gen);
    const std::vector<float> dy = random_floats(static_cast<size_t>(kImages) * oc * positions, gen);
    const std::vector<float> ones(positions, 1.f);
    std::vector<float> y = random_floats(static_cast<size_t>(kImages) * oc * positions, gen);
    std::vector<float> dw(static_cast<size_t>(oc) * patch), db(static_cast<size_t>(oc));
    const double product_flops = 2.0 * oc * patch * positions;
    report("forward: y_n += W cols_n", product_flops, seconds_per_call([&](int i) {
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, positions, patch, 1.f, w.data(), patch,
                         cols.data() + static_cast<size_t>(i) * patch * positions, positions, 1.f,
                         y.data() + static_cast<size_t>(i) * oc * positions, positions);
           }));
    report("weight gradient: dW += dy_n cols_n^T", product_flops, seconds_per_call([&](int i) {
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, patch, positions, 1.f,
                         dy.data() + static_cast<size_t>(i) * oc * positions, positions,
                         cols.data() + static_cast<size_t>(i) * patch * positions, positions, 1.f, dw.data(),
                         patch);
           }));
    report("bias gradient: db += dy_n 1", 2.0 * oc * positions, seconds_per_call([&](int i) {
             cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, 1, positions, 1.f,
                         dy.data() + static_cast<size_t>(i) * oc * positions, positions, ones.data(), 1, 1.f,
                         db.data(), 1);
           }));
  }
  return 0;
}
