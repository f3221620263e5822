#!/usr/bin/env bash
# Runs every suite against the plain and the sanitizer build and prints one
# closing line: "N passed, N failed, N skipped", counting Bats cases.
#
#   tests/run-suites.sh step01 step02 ...   (make test passes the chapters)
#
# For each chapter: its own suite (tests/stepNN), then the fault suite
# (tests/faults, with STEP=stepNN), whose figures go to
# build/test-logs/faults-figures.txt. Last, once against the plain build,
# the samples the pages show (tests/docs/samples.bats).
#
# JOBS (default 4) cases run in parallel per suite; BUILDS (default
# "build build/san") names the build directories to test.
set -u
cd "$(dirname "$0")/.." || exit 1

JOBS=${JOBS:-4}
BUILDS=${BUILDS:-build build/san}
LOG_DIR=build/test-logs
mkdir -p "$LOG_DIR"
export FAULTS_FIGURES=$PWD/$LOG_DIR/faults-figures.txt
: >"$FAULTS_FIGURES"

passed=0 failed=0 skipped=0 status=0

# run_suite BUILD_DIR NAME DIR: run one suite, add its counts.
run_suite() {
    local build=$1 name=$2 dir=$3
    local log
    log=$LOG_DIR/$(echo "$build-$name" | tr '/' '-').tap
    echo "== $name against $build/"
    BUILD_DIR=$PWD/$build bats --jobs "$JOBS" --timing --tap "$dir" >"$log" 2>&1
    local rc=$?
    local ok notok skip
    ok=$(grep -c '^ok ' "$log")
    skip=$(grep -c '^ok .* # skip' "$log")
    notok=$(grep -c '^not ok ' "$log")
    grep -E '^(not ok|#)' "$log" | head -n 60
    # A suite that dies before running its cases counts as one failure.
    if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
        echo "   bats exited $rc with no failed case: see $log"
        notok=1
    fi
    echo "   $((ok - skip)) passed, $notok failed, $skip skipped"
    passed=$((passed + ok - skip))
    skipped=$((skipped + skip))
    failed=$((failed + notok))
    [ "$notok" -eq 0 ] || status=1
}

for build in $BUILDS; do
    run_suite "$build" unit tests/unit
    for step in "$@"; do
        run_suite "$build" "$step" "tests/$step"
        STEP=$step run_suite "$build" "$step-faults" tests/faults
    done
done

# The pages' samples (tests/docs/samples.bats), once: they show the plain
# build, and a fresh run of every chapter is compared with docs/samples/.
case " $BUILDS " in
*" build "*) run_suite build docs tests/docs ;;
esac

# The fault suite's figures, summed (see tests/faults/README.md).
awk '{ split($3, f, "="); split($4, b, "="); faults += f[2]; bytes += b[2] }
     END { if (NR) printf "fault suite: %.0f faults injected, %.0f bytes relayed under faults and checked, none lost\n", faults, bytes }' \
    "$FAULTS_FIGURES"
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
