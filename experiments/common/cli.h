// The command-line conventions every experiment binary shares, set up in one
// place: --version (commit and build options, build_info.h) and a --help
// footer with an example line. Flags that mean the same thing are spelt the
// same everywhere: --batch, --threads, --device, --out, --data-dir, --seed(s).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace experiments {

// Adds --version, which prints version_text(program) and exits 0, and a footer
// "Example:\n  <example>\n" plus where the project's documentation lives.
void add_standard_options(CLI::App& app, const std::string& program, const std::string& example);

}  // namespace experiments
