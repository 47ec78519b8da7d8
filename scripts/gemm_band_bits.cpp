// Does OpenBLAS give an element of C the same bits whatever band of C it is
// computed in? The CPU backend cuts each product into bands of C whose sizes
// depend on the shape alone (engine/cpu/cpu_backend.cpp), so that results do
// not depend on the thread count; this program shows why the band sizes may
// not change either (for better balance across threads, say): it computes
// C += op(A) op(B) in one call and again as bands of columns (several widths
// and first offsets) or of rows (1, 5, 16 and 64 at a time), on shapes of
// conv2d's weight gradients and others, and counts, per product and in all,
// the layouts whose C differs from the one call's by a bit.
//
//   g++ -O2 -std=c++20 scripts/gemm_band_bits.cpp -lopenblas -o /tmp/gemm_band_bits
//   OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell /tmp/gemm_band_bits
#include <cblas.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

struct Product {
  int m, n, k;
  bool trans_b;
  std::vector<float> a, b;  // A (m x k), B (k x n, or n x k when trans_b), row-major

  // C[:, first, first + width) += A op(B)[:, first, first + width)
  void columns(std::vector<float>& c, int first, int width) const {
    if (width <= 0) return;
    const float* b_band = b.data() + (trans_b ? first * k : first);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, width, k, 1.f, a.data(), k,
                b_band, trans_b ? k : n, 1.f, c.data() + first, n);
  }
  // C[first, first + height) += A[first, first + height) op(B)
  void rows(std::vector<float>& c, int first, int height) const {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, height, n, k, 1.f,
                a.data() + first * k, k, b.data(), trans_b ? k : n, 1.f, c.data() + first * n, n);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    std::fprintf(stderr, "usage: %s (it takes no arguments; OPENBLAS_CORETYPE picks the kernels)\n", argv[0]);
    return 2;
  }
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  // (OC, C*9, OH*OW) of conv2d's weight gradients (sena32's and the VGGs'
  // inner layers, the small CNN's first layer at 30x30 and sena32's at 32x32),
  // a LoRA product of rank 4, and an odd shape.
  const std::vector<std::array<int, 3>> shapes = {{32, 288, 784}, {64, 576, 196}, {32, 27, 900},
                                                  {32, 27, 1024}, {64, 288, 169}, {512, 4608, 4},
                                                  {17, 100, 333}};
  int differ = 0, layouts = 0;
  for (const auto& [m, n, k] : shapes)
    for (const bool trans_b : {false, true}) {
      Product p{m, n, k, trans_b, std::vector<float>(static_cast<size_t>(m) * k),
                std::vector<float>(static_cast<size_t>(k) * n)};
      for (float& x : p.a) x = normal(gen);
      for (float& x : p.b) x = normal(gen);
      const std::vector<float> start(static_cast<size_t>(m) * n, 0.5f);
      std::vector<float> whole = start;
      p.columns(whole, 0, n);
      int column_differ = 0, row_differ = 0;  // of this product's layouts
      auto count = [&](const std::vector<float>& c, int& differ_here) {
        ++layouts;
        if (std::memcmp(c.data(), whole.data(), c.size() * sizeof(float)) != 0) ++differ, ++differ_here;
      };
      for (const int width : {1, 3, 7, 16, 32, 48, 64, 100})
        for (const int offset : {0, 1, 5, 16}) {
          std::vector<float> c = start;
          const int first = std::min(offset, n);
          p.columns(c, 0, first);
          for (int s = first; s < n; s += width) p.columns(c, s, std::min(width, n - s));
          count(c, column_differ);
        }
      for (const int height : {1, 5, 16, 64}) {
        std::vector<float> c = start;
        for (int s = 0; s < m; s += height) p.rows(c, s, std::min(height, m - s));
        count(c, row_differ);
      }
      std::printf("C (%d,%d) += A (%d,%d) %s: %d of 32 column layouts, %d of 4 row layouts differ\n", m, n,
                  m, k, trans_b ? "B^T" : "B", column_differ, row_differ);
    }
  std::printf("OpenBLAS kernel %s: %d of %d band layouts give C other bits than one call\n",
              openblas_get_corename(), differ, layouts);
  return 0;
}
