// CPU backend: memory, OpenBLAS GEMM, element-wise kernels and the Backend object.
#include <cblas.h>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "engine/cpu/cpu_kernels.h"
#include "engine/parallel.h"

namespace engine {
namespace cpu {

template <class T>
void CpuKernels<T>::fill(T* x, int64_t n, T value) const {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) x[i] = value;
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

template <class T>
void CpuKernels<T>::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                         const T* a, const T* b, T beta, T* c) const {
  if (m == 0 || n == 0) return;
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const blasint lda = static_cast<blasint>(trans_a ? m : k);
  const blasint ldb = static_cast<blasint>(trans_b ? k : n);
  auto call = [&](int64_t depth, const T* a_part, const T* b_part, T beta_part) {
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, ta, tb, m, n, depth, alpha, a_part, lda, b_part, ldb, beta_part, c, n);
    else
      cblas_dgemm(CblasRowMajor, ta, tb, m, n, depth, alpha, a_part, lda, b_part, ldb, beta_part, c, n);
  };
  // OpenBLAS 0.3.21 splits a long k into blocks differently on one thread and
  // on several (level3.c rounds half of a remainder in (Q, 2Q) up to the
  // unroll, level3_thread.c does not), so results changed with the thread count
  // for k > Q unless k is a multiple of 32. Running the k % 32 tail as a
  // second product keeps the bits the same for any thread count.
  const int64_t tail = k > 32 ? k % 32 : 0, depth = k - tail;
  call(depth, a, b, beta);
  if (tail > 0)
    call(tail, a + (trans_a ? depth * m : depth), b + (trans_b ? depth : depth * n), T(1));
}

template <class T>
void CpuKernels<T>::gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n,
                                         int64_t k, T alpha, const T* a, int64_t stride_a,
                                         const T* b, int64_t stride_b, T beta, T* c,
                                         int64_t stride_c, int64_t batch) const {
  // OpenBLAS threads each product; batching on top would oversubscribe.
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, b + i * stride_b, beta,
         c + i * stride_c);
}

template <class T>
static T apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return T(0);
}

template <class T>
void CpuKernels<T>::binary(BinaryOp op, const Broadcast& g, const T* a, const T* b,
                           T* out) const {
  // Rows of the innermost dimension; each row's start offsets come from its
  // multi-index over the outer dimensions.
  const int last = g.ndim - 1;
  const int64_t inner = g.ndim ? g.out_shape[last] : 1;
  const int64_t rows = inner ? g.numel() / inner : 0;
  const int64_t sa = g.ndim ? g.a_strides[last] : 0;
  const int64_t sb = g.ndim ? g.b_strides[last] : 0;
#pragma omp parallel for schedule(static) if (g.numel() > kParallelGrain)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t offset_a = 0, offset_b = 0, rest = row;
    for (int d = last - 1; d >= 0; --d) {
      const int64_t i = rest % g.out_shape[d];
      rest /= g.out_shape[d];
      offset_a += i * g.a_strides[d];
      offset_b += i * g.b_strides[d];
    }
    const T* pa = a + offset_a;
    const T* pb = b + offset_b;
    T* po = out + row * inner;
    for (int64_t j = 0; j < inner; ++j) po[j] = apply(op, pa[j * sa], pb[j * sb]);
  }
}

template <class T>
void CpuKernels<T>::sum_to(const T* x, const int64_t* x_shape, T* out, const int64_t* out_shape,
                           int ndim) const {
  // Each output element sums its own input elements in a fixed order, so the
  // result does not depend on the thread count.
  int64_t x_strides[kMaxDims];
  int64_t out_numel = 1, reduce_numel = 1, stride = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    x_strides[d] = stride;
    stride *= x_shape[d];
    out_numel *= out_shape[d];
    if (out_shape[d] == 1) reduce_numel *= x_shape[d];
  }
#pragma omp parallel for schedule(static) if (out_numel * reduce_numel > kParallelGrain)
  for (int64_t o = 0; o < out_numel; ++o) {
    int64_t base = 0, rest = o;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = rest % out_shape[d];
      rest /= out_shape[d];
      base += i * x_strides[d];
    }
    double acc = 0;
    for (int64_t r = 0; r < reduce_numel; ++r) {
      int64_t offset = base, rest_r = r;
      for (int d = ndim - 1; d >= 0; --d) {
        if (out_shape[d] != 1) continue;
        const int64_t i = rest_r % x_shape[d];
        rest_r /= x_shape[d];
        offset += i * x_strides[d];
      }
      acc += x[offset];
    }
    out[o] += static_cast<T>(acc);
  }
}

template <class T>
void CpuKernels<T>::axpy(int64_t n, T alpha, const T* x, T* y) const {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <class T>
void CpuKernels<T>::scale(int64_t n, T alpha, T* x) const {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

template <class T>
void CpuKernels<T>::relu_forward(int64_t n, const T* x, T* y) const {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <class T>
void CpuKernels<T>::relu_backward(int64_t n, const T* x, const T* dy, T* dx) const {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > T(0) ? dy[i] : T(0);
}

template <class T>
double CpuKernels<T>::sum_all(int64_t n, const T* x) const {
  double acc = 0;  // sequential: the order must not depend on threads
  for (int64_t i = 0; i < n; ++i) acc += x[i];
  return acc;
}

template class CpuKernels<float>;
template class CpuKernels<double>;

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  std::string name() const override {
    return "cpu (OpenBLAS, " + std::to_string(num_threads()) + " threads)";
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
  openblas_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace engine
