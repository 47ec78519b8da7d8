#!/usr/bin/env bash
# Installs what is missing, builds, runs every test program and ends with the
# line "N passed, M failed[, K skipped]" counted over all Boost.Test cases.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
scripts/build.sh || exit 1
rm -rf build/tests/junit && mkdir -p build/tests/junit
meson test -C build --print-errorlogs --num-processes "$(nproc)"
status=$?
scripts/count-tests.sh build/tests/junit || status=1
exit $status
