#!/usr/bin/env bash
# What `make fuzz` runs once everything is built (make fuzz-build):
#
#   1. each libFuzzer target (build/fuzz/fuzz_*) for FUZZ_SECONDS, starting
#      from its committed seeds (tests/fuzz/corpus/<target>/) and from what
#      earlier runs found (build/fuzz/corpus/<target>/);
#   2. the protocol fuzzer (build/fuzz/protofuzz) for FUZZ_SECONDS against
#      each chapter named on the command line.
#
#   tests/fuzz/run.sh step01 step02 ...
#
# Environment:
#   FUZZ_SECONDS   time per target and per chapter (default 60)
#   FUZZ_SEED      the protocol fuzzer's seed (default: a new one, printed)
#   FUZZ_TARGETS   libFuzzer targets to run (default "line args net outq";
#                  "" for none)
#   FUZZ_SERVERS   build directory of the servers (default build/san: the
#                  sanitizer build, so memory errors the input provokes
#                  are caught)
#   SERVER         one server binary to fuzz instead (name one chapter, so
#                  the fuzzer knows which signals it must take)
#
# Per target it prints executions, corpus size and coverage; per chapter
# the protocol fuzzer's figures; then one closing line "fuzz: N passed,
# N failed". A crash, a sanitizer report or a failed check is a failure:
# its input is kept in build/fuzz/artifacts/ (libFuzzer) or its seed is
# printed (protocol fuzzer), and the exit status is 1.
set -u
cd "$(dirname "$0")/../.." || exit 1

SECS=${FUZZ_SECONDS:-60}
FZ=build/fuzz
TARGETS=${FUZZ_TARGETS-line args net outq}
SERVERS=${FUZZ_SERVERS:-build/san}
passed=0 failed=0
mkdir -p "$FZ/artifacts"

# Longest input per target: lines long enough for several pieces.
declare -A MAX_LEN=([line]=8192 [args]=512 [net]=256 [outq]=4096)

# stat LOG NAME: a value of libFuzzer's closing statistics.
stat() {
    sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

for t in $TARGETS; do
    bin=$FZ/fuzz_$t
    log=$FZ/fuzz_$t.log
    mkdir -p "$FZ/corpus/$t"
    # The first directory receives new inputs; the committed seeds are
    # only read.
    "$bin" -max_total_time="$SECS" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -max_len="${MAX_LEN[$t]:-4096}" \
        -artifact_prefix="$FZ/artifacts/$t-" \
        "$FZ/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    # "#123 DONE cov: 301 ft: 1133 corp: 207/21Kb ..." (or the last pulse)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -nE 's/.* cov: ([0-9]+).*/\1/p')
    ft=$(echo "$last" | sed -nE 's/.* ft: ([0-9]+).*/\1/p')
    corp=$(echo "$last" | sed -nE 's/.* corp: ([0-9]+).*/\1/p')
    execs=$(stat "$log" number_of_executed_units)
    rate=$(stat "$log" average_exec_per_sec)
    printf 'fuzz_%s: %s executions (%s/s), corpus %s inputs, coverage %s edges, %s features\n' \
        "$t" "${execs:-?}" "${rate:-?}" "${corp:-?}" "${cov:-?}" "${ft:-?}"
    if [ "$rc" -ne 0 ]; then
        echo "fuzz_$t: FAILED (exit $rc); the input is in $FZ/artifacts/; log $log:"
        grep -E 'fuzz_|ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 20
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
done

for step in "$@"; do
    n=${step#step}
    n=${n#0}
    server=${SERVER:-$SERVERS/$step/server}
    # Room for every client of a round; the pool gets three workers so
    # that messages cross workers whatever the machine's CPU count.
    args=(-n 64)
    [ "$n" -ge 4 ] && args+=(-w 3)
    log=$FZ/protofuzz-$step.log
    echo "protofuzz $step: $server ${args[*]}, $SECS s"
    build/fuzz/protofuzz -q -t "$SECS" -S "$n" ${FUZZ_SEED:+-s "$FUZZ_SEED"} \
        "$server" "${args[@]}" >"$log" 2>&1
    rc=$?
    grep -E '^protofuzz: (seed|passed)' "$log" | sed 's/^/  /'
    if [ "$rc" -ne 0 ]; then
        echo "protofuzz $step: FAILED (exit $rc); log $log:"
        grep -vE '^round ' "$log" | head -n 60
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
