// Seconds of CPU time of one training step (forward, cross-entropy, backward,
// Adam 1e-3) of a layers-built network on random 32x32x3 images, 10 classes:
// the fastest of STEPS steps, timed by this thread's CPU clock, so that time
// spent descheduled on a shared machine does not count (run it with
// OMP_NUM_THREADS=1: other threads' time is not on this clock). The step is
// bench's model step (experiments/bench.cpp); scripts/step-cpu-time.sh builds
// this file against a build directory, so two commits can be compared. ARCH
// conv:C:S times one 3x3, padding-1 conv layer C -> C on SxS maps instead:
// forward and backward (weight, bias and input gradients, zeroed first) from
// the loss sum(y * dy) for a fixed random dy, through ops every commit has.
//
//   step_cpu_time ARCH [STEPS] [BATCH]      e.g. step_cpu_time sena32 10 64
//                                                step_cpu_time conv:512:2 10
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/init.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "layers/models.h"

namespace {

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
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
  if (arch.rfind("conv:", 0) == 0) {
    long long c = 0, size = 0;
    char tail = 0;
    if (std::sscanf(arch.c_str(), "conv:%lld:%lld%c", &c, &size, &tail) != 2 || c < 1 || size < 1) {
      std::fprintf(stderr, "%s: ARCH conv:C:S needs positive channels C and map size S, not %s\n", argv[0],
                   arch.c_str());
      return 2;
    }
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
  double best = 1e300;
  for (int s = 0; s < steps; ++s) {
    const double start = thread_cpu_seconds();
    step();
    best = std::min(best, thread_cpu_seconds() - start);
  }
  std::printf("%s batch %lld: %.1f ms of CPU per step (fastest of %d)\n", arch.c_str(),
              static_cast<long long>(batch), best * 1e3, steps);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
  return 1;
}
