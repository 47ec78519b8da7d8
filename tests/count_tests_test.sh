#!/usr/bin/env bash
# scripts/count-tests.sh on small fixture build directories (a testlog.json
# and JUnit files each), run from another working directory: every way a run
# can over-report must make the last line and the exit status say failure.
#
#   count_tests_test.sh COUNT_TESTS_SCRIPT JUNIT_FILE
set -uo pipefail
count=$(realpath "$1")
junit_file=$2
source "$(dirname "$0")/junit.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fixture DIR NAME:RESULT... : a testlog.json with these tests in DIR; the
# result OK+TEXT is an OK test that printed TEXT.
fixture() {
  local dir=$work/$1
  shift
  mkdir -p "$dir/meson-logs" "$dir/tests/junit"
  : >"$dir/meson-logs/testlog.json"
  for test in "$@"; do
    local code=0 result=${test#*:} stdout=""
    case $result in FAIL) code=1 ;; SKIP) code=77 ;; TIMEOUT) code=-15 ;; esac
    if [[ $result == OK+* ]]; then stdout=${result#OK+}; result=OK; fi
    echo "{\"name\": \"${test%%:*}\", \"result\": \"$result\", \"returncode\": $code, \"stdout\": \"$stdout\"}" \
      >>"$dir/meson-logs/testlog.json"
  done
}
# report FILE CASES: a Boost.Test-style JUnit file; CASES is a string of p
# (passed), f (failure), e (error), s (skipped).
report() {
  { echo '<?xml version="1.0" encoding="UTF-8"?><testsuite tests="'${#2}'">'
    local i
    for ((i = 0; i < ${#2}; ++i)); do
      case ${2:i:1} in
        p) echo "<testcase name=\"c$i\"/>" ;;
        f) echo "<testcase name=\"c$i\"><failure message=\"x\"/></testcase>" ;;
        e) echo "<testcase name=\"c$i\"><error message=\"x\"/></testcase>" ;;
        s) echo "<testcase name=\"c$i\"><skipped/></testcase>" ;;
      esac
    done
    echo '</testsuite>'; } >"$work/$1"
}
# expect CASE WANT_LINE WANT_STATUS DIR...: runs the counter from / on DIRs.
expect() {
  local name=$1 want_line=$2 want_status=$3 dirs=() out status
  shift 3
  for d in "$@"; do dirs+=("$work/$d"); done
  out=$(cd / && "$count" "${dirs[@]}" 2>&1)
  status=$?
  if [[ $(tail -n 1 <<<"$out") == "$want_line" && $((status == 0)) == $((want_status == 0)) ]]; then
    junit_case "$name" passed
    echo "ok: $name"
  else
    junit_case "$name" failed "want '$want_line' (status $want_status), got status $status: $out"
    printf 'FAILED: %s: want "%s" (status %s), got status %s:\n%s\n' "$name" "$want_line" "$want_status" "$status" "$out"
  fi
}

fixture good a:OK b:SKIP c:OK
report good/tests/junit/a.xml ppp
report good/tests/junit/b.xml s
report good/tests/junit/c.xml pps
expect "passing and skipped cases are summed" "5 passed, 0 failed, 2 skipped" 0 good

fixture crashed_after_report a:OK b:FAIL
report crashed_after_report/tests/junit/a.xml pp
report crashed_after_report/tests/junit/b.xml ppp
expect "a crash after the report was written is a failure" "5 passed, 1 failed, 0 skipped" 1 crashed_after_report

fixture timed_out a:TIMEOUT
report timed_out/tests/junit/a.xml pp
expect "a timeout is a failure" "2 passed, 1 failed, 0 skipped" 1 timed_out

fixture failing_cases a:FAIL
report failing_cases/tests/junit/a.xml pfep
expect "failed and errored cases count once each" "2 passed, 2 failed, 0 skipped" 1 failing_cases

fixture no_report a:OK b:OK
report no_report/tests/junit/a.xml pp
expect "a test without its JUnit file is a failure" "2 passed, 1 failed, 0 skipped" 1 no_report

fixture broken_report a:OK
echo '<testsuite><testcase name="x"' >"$work/broken_report/tests/junit/a.xml"
expect "a truncated JUnit file is a failure" "0 passed, 1 failed, 0 skipped" 1 broken_report

fixture empty_report a:OK
report empty_report/tests/junit/a.xml ""
expect "a JUnit file of no case is a failure" "0 passed, 1 failed, 0 skipped" 1 empty_report

fixture ranks distributed:FAIL
report ranks/tests/junit/distributed.xml ppp
report ranks/tests/junit/distributed.rank1.xml pfp
expect "every rank's report counts" "5 passed, 1 failed, 0 skipped" 1 ranks

fixture sanitized a:OK+"x.cpp:3:5: runtime error: signed integer overflow" b:OK+"==1==ERROR: LeakSanitizer: detected memory leaks" c:OK+"all fine"
report sanitized/tests/junit/a.xml pp
report sanitized/tests/junit/b.xml p
report sanitized/tests/junit/c.xml p
expect "a sanitizer report in the output is a failure" "4 passed, 2 failed, 0 skipped" 1 sanitized

fixture no_tests
expect "a run of no tests is a failure" "0 passed, 1 failed, 0 skipped" 1 no_tests

mkdir -p "$work/never_run"
expect "a build never tested is a failure" "0 passed, 1 failed, 0 skipped" 1 never_run

expect "several builds: the last line is the total" "10 passed, 1 failed, 2 skipped" 1 good crashed_after_report
expect "several passing builds pass" "10 passed, 0 failed, 4 skipped" 0 good good

junit_write "$junit_file" count_tests
[[ ${#junit_cases[@]} -eq 13 ]] || { echo "FAILED: ${#junit_cases[@]} cases ran, not 13"; exit 1; }
! grep -q '<failure' "$junit_file"
