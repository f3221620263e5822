#!/usr/bin/env bash
# Reads every valgrind log in a directory (one per process, as
# tests/valgrind/memcheck.sh writes them) and says whether memcheck found
# anything. The policy (tests/lint/README.md):
#
#   - any memcheck error (invalid read or write, use of an uninitialised
#     value, bad free, overlapping copy, bad system call argument) fails;
#   - memory definitely or indirectly lost when a process exits fails,
#     in the parent and in every forked child alike;
#   - "possibly lost" is shown in the log but does not fail (interior
#     pointers; none are expected, and every one is looked at);
#   - "still reachable" does not fail: memory a process still points to
#     when it exits, e.g. the parent's tables a forked child inherited
#     and leaves with _exit; the kernel takes it back;
#   - a log without a final report fails: the process was killed by
#     SIGKILL (or valgrind died), so nothing was checked at its exit --
#     unless --sigkilled says the cases killed processes on purpose: such
#     logs are counted, and the errors they show before the kill still fail.
#
#   tests/valgrind/check-logs.sh [--sigkilled] DIR
set -u
sigkilled=
if [ "${1:-}" = --sigkilled ]; then
    sigkilled=1
    shift
fi
dir=${1:?usage: check-logs.sh [--sigkilled] DIR}

shopt -s nullglob
logs=("$dir"/*.log)
if [ "${#logs[@]}" -eq 0 ]; then
    echo "valgrind: no logs in $dir: nothing was checked" >&2
    exit 1
fi

procs=0 forked=0 errors=0 definite=0 indirect=0 possible=0 incomplete=0
bad=()
declare -A pids=()
for log in "${logs[@]}"; do # TAG.PID.log
    base=${log%.log}
    pids[${base##*.}]=1
done
for log in "${logs[@]}"; do
    procs=$((procs + 1))
    parent=$(sed -nE 's/^==[0-9]+== Parent PID: ([0-9]+)$/\1/p' "$log")
    # A forked child's parent is a process that valgrind also logged.
    if [ -n "$parent" ] && [ -n "${pids[$parent]:-}" ]; then
        forked=$((forked + 1))
    fi
    summary=$(grep -E '== ERROR SUMMARY: [0-9]+ errors' "$log")
    if [ -z "$summary" ]; then
        incomplete=$((incomplete + 1))
        # Errors are written as they happen: "Invalid read", "Conditional
        # jump"... each opens with a line of its own after the pid.
        e=$(grep -cE '^==[0-9]+== (Invalid|Conditional|Use of|Syscall param|Mismatched|Source and destination|Argument|Jump to)' "$log")
        errors=$((errors + e))
        if [ "$e" -ne 0 ]; then
            bad+=("$log: $e errors before it was killed")
        elif [ -z "$sigkilled" ]; then
            bad+=("$log: no final report (killed with SIGKILL?)")
        fi
        continue
    fi
    e=$(echo "$summary" | sed -nE 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/p')
    # The LEAK SUMMARY's bytes per kind; none when all blocks were freed.
    d=$(sed -nE 's/.*definitely lost: ([0-9,]+) bytes.*/\1/p' "$log" | tr -d ,)
    i=$(sed -nE 's/.*indirectly lost: ([0-9,]+) bytes.*/\1/p' "$log" | tr -d ,)
    p=$(sed -nE 's/.*possibly lost: ([0-9,]+) bytes.*/\1/p' "$log" | tr -d ,)
    d=${d:-0} i=${i:-0} p=${p:-0}
    errors=$((errors + e))
    definite=$((definite + d))
    indirect=$((indirect + i))
    possible=$((possible + p))
    if [ "$e" -ne 0 ] || [ "$d" -ne 0 ] || [ "$i" -ne 0 ]; then
        bad+=("$log: $e errors, $d bytes definitely and $i indirectly lost")
    fi
    if [ "$p" -ne 0 ]; then
        echo "note: $log: $p bytes possibly lost (not a failure; look at it)"
    fi
done

what="without a final report"
[ -z "$sigkilled" ] || what="SIGKILLed by the cases, on purpose"
echo "valgrind: $dir: $procs processes checked ($forked of them forked children):" \
    "$errors errors, $definite bytes definitely lost, $indirect indirectly lost," \
    "$possible possibly lost, $incomplete $what"
if [ "${#bad[@]}" -gt 0 ]; then
    printf '  %s\n' "${bad[@]}" | head -n 40
    echo "valgrind: FAILED (each log above names the process; read it for the stacks)"
    exit 1
fi
echo "valgrind: clean"
