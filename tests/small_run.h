// The continual runs the tests train: Split Fashion-MNIST on the tiny network,
// small enough to take seconds. The tests that use it need the data set
// (testing::fashion_mnist_present).
#pragma once

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "experiments/continual/config.h"
#include "tests/preconditions.h"

namespace testing {

// `train` training and `eval` evaluation images per task, at most `epochs`
// epochs of batches of 32, Adam at 3e-3, outputs in `out`; every other
// setting is the runner's default (5 tasks of 2 classes in label order, ...).
inline continual::RunConfig small_run(const std::filesystem::path& out, int64_t train, int64_t eval, int64_t epochs) {
  continual::RunConfig c;
  c.dataset = "fashion-mnist";
  c.data_dir = kFashionMnistDir;
  c.arch = "tiny";
  c.train_limit = train;
  c.eval_limit = eval;
  c.epochs = epochs;
  c.batch = 32;
  c.lr = 3e-3;
  c.out = out;
  return c;
}

// validate(c) must refuse c with a message that starts with "<flag>:".
inline void check_flag_refused(const continual::RunConfig& c, const std::string& flag) {
  try {
    continual::validate(c);
    BOOST_ERROR(flag << " accepted a bad value");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find(flag + ":") == 0, e.what());
  }
}

}  // namespace testing
