// TorchPeer (experiments/torch_peer.h), the pipe protocol behind
// `bench --compare-torch`, against stand-in peers written in sh: no torch needed.
#define BOOST_TEST_MODULE torch_peer
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <unistd.h>

#include "experiments/torch_peer.h"

namespace fs = std::filesystem;
using experiments::TorchPeer;

namespace {

// A shell script standing in for torch_bench.py --serve.
fs::path peer_script(const std::string& name, const std::string& body) {
  const fs::path dir = fs::temp_directory_path() / ("test_torch_peer_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path path = dir / name;
  std::ofstream(path) << body;
  return path;
}

}  // namespace

BOOST_AUTO_TEST_CASE(answers_are_read_per_request) {
  // Echoes the request's REPS field back as the seconds, "error" for a bad network.
  const fs::path script = peer_script("echo.sh",
                                      "echo 'ready torch 9.9 threads '$3\n"
                                      "while read name batch reps; do\n"
                                      "  if [ \"$name\" = bad ]; then echo 'error: unknown network'; "
                                      "else echo \"0.$reps\"; fi\n"
                                      "done\n");
  std::string why_not;
  std::optional<TorchPeer> peer = TorchPeer::start("sh", script.string(), 2, why_not);
  BOOST_REQUIRE(peer.has_value());
  BOOST_TEST(peer->version() == "torch 9.9 threads 2");
  BOOST_TEST(peer->step_seconds("sena32", 64, 25) == 0.25);
  BOOST_TEST(peer->step_seconds("small_cnn", 64, 5) == 0.5);
  BOOST_CHECK_EXCEPTION(peer->step_seconds("bad", 64, 1), std::runtime_error, [](const std::runtime_error& e) {
    return std::string(e.what()).find("bad failed: error: unknown network") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(no_torch_is_a_reason_not_an_error) {
  std::string why_not;
  const fs::path unavailable = peer_script("unavailable.sh", "echo \"unavailable: No module named 'torch'\"\n");
  BOOST_TEST(!TorchPeer::start("sh", unavailable.string(), 1, why_not).has_value());
  BOOST_TEST(why_not == "No module named 'torch'");

  BOOST_TEST(!TorchPeer::start("sh", "/nonexistent/torch_bench.py", 1, why_not).has_value());
  BOOST_TEST(why_not.find("cannot read /nonexistent/torch_bench.py") != std::string::npos);

  const fs::path silent = peer_script("silent.sh", "exit 0\n");
  BOOST_TEST(!TorchPeer::start("/nonexistent/python3", silent.string(), 1, why_not).has_value());
  BOOST_TEST(why_not.find("did not start") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_peer_that_dies_is_reported) {
  const fs::path script = peer_script("dies.sh", "echo 'ready torch 1 threads 1'\nread line\nexit 1\n");
  std::string why_not;
  std::optional<TorchPeer> peer = TorchPeer::start("sh", script.string(), 1, why_not);
  BOOST_REQUIRE(peer.has_value());
  BOOST_CHECK_EXCEPTION(peer->step_seconds("sena32", 64, 1), std::runtime_error, [](const std::runtime_error& e) {
    return std::string(e.what()).find("the process ended") != std::string::npos;
  });
}
