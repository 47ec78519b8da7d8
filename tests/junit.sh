# JUnit reports for the shell tests, in the form Boost.Test writes, so that
# scripts/count-tests.sh counts their cases with the rest. Source it, then:
#   junit_case NAME passed|failed|skipped [MESSAGE]   records one case
#   junit_write FILE SUITE                            writes them all
# or, for a script that is one case, junit_finish FILE SUITE CASE STATUS from
# its EXIT trap (junit_on_exit FILE SUITE CASE sets that trap): status 0 is
# passed, 77 (meson's skip) skipped, anything else failed.
junit_cases=()

junit_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' <<<"$1"; }

junit_case() {
  local name result=$2 message=${3:-}
  name=$(junit_escape "$1")
  message=$(junit_escape "$message")
  case $result in
    passed) junit_cases+=("<testcase name=\"$name\"/>") ;;
    skipped) junit_cases+=("<testcase name=\"$name\"><skipped message=\"$message\"/></testcase>") ;;
    *) junit_cases+=("<testcase name=\"$name\"><failure message=\"$message\"/></testcase>") ;;
  esac
}

junit_write() {
  local file=$1 suite
  suite=$(junit_escape "$2")
  mkdir -p "$(dirname "$file")"
  { echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuite name=\"$suite\" tests=\"${#junit_cases[@]}\">"
    printf '%s\n' "${junit_cases[@]}"
    echo '</testsuite>'; } >"$file"
}

junit_finish() {
  case $4 in
    0) junit_case "$3" passed ;;
    77) junit_case "$3" skipped "skipped: see the test's output" ;;
    *) junit_case "$3" failed "exit status $4: see the test's output" ;;
  esac
  junit_write "$1" "$2"
}

junit_on_exit() {
  trap "junit_finish '$1' '$2' '$3' \$?" EXIT
}
