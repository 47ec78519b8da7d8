// CPU backend: memory, OpenBLAS GEMM, element-wise kernels and the Backend object.
// Element-wise formulas are the bodies shared with the CUDA backend
// (engine/kernels/elementwise_bodies.h), called inside the OpenMP loops.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/cpu/cpu_kernels.h"
#include "engine/cpu/isa.h"
#include "engine/kernels/elementwise_bodies.h"
#include "engine/parallel.h"

namespace engine {
namespace cpu {

template <class T>
void CpuKernels<T>::fill(T* x, int64_t n, T value) const {
  const kernels::Fill<T> fill_one{x, value};
  for_each_element(n, fill_one);
}

template <class T>
void CpuKernels<T>::copy(T* dst, const T* src, int64_t n) const {
  if (n > 0 && dst != src) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
}

template <class T>
void CpuKernels<T>::copy_blocks(T* dst, int64_t dst_stride, const T* src, int64_t src_stride,
                                int64_t block, int64_t count) const {
#pragma omp parallel for schedule(static) if (block * count > kParallelGrain)
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(dst + i * dst_stride, src + i * src_stride, static_cast<size_t>(block) * sizeof(T));
}

template <class T>
void CpuKernels<T>::transpose2d(T* out, const T* x, int64_t rows, int64_t cols) const {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelGrain)
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) out[c * rows + r] = x[r * cols + c];
}

// Row j of out gathers block (i, j) of x for every i: a copy of K elements each.
template <class T>
void CpuKernels<T>::swap_leading_axes(T* out, const T* x, int64_t size_i, int64_t size_j,
                                      int64_t size_k) const {
#pragma omp parallel for schedule(static) if (size_i * size_j * size_k > kParallelGrain)
  for (int64_t j = 0; j < size_j; ++j)
    for (int64_t i = 0; i < size_i; ++i)
      std::memcpy(out + (j * size_i + i) * size_k, x + (i * size_j + j) * size_k,
                  static_cast<size_t>(size_k) * sizeof(T));
}

// GEMM threading. OpenBLAS always runs single-threaded here and our OpenMP
// threads split the work, because OpenBLAS's own thread pool beside OpenMP's
// made the two pools' spinning waiters starve each other on 2 cores (training
// steps 3-5x slower). A product is cut into bands of C whose sizes depend on
// the shape alone, never on the thread count, and each band is one OpenBLAS
// call; threads share the bands (or, in a batch, the products). So every
// element is computed by the same call whatever the thread count, as
// engine/parallel.h's determinism condition asks.
constexpr int64_t kMinBand = 64;    // rows or columns of C per call, at least
constexpr int64_t kMaxBands = 16;
constexpr int64_t kBandAlign = 64;  // keeps micro-kernel tiles aligned as in one call
constexpr double kSplitGemmFlops = 1 << 22;

// cblas takes int sizes: refuse a product whose sizes do not fit rather than
// let them wrap. Leading dimensions are among m, n, k, so these suffice.
static void check_blas_sizes(int64_t m, int64_t n, int64_t k) {
  constexpr int64_t limit = std::numeric_limits<int>::max();
  if (m > limit || n > limit || k > limit)
    throw std::invalid_argument("gemm: sizes m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                " k=" + std::to_string(k) + " exceed OpenBLAS's 32-bit int (" +
                                std::to_string(limit) + ")");
}

// One single-threaded OpenBLAS product, row-major, explicit leading dimensions.
template <class T>
void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
               int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// How a product's C is cut: `count` bands of `size` rows (split_rows) or
// columns of C, the last one shorter; a function of the shape alone.
struct GemmBands {
  bool split_rows;
  int64_t extent, size, count;

  GemmBands(int64_t m, int64_t n, int64_t k) {
    split_rows = m >= n;  // bands along the longer side of C
    extent = split_rows ? m : n;
    const int64_t per_band = (extent + kMaxBands - 1) / kMaxBands;
    size = std::max(kMinBand, (per_band + kBandAlign - 1) / kBandAlign * kBandAlign);
    const bool small = 2.0 * static_cast<double>(m) * static_cast<double>(n) *
                           static_cast<double>(k) < kSplitGemmFlops;
    count = small ? 1 : (extent + size - 1) / size;
  }
  int64_t start(int64_t band) const { return band * size; }
  int64_t width(int64_t band) const { return std::min(size, extent - band * size); }
};

// Band `band` of one product: the OpenBLAS call that computes it, whoever runs it.
template <class T>
void gemm_band(const GemmBands& bands, int64_t band, bool trans_a, bool trans_b, int64_t m,
               int64_t n, int64_t k, T alpha, const T* a, const T* b, T beta, T* c) {
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  const int64_t start = bands.start(band), size = bands.width(band);
  if (bands.count == 1)
    blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
  else if (bands.split_rows)  // rows [start, start+size) of op(A) and C
    blas_gemm(trans_a, trans_b, size, n, k, alpha, a + (trans_a ? start : start * k), lda, b, ldb,
              beta, c + start * n, n);
  else  // columns [start, start+size) of op(B) and C
    blas_gemm(trans_a, trans_b, m, size, k, alpha, a, lda, b + (trans_b ? start * k : start), ldb,
              beta, c + start, n);
}

template <class T>
void CpuKernels<T>::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                         const T* a, const T* b, T beta, T* c) const {
  check_blas_sizes(m, n, k);
  if (m == 0 || n == 0) return;
  const GemmBands bands(m, n, k);
  if (bands.count == 1) {
    gemm_band(bands, 0, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    return;
  }
  // Inside another parallel region (a batch of products) this loop runs serially.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < bands.count; ++i)
    gemm_band(bands, i, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

template <class T>
void CpuKernels<T>::gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n,
                                         int64_t k, T alpha, const T* a, int64_t stride_a,
                                         const T* b, int64_t stride_b, T beta, T* c,
                                         int64_t stride_c, int64_t batch) const {
  // With a product for every thread, threads take whole products (whose bands
  // then run serially); otherwise each product's bands are shared. Two loops,
  // not an `if` clause: an inactive outer region would make every gemm's
  // region a nested team, created afresh each call.
  check_blas_sizes(m, n, k);  // here, outside the parallel loop, where it may throw
  if (batch >= omp_get_max_threads() && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i)
      gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, b + i * stride_b, beta,
           c + i * stride_c);
    return;
  }
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, b + i * stride_b, beta,
         c + i * stride_c);
}

// One product after another onto C, in order: each band of C takes the same
// OpenBLAS calls as in gemm, one per image, images in order, so every element
// gets the same sums in the same order whatever the thread count.
//
// Threads share the (band, image) calls rather than each product's bands: one
// parallel region instead of one per image, and the work balanced where whole
// bands would not be (5 bands on 2 threads: 3 against 2). The calls are laid
// out band by band and cut into equal amounts of work (by band width), so a
// band's images may be split between consecutive threads. The later one then
// waits until the earlier one has added the images before its own (a counter
// per band); to keep that wait short, each thread first runs the piece that
// others wait on (its last band, begun at image 0) and last the one that waits
// (its first band, begun part-way). Waits only go to earlier threads, so
// there is no cycle.
template <class T>
void CpuKernels<T>::gemm_batched_sum(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                     T alpha, const T* a, int64_t stride_a, const T* b,
                                     int64_t stride_b, T* c, int64_t batch) const {
  check_blas_sizes(m, n, k);
  if (m == 0 || n == 0 || batch <= 0) return;
  const GemmBands bands(m, n, k);
  const auto add_product = [&](int64_t band, int64_t image) {
    gemm_band(bands, band, trans_a, trans_b, m, n, k, alpha, a + image * stride_a,
              b + image * stride_b, T(1), c);
  };
  if (bands.count == 1 || omp_in_parallel() || omp_get_max_threads() == 1) {
    for (int64_t image = 0; image < batch; ++image)
      for (int64_t band = 0; band < bands.count; ++band) add_product(band, image);
    return;
  }
  std::vector<std::atomic<int64_t>> images_added(static_cast<size_t>(bands.count));
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    // Call u = band * batch + image does width(band) units of the extent *
    // batch in all; a thread's share starts at the first call at or past its
    // fraction of them.
    const auto first_call = [&](int64_t t) {
      const int64_t target = (t * bands.extent * batch + threads - 1) / threads;
      for (int64_t band = 0; band < bands.count; ++band) {
        const int64_t begin = bands.start(band) * batch, width = bands.width(band);
        if (target < begin + width * batch) return band * batch + (target - begin + width - 1) / width;
      }
      return bands.count * batch;
    };
    const int64_t first = first_call(thread), last = first_call(thread + 1);  // calls [first, last)
    // The thread's bands from its last to its first, images [from, to) of each.
    if (first < last)
      for (int64_t band = (last - 1) / batch; band >= first / batch; --band) {
        const int64_t from = std::max(first, band * batch) - band * batch;
        const int64_t to = std::min(last, (band + 1) * batch) - band * batch;
        std::atomic<int64_t>& added = images_added[static_cast<size_t>(band)];
        while (added.load(std::memory_order_acquire) < from) std::this_thread::yield();
        for (int64_t image = from; image < to; ++image) add_product(band, image);
        added.store(to, std::memory_order_release);
      }
  }
}

template <class T>
void CpuKernels<T>::binary(BinaryOp op, const Broadcast& g, const T* a, const T* b,
                           T* out) const {
  // Rows of the innermost dimension of the coalesced mapping (two same-shape
  // tensors make one row); each row's start offsets come from its multi-index
  // over the outer dimensions. Long rows are cut into blocks for the threads.
  const Broadcast c = g.coalesced();
  const int last = c.ndim - 1;
  const int64_t inner = c.ndim ? c.out_shape[last] : 1;
  const int64_t rows = inner ? c.numel() / inner : 0;
  const int64_t sa = c.ndim ? c.a_strides[last] : 0;
  const int64_t sb = c.ndim ? c.b_strides[last] : 0;
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;  // per row
#pragma omp parallel for schedule(static) if (c.numel() > kParallelGrain)
  for (int64_t piece = 0; piece < rows * blocks; ++piece) {
    const int64_t row = piece / blocks, begin = piece % blocks * kBlock;
    const int64_t end = std::min(inner, begin + kBlock);
    int64_t offset_a, offset_b;
    kernels::broadcast_offsets(c, last, row, offset_a, offset_b);
    const T* pa = a + offset_a;
    const T* pb = b + offset_b;
    T* po = out + row * inner;
    for (int64_t j = begin; j < end; ++j) po[j] = kernels::apply_binary(op, pa[j * sa], pb[j * sb]);
  }
}

template <class T>
void CpuKernels<T>::sum_to(const T* x, const int64_t* x_shape, T* out, const int64_t* out_shape,
                           int ndim) const {
  // Each output element sums its own input elements in a fixed order, so the
  // result does not depend on the thread count.
  const kernels::SumToGeometry g = kernels::make_sum_to_geometry(x_shape, out_shape, ndim);
  const kernels::SumToOutput<T> sum_one{g, x, out};
#pragma omp parallel for schedule(static) if (g.out_numel * g.reduce_numel > kParallelGrain)
  for (int64_t o = 0; o < g.out_numel; ++o) sum_one(o);
}

template <class T>
void CpuKernels<T>::axpy(int64_t n, T alpha, const T* x, T* y) const {
  const kernels::Axpy<T> axpy_one{alpha, x, y};
  for_each_element(n, axpy_one);
}

template <class T>
void CpuKernels<T>::scale(int64_t n, T alpha, const T* x, T* y) const {
  const kernels::Scale<T> scale_one{alpha, x, y};
  for_each_element(n, scale_one);
}

template <class T>
void CpuKernels<T>::relu_forward(int64_t n, const T* x, T* y) const {
  const kernels::ReluForward<T> relu{x, y};
  for_each_element(n, relu);
}

template <class T>
void CpuKernels<T>::relu_backward(int64_t n, const T* x, const T* dy, T* dx) const {
  const kernels::ReluBackward<T> relu_grad{x, dy, dx};
  for_each_element(n, relu_grad);
}

template class CpuKernels<float>;
template class CpuKernels<double>;

class CpuBackend final : public Backend {
 public:
  // OpenMP threads split the GEMMs themselves: see CpuKernels::gemm.
  CpuBackend() { openblas_set_num_threads(1); }
  Device device() const override { return Device::cpu; }
  std::string name() const override {
    const int threads = num_threads();
    return "cpu (OpenBLAS, " + std::to_string(threads) + (threads == 1 ? " thread, " : " threads, ") +
           isa_name(active_isa()) + " loops)";
  }
  void* allocate(size_t bytes) override {
    // 64-byte alignment suits AVX-512 loads and cache lines.
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
  void copy_to_host(void* dst, const void* src, size_t bytes) const override {
    std::memcpy(dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* src, size_t bytes) const override {
    std::memcpy(dst, src, bytes);
  }
  void synchronize() const override {}
  // 2 MiB of float32, about a core's L2 cache: im2col's output is still in
  // cache when the GEMMs read it (measured: 2^19 beat 2^20 and 2^21).
  int64_t conv_chunk_elements() const override { return int64_t{1} << 19; }
  const Kernels<float>& f32() const override { return f32_; }
  const Kernels<double>& f64() const override { return f64_; }

 private:
  CpuKernels<float> f32_;
  CpuKernels<double> f64_;
};

}  // namespace cpu

Backend& cpu_backend() {
  static cpu::CpuBackend instance;
  return instance;
}

void set_num_threads(int threads) {
  if (threads < 0) throw std::invalid_argument("thread count must be >= 0, got " + std::to_string(threads));
  if (threads == 0) threads = omp_get_num_procs();
  omp_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace engine
