#!/usr/bin/env bash
# Counts the test cases of one or more meson build directories' last
# `meson test` runs and ends with the line "N passed, M failed, K skipped"
# summed over them (with several, a "DIR: N passed, ..." line for each comes
# first). Exit status 0 only when nothing failed.
#
#   count-tests.sh BUILD_DIR...
#
# Meson's own record of the run (BUILD_DIR/meson-logs/testlog.json) says which
# tests ran and how each ended; each test writes its cases as JUnit in
# BUILD_DIR/tests/junit/NAME.xml (Boost.Test programs, and tests/junit.sh for
# the shell tests), and under MPI every further rank NAME.rankR.xml. Each of
# these counts as one failure, so the line cannot say more passed than did:
#   - no testlog, or a run of no tests (a build without Boost.Test);
#   - a test without its JUnit file, or with one that does not parse or holds
#     no case;
#   - a test meson saw fail (exit status, signal, timeout) whose JUnit files
#     report no failure, e.g. a crash after the report was written;
#   - a sanitizer report in a test's output (one from a child process whose
#     exit status the test did not look at, say) where its JUnit reports no
#     failure.
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: count-tests.sh BUILD_DIR..." >&2; exit 2; }
exec python3 - "$@" <<'EOF'
import glob, json, os, sys
import xml.etree.ElementTree as ET

SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")

def count(build):
    """(passed, failed, skipped, problems) of one build directory."""
    passed = failed = skipped = 0
    problems = []
    log = os.path.join(build, "meson-logs", "testlog.json")
    tests = []
    try:
        with open(log) as f:
            tests = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        problems.append(f"cannot read {log}: {e}")
    if not tests:
        return 0, 1, 0, problems + [f"no test ran in {build} (is Boost.Test installed? see `meson setup`'s summary)"]
    junit = os.path.join(build, "tests", "junit")
    for test in tests:
        name, result = test.get("name", "?"), test.get("result", "?")
        first = os.path.join(junit, name + ".xml")
        files = [first] + sorted(glob.glob(os.path.join(glob.escape(junit), glob.escape(name) + ".rank*.xml")))
        p = f = s = 0
        if not os.path.isfile(first):
            f += 1
            problems.append(f"{name}: no JUnit file {first} (meson: {result})")
        for path in files:
            if not os.path.isfile(path):
                continue
            try:
                cases = ET.parse(path).getroot().iter("testcase")
                n = 0
                for case in cases:
                    n += 1
                    if case.find("failure") is not None or case.find("error") is not None:
                        f += 1
                    elif case.find("skipped") is not None:
                        s += 1
                    else:
                        p += 1
                if n == 0:
                    f += 1
                    problems.append(f"{name}: {path} holds no test case")
            except ET.ParseError as e:
                f += 1
                problems.append(f"{name}: {path} is not valid JUnit XML ({e})")
        output = str(test.get("stdout", "")) + str(test.get("stderr", ""))
        report = next((m for m in SANITIZER_REPORTS if m in output), None)
        if report and f == 0:
            f += 1
            problems.append(f"{name}: a sanitizer report in its output ('{report}')")
        if result not in ("OK", "SKIP") and f == 0:
            f += 1
            problems.append(f"{name}: meson says {result} (exit status {test.get('returncode')}) "
                            "although its JUnit reports no failure")
        passed, failed, skipped = passed + p, failed + f, skipped + s
    return passed, failed, skipped, problems

total = [0, 0, 0]
for build in sys.argv[1:]:
    p, f, s, problems = count(build)
    for problem in problems:
        print(f"{build}: {problem}")
    if len(sys.argv) > 2:
        print(f"{build}: {p} passed, {f} failed, {s} skipped")
    total = [total[0] + p, total[1] + f, total[2] + s]
print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
sys.exit(1 if total[1] else 0)
EOF
