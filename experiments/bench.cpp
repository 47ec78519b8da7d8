// bench: how fast the engine runs on this machine.
//   1. SGEMM GFLOP/s on 2048x2048 (and TFLOP/s at 4096 on CUDA): the ceiling.
//   2. conv2d forward + backward GFLOP/s on VGG-sized layers (batch 64, 3x3,
//      padding 1), and as a fraction of the SGEMM figure.
//   3. Training-step throughput (images/s, batch 64, Adam) of a small CNN on
//      32x32x3 input, built directly from engine ops.
// With --models, also the training step of layers-built sena32 and vgg19_bn,
// with its peak resident memory (Linux's VmHWM, experiments/continual/peak_memory.h).
// With --compare-torch, each network's training step (batch 64, Adam; the VGGs
// only with --models) is timed alternately with PyTorch's (scripts/torch_bench.py,
// experiments/torch_peer.h) and the median of the pairs' ratios is reported,
// with both processes' peak resident memory of one step and PyTorch's after
// its import; without torch these are null and bench says why. Always: the cost of a
// ConvLoRA-adapted conv layer's forward and backward relative to the plain
// layer's, timed alternately too.
// With --data-parallel, only 3., as one of the ranks of an mpirun launch: each
// of the P ranks takes 64/P images of the batch and gradients are averaged
// (engine/distributed.h) before each step; rank 0 prints the figure.
// Every figure is the best of a few repetitions; on CUDA the device is
// synchronised before each timer is read.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/distributed.h"
#include "engine/init.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/random.h"
#include "experiments/common/cli.h"
#include "experiments/common/device.h"
#include "experiments/common/tool.h"
#include "experiments/continual/peak_memory.h"
#include "experiments/torch_peer.h"
#include "layers/adapters.h"
#include "layers/models.h"

using namespace engine;
using nlohmann::json;

namespace {

// Seconds of the fastest of `reps` runs of f, after one untimed warm-up run.
double best_seconds(Device device, int reps, const std::function<void()>& f) {
  const Backend& be = backend(device);
  f();
  be.synchronize();
  double best = INFINITY;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    be.synchronize();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

Tensor random_tensor(const Shape& shape, Generator& gen, Device device) {
  Tensor t = Tensor::empty(shape);
  uniform_(t, -1.0, 1.0, gen);
  return t.to(device);
}

// GFLOP/s of C (n,n) = A (n,n) B (n,n) in float32.
double sgemm_gflops(Device device, int64_t n, int reps) {
  Generator gen(1);
  const Tensor a = random_tensor({n, n}, gen, device), b = random_tensor({n, n}, gen, device);
  Tensor c = Tensor::empty({n, n}, DType::f32, device);
  const Kernels<float>& kern = backend(device).kernels<float>();
  const double seconds = best_seconds(device, reps, [&] {
    kern.gemm(false, false, n, n, n, 1.0f, a.data<float>(), b.data<float>(), 0.0f, c.data<float>());
  });
  return 2.0 * static_cast<double>(n * n * n) / seconds / 1e9;
}

struct ConvLayer {
  std::string name;
  int64_t in_channels, out_channels, size;  // C, OC, H = W
  bool input_grad = true;  // false for a network's first layer: its input is data
};

struct ConvResult {
  double forward_s, backward_s, gflops;
};

// conv2d 3x3, padding 1, C -> OC channels on (batch, C, size, size), with
// weight and bias (and x, with input_grad) requiring grad. Backward runs the
// op's own backward function on a fixed dy, so the timings hold the
// convolution alone. Flops: forward 2*N*OC*C*KH*KW*OH*OW, backward that for
// dW and again for dx.
ConvResult bench_conv(Device device, const ConvLayer& layer, int64_t batch, int reps) {
  Generator gen(2);
  const int64_t c = layer.in_channels, oc = layer.out_channels, s = layer.size;
  Tensor x = random_tensor({batch, c, s, s}, gen, device).set_requires_grad(layer.input_grad);
  Tensor w = random_tensor({oc, c, 3, 3}, gen, device).set_requires_grad();
  Tensor b = random_tensor({oc}, gen, device).set_requires_grad();
  const Tensor dy = random_tensor({batch, oc, s, s}, gen, device);
  const Conv2dOptions pad1{1, 1, 1, 1};
  Tensor y;
  const double forward_s = best_seconds(device, reps, [&] { y = conv2d(x, w, b, pad1); });
  const double backward_s = best_seconds(device, reps, [&] { y.impl()->grad_fn->backward(dy); });
  const double forward_flops = 2.0 * static_cast<double>(batch * oc * c * 9 * s * s);
  const double passes = layer.input_grad ? 3 : 2;
  return {forward_s, backward_s, passes * forward_flops / (forward_s + backward_s) / 1e9};
}

// The small CNN of the benchmark, on (N,3,32,32):
// conv3x3(3->32) relu conv3x3(32->32) relu maxpool(3, stride 2) conv3x3(32->64) relu
// conv3x3(64->64) relu flatten linear(5184->512) linear(512->10); no padding:
// 32 -> 30 -> 28 -> 13 -> 11 -> 9, and 64*9*9 = 5184.
struct SmallCnn {
  std::vector<Tensor> params;  // w1 b1 w2 b2 w3 b3 w4 b4 fc1_w fc1_b fc2_w fc2_b

  SmallCnn(Device device, Generator& gen) {
    const std::vector<Shape> weights = {{32, 3, 3, 3}, {32, 32, 3, 3}, {64, 32, 3, 3},
                                        {64, 64, 3, 3}, {512, 5184},    {10, 512}};
    for (const Shape& shape : weights) {
      Tensor w = Tensor::empty(shape), b = Tensor::empty({shape[0]});
      kaiming_uniform_(w, std::sqrt(5.0), gen);
      bias_uniform_(b, fan_in(w), gen);
      params.push_back(w.to(device).set_requires_grad());
      params.push_back(b.to(device).set_requires_grad());
    }
  }

  Tensor forward(const Tensor& x) const {
    const Tensor* p = params.data();
    Tensor h = relu(conv2d(x, p[0], p[1]));
    h = relu(conv2d(h, p[2], p[3]));
    h = max_pool2d(h, {3, 3, 2, 2, 0, 0});
    h = relu(conv2d(h, p[4], p[5]));
    h = relu(conv2d(h, p[6], p[7]));
    h = linear(flatten(h), p[8], p[9]);
    return linear(h, p[10], p[11]);
  }
};

// The small CNN's training step: forward, cross-entropy, backward, gradient
// averaging over the ranks of `comm` (each taking batch / size images) and an
// Adam step. The closure owns its model, optimiser and data.
std::function<void()> small_cnn_step(Device device, int64_t batch, Communicator& comm) {
  Generator gen(3);
  auto model = std::make_shared<SmallCnn>(device, gen);
  auto optimizer = std::make_shared<Adam>(model->params, 1e-3);
  const int64_t rank_batch = batch / comm.size();
  const Tensor x = random_tensor({rank_batch, 3, 32, 32}, gen, device);
  std::vector<int64_t> labels(static_cast<size_t>(rank_batch));
  for (int64_t& label : labels) label = static_cast<int64_t>(gen.below(10));
  return [model, optimizer, x, labels, &comm] {
    optimizer->zero_grad();
    cross_entropy(model->forward(x), labels).backward();
    average_gradients(comm, model->params);
    optimizer->step();
  };
}

// Images per second of small_cnn_step.
double train_images_per_s(Device device, int64_t batch, int reps, Communicator& comm) {
  return static_cast<double>(batch) / best_seconds(device, reps, small_cnn_step(device, batch, comm));
}

// Peak resident set (MiB) of the whole process during one run of `step`:
// Linux's VmHWM, reset just before it, so earlier peaks do not count, and
// after malloc has given back what earlier benchmarks freed, so that their
// leftovers do not count either. What does: the binary and its libraries
// (start_rss_mib), the other live objects, and the step's model, optimiser
// state, data and activations. nullopt where the peak cannot be reset or read.
std::optional<double> step_peak_rss_mib(const std::function<void()>& step) {
  continual::release_freed_memory();
  const bool reset = continual::reset_peak_memory();
  step();
  const int64_t bytes = continual::peak_memory_bytes();
  if (!reset || bytes == 0) return std::nullopt;
  return static_cast<double>(bytes) / (1 << 20);
}

// Our resident set before main: the binary and the libraries it loads
// (OpenBLAS, MPI, CUDA's where built with it), beside PyTorch's after import.
const std::optional<double> start_rss_mib = [] {
  const int64_t bytes = continual::resident_memory_bytes();
  return bytes ? std::optional<double>(static_cast<double>(bytes) / (1 << 20)) : std::nullopt;
}();

json mib_or_null(std::optional<double> mib) { return mib ? json(*mib) : json(nullptr); }

std::string mib_text(std::optional<double> mib) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f MiB", mib.value_or(0));
  return mib ? text : "unknown";
}

struct ModelStep {
  double images_per_s = 0;
  std::optional<double> peak_rss_mib;  // of one step after the timed ones
};

// A full training step (forward, cross-entropy, backward, Adam) of a model
// built by the layers library, e.g. "vgg19_bn_compact", on (batch,3,32,32).
std::function<void()> model_step(Device device, const std::string& arch, int64_t batch) {
  Generator gen(4);
  std::shared_ptr<layers::Sequential> model =
      layers::make_model(arch, layers::InputShape{32, 32, 3}, 10, layers::ModelInit{4, true});
  model->to(device);
  model->train(true);
  auto optimizer = std::make_shared<Adam>(model->trainable_parameters(), 1e-3);
  const Tensor x = random_tensor({batch, 3, 32, 32}, gen, device);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t& label : labels) label = static_cast<int64_t>(gen.below(10));
  return [model, optimizer, x, labels] {
    optimizer->zero_grad();
    cross_entropy(model->forward(x), labels).backward();
    optimizer->step();
  };
}

// Images per second and peak memory of model_step.
ModelStep model_train_step(Device device, const std::string& arch, int64_t batch, int reps) {
  const std::function<void()> step = model_step(device, arch, batch);
  ModelStep result;
  result.images_per_s = static_cast<double>(batch) / best_seconds(device, reps, step);
  result.peak_rss_mib = step_peak_rss_mib(step);
  return result;
}

// Seconds of the fastest of `reps` runs of f, with no warm-up: for the pairs
// below, whose first run has warmed up f.
double fastest_seconds(Device device, int reps, const std::function<void()>& f) {
  double best = INFINITY;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    backend(device).synchronize();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Two steps timed alternately, `pairs` times (each the fastest of `reps`
// runs): the machine's load then weighs on both alike. `ratio` is the median
// over pairs of other's seconds over ours (> 1: ours is faster).
struct PairedTiming {
  double ours_s, other_s, ratio;
};
PairedTiming time_alternately(Device device, int pairs, int reps, const std::function<void()>& ours,
                              const std::function<double()>& other) {
  std::vector<double> ours_s, other_s, ratios;
  ours();  // warm-up
  for (int i = 0; i < pairs; ++i) {
    ours_s.push_back(fastest_seconds(device, reps, ours));
    other_s.push_back(other());
    ratios.push_back(other_s.back() / ours_s.back());
  }
  return {median(ours_s), median(other_s), median(ratios)};
}

// A 3x3, padding-1 conv layer's forward and backward on a fixed dy, with its
// weight and bias trained (plain, as bench_conv) or frozen under a ConvLoRA
// adapter of rank 4 (adapted, as the lora method trains a later task and as
// layers::Conv2d::forward composes it: conv2d(x, W + s * reshape(B A), b)).
// Both run one backward from y with dy (Tensor::backward(gradient)), which
// walks through the convolution and, adapted, on into A and B, as a network's;
// each step first zeroes the gradients it will accumulate, as a training step.
std::function<void()> conv_layer_step(Device device, const ConvLayer& layer, int64_t batch, bool adapted) {
  Generator gen(5);
  const int64_t c = layer.in_channels, oc = layer.out_channels, s = layer.size;
  Tensor x = random_tensor({batch, c, s, s}, gen, device).set_requires_grad(layer.input_grad);
  Tensor w = random_tensor({oc, c, 3, 3}, gen, device).set_requires_grad(!adapted);
  Tensor b = random_tensor({oc}, gen, device).set_requires_grad(!adapted);
  const Tensor dy = random_tensor({batch, oc, s, s}, gen, device);
  const Conv2dOptions pad1{1, 1, 1, 1};
  if (!adapted)
    return [=]() mutable {
      for (Tensor* t : {&x, &w, &b}) t->zero_grad();
      conv2d(x, w, b, pad1).backward(dy);
    };
  auto adapter = std::make_shared<layers::ConvLoRA>(c, oc, 3, 4, 1.0, &gen);
  adapter->to(device);
  return [=]() mutable {
    x.zero_grad();
    for (Tensor& t : adapter->parameters()) t.zero_grad();
    conv2d(x, adapter->forward(w), b, pad1).backward(dy);
  };
}

// --data-parallel: the training figure alone, printed by rank 0.
int bench_data_parallel(Device device, int64_t batch, int reps, bool as_json) {
  const std::unique_ptr<Communicator> comm = make_communicator(device);
  if (batch % comm->size() != 0)
    throw std::invalid_argument("--data-parallel: " + std::to_string(comm->size()) +
                                " ranks do not divide the batch of " + std::to_string(batch));
  const double images_per_s = train_images_per_s(device, batch, reps, *comm);
  if (comm->rank() != 0) return 0;
  json out = {{"device", backend(device).name()}, {"tf32", backend(device).tf32()}, {"threads_per_rank", num_threads()},
              {"communicator", comm->name()}, {"ranks", comm->size()},
              {"sena32_train_batch", batch}, {"sena32_train_images_per_s", images_per_s}};
  if (as_json)
    std::cout << out.dump(2) << "\n";
  else
    std::printf("small CNN training step (batch %lld = %d ranks x %lld, %d threads each, Adam): "
                "%.0f images/s (%.1f ms/step)\n",
                static_cast<long long>(batch), comm->size(),
                static_cast<long long>(batch / comm->size()), num_threads(), images_per_s,
                batch / images_per_s * 1e3);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measure SGEMM, conv2d and small-CNN training throughput of the engine."};
  experiments::add_standard_options(app, "bench", "bench --threads 2 --device cpu --json");
  bool as_json = false, quick = false, data_parallel = false, models = false, compare_torch = false, tf32 = false;
  std::string python = "python3", torch_script = "scripts/torch_bench.py";
  int threads = 0;
  std::string device_name = "cpu";
  app.add_flag("--json", as_json, "print one JSON object instead of text");
  app.add_flag("--quick", quick, "fewer repetitions (a smoke test)");
  app.add_flag("--data-parallel", data_parallel,
               "only the training step, split across the ranks of an mpirun launch (1 rank without)");
  app.add_flag("--models", models,
               "also train layers-built sena32 and vgg19_bn_compact (no avgpool) at 32x32, batch 128 (on by default "
               "with --device cuda)");
  app.add_flag("--compare-torch", compare_torch,
               "time PyTorch's training steps (small CNN, sena32; with --models also vgg19_bn and "
               "vgg19_bn_compact; batch 64, Adam) alternately with ours, 3 pairs, and report the median speed "
               "ratio and each process's peak RSS of one step (null without torch)");
  app.add_option("--python", python, "the Python interpreter for --compare-torch")->capture_default_str();
  app.add_option("--torch-script", torch_script, "scripts/torch_bench.py, for --compare-torch")
      ->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0 = all cores)")
      ->check(CLI::Range(int64_t{0}, tool::kMaxThreads))->capture_default_str();
  app.add_option("--device", device_name, "cpu, cuda (the first GPU) or cuda:N (GPU N)")->capture_default_str();
  app.add_flag("--tf32", tf32, "with --device cuda or cuda:N: float32 GEMMs on TF32 tensor cores (less exact)");
  return tool::run_main("bench", app, argc, argv, [&] {
  const Device device = experiments::use_device(device_name, tf32);
  try {
    set_num_threads(threads);
    const int reps = quick ? 2 : 5;
    const int64_t batch = 64;
    if (data_parallel) return bench_data_parallel(device, batch, quick ? 3 : 10, as_json);
    json out;
    out["device"] = backend(device).name();
    out["tf32"] = backend(device).tf32();
    out["threads"] = num_threads();
    // libgomp's default wait policy spins between parallel regions, which
    // starves OpenBLAS's own threads when both share few cores: say which ran.
    const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
    out["omp_wait_policy"] = wait_policy ? wait_policy : "default";
    out["quick"] = quick;
    const double sgemm = sgemm_gflops(device, 2048, reps);
    out["sgemm_gflops"] = sgemm;
    if (device == Device::cuda) out["sgemm_4096_tflops"] = sgemm_gflops(device, 4096, reps) / 1e3;
    if (!as_json) {
      std::printf("device: %s%s, OMP_WAIT_POLICY %s\n", out["device"].get<std::string>().c_str(),
                  tf32 ? ", TF32" : "", out["omp_wait_policy"].get<std::string>().c_str());
      std::printf("SGEMM 2048x2048: %.1f GFLOP/s\n", sgemm);
      if (out.contains("sgemm_4096_tflops"))
        std::printf("SGEMM 4096x4096: %.2f TFLOP/s\n", out["sgemm_4096_tflops"].get<double>());
      std::printf("conv2d 3x3 pad 1, batch %lld, forward+backward (x, weight, bias grads; a first "
                  "layer's x, being data, none):\n",
                  static_cast<long long>(batch));
      std::fflush(stdout);
    }

    // The first layers of sena32 / the small CNN and of VGG, then VGG's inner
    // sizes at 32x32, down to its last two blocks (4x4 and 2x2 maps, whose
    // chunks engine/ops/conv2d.cpp puts side by side).
    const std::vector<ConvLayer> layers = {{"first 3->32 at 32x32", 3, 32, 32, false},
                                           {"first 3->64 at 32x32", 3, 64, 32, false},
                                           {"64->64 at 32x32", 64, 64, 32},
                                           {"128->128 at 16x16", 128, 128, 16},
                                           {"256->256 at 8x8", 256, 256, 8},
                                           {"512->512 at 4x4", 512, 512, 4},
                                           {"512->512 at 2x2", 512, 512, 2}};
    out["conv"] = json::array();
    for (const ConvLayer& layer : layers) {
      const ConvResult r = bench_conv(device, layer, batch, reps);
      out["conv"].push_back({{"name", layer.name},
                             {"gflops", r.gflops},
                             {"fraction_of_sgemm", r.gflops / sgemm},
                             {"forward_ms", r.forward_s * 1e3},
                             {"backward_ms", r.backward_s * 1e3}});
      if (!as_json) {
        std::printf("  %-20s %7.1f GFLOP/s = %.2f of SGEMM (forward %.1f ms, backward %.1f ms)\n",
                    layer.name.c_str(), r.gflops, r.gflops / sgemm, r.forward_s * 1e3,
                    r.backward_s * 1e3);
        std::fflush(stdout);
      }
    }

    const double images_per_s =
        train_images_per_s(device, batch, quick ? 3 : 10, *make_single_process_communicator());
    out["sena32_train_batch"] = batch;
    out["sena32_train_images_per_s"] = images_per_s;
    if (!as_json)
      std::printf("small CNN training step (batch %lld, Adam): %.0f images/s (%.1f ms/step)\n",
                  static_cast<long long>(batch), images_per_s, batch / images_per_s * 1e3);
    if (models || device == Device::cuda) {
      const int64_t model_batch = 128;
      out["models_train_batch"] = model_batch;
      for (const std::string arch : {"sena32", "vgg19_bn_compact"}) {
        const ModelStep r = model_train_step(device, arch, model_batch, quick ? 2 : 5);
        out["models_train_images_per_s"][arch] = r.images_per_s;
        out["models_train_step_peak_rss_mib"][arch] = mib_or_null(r.peak_rss_mib);
        if (!as_json) {
          std::printf("%s training step (32x32x3, batch %lld, Adam): %.0f images/s, "
                      "peak RSS %s\n",
                      arch.c_str(), static_cast<long long>(model_batch), r.images_per_s,
                      mib_text(r.peak_rss_mib).c_str());
          std::fflush(stdout);
        }
      }
    }
    const int pairs = quick ? 1 : 3;
    // An adapted layer's forward + backward over the plain layer's.
    out["lora_conv_cost"] = json::array();
    if (!as_json) std::printf("ConvLoRA (rank 4) adapted conv layer, forward+backward over the plain layer's "
                              "(median of %d alternating pairs):\n", pairs);
    for (const ConvLayer& layer : layers) {
      const std::function<void()> plain = conv_layer_step(device, layer, batch, false);
      const std::function<void()> adapted = conv_layer_step(device, layer, batch, true);
      plain();  // warm-up
      const PairedTiming t = time_alternately(device, pairs, reps, adapted,
                                              [&] { return fastest_seconds(device, reps, plain); });
      // t.ratio is plain over adapted: its inverse is the adapter's cost.
      out["lora_conv_cost"].push_back({{"name", layer.name}, {"plain_ms", t.other_s * 1e3},
                                       {"adapted_ms", t.ours_s * 1e3}, {"adapted_over_plain", 1 / t.ratio}});
      if (!as_json) {
        std::printf("  %-20s %.2fx (plain %.1f ms, adapted %.1f ms)\n", layer.name.c_str(), 1 / t.ratio,
                    t.other_s * 1e3, t.ours_s * 1e3);
        std::fflush(stdout);
      }
    }

    if (compare_torch) {
      std::string why_not;
      std::optional<experiments::TorchPeer> torch =
          experiments::TorchPeer::start(python, torch_script, num_threads(), why_not);
      out["torch"] = torch ? json(torch->version()) : json(nullptr);
      // The peer's resident set after importing torch, before any network:
      // what its peaks hold besides the training step.
      const std::optional<double> torch_baseline = torch ? torch->baseline_rss_mib() : std::nullopt;
      out["torch_baseline_rss_mib"] = mib_or_null(torch_baseline);
      out["ours_baseline_rss_mib"] = mib_or_null(start_rss_mib);
      if (!torch) {
        out["torch_unavailable"] = why_not;
        std::cerr << "bench: --compare-torch: PyTorch is not available (" << why_not << "): no ratios\n";
      } else if (!as_json) {
        std::printf("against %s, batch 64, Adam, median of %d alternating pairs (ratio > 1: ours faster); "
                    "peak RSS of one step, each process whole (ours %s before main):\n",
                    torch->version().c_str(), pairs, mib_text(start_rss_mib).c_str());
        std::fflush(stdout);
      }
      const int64_t compare_batch = 64;
      const std::unique_ptr<Communicator> one_process = make_single_process_communicator();
      std::vector<std::string> networks = {"small_cnn", "sena32"};
      if (models) networks.insert(networks.end(), {"vgg19_bn", "vgg19_bn_compact"});
      for (const std::string& network : networks) {
        json& entry = out["torch_ratio"][network];
        if (!torch) {
          entry = out["torch_peak_rss_mib"][network] = out["ours_peak_rss_mib"][network] = nullptr;
          continue;
        }
        const int step_reps = network.rfind("vgg", 0) == 0 ? 2 : reps;
        const std::function<void()> ours =
            network == "small_cnn" ? small_cnn_step(device, compare_batch, *one_process)
                                   : model_step(device, network, compare_batch);
        std::optional<double> torch_peak;  // the last pair's
        const PairedTiming t = time_alternately(device, pairs, step_reps, ours, [&] {
          const experiments::TorchPeer::Step step = torch->step(network, compare_batch, step_reps);
          torch_peak = step.peak_rss_mib;
          return step.seconds;
        });
        // Ours as the peer measures its own: one more step after the timed ones.
        const std::optional<double> ours_peak = step_peak_rss_mib(ours);
        entry = t.ratio;
        out["torch_images_per_s"][network] = {{"ours", compare_batch / t.ours_s},
                                              {"torch", compare_batch / t.other_s}};
        out["torch_peak_rss_mib"][network] = mib_or_null(torch_peak);
        out["ours_peak_rss_mib"][network] = mib_or_null(ours_peak);
        if (!as_json) {
          std::string above;
          if (torch_peak && torch_baseline)
            above = " (baseline after import " + mib_text(torch_baseline) + ", so " +
                    mib_text(*torch_peak - *torch_baseline) + " above it)";
          std::printf("  %-18s %.2fx (ours %.0f images/s, torch %.0f); peak RSS ours %s, torch %s%s\n",
                      network.c_str(), t.ratio, compare_batch / t.ours_s, compare_batch / t.other_s,
                      mib_text(ours_peak).c_str(), mib_text(torch_peak).c_str(), above.c_str());
          std::fflush(stdout);
        }
      }
    }
    if (as_json) std::cout << out.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
  });
}
