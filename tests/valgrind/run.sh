#!/usr/bin/env bash
# make valgrind: the cases listed in tests/valgrind/cases, run against the
# plain build with the program under test inside valgrind memcheck, then a
# check of every log valgrind wrote.
#
#   tests/valgrind/run.sh step01 step02 ...   (make valgrind passes the chapters)
#
# Each suite runs with its program replaced by a wrapper (build/valgrind/bin)
# that execs tests/valgrind/memcheck.sh: the server (SERVER=), the client
# (CLIENT=) or the framer's unit test (TEST_LINE=). valgrind follows forked
# children by itself and writes one log per process, build/valgrind/logs/
# TAG.PID.log. STOP_GRACEFULLY makes each test's teardown stop its servers
# with SIGTERM (valgrind's leak check runs only when a program exits), and
# WAIT_SECONDS is raised: everything runs 10 to 50 times slower.
#
# The run fails when a case fails, when a listed case did not run, or when
# a log shows an error, a definite or indirect leak, or no final report (a
# process killed with SIGKILL). The suites stepNN-sigkill hold the cases
# that SIGKILL a child or a worker on purpose: their logs go to
# build/valgrind/logs-sigkill/, where the killed processes' logs may lack
# a final report (errors they showed before still count) and every other
# log is held to the same rules. JOBS (default 2) cases run in parallel.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
OUT=$ROOT/build/valgrind
LOGS=$OUT/logs
KILLED_LOGS=$OUT/logs-sigkill
CASES=tests/valgrind/cases
JOBS=${JOBS:-2}

command -v valgrind >/dev/null || {
    echo "valgrind: not installed (make deps)" >&2
    exit 1
}
[ "$#" -gt 0 ] || set -- step01 step02 step03 step04

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$LOGS" "$KILLED_LOGS"
status=0
# Totals over every suite; each log check counts as one case too.
total_passed=0 total_failed=0

# wrap NAME PROGRAM [LOG_DIR]: write $OUT/bin/NAME, which runs PROGRAM
# under memcheck with its logs tagged NAME, in LOG_DIR (default $LOGS).
wrap() {
    [ -x "$2" ] || {
        echo "valgrind: no $2 (run make all first)" >&2
        exit 1
    }
    printf '#!/bin/sh\nVG_TAG=%s VG_LOG_DIR=%s exec %s %s "$@"\n' \
        "$1" "${3:-$LOGS}" "$ROOT/tests/valgrind/memcheck.sh" "$2" >"$OUT/bin/$1"
    chmod +x "$OUT/bin/$1"
}

# names_of SUITE: the test names listed for SUITE, one per line.
names_of() {
    sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$CASES" |
        while IFS= read -r line; do
            local suites=${line%%: *} name=${line#*: }
            case " $suites " in *" $1 "*) printf '%s\n' "$name" ;; esac
        done
}

# regex_of SUITE: one anchored regular expression matching exactly the
# listed names (bats -f). The list holds names as bats prints them; bats
# matches the text between the quotes of @test, where a backslash that
# is printed may be written \\ -- so a printed \ matches one or two.
regex_of() {
    local alts
    # shellcheck disable=SC2016 # sed expressions, not expansions
    alts=$(names_of "$1" | sed -e 's/[][\.*^$(){}?+|/]/\\&/g' \
        -e 's/\\\\/\\\\\\\\?/g' | paste -sd '|')
    printf '^(%s)$' "$alts"
}

# run_suite SUITE FILES...: run SUITE's listed cases from FILES, the
# environment already set by the caller; check every listed case ran.
run_suite() {
    local suite=$1
    shift
    local tap=$OUT/$suite.tap
    local want
    want=$(names_of "$suite")
    [ -n "$want" ] || return 0
    echo "== $suite under valgrind ($(echo "$want" | wc -l) cases)"
    local start=$SECONDS
    STOP_GRACEFULLY=1 WAIT_SECONDS=${WAIT_SECONDS:-30} \
        bats --jobs "$JOBS" --timing --tap -f "$(regex_of "$suite")" "$@" \
        >"$tap" 2>&1
    grep -E '^(not ok|# )' "$tap" | head -n 40
    local ran failed
    ran=$(grep -cE '^(not )?ok ' "$tap")
    failed=$(grep -c '^not ok ' "$tap")
    echo "   $((ran - failed)) passed, $failed failed, $((SECONDS - start))s"
    total_passed=$((total_passed + ran - failed))
    total_failed=$((total_failed + failed))
    [ "$failed" -eq 0 ] || status=1
    # Every listed name ran (bats prints "ok N NAME in Tms").
    local name
    while IFS= read -r name; do
        if ! sed -E 's/^(not )?ok [0-9]+ //; s/ in [0-9]+ms$//' "$tap" |
            grep -Fxq -- "$name"; then
            echo "   listed in $CASES but did not run: $name"
            total_failed=$((total_failed + 1))
            status=1
        fi
    done <<<"$want"
}

wrap client "$ROOT/build/client"
wrap test_line "$ROOT/build/tests/test_line"
for step in "$@"; do
    wrap "$step-server" "$ROOT/build/$step/server"
    wrap "$step-server-sigkill" "$ROOT/build/$step/server" "$KILLED_LOGS"
done

SECONDS=0
TEST_LINE=$OUT/bin/test_line run_suite unit tests/unit/line.bats
CLIENT=$OUT/bin/client run_suite client tests/step01/client.bats
for step in "$@"; do
    files=()
    for f in tests/"$step"/*.bats; do
        [ "$(basename "$f")" = client.bats ] || files+=("$f")
    done
    SERVER=$OUT/bin/$step-server run_suite "$step" "${files[@]}"
    SERVER=$OUT/bin/$step-server-sigkill run_suite "$step-sigkill" "${files[@]}"
done
echo "== cases took ${SECONDS}s"

# check_logs [--sigkilled] DIR: one more case, the logs of DIR.
check_logs() {
    if bash tests/valgrind/check-logs.sh "$@"; then
        total_passed=$((total_passed + 1))
    else
        total_failed=$((total_failed + 1))
        status=1
    fi
}
check_logs "$LOGS"
if [ -n "$(ls -A "$KILLED_LOGS")" ]; then
    check_logs --sigkilled "$KILLED_LOGS"
fi
echo "valgrind: $total_passed passed, $total_failed failed"
exit $status
