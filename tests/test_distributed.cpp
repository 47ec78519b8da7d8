// Data-parallel training (engine/distributed.h). meson test runs this program
// as two MPI ranks (mpirun -np 2, one thread each) where the build has MPI;
// alone, the two-rank cases report themselves skipped. Every rank runs every
// case, and so every collective, in the same order.
//   - the single-process communicator changes nothing;
//   - allreduce_mean and broadcast give known values for f32 and f64 tensors,
//     and mismatched tensor lists throw on every rank;
//   - a few SGD and Adam steps of a small CNN, each rank taking half of the
//     global batch, give the losses and parameters of one process on the whole
//     batch (float32 reduction-order tolerance), and identical parameters on
//     both ranks;
//   - a parameter perturbed by one ulp on one rank is detected and named;
//   - on a GPU machine, NCCL averages CUDA tensors (skipped elsewhere).
#define BOOST_TEST_MODULE distributed
#define BOOST_TEST_NO_MAIN
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "engine/backend.h"
#include "engine/distributed.h"
#include "engine/init.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "engine/random.h"

using namespace engine;
namespace tt = boost::test_tools;

namespace {

// The communicator of this run: MPI under mpirun, else a single process.
Communicator& world() {
  static const std::unique_ptr<Communicator> communicator = make_communicator(Device::cpu);
  return *communicator;
}

tt::assertion_result two_ranks(boost::unit_test::test_unit_id) {
  tt::assertion_result result(world().size() == 2);
  result.message() << "needs 2 MPI ranks, has " << world().size() << " (meson test runs it under "
                   << "mpirun -np 2 when the build has MPI; this build: "
                   << (built_with_mpi() ? "with" : "without") << " MPI)";
  return result;
}

bool bits_equal(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

bool message_has(const std::exception& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

// ---- the model of the equivalence test ---------------------------------------------
// x (N,2,6,6) -> conv 3x3 pad 1 (4) -> relu -> max pool 2 -> (N,36) -> linear (16)
// -> relu -> linear (5)
constexpr int64_t kGlobalBatch = 16, kChannels = 2, kSize = 6, kFeatures = 4, kHidden = 16,
                  kClasses = 5;

std::vector<Tensor> make_parameters(uint64_t seed) {
  Generator gen(seed);
  const std::vector<Shape> weights = {
      {kFeatures, kChannels, 3, 3}, {kHidden, kFeatures * 3 * 3}, {kClasses, kHidden}};
  std::vector<Tensor> params;
  for (const Shape& shape : weights) {
    Tensor w = Tensor::empty(shape), b = Tensor::empty({shape[0]});
    kaiming_uniform_(w, std::sqrt(5.0), gen);
    bias_uniform_(b, fan_in(w), gen);
    params.push_back(w.set_requires_grad());
    params.push_back(b.set_requires_grad());
  }
  return params;
}

Tensor forward(const std::vector<Tensor>& p, const Tensor& x) {
  Tensor h = relu(conv2d(x, p[0], p[1], {1, 1, 1, 1}));
  h = flatten(max_pool2d(h, {2, 2, 2, 2, 0, 0}));
  h = relu(linear(h, p[2], p[3]));
  return linear(h, p[4], p[5]);
}

// The global batch of step `step`, the same on every rank.
struct Batch {
  Tensor x;
  std::vector<int64_t> labels;
};
Batch global_batch(int step) {
  Generator gen(100 + static_cast<uint64_t>(step));
  Batch batch{Tensor::empty({kGlobalBatch, kChannels, kSize, kSize}), {}};
  normal_(batch.x, 0.0, 1.0, gen);
  for (int64_t i = 0; i < kGlobalBatch; ++i)
    batch.labels.push_back(static_cast<int64_t>(gen.below(kClasses)));
  return batch;
}

enum class Optim { sgd, adam };

std::unique_ptr<Optimizer> make_optimizer(Optim kind, const std::vector<Tensor>& params) {
  if (kind == Optim::sgd) return std::make_unique<SGD>(params, 0.1, 0.9);
  return std::make_unique<Adam>(params, 0.01);
}

constexpr int kSteps = 5;

struct Run {
  std::vector<Tensor> params;
  std::vector<double> losses;  // the global-batch loss of each step
};

// One process, the whole global batch per step.
Run train_single_process(Optim kind) {
  Run run{make_parameters(7), {}};
  auto optimizer = make_optimizer(kind, run.params);
  for (int step = 0; step < kSteps; ++step) {
    const Batch batch = global_batch(step);
    optimizer->zero_grad();
    Tensor loss = cross_entropy(forward(run.params, batch.x), batch.labels);
    loss.backward();
    optimizer->step();
    run.losses.push_back(loss.item());
  }
  return run;
}

// This rank's half of each global batch; gradients averaged across ranks.
// Rank 1 starts from other parameters: the broadcast from rank 0 must fix that.
Run train_data_parallel(Communicator& comm, Optim kind) {
  Run run{make_parameters(comm.rank() == 0 ? 7 : 8), {}};
  comm.broadcast(run.params, 0);
  auto optimizer = make_optimizer(kind, run.params);
  const int64_t part = kGlobalBatch / comm.size(), start = comm.rank() * part;
  for (int step = 0; step < kSteps; ++step) {
    const Batch batch = global_batch(step);
    const Tensor x = slice(batch.x, 0, start, start + part);
    const std::vector<int64_t> labels(batch.labels.begin() + start,
                                      batch.labels.begin() + start + part);
    optimizer->zero_grad();
    Tensor loss = cross_entropy(forward(run.params, x), labels);
    loss.backward();
    average_gradients(comm, run.params);
    optimizer->step();
    const Tensor global_loss = loss.detach().clone();
    comm.allreduce_mean({global_loss});
    run.losses.push_back(global_loss.item());
  }
  return run;
}

// Losses within 1e-5 relative; parameters within a few float32 ulps (they
// agree to about 3e-8 here; 2e-6 leaves room for other GEMM kernels).
void expect_same_run(const Run& parallel, const Run& single) {
  for (int step = 0; step < kSteps; ++step)
    BOOST_TEST(parallel.losses[step] == single.losses[step], tt::tolerance(1e-5));
  for (size_t i = 0; i < single.params.size(); ++i) {
    const std::vector<double> got = parallel.params[i].to_double_vector();
    const std::vector<double> want = single.params[i].to_double_vector();
    double worst = 0;
    for (size_t j = 0; j < got.size(); ++j) worst = std::max(worst, std::abs(got[j] - want[j]));
    BOOST_TEST_INFO("parameter " << i << " " << to_string(single.params[i].shape()));
    BOOST_TEST(worst <= 2e-6);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(single_process_communicator_changes_nothing) {
  const auto comm = make_single_process_communicator();
  BOOST_TEST(comm->rank() == 0);
  BOOST_TEST(comm->size() == 1);
  BOOST_TEST(comm->name() == "single process");
  const std::vector<Tensor> params = make_parameters(3);
  std::vector<Tensor> copies;
  for (const Tensor& p : params) copies.push_back(p.clone());
  comm->allreduce_mean(params);
  comm->broadcast(params, 0);
  for (size_t i = 0; i < params.size(); ++i) BOOST_TEST(bits_equal(params[i], copies[i]));
  BOOST_CHECK_THROW(comm->broadcast(params, 1), std::invalid_argument);
  BOOST_CHECK_NO_THROW(comm->check_same_parameters(params, "single"));
}

BOOST_AUTO_TEST_CASE(factory_follows_the_launcher) {
  if (launched_by_mpi() && built_with_mpi()) {
    BOOST_TEST(world().name().starts_with("MPI (rank " + std::to_string(world().rank())));
    BOOST_TEST(world().size() >= 1);
  } else {
    BOOST_TEST(world().name() == "single process");
  }
}

BOOST_AUTO_TEST_CASE(allreduce_mean_averages_each_dtype, *boost::unit_test::precondition(two_ranks)) {
  Communicator& comm = world();
  const double r = comm.rank();
  // rank 0: a = (1, 10, 0.5), rank 1: a = (2, 20, -0.25); b = r/4 + i (f64).
  const std::vector<float> a_values{float(1 + r), float(10 * (1 + r)), r ? -0.25f : 0.5f};
  const std::vector<double> b_values{r / 4, r / 4 + 1, r / 4 + 2, r / 4 + 3};
  const Tensor a = Tensor::from_vector({3}, std::span<const float>(a_values));
  const Tensor b = Tensor::from_vector({2, 2}, std::span<const double>(b_values));
  const Tensor c = Tensor::full({}, 3 * r);
  comm.allreduce_mean({a, b, c});
  BOOST_TEST(a.to_double_vector() == (std::vector<double>{1.5, 15, 0.125}), tt::per_element());
  BOOST_TEST(b.to_double_vector() == (std::vector<double>{0.125, 1.125, 2.125, 3.125}),
             tt::per_element());
  BOOST_TEST(c.item() == 1.5);
  BOOST_CHECK_NO_THROW(comm.check_same_parameters({a, b, c}, "after allreduce"));
}

BOOST_AUTO_TEST_CASE(average_gradients_skips_parameters_without_gradient,
                     *boost::unit_test::precondition(two_ranks)) {
  Communicator& comm = world();
  Tensor used = Tensor::zeros({2}).set_requires_grad();
  Tensor unused = Tensor::zeros({3}).set_requires_grad();
  Tensor frozen = Tensor::full({2}, 5.0);
  // loss = sum(used * (rank + 1) * frozen): d/d used = 5 (rank + 1), mean 7.5.
  sum(mul(mul_scalar(used, comm.rank() + 1), frozen)).backward();
  average_gradients(comm, {used, unused, frozen});
  BOOST_TEST(used.grad().to_double_vector() == (std::vector<double>{7.5, 7.5}), tt::per_element());
  BOOST_TEST(!unused.grad().defined());
}

BOOST_AUTO_TEST_CASE(broadcast_copies_the_root, *boost::unit_test::precondition(two_ranks)) {
  Communicator& comm = world();
  const Tensor a = Tensor::full({4}, 10.0 + comm.rank());
  const Tensor b = Tensor::full({2}, -1.0 - comm.rank(), DType::f64);
  comm.broadcast({a, b}, 1);
  BOOST_TEST(a.to_double_vector() == std::vector<double>(4, 11.0), tt::per_element());
  BOOST_TEST(b.to_double_vector() == std::vector<double>(2, -2.0), tt::per_element());
  BOOST_CHECK_THROW(comm.broadcast({a}, 2), std::invalid_argument);
  BOOST_CHECK_THROW(comm.broadcast({a}, -1), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(allgather_concatenates_in_rank_order, *boost::unit_test::precondition(two_ranks)) {
  Communicator& comm = world();
  const uint64_t r = static_cast<uint64_t>(comm.rank());
  BOOST_TEST(comm.allgather({10 + r, 20 + r}) == (std::vector<uint64_t>{10, 20, 11, 21}),
             tt::per_element());
}

BOOST_AUTO_TEST_CASE(mismatched_tensor_lists_throw_on_every_rank,
                     *boost::unit_test::precondition(two_ranks)) {
  Communicator& comm = world();
  // Rank 1 passes a (3) where rank 0 passes a (4): same dtype, other shape.
  const Tensor a = Tensor::zeros({comm.rank() == 0 ? 4 : 3});
  try {
    comm.allreduce_mean({a});
    BOOST_FAIL("allreduce_mean accepted tensors of different shapes");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(message_has(e, "allreduce_mean"));
    BOOST_TEST(message_has(e, "rank 1 differs from rank 0"));
  }
  // Rank 1 passes one tensor fewer to the parameter check.
  std::vector<Tensor> params = {Tensor::zeros({2}), Tensor::zeros({2})};
  if (comm.rank() == 1) params.pop_back();
  try {
    comm.check_same_parameters(params, "count check");
    BOOST_FAIL("check_same_parameters accepted different tensor counts");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(message_has(e, "count check"));
    BOOST_TEST(message_has(e, "rank 0 has 2, rank 1 has 1"));
  }
}

BOOST_AUTO_TEST_CASE(data_parallel_matches_one_process_on_the_global_batch,
                     *boost::unit_test::precondition(two_ranks)) {
  Communicator& comm = world();
  for (const Optim kind : {Optim::sgd, Optim::adam}) {
    BOOST_TEST_CONTEXT((kind == Optim::sgd ? "SGD" : "Adam")) {
      const Run parallel = train_data_parallel(comm, kind);
      BOOST_CHECK_NO_THROW(comm.check_same_parameters(parallel.params, "after training"));
      // The reference needs no communication: rank 0 alone computes it.
      if (comm.rank() == 0) expect_same_run(parallel, train_single_process(kind));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_parameter_differing_on_one_rank_is_detected,
                     *boost::unit_test::precondition(two_ranks)) {
  Communicator& comm = world();
  const std::vector<Tensor> params = make_parameters(7);
  BOOST_CHECK_NO_THROW(comm.check_same_parameters(params, "before"));
  if (comm.rank() == 1) {
    Tensor perturbed = params[2];
    float& value = perturbed.data<float>()[5];
    value = std::nextafter(value, INFINITY);  // one ulp
  }
  try {
    comm.check_same_parameters(params, "after epoch 3");
    BOOST_FAIL("a one-ulp difference on rank 1 went unnoticed");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(message_has(e, "after epoch 3"));
    BOOST_TEST(message_has(e, "tensor 2 of 6 (" + to_string(params[2].shape()) + ", float32)"));
    BOOST_TEST(message_has(e, "rank 1 differs from rank 0"));
  }
}

// On a GPU machine, under an MPI launcher (one rank per GPU): CUDA tensors are
// averaged by NCCL, CPU tensors by MPI. Rank r holds base + r, so the mean is
// base + (size - 1) / 2 for any number of ranks.
BOOST_AUTO_TEST_CASE(nccl_averages_cuda_tensors,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       tt::assertion_result result(launched_by_mpi() && has_device_communicator(Device::cuda) &&
                                                   backend_available(Device::cuda));
                       result.message() << "needs NCCL, a GPU and an MPI launch";
                       return result;
                     })) {
  const auto comm = make_communicator(Device::cuda);
  BOOST_TEST(comm->name().starts_with("NCCL"));
  const double r = comm->rank(), shift = (comm->size() - 1) / 2.0;
  const Tensor a = Tensor::full({1000}, 1.5 + r).to(Device::cuda);
  const Tensor b = Tensor::full({3, 7}, -2.0 + r, DType::f64).to(Device::cuda);
  const Tensor on_cpu = Tensor::full({2}, 4.0 + r);
  comm->allreduce_mean({a, b});
  comm->allreduce_mean({on_cpu});
  BOOST_TEST(a.to_double_vector() == std::vector<double>(1000, 1.5 + shift), tt::per_element());
  BOOST_TEST(b.to_double_vector() == std::vector<double>(21, -2.0 + shift), tt::per_element());
  BOOST_TEST(on_cpu.to_double_vector() == std::vector<double>(2, 4.0 + shift), tt::per_element());
  const Tensor c = Tensor::full({5}, 10.0 + r).to(Device::cuda);
  comm->broadcast({c}, comm->size() - 1);
  BOOST_TEST(c.to_double_vector() == std::vector<double>(5, 10.0 + comm->size() - 1),
             tt::per_element());
  BOOST_CHECK_NO_THROW(comm->check_same_parameters({a, b, c}, "nccl"));
  BOOST_CHECK_THROW(comm->allreduce_mean({a, on_cpu}), std::invalid_argument);
}

// Every rank writes its JUnit report: meson's logger arguments name one file,
// NAME.xml, which rank 0 writes; rank R writes NAME.rankR.xml beside it, and
// scripts/count-tests.sh counts them all. One thread per rank, as ranks share
// the cores.
int main(int argc, char** argv) {
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  if (!rank) rank = std::getenv("PMI_RANK");
  if (!rank) rank = std::getenv("PMIX_RANK");
  std::vector<std::string> args(argv, argv + argc);
  if (rank && std::string(rank) != "0")
    for (std::string& arg : args)
      if (arg.starts_with("--logger=") && arg.find(":JUNIT") != std::string::npos && arg.ends_with(".xml"))
        arg.insert(arg.size() - 4, ".rank" + std::string(rank));
  std::vector<char*> pointers;
  for (std::string& arg : args) pointers.push_back(arg.data());
  set_num_threads(1);
  world();  // initialises MPI before any test runs
  return boost::unit_test::unit_test_main(&init_unit_test, argc, pointers.data());
}
