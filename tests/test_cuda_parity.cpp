// CUDA against CPU: every op forward and backward on random shapes, the GEMM
// variants, the optimisers, and one full training step of a small CNN
// (conv, batch norm, relu, max pooling, linear, cross-entropy, Adam), all in
// float32 to a relative tolerance of 1e-4 (relative to max(1, |cpu value|), as
// tests/gradcheck.h), and GEMMs in TF32 mode to 1e-2. Every case needs a
// usable GPU and reports itself skipped, with the reason, where there is none.
#define BOOST_TEST_MODULE cuda_parity
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/init.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"

using namespace engine;

namespace {

constexpr double kTolerance = 1e-4;

boost::test_tools::assertion_result gpu_usable(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result result(backend_available(Device::cuda));
  result.message() << "no usable CUDA GPU: " << backend_unavailable_reason(Device::cuda);
  return result;
}

// float32 CPU tensor, uniform in [low, high).
Tensor random_tensor(const Shape& shape, Generator& gen, double low = -1, double high = 1) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = static_cast<float>(gen.uniform(low, high));
  return Tensor::from_vector(shape, std::span<const float>(v));
}

Tensor grad_tensor(const Shape& shape, Generator& gen, double low = -1, double high = 1) {
  Tensor t = random_tensor(shape, gen, low, high);
  t.set_requires_grad();
  return t;
}

// A size in [low, high].
int64_t random_size(Generator& gen, int64_t low, int64_t high) {
  return low + static_cast<int64_t>(gen.below(static_cast<uint64_t>(high - low + 1)));
}

// The same values on the GPU, as a leaf with the same requires_grad.
Tensor on_cuda(const Tensor& x) {
  Tensor y = x.to(Device::cuda).detach();
  y.set_requires_grad(x.requires_grad());
  return y;
}

// got (any device) matches want (CPU) to the tolerance, relative to max(1, |want|).
// Returns the worst error.
double check_close(const std::string& what, const Tensor& got, const Tensor& want,
                   double tolerance = kTolerance) {
  BOOST_REQUIRE_MESSAGE(got.shape() == want.shape(), what << ": shape " << to_string(got.shape())
                                                          << " vs " << to_string(want.shape()));
  const std::vector<double> g = got.to_double_vector(), w = want.to_double_vector();
  double worst = 0;
  size_t worst_index = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool both_inf = std::isinf(g[i]) && std::isinf(w[i]) && (g[i] > 0) == (w[i] > 0);
    const double error = both_inf ? 0 : std::abs(g[i] - w[i]) / std::max(1.0, std::abs(w[i]));
    if (!(error <= worst)) worst = error, worst_index = i;  // NaN counts as the worst
  }
  BOOST_CHECK_MESSAGE(worst <= tolerance,
                      what << " " << to_string(want.shape()) << ": element " << worst_index
                           << " is " << (g.empty() ? 0 : g[worst_index]) << " on the GPU, "
                           << (w.empty() ? 0 : w[worst_index]) << " on the CPU (error " << worst
                           << ")");
  return worst;
}

using OpFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs f on the CPU inputs and on GPU copies of them: compares the outputs,
// then the gradients of sum(f(x) * R) (R a fixed random projection, so every
// output element weighs differently) for every input that requires grad.
void check_op(const std::string& name, const OpFunction& f, const std::vector<Tensor>& cpu_inputs) {
  std::vector<Tensor> gpu_inputs;
  for (const Tensor& x : cpu_inputs) gpu_inputs.push_back(on_cuda(x));
  const Tensor y_cpu = f(cpu_inputs), y_gpu = f(gpu_inputs);
  BOOST_REQUIRE(y_gpu.device() == Device::cuda);
  check_close(name + " forward", y_gpu, y_cpu);
  if (!y_cpu.requires_grad()) return;

  Generator gen(99);
  const Tensor projection = random_tensor(y_cpu.shape(), gen);
  sum(mul(y_cpu, projection)).backward();
  sum(mul(y_gpu, on_cuda(projection))).backward();
  for (size_t i = 0; i < cpu_inputs.size(); ++i) {
    if (!cpu_inputs[i].requires_grad()) continue;
    BOOST_REQUIRE_MESSAGE(gpu_inputs[i].grad().defined(), name << ": input " << i << " has no GPU gradient");
    check_close(name + " gradient of input " + std::to_string(i), gpu_inputs[i].grad(),
                cpu_inputs[i].grad());
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(tensors_move_between_devices, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(1);
  const Tensor x = random_tensor({3, 5, 7}, gen);
  const Tensor gpu = x.to(Device::cuda);
  BOOST_TEST((gpu.device() == Device::cuda));
  BOOST_TEST(gpu.to(Device::cpu).to_float_vector() == x.to_float_vector());
  BOOST_TEST(gpu.clone().to_float_vector() == x.to_float_vector());
  BOOST_TEST(Tensor::full({4}, 2.5, DType::f64, Device::cuda).to_double_vector() ==
             std::vector<double>(4, 2.5));
  check_close("sum", sum(gpu), sum(x));
  // Named as --device spells it: cuda:0 unless another GPU was chosen.
  BOOST_TEST(backend(Device::cuda).name().starts_with("cuda:" + std::to_string(device_index(Device::cuda)) + " ("));
  // Mixing devices is the caller's error.
  BOOST_CHECK_THROW(add(x, gpu), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(errors_become_exceptions, *boost::unit_test::precondition(gpu_usable)) {
  // 2^60 bytes: cudaMalloc fails and says why.
  try {
    Tensor::empty({int64_t(1) << 58}, DType::f32, Device::cuda);
    BOOST_FAIL("a 2^60-byte allocation succeeded");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("out of memory") != std::string::npos, e.what());
  }
  // Labels are checked on the host before any work is queued.
  const Tensor logits = Tensor::zeros({2, 3}, DType::f32, Device::cuda);
  const std::vector<int64_t> bad = {0, 3};
  BOOST_CHECK_THROW(cross_entropy(logits, bad), std::invalid_argument);
  // The GPU still works afterwards.
  BOOST_TEST(sum(Tensor::full({10}, 1.0, DType::f32, Device::cuda)).item() == 10.0);
}

BOOST_AUTO_TEST_CASE(gemm_variants_match_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(2);
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true}) {
      const int64_t m = random_size(gen, 1, 70), n = random_size(gen, 1, 70),
                    k = random_size(gen, 1, 300), batch = 3;
      const std::string name = std::string("gemm ") + (trans_a ? "T" : "N") + (trans_b ? "T" : "N");
      const Tensor a = random_tensor({batch, m * k}, gen), b = random_tensor({batch, k * n}, gen);
      const Tensor c = random_tensor({batch, m * n}, gen);
      const Tensor a_gpu = a.to(Device::cuda), b_gpu = b.to(Device::cuda);
      // Single product with alpha and beta, on the first matrices.
      Tensor want = c.clone(), got = c.to(Device::cuda);
      backend(Device::cpu).f32().gemm(trans_a, trans_b, m, n, k, 0.5f, a.data<float>(),
                                      b.data<float>(), -2.0f, want.data<float>());
      backend(Device::cuda).f32().gemm(trans_a, trans_b, m, n, k, 0.5f, a_gpu.data<float>(),
                                       b_gpu.data<float>(), -2.0f, got.data<float>());
      check_close(name, got, want);
      // Strided batch over all three.
      want = c.clone(), got = c.to(Device::cuda);
      backend(Device::cpu).f32().gemm_strided_batched(
          trans_a, trans_b, m, n, k, 1.0f, a.data<float>(), m * k, b.data<float>(), k * n, 1.0f,
          want.data<float>(), m * n, batch);
      backend(Device::cuda).f32().gemm_strided_batched(
          trans_a, trans_b, m, n, k, 1.0f, a_gpu.data<float>(), m * k, b_gpu.data<float>(), k * n,
          1.0f, got.data<float>(), m * n, batch);
      check_close(name + " strided batched", got, want);
      // Double precision goes through dgemm.
      const Tensor a64 = a.to(DType::f64), b64 = b.to(DType::f64);
      Tensor want64 = Tensor::zeros({m, n}, DType::f64);
      Tensor got64 = Tensor::zeros({m, n}, DType::f64, Device::cuda);
      backend(Device::cpu).f64().gemm(trans_a, trans_b, m, n, k, 1.0, a64.data<double>(),
                                      b64.data<double>(), 0.0, want64.data<double>());
      backend(Device::cuda).f64().gemm(trans_a, trans_b, m, n, k, 1.0,
                                       a64.to(Device::cuda).data<double>(),
                                       b64.to(Device::cuda).data<double>(), 0.0,
                                       got64.data<double>());
      check_close(name + " float64", got64, want64, 1e-12);
    }
}

// --tf32 (Backend::set_tf32): float32 GEMMs on TF32 tensor cores. Against the
// float64 product of the same inputs, a 256-deep GEMM of values in [-1, 1)
// stays within 1e-2 with TF32 (each input cut to 10 mantissa bits) and
// within kTolerance without; turning TF32 off gives the float32 bits back, and
// float64 GEMMs are unaffected. (GPUs before Ampere have no TF32: there cuBLAS
// computes in float32 in both modes.) With --log_level=message it prints both
// worst errors.
BOOST_AUTO_TEST_CASE(tf32_gemm_is_within_its_tolerance_and_off_by_default,
                     *boost::unit_test::precondition(gpu_usable)) {
  Backend& gpu = backend(Device::cuda);
  BOOST_TEST(!gpu.tf32());
  struct LeaveTf32Off {  // for the other cases, whatever happens here
    Backend& gpu;
    ~LeaveTf32Off() { gpu.set_tf32(false); }
  } leave_off{gpu};

  Generator gen(23);
  const int64_t m = 64, n = 48, k = 256, batch = 3;
  const Tensor a = random_tensor({batch, m * k}, gen), b = random_tensor({batch, k * n}, gen);
  const Tensor a64 = a.to(DType::f64), b64 = b.to(DType::f64);
  Tensor want = Tensor::zeros({batch, m * n}, DType::f64);
  backend(Device::cpu).f64().gemm_strided_batched(false, false, m, n, k, 1.0, a64.data<double>(), m * k,
                                                  b64.data<double>(), k * n, 0.0, want.data<double>(), m * n, batch);
  const Tensor want_first = slice(want, 0, 0, 1);
  const Tensor a_gpu = a.to(Device::cuda), b_gpu = b.to(Device::cuda);
  // On the GPU in float32: the first product alone, then all as a strided batch.
  const auto products = [&] {
    Tensor first = Tensor::zeros({1, m * n}, DType::f32, Device::cuda);
    Tensor all = Tensor::zeros({batch, m * n}, DType::f32, Device::cuda);
    gpu.f32().gemm(false, false, m, n, k, 1.0f, a_gpu.data<float>(), b_gpu.data<float>(), 0.0f, first.data<float>());
    gpu.f32().gemm_strided_batched(false, false, m, n, k, 1.0f, a_gpu.data<float>(), m * k, b_gpu.data<float>(),
                                   k * n, 0.0f, all.data<float>(), m * n, batch);
    return std::pair<Tensor, Tensor>{first, all};
  };

  const auto [first, all] = products();
  const double float32_error =
      std::max(check_close("float32 gemm", first, want_first), check_close("float32 strided batched", all, want));

  gpu.set_tf32(true);
  BOOST_TEST(gpu.tf32());
  const auto [first_tf32, all_tf32] = products();
  const double tf32_error = std::max(check_close("TF32 gemm", first_tf32, want_first, 1e-2),
                                     check_close("TF32 strided batched", all_tf32, want, 1e-2));
  Tensor got64 = Tensor::zeros({1, m * n}, DType::f64, Device::cuda);
  gpu.f64().gemm(false, false, m, n, k, 1.0, a64.to(Device::cuda).data<double>(), b64.to(Device::cuda).data<double>(),
                 0.0, got64.data<double>());
  check_close("float64 gemm with TF32 on", got64, want_first, 1e-12);

  gpu.set_tf32(false);
  BOOST_TEST(products().second.to_float_vector() == all.to_float_vector());
  BOOST_TEST_MESSAGE("256-deep GEMM, worst error against float64 (relative to max(1, |c|)): float32 "
                     << float32_error << ", TF32 " << tf32_error);
}

// The GPU stacks the products along k for one GEMM; the CPU adds them one by one.
BOOST_AUTO_TEST_CASE(gemm_batched_sum_matches_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(12);
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (int64_t batch : {1, 6}) {
        const int64_t m = random_size(gen, 1, 70), n = random_size(gen, 1, 70),
                      k = random_size(gen, 1, 300);
        // Both operands batched, or one shared by every product (stride 0).
        for (const auto& [stride_a, stride_b] : std::vector<std::pair<int64_t, int64_t>>{
                 {m * k, k * n}, {m * k, 0}, {0, k * n}}) {
          const std::string name = std::string("gemm_batched_sum ") + (trans_a ? "T" : "N") +
                                   (trans_b ? "T" : "N") + ", batch " + std::to_string(batch) +
                                   ", strides " + std::to_string(stride_a) + " " +
                                   std::to_string(stride_b);
          const Tensor a = random_tensor({(batch - 1) * stride_a + m * k}, gen);
          const Tensor b = random_tensor({(batch - 1) * stride_b + k * n}, gen);
          const Tensor c = random_tensor({m, n}, gen);
          const Tensor a_gpu = a.to(Device::cuda), b_gpu = b.to(Device::cuda);
          Tensor want = c.clone(), got = c.to(Device::cuda);
          backend(Device::cpu).f32().gemm_batched_sum(trans_a, trans_b, m, n, k, 0.5f,
                                                      a.data<float>(), stride_a, b.data<float>(),
                                                      stride_b, want.data<float>(), batch);
          backend(Device::cuda).f32().gemm_batched_sum(
              trans_a, trans_b, m, n, k, 0.5f, a_gpu.data<float>(), stride_a,
              b_gpu.data<float>(), stride_b, got.data<float>(), batch);
          check_close(name, got, want);
          // Double precision goes through the same stacking and dgemm.
          const Tensor a64 = a.to(DType::f64), b64 = b.to(DType::f64);
          Tensor want64 = c.to(DType::f64), got64 = c.to(DType::f64).to(Device::cuda);
          backend(Device::cpu).f64().gemm_batched_sum(trans_a, trans_b, m, n, k, 0.5,
                                                      a64.data<double>(), stride_a,
                                                      b64.data<double>(), stride_b,
                                                      want64.data<double>(), batch);
          backend(Device::cuda).f64().gemm_batched_sum(
              trans_a, trans_b, m, n, k, 0.5, a64.to(Device::cuda).data<double>(), stride_a,
              b64.to(Device::cuda).data<double>(), stride_b, got64.data<double>(), batch);
          check_close(name + " float64", got64, want64, 1e-12);
        }
      }
}

BOOST_AUTO_TEST_CASE(linear_algebra_ops_match_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(3);
  const int64_t m = random_size(gen, 1, 40), k = random_size(gen, 1, 200), n = random_size(gen, 1, 40);
  check_op("matmul", [](const auto& x) { return matmul(x[0], x[1]); },
           {grad_tensor({m, k}, gen), grad_tensor({k, n}, gen)});
  check_op("linear", [](const auto& x) { return linear(x[0], x[1], x[2]); },
           {grad_tensor({m, k}, gen), grad_tensor({n, k}, gen), grad_tensor({n}, gen)});
  check_op("linear without bias", [](const auto& x) { return linear(x[0], x[1], Tensor()); },
           {grad_tensor({m, k}, gen), grad_tensor({n, k}, gen)});
}

BOOST_AUTO_TEST_CASE(elementwise_ops_match_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(4);
  const int64_t a = random_size(gen, 1, 6), b = random_size(gen, 2, 7), c = random_size(gen, 2, 9);
  const Shape full = {a, b, 5, c}, broadcast = {b, 1, c};
  check_op("add", [](const auto& x) { return add(x[0], x[1]); },
           {grad_tensor(full, gen), grad_tensor(broadcast, gen)});
  check_op("sub", [](const auto& x) { return sub(x[0], x[1]); },
           {grad_tensor(broadcast, gen), grad_tensor(full, gen)});
  check_op("mul", [](const auto& x) { return mul(x[0], x[1]); },
           {grad_tensor(full, gen), grad_tensor(broadcast, gen)});
  check_op("div", [](const auto& x) { return div(x[0], x[1]); },
           {grad_tensor(full, gen), grad_tensor(broadcast, gen, 0.5, 2)});
  check_op("mul_scalar", [](const auto& x) { return mul_scalar(x[0], -1.75); }, {grad_tensor(full, gen)});
  check_op("relu", [](const auto& x) { return relu(x[0]); }, {grad_tensor(full, gen)});
}

BOOST_AUTO_TEST_CASE(reductions_match_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(5);
  const Shape shape = {random_size(gen, 1, 5), random_size(gen, 1, 6), random_size(gen, 1, 7)};
  check_op("sum", [](const auto& x) { return sum(x[0]); }, {grad_tensor(shape, gen)});
  check_op("mean", [](const auto& x) { return mean(x[0]); }, {grad_tensor(shape, gen)});
  for (int64_t dim : {0, 1, 2}) {
    check_op("sum over dim " + std::to_string(dim),
             [dim](const auto& x) { return sum(x[0], dim, false); }, {grad_tensor(shape, gen)});
    check_op("sum over dim keepdim " + std::to_string(dim),
             [dim](const auto& x) { return sum(x[0], dim, true); }, {grad_tensor(shape, gen)});
  }
  // Few outputs of many values: the kernel sums each output with a block.
  check_op("sum over a long dim", [](const auto& x) { return sum(x[0], 0, false); },
           {grad_tensor({20000, 3}, gen)});
}

BOOST_AUTO_TEST_CASE(shape_ops_match_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(6);
  const int64_t r = random_size(gen, 2, 9), c = random_size(gen, 2, 9);
  check_op("reshape", [c](const auto& x) { return reshape(x[0], {c, -1}); }, {grad_tensor({r, c, 3}, gen)});
  check_op("flatten", [](const auto& x) { return flatten(x[0], 1); }, {grad_tensor({r, c, 3, 2}, gen)});
  check_op("transpose", [](const auto& x) { return transpose(x[0]); }, {grad_tensor({r, c}, gen)});
  check_op("concat dim 1", [](const auto& x) { return concat({x[0], x[1]}, 1); },
           {grad_tensor({r, c, 2}, gen), grad_tensor({r, 3, 2}, gen)});
  check_op("concat dim 0", [](const auto& x) { return concat({x[0], x[1]}, 0); },
           {grad_tensor({r, c}, gen), grad_tensor({1, c}, gen)});
  check_op("slice", [r](const auto& x) { return slice(x[0], 0, 1, r); }, {grad_tensor({r, c, 4}, gen)});
  check_op("slice inner", [](const auto& x) { return slice(x[0], 2, 1, 3); }, {grad_tensor({r, c, 4}, gen)});
}

BOOST_AUTO_TEST_CASE(conv2d_matches_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(7);
  for (int trial = 0; trial < 4; ++trial) {
    const int64_t n = random_size(gen, 1, 4), c = random_size(gen, 1, 5), oc = random_size(gen, 1, 8);
    const int64_t h = random_size(gen, 5, 12), w = random_size(gen, 5, 12);
    const int64_t kernel = random_size(gen, 1, 3);
    Conv2dOptions options;
    options.stride_h = random_size(gen, 1, 2), options.stride_w = random_size(gen, 1, 2);
    options.pad_h = random_size(gen, 0, kernel / 2 + 1), options.pad_w = random_size(gen, 0, 1);
    const std::string name = "conv2d trial " + std::to_string(trial);
    check_op(name, [options](const auto& x) { return conv2d(x[0], x[1], x[2], options); },
             {grad_tensor({n, c, h, w}, gen), grad_tensor({oc, c, kernel, kernel}, gen),
              grad_tensor({oc}, gen)});
    check_op(name + " without bias",
             [options](const auto& x) { return conv2d(x[0], x[1], Tensor(), options); },
             {grad_tensor({n, c, h, w}, gen), grad_tensor({oc, c, kernel, kernel}, gen)});
  }
}

// Chunks of several images on the GPU (its budget of cols is far larger than
// the CPU's), where dW and db sum over a chunk's images, and over the batch,
// in one GEMM each: small images all in one chunk, and VGG's 64->64 layer at
// 32x32, whose 60 images need two chunks, the second partial.
BOOST_AUTO_TEST_CASE(conv2d_backward_over_chunks_matches_cpu,
                     *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(13);
  const int64_t vgg_per_chunk = backend(Device::cuda).conv_chunk_elements() / (64 * 9 * 32 * 32);
  BOOST_TEST_REQUIRE((vgg_per_chunk > 1 && vgg_per_chunk < 60), "images per chunk " << vgg_per_chunk);
  struct Case {
    Shape xs, ws;
    Conv2dOptions options;
  };
  for (const Case& c : {Case{{9, 5, 11, 10}, {7, 5, 3, 3}, {1, 1, 1, 1}},
                        Case{{6, 3, 12, 9}, {4, 3, 5, 3}, {2, 1, 2, 1}},
                        Case{{60, 64, 32, 32}, {64, 64, 3, 3}, {1, 1, 1, 1}}}) {
    const std::string name = "conv2d x " + to_string(c.xs) + " w " + to_string(c.ws);
    const Conv2dOptions options = c.options;
    check_op(name, [options](const auto& x) { return conv2d(x[0], x[1], x[2], options); },
             {grad_tensor(c.xs, gen), grad_tensor(c.ws, gen), grad_tensor({c.ws[0]}, gen)});
  }
}

BOOST_AUTO_TEST_CASE(pooling_matches_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(8);
  for (int trial = 0; trial < 3; ++trial) {
    const Shape shape = {random_size(gen, 1, 4), random_size(gen, 1, 5), random_size(gen, 4, 13),
                         random_size(gen, 4, 13)};
    Pool2dOptions options;
    options.kernel_h = random_size(gen, 2, 3), options.kernel_w = random_size(gen, 1, 3);
    options.stride_h = random_size(gen, 1, 2), options.stride_w = random_size(gen, 1, 3);
    options.pad_h = options.kernel_h / 2, options.pad_w = options.kernel_w / 2;
    const std::string name = " trial " + std::to_string(trial);
    check_op("max_pool2d" + name, [options](const auto& x) { return max_pool2d(x[0], options); },
             {grad_tensor(shape, gen)});
    check_op("avg_pool2d" + name, [options](const auto& x) { return avg_pool2d(x[0], options); },
             {grad_tensor(shape, gen)});
    const int64_t out_h = random_size(gen, 1, shape[2] + 2), out_w = random_size(gen, 1, 5);
    check_op("adaptive_avg_pool2d" + name,
             [out_h, out_w](const auto& x) { return adaptive_avg_pool2d(x[0], out_h, out_w); },
             {grad_tensor(shape, gen)});
  }
}

BOOST_AUTO_TEST_CASE(batch_norm_matches_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(9);
  const int64_t c = random_size(gen, 1, 6);
  const Shape shape = {random_size(gen, 2, 8), c, random_size(gen, 1, 20), random_size(gen, 1, 20)};
  // relu: batch_norm2d_relu, the ReLU folded into the kernels.
  for (bool relu : {false, true})
  for (bool training : {true, false}) {
    Tensor mean_cpu = random_tensor({c}, gen), var_cpu = random_tensor({c}, gen, 0.5, 2);
    Tensor mean_gpu = mean_cpu.to(Device::cuda), var_gpu = var_cpu.to(Device::cuda);
    const std::string name = std::string(relu ? "batch_norm2d_relu" : "batch_norm2d") +
                             (training ? " training" : " evaluation");
    check_op(name,
             [&](const auto& x) {
               const bool gpu = x[0].device() == Device::cuda;
               Tensor& mean = gpu ? mean_gpu : mean_cpu;
               Tensor& var = gpu ? var_gpu : var_cpu;
               return relu ? batch_norm2d_relu(x[0], x[1], x[2], mean, var, training, 0.1, 1e-5)
                           : batch_norm2d(x[0], x[1], x[2], mean, var, training, 0.1, 1e-5);
             },
             {grad_tensor(shape, gen, 1, 3), grad_tensor({c}, gen, 0.5, 1.5), grad_tensor({c}, gen)});
    check_close(name + " running mean", mean_gpu, mean_cpu);
    check_close(name + " running var", var_gpu, var_cpu);
  }
}

BOOST_AUTO_TEST_CASE(dropout_masks_match_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(10);
  const Shape shape = {random_size(gen, 1, 50), random_size(gen, 1, 300)};
  for (uint64_t counter : {0, 5}) {
    check_op("dropout counter " + std::to_string(counter),
             [counter](const auto& x) { return dropout(x[0], 0.4, true, 2024, counter); },
             {grad_tensor(shape, gen)});
    // Identical masks: every zero is at the same place.
    const Tensor x = random_tensor(shape, gen, 1, 2);
    const std::vector<float> cpu_y = dropout(x, 0.4, true, 7, counter).to_float_vector();
    const std::vector<float> gpu_y = dropout(x.to(Device::cuda), 0.4, true, 7, counter).to_float_vector();
    int64_t mismatches = 0;
    for (size_t i = 0; i < cpu_y.size(); ++i) mismatches += (cpu_y[i] == 0) != (gpu_y[i] == 0);
    BOOST_TEST(mismatches == 0);
  }
}

BOOST_AUTO_TEST_CASE(cross_entropy_matches_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(11);
  const int64_t n = random_size(gen, 1, 64), k = random_size(gen, 3, 120);
  std::vector<uint8_t> mask(static_cast<size_t>(k), 0);
  std::vector<int64_t> allowed;
  for (int64_t j = 0; j < k; ++j)
    if (j % 3 != 1) mask[static_cast<size_t>(j)] = 1, allowed.push_back(j);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t& label : labels) label = allowed[gen.below(allowed.size())];
  check_op("cross_entropy", [&](const auto& x) { return cross_entropy(x[0], labels); },
           {grad_tensor({n, k}, gen, -5, 5)});
  check_op("cross_entropy masked", [&](const auto& x) { return cross_entropy(x[0], labels, mask); },
           {grad_tensor({n, k}, gen, -5, 5)});
  const Tensor logits = random_tensor({n, k}, gen);
  BOOST_TEST(masked_argmax(logits.to(Device::cuda), mask) == masked_argmax(logits, mask));
}

BOOST_AUTO_TEST_CASE(optimisers_match_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(12);
  const Shape shape = {random_size(gen, 1, 30), random_size(gen, 1, 30)};
  using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;
  const std::vector<std::pair<std::string, MakeOptimizer>> optimisers = {
      {"SGD", [](auto p) { return std::make_unique<SGD>(p, 0.1, 0.9, 0.0, 1e-3, true); }},
      {"Adam", [](auto p) { return std::make_unique<Adam>(p, 1e-2, 0.9, 0.999, 1e-8, 1e-3); }},
      {"AdamW", [](auto p) { return std::make_unique<AdamW>(p, 1e-2, 0.9, 0.999, 1e-8, 1e-2); }},
  };
  for (const auto& [name, make] : optimisers) {
    Tensor cpu_param = grad_tensor(shape, gen);
    Tensor gpu_param = on_cuda(cpu_param);
    auto cpu_optimizer = make({cpu_param});
    auto gpu_optimizer = make({gpu_param});
    for (int step = 0; step < 3; ++step) {
      const Tensor target = random_tensor(shape, gen);
      for (auto [param, optimizer] : {std::pair{cpu_param, cpu_optimizer.get()},
                                      std::pair{gpu_param, gpu_optimizer.get()}}) {
        optimizer->zero_grad();
        const Tensor t = param.device() == Device::cuda ? target.to(Device::cuda) : target;
        sum(mul(param, t)).backward();
        optimizer->step();
      }
    }
    check_close(name + " after 3 steps", gpu_param, cpu_param);
  }
}

namespace {

// x (N,3,12,12) -> conv 3x3 pad 1 (8) -> batch norm -> relu -> max pool 2
// -> (N,288) -> linear (10). The conv has no bias: batch norm subtracts it
// again, so its gradient is 0 up to rounding, and Adam, which divides by the
// gradient's size, would turn the two devices' different rounding noise into
// different full-size steps.
struct SmallCnn {
  Tensor conv_weight, gamma, beta, running_mean, running_var, fc_weight, fc_bias;

  std::vector<Tensor> parameters() const { return {conv_weight, gamma, beta, fc_weight, fc_bias}; }

  Tensor forward(const Tensor& x) {
    Conv2dOptions conv;
    conv.pad_h = conv.pad_w = 1;
    Tensor h = conv2d(x, conv_weight, Tensor(), conv);
    h = relu(batch_norm2d(h, gamma, beta, running_mean, running_var, true));
    h = max_pool2d(h, Pool2dOptions{});
    return linear(flatten(h, 1), fc_weight, fc_bias);
  }

  // A copy on the GPU whose parameters are fresh leaves.
  SmallCnn on_gpu() const {
    SmallCnn copy;
    copy.conv_weight = on_cuda(conv_weight);
    copy.gamma = on_cuda(gamma), copy.beta = on_cuda(beta);
    copy.running_mean = running_mean.to(Device::cuda), copy.running_var = running_var.to(Device::cuda);
    copy.fc_weight = on_cuda(fc_weight), copy.fc_bias = on_cuda(fc_bias);
    return copy;
  }
};

SmallCnn make_small_cnn(Generator& gen) {
  SmallCnn model;
  model.conv_weight = Tensor::empty({8, 3, 3, 3});
  model.fc_weight = Tensor::empty({10, 8 * 6 * 6});
  model.fc_bias = Tensor::empty({10});
  kaiming_uniform_(model.conv_weight, std::sqrt(5.0), gen);
  kaiming_uniform_(model.fc_weight, std::sqrt(5.0), gen);
  bias_uniform_(model.fc_bias, fan_in(model.fc_weight), gen);
  model.gamma = Tensor::full({8}, 1.0);
  model.beta = Tensor::zeros({8});
  model.running_mean = Tensor::zeros({8});
  model.running_var = Tensor::full({8}, 1.0);
  for (Tensor* p : {&model.conv_weight, &model.gamma, &model.beta, &model.fc_weight, &model.fc_bias})
    p->set_requires_grad();
  return model;
}

}  // namespace

BOOST_AUTO_TEST_CASE(cnn_training_step_matches_cpu, *boost::unit_test::precondition(gpu_usable)) {
  Generator gen(13);
  SmallCnn cpu_model = make_small_cnn(gen);
  SmallCnn gpu_model = cpu_model.on_gpu();
  const Tensor images = random_tensor({16, 3, 12, 12}, gen);
  std::vector<int64_t> labels(16);
  for (int64_t& label : labels) label = static_cast<int64_t>(gen.below(10));

  Adam cpu_adam(cpu_model.parameters(), 1e-2);
  Adam gpu_adam(gpu_model.parameters(), 1e-2);
  const Tensor cpu_loss = cross_entropy(cpu_model.forward(images), labels);
  const Tensor gpu_loss = cross_entropy(gpu_model.forward(images.to(Device::cuda)), labels);
  check_close("loss", gpu_loss, cpu_loss);
  cpu_loss.backward();
  gpu_loss.backward();
  const std::vector<Tensor> cpu_params = cpu_model.parameters(), gpu_params = gpu_model.parameters();
  for (size_t i = 0; i < cpu_params.size(); ++i)
    check_close("gradient of parameter " + std::to_string(i), gpu_params[i].grad(), cpu_params[i].grad());
  const std::vector<float> fc_weight_before = cpu_model.fc_weight.to_float_vector();
  cpu_adam.step();
  gpu_adam.step();
  for (size_t i = 0; i < cpu_params.size(); ++i)
    check_close("parameter " + std::to_string(i) + " after the step", gpu_params[i], cpu_params[i]);
  check_close("running mean", gpu_model.running_mean, cpu_model.running_mean);
  check_close("running var", gpu_model.running_var, cpu_model.running_var);
  // The step moved the parameters (a no-op update would pass the checks above).
  BOOST_TEST(cpu_model.fc_weight.to_float_vector() != fc_weight_before);
}
