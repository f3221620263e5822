#!/usr/bin/env bash
# Line and branch coverage of common/ by the fuzz corpus: each libFuzzer
# target is rebuilt with clang's source-based coverage, replays its
# committed seeds and whatever `make fuzz` has found (build/fuzz/corpus/),
# and llvm-cov reports per file.
#
#   bash tests/fuzz/coverage.sh        (after make fuzz, for a full corpus)
#
# Output goes to build/fuzz/coverage/; the table is printed. Needs clang
# and llvm-cov/llvm-profdata of the same version (Debian: llvm).
set -u
cd "$(dirname "$0")/../.." || exit 1

OUT=build/fuzz/coverage
CC=${FUZZ_CC:-clang}
FLAGS=(-std=c11 -D_GNU_SOURCE -Icommon -g -O0 -fsanitize=fuzzer
    -fprofile-instr-generate -fcoverage-mapping)
declare -A SRCS=(
    [line]="common/line.c"
    [args]="common/args.c common/net.c common/log.c"
    [net]="common/net.c"
    [outq]="common/outq.c"
)
rm -rf "$OUT"
mkdir -p "$OUT"
objects=()
for t in line args net outq; do
    wrap=()
    [ "$t" = outq ] && wrap=("-Wl,--wrap=send,--wrap=malloc")
    # shellcheck disable=SC2086 # one word per source file
    "$CC" "${FLAGS[@]}" "${wrap[@]}" -o "$OUT/fuzz_$t" \
        "tests/fuzz/fuzz_$t.c" ${SRCS[$t]} || exit 1
    mkdir -p "build/fuzz/corpus/$t"
    LLVM_PROFILE_FILE="$OUT/$t.profraw" "$OUT/fuzz_$t" -runs=0 \
        "build/fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$OUT/$t.log" 2>&1 ||
        exit 1
    objects+=(-object "$OUT/fuzz_$t")
done
llvm-profdata merge -sparse "$OUT"/*.profraw -o "$OUT/all.profdata" || exit 1
# The first -object is positional for llvm-cov; the others are named.
first=${objects[1]}
llvm-cov report "$first" "${objects[@]:2}" -instr-profile="$OUT/all.profdata" \
    common/line.c common/args.c common/net.c common/outq.c |
    tee "$OUT/report.txt"
