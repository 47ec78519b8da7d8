#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test program twice: in the
# normal build (build/), then in a build with AddressSanitizer, LeakSanitizer
# and UBSan (build-asan/: CUDA and MPI off, as the sanitizers cannot see into
# the GPU and Open MPI's own allocations would drown them). Any sanitizer
# report stops the program at fault and fails its test. Ends, as CI parses it,
# with the line "N passed, M failed, K skipped" summed over both builds (a
# line per build comes first; scripts/count-tests.sh).
#
# SANITIZE=0 scripts/test.sh runs the normal build alone (a quick local run).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
scripts/build.sh || exit 1

# Runs BUILD_DIR's suite afresh: no JUnit file or test log of an earlier run
# can be counted.
run_suite() {
  rm -rf "$1/tests/junit" "$1/meson-logs/testlog.json"
  mkdir -p "$1/tests/junit"
  meson test -C "$1" --print-errorlogs --num-processes "$(nproc)" "${@:2}"
}

status=0
run_suite build || status=1
builds=(build)
if [ "${SANITIZE:-1}" != 0 ]; then
  builds+=(build-asan)
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Dcuda=disabled -Dmpi=disabled -Db_sanitize=address,undefined \
      -Db_lundef=false -Db_ndebug=false >build-asan-setup.log 2>&1 ||
      { cat build-asan-setup.log; exit 1; }
    rm -f build-asan-setup.log
  fi
  if ninja -C build-asan; then
    # halt_on_error/abort_on_error: the first report aborts the program (UBSan
    # is also built with -fno-sanitize-recover, see meson.build); leaks are
    # reported at exit and fail it too. tests/lsan.supp lists the few leaks of
    # libraries outside this project that are let through.
    ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1 \
    UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1 \
    LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
      run_suite build-asan --timeout-multiplier 4 || status=1
  else
    echo "build-asan: the sanitizer build failed"
    status=1
  fi
fi
scripts/count-tests.sh "${builds[@]}" || status=1
exit $status
