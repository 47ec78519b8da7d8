// TorchPeer (experiments/torch_peer.h), the pipe protocol behind
// `bench --compare-torch` (seconds and peak memory), against stand-in peers
// written in sh: no torch needed.
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

// Whether `f` throws a runtime_error whose message holds `part`.
template <typename F>
bool throws_with(F f, const std::string& part) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find(part) != std::string::npos) return true;
    BOOST_TEST_MESSAGE("a different message: " << e.what());
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(answers_are_read_per_request) {
  // Answers the request's REPS field as the seconds and 400 MiB as the peak;
  // other networks stand for the peer's other answers.
  const fs::path script = peer_script("echo.sh",
                                      "echo 'ready torch 9.9 threads '$3' baseline_rss_kib 307200'\n"
                                      "while read name batch reps; do\n"
                                      "  case $name in\n"
                                      "    bad) echo 'error: unknown network';;\n"
                                      "    peak_unknown) echo '0.5 -1';;\n"
                                      "    *) echo \"0.$reps 409600\";;\n"
                                      "  esac\n"
                                      "done\n");
  std::string why_not;
  std::optional<TorchPeer> peer = TorchPeer::start("sh", script.string(), 2, why_not);
  BOOST_REQUIRE(peer.has_value());
  BOOST_TEST(peer->version() == "torch 9.9 threads 2");
  BOOST_TEST(peer->baseline_rss_mib().value_or(0) == 300.0);
  const TorchPeer::Step sena32 = peer->step("sena32", 64, 25);
  BOOST_TEST(sena32.seconds == 0.25);
  BOOST_TEST(sena32.peak_rss_mib.value_or(0) == 400.0);
  BOOST_TEST(peer->step("small_cnn", 64, 5).seconds == 0.5);
  const TorchPeer::Step unknown = peer->step("peak_unknown", 64, 1);
  BOOST_TEST(unknown.seconds == 0.5);
  BOOST_TEST(!unknown.peak_rss_mib.has_value());
  BOOST_TEST(throws_with([&] { peer->step("bad", 64, 1); }, "bad failed: error: unknown network"));
}

BOOST_AUTO_TEST_CASE(answers_outside_the_protocol_are_refused_by_name) {
  // Answers with what the request's network names.
  const fs::path script = peer_script("malformed.sh",
                                      "echo 'ready torch 9.9 threads 1 baseline_rss_kib -1'\n"
                                      "while read name batch reps; do\n"
                                      "  case $name in\n"
                                      "    no_peak) echo '0.5';;\n"
                                      "    peak_not_a_number) echo '0.5 lots';;\n"
                                      "    peak_negative) echo '0.5 -7';;\n"
                                      "    peak_fraction) echo '0.5 1.5';;\n"
                                      "    seconds_zero) echo '0 1024';;\n"
                                      "    seconds_inf) echo 'inf 1024';;\n"
                                      "    extra_field) echo '0.5 1024 7';;\n"
                                      "    *) echo '0.5 1024';;\n"
                                      "  esac\n"
                                      "done\n");
  std::string why_not;
  std::optional<TorchPeer> peer = TorchPeer::start("sh", script.string(), 1, why_not);
  BOOST_REQUIRE(peer.has_value());
  BOOST_TEST(!peer->baseline_rss_mib().has_value());  // -1: unknown, not an error
  for (const std::string network : {"no_peak", "peak_not_a_number", "peak_negative", "peak_fraction",
                                    "seconds_zero", "seconds_inf", "extra_field"})
    BOOST_TEST(throws_with([&] { peer->step(network, 64, 1); }, "answer for " + network + " is \""),
               network);
  // The peer stays usable after a refused answer: each answer is one line.
  BOOST_TEST(peer->step("sena32", 64, 1).peak_rss_mib.value_or(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(a_ready_line_without_its_baseline_is_refused) {
  std::string why_not;
  for (const std::string ready : {"ready torch 9.9 threads 1", "ready torch 9.9 threads 1 baseline_rss_kib",
                                  "ready torch 9.9 threads 1 baseline_rss_kib 12 MiB"}) {
    const fs::path script = peer_script("old.sh", "echo '" + ready + "'\n");
    BOOST_TEST(throws_with([&] { TorchPeer::start("sh", script.string(), 1, why_not); },
                           "--serve said \"" + ready + "\", not \"ready torch VERSION threads N baseline_rss_kib K\""),
               ready);
  }
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
  const fs::path script =
      peer_script("dies.sh", "echo 'ready torch 1 threads 1 baseline_rss_kib 1024'\nread line\nexit 1\n");
  std::string why_not;
  std::optional<TorchPeer> peer = TorchPeer::start("sh", script.string(), 1, why_not);
  BOOST_REQUIRE(peer.has_value());
  BOOST_TEST(throws_with([&] { peer->step("sena32", 64, 1); }, "the process ended"));
}
