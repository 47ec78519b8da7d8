// Seconds of CPU time of one training step (forward, cross-entropy, backward,
// Adam 1e-3) of a layers-built network on random 32x32x3 images, 10 classes:
// the fastest of STEPS steps, timed by this thread's CPU clock, so that time
// spent descheduled on a shared machine does not count (run it with
// OMP_NUM_THREADS=1: other threads' time is not on this clock). With more
// OpenMP threads it times the step by the wall clock instead (the fastest
// step is then the one least disturbed by the machine's other work). The step is
// bench's model step (experiments/bench.cpp); scripts/step-cpu-time.sh builds
// this file against a build directory, so two commits can be compared. ARCH
// conv:C:S times one 3x3, padding-1 conv layer C -> C on SxS maps instead:
// forward and backward (weight, bias and input gradients, zeroed first) from
// the loss sum(y * dy) for a fixed random dy, through ops every commit has.
// ARCH dw:C:S times that layer's weight gradient alone, as conv2d sums it for
// maps of more than 16 positions: the CPU backend's gemm_batched_sum of
// dy_n cols_n^T over each chunk of images (as many as the backend's budget of
// cols elements holds), on random operands.
//
//   step_cpu_time ARCH [STEPS] [BATCH]      e.g. step_cpu_time sena32 10 64
//                                                step_cpu_time conv:512:2 10
//                                                step_cpu_time dw:32:28 100
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/init.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "layers/models.h"

namespace {

double seconds_on(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s ARCH|conv:C:S [STEPS=10] [BATCH=64]\n", argv[0]);
    return 2;
  }
  const std::string arch = argv[1];
  const int steps = argc > 2 ? std::atoi(argv[2]) : 10;
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 64;
  if (steps < 1 || batch < 1) {
    std::fprintf(stderr, "%s: STEPS and BATCH must be positive integers\n", argv[0]);
    return 2;
  }
  engine::Generator gen(4);
  const auto random = [&](const engine::Shape& shape) {
    engine::Tensor t = engine::Tensor::empty(shape);
    engine::uniform_(t, -1, 1, gen);
    return t;
  };
  std::function<void()> step;
  const bool weight_gradient = arch.rfind("dw:", 0) == 0;
  const bool conv_layer = arch.rfind("conv:", 0) == 0;
  long long c = 0, size = 0;  // of conv:C:S and dw:C:S
  if (weight_gradient || conv_layer) {
    char tail = 0;
    if (std::sscanf(arch.c_str() + (weight_gradient ? 3 : 5), "%lld:%lld%c", &c, &size, &tail) != 2 ||
        c < 1 || size < 1) {
      std::fprintf(stderr, "%s: ARCH conv:C:S or dw:C:S needs positive channels C and map size S, not %s\n",
                   argv[0], arch.c_str());
      return 2;
    }
  }
  if (weight_gradient) {
    const int64_t patch = 9 * c, positions = size * size;
    const int64_t chunk = std::clamp<int64_t>(
        engine::backend(engine::Device::cpu).conv_chunk_elements() / (patch * positions), 1, batch);
    const engine::Tensor dy = random({batch, c, positions}), cols = random({batch, patch, positions});
    engine::Tensor dw = engine::Tensor::zeros({c, patch});
    step = [=]() mutable {
      const engine::Kernels<float>& kern = engine::backend(engine::Device::cpu).f32();
      for (int64_t first = 0; first < batch; first += chunk)
        kern.gemm_batched_sum(false, true, c, patch, positions, 1.0f,
                              dy.data<float>() + first * c * positions, c * positions,
                              cols.data<float>() + first * patch * positions, patch * positions,
                              dw.data<float>(), std::min(chunk, batch - first));
    };
  } else if (conv_layer) {
    engine::Tensor x = random({batch, c, size, size}).set_requires_grad();
    engine::Tensor w = random({c, c, 3, 3}).set_requires_grad();
    engine::Tensor b = random({c}).set_requires_grad();
    const engine::Tensor dy = random({batch, c, size, size});
    step = [=]() mutable {
      for (engine::Tensor* t : {&x, &w, &b}) t->zero_grad();
      engine::sum(engine::mul(engine::conv2d(x, w, b, engine::Conv2dOptions{1, 1, 1, 1}), dy)).backward();
    };
  } else {
    auto model = layers::make_model(arch, layers::InputShape{32, 32, 3}, 10, layers::ModelInit{4, true});
    model->train(true);
    auto optimizer = std::make_shared<engine::Adam>(model->trainable_parameters(), 1e-3);
    const engine::Tensor x = random({batch, 3, 32, 32});
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    for (int64_t& label : labels) label = static_cast<int64_t>(gen.below(10));
    step = [=] {
      optimizer->zero_grad();
      engine::cross_entropy(model->forward(x), labels).backward();
      optimizer->step();
    };
  }
  const int threads = omp_get_max_threads();
  const clockid_t clock = threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
  double best = 1e300;
  for (int s = 0; s < steps; ++s) {
    const double start = seconds_on(clock);
    step();
    best = std::min(best, seconds_on(clock) - start);
  }
  if (threads == 1)
    std::printf("%s batch %lld: %.1f ms of CPU per step (fastest of %d)\n", arch.c_str(),
                static_cast<long long>(batch), best * 1e3, steps);
  else
    std::printf("%s batch %lld: %.1f ms of wall time per step on %d threads (fastest of %d)\n",
                arch.c_str(), static_cast<long long>(batch), best * 1e3, threads, steps);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
  return 1;
}
