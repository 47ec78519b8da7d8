#include "experiments/common/provenance.h"

#include <cblas.h>

#include <cstdlib>
#include <ctime>
#include <fstream>

#include "engine/backend.h"
#include "engine/cpu/isa.h"
#include "engine/parallel.h"
#include "experiments/common/build_info.h"

namespace experiments {

using nlohmann::json;

namespace {

struct Invocation {
  std::string command_line;
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
};

Invocation& invocation() {
  static Invocation record;
  return record;
}

// Arguments with spaces or quotes are single-quoted, so the line can be pasted into a shell.
std::string shell_quoted(const std::string& arg) {
  if (!arg.empty() && arg.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.starts_with("model name")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown";
}

json optional_env(const char* name) {
  const char* value = std::getenv(name);
  return value ? json(value) : json(nullptr);
}

}  // namespace

void record_invocation(int argc, char** argv) {
  Invocation& record = invocation();
  record.started = std::chrono::system_clock::now();
  record.command_line.clear();
  for (int i = 0; i < argc; ++i) record.command_line += (i ? " " : "") + shell_quoted(argv[i]);
}

std::string utc_timestamp(std::chrono::system_clock::time_point when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

json provenance_json(engine::Device device) {
  const BuildInfo& b = build_info();
  json gpu = nullptr;
  if (device == engine::Device::cuda && engine::backend_available(device)) gpu = engine::backend(device).name();
  return {{"commit", b.commit},
          {"dirty", b.dirty},
          {"version", b.version},
          {"build", {{"cuda", b.cuda}, {"mpi", b.mpi}}},
          {"command_line", invocation().command_line},
          {"host_cpu", cpu_model()},
          {"threads", engine::num_threads()},
          {"blas", std::string("OpenBLAS (") + openblas_get_config() + ")"},
          {"blas_kernel", openblas_get_corename()},
          {"openblas_coretype", optional_env("OPENBLAS_CORETYPE")},
          {"cpu_loops", engine::cpu::isa_name(engine::cpu::active_isa())},
          {"gpu", gpu},
          {"started", utc_timestamp(invocation().started)},
          {"finished", utc_timestamp(std::chrono::system_clock::now())}};
}

std::string provenance_markdown(const json& p) {
  auto text = [&](const char* key) -> std::string {
    if (!p.contains(key) || p.at(key).is_null()) return "-";
    return p.at(key).is_string() ? p.at(key).get<std::string>() : p.at(key).dump();
  };
  std::string md;
  md += "- commit: " + text("commit") + (p.value("dirty", false) ? " (with uncommitted changes)" : "") + "\n";
  md += "- command: `" + text("command_line") + "`\n";
  md += "- host: " + text("host_cpu") + ", " + text("threads") + " threads; " + text("blas") + ", kernel " +
        text("blas_kernel") +
        (p.contains("openblas_coretype") && !p.at("openblas_coretype").is_null()
             ? " (OPENBLAS_CORETYPE=" + text("openblas_coretype") + ")"
             : "") +
        "; own loops " + text("cpu_loops") + "; GPU: " + (p.contains("gpu") && !p.at("gpu").is_null() ? text("gpu") : "none used") + "\n";
  md += "- started " + text("started") + ", finished " + text("finished") + "\n";
  return md;
}

}  // namespace experiments
