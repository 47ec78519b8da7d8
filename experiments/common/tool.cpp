#include "experiments/common/tool.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <new>
#include <stdexcept>

namespace tool {

void require_finite(const std::string& flag, double value) {
  if (!std::isfinite(value)) throw std::invalid_argument(flag + ": must be a finite number, not " + std::to_string(value));
}

void require_range(const std::string& flag, int64_t value, int64_t lowest, int64_t highest) {
  if (value < lowest || value > highest)
    throw std::invalid_argument(flag + ": " + std::to_string(value) + " outside [" + std::to_string(lowest) + ", " +
                                std::to_string(highest) + "]");
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) : UINT64_MAX;
}

void require_memory(const std::string& flags, double bytes, const std::string& what) {
  const double available = static_cast<double>(physical_memory_bytes());
  if (bytes <= available) return;
  char gigabytes[96];
  std::snprintf(gigabytes, sizeof gigabytes, "%.3g GB, more than this machine's %.1f GB", bytes / 1e9, available / 1e9);
  throw std::invalid_argument(flags + ": " + what + " needs about " + gigabytes + " of memory");
}

namespace {

// CLI11 reads integers with strtoll/strtoull (base 0: 0x.. and 0.. too) and
// ignores their range errors; this validator refuses what they cannot hold.
CLI::Validator integer_in_range(bool is_unsigned) {
  return CLI::Validator(
      [is_unsigned](std::string& text) -> std::string {
        const size_t first = text.find_first_not_of(" \t");
        if (is_unsigned && first != std::string::npos && text[first] == '-')
          return "'" + text + "' is negative; this flag takes a non-negative integer";
        errno = 0;
        char* end = nullptr;
        if (is_unsigned)
          static_cast<void>(std::strtoull(text.c_str(), &end, 0));
        else
          static_cast<void>(std::strtoll(text.c_str(), &end, 0));
        if (errno == ERANGE) return "'" + text + "' does not fit in a 64-bit integer";
        return {};  // anything else is CLI11's to judge
      },
      "", "64-bit range");
}

void check_integer_ranges(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    if (type.starts_with("INT")) option->check(integer_in_range(false));
    if (type.starts_with("UINT")) option->check(integer_in_range(true));
  }
  for (CLI::App* sub : app.get_subcommands({})) check_integer_ranges(*sub);
}

}  // namespace

int run_main(const std::string& name, CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    check_integer_ranges(app);
    app.parse(argc, argv);
    return body();
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << name << ": " << e.what() << " (see " << name << " --help)\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << name << ": out of memory (a flag asks for more than this machine has)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << name << ": unknown error\n";
    return 1;
  }
}

}  // namespace tool
