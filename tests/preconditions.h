// Boost.Test preconditions for tests that need data from outside the
// repository: they report the test SKIPPED, with the reason, where it is absent.
#pragma once

#include <boost/test/unit_test.hpp>
#include <filesystem>

namespace testing {

// Debian's dataset-fashion-mnist package installs the four gzip'd IDX files here.
inline const std::filesystem::path kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

inline boost::test_tools::assertion_result fashion_mnist_present(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result result(std::filesystem::is_directory(kFashionMnistDir));
  result.message() << "SKIPPED: " << kFashionMnistDir.string()
                   << " not found (apt-get install dataset-fashion-mnist)";
  return result;
}

}  // namespace testing
