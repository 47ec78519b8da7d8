#include "experiments/common/cli.h"

#include <iostream>

#include "experiments/common/build_info.h"

namespace experiments {

void add_standard_options(CLI::App& app, const std::string& program, const std::string& example) {
  // CLI11 ends parsing with a CallForVersion "error" whose exit code is 0, so
  // every main's existing `catch (const CLI::ParseError&)` prints it and exits 0.
  app.set_version_flag("--version", [program] { return version_text(program); },
                       "print the commit, version and build options (CUDA, MPI), then exit");
  app.footer("Example:\n  " + example + "\n\nREADME.md in the project's root describes every program and output file.");
}

}  // namespace experiments
