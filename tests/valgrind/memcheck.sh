#!/usr/bin/env bash
# Runs one program under valgrind memcheck, the way `make valgrind` wants
# it: one log per process (forked children included) in $VG_LOG_DIR,
# named after $VG_TAG and the pid.
#
#   tests/valgrind/memcheck.sh PROGRAM [ARGS...]
#
# It execs valgrind, so the pid the caller sees is the program's: a
# signal sent to it reaches the program, and valgrind writes its final
# report when the program exits (not when it is SIGKILLed).
# VG_EXTRA adds options (e.g. VG_EXTRA=--track-origins=yes).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${VG_LOG_DIR:=$here/../../build/valgrind}"
: "${VG_TAG:=$(basename "$1")}"
mkdir -p "$VG_LOG_DIR" || exit 1
# shellcheck disable=SC2086 # VG_EXTRA is a list of options
exec valgrind --tool=memcheck \
    --trace-children=yes --child-silent-after-fork=no \
    --log-file="$VG_LOG_DIR/$VG_TAG.%p.log" \
    --error-exitcode=97 \
    --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect \
    --num-callers=30 \
    --suppressions="$here/valgrind.supp" \
    ${VG_EXTRA:-} \
    -- "$@"
