#!/usr/bin/env bash
# Sums the Boost.Test JUnit files in DIR into "N passed, M failed, K skipped",
# from each file's <testsuite tests= skipped= errors= failures=> counts.
# A test program that crashed before writing its file counts as one failure.
set -uo pipefail
dir=${1:?usage: count-tests.sh JUNIT_DIR}
read -r passed failed skipped written < <(
  cat "$dir"/*.xml 2>/dev/null | grep -o '<testsuite [^>]*>' | awk '
    function attr(name,   m) { return match($0, name "=\"[0-9]+\"") ? substr($0, RSTART + length(name) + 2, RLENGTH - length(name) - 3) + 0 : 0 }
    { t += attr("tests"); s += attr("skipped"); f += attr("failures") + attr("errors"); files++ }
    END { print t - f, f, s, files + 0 }')  # Boost's tests= already leaves out skipped cases
expected=$(find build/tests -maxdepth 1 -type f -name 'test_*' -executable | wc -l)
if [ "$written" -lt "$expected" ]; then failed=$((failed + expected - written)); fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
