#!/usr/bin/env bash
# Where a chapter spends its CPU under the benchmark's fan-out load:
#
#   tests/bench/profile.sh stepNN [CLIENTS [SENDERS [SECONDS]]]
#       (default 1000 clients, 10 senders, 2 seconds of recording)
#
# Starts the chapter's server on 127.0.0.1 port 0, lets build/bench/loadgen
# join the clients and send for SECONDS + 2 s, and
# records every CPU with `perf record -a -g` while the messages flow. The
# report keeps the samples of the server's processes only (parent, children
# and workers all run as `server`): build/bench/profile-stepNN.txt, the
# symbols by self time, then with their callers.
# Run it on an otherwise idle machine, like any benchmark.
set -euo pipefail
step=${1:?usage: profile.sh stepNN [CLIENTS [SENDERS [SECONDS]]]}
clients=${2:-1000}
senders=${3:-10}
secs=${4:-2}
POLL_S=0.05

cd "$(dirname "$0")/../.."
OUT=build/bench
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }
make --no-print-directory "$step" >/dev/null
mkdir -p "$OUT"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Icommon \
    common/log.c common/net.c tests/bench/resp.c tests/bench/loadgen.c \
    -o "$OUT/loadgen"

srv_pid=''
gen_pid=''
cleanup() {
    [ -z "$gen_pid" ] || kill -TERM "$gen_pid" 2>/dev/null || true
    [ -z "$srv_pid" ] || kill -TERM "$srv_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

: >"$OUT/profile-server.out"
"build/$step/server" -n $((clients + 16)) 127.0.0.1 0 \
    >"$OUT/profile-server.out" 2>"$OUT/profile-server.log" 3>&- &
srv_pid=$!
port=
for ((i = 0; i < 100; i++)); do
    port=$(sed -n 's/^listening on .*://p' "$OUT/profile-server.out")
    [ -z "$port" ] || break
    sleep "$POLL_S"
done
[ -n "$port" ] || { echo "profile.sh: $step did not start" >&2; exit 1; }

: >"$OUT/profile-loadgen.out"
"$OUT/loadgen" -m fanout -n "$clients" -s "$senders" -M 1000000000 \
    -T $((secs + 2)) -d 60 -P "$srv_pid" 127.0.0.1 "$port" \
    >"$OUT/profile-loadgen.out" 2>"$OUT/profile-loadgen.log" 3>&- &
gen_pid=$!
for ((i = 0; i < 1200; i++)); do
    grep -q '^sending ' "$OUT/profile-loadgen.out" && break
    kill -0 "$gen_pid" 2>/dev/null || break
    sleep "$POLL_S"
done
grep -q '^sending ' "$OUT/profile-loadgen.out" ||
    { echo "profile.sh: the clients did not join" >&2; exit 1; }

perf record -q -a -g -o "$OUT/perf-$step.data" -- sleep "$secs" 2>/dev/null
wait "$gen_pid" || echo "profile.sh: the load failed (see $OUT/profile-loadgen.log)" >&2
gen_pid=
tail -n 1 "$OUT/profile-loadgen.out"

{
    echo "# $step, $clients clients, $senders senders: $(tail -n 1 "$OUT/profile-loadgen.out")"
    echo "# self time by symbol, server processes only"
    perf report -i "$OUT/perf-$step.data" --comm server --no-children \
        --sort sym --stdio -g none 2>/dev/null | grep -v '^$' | head -n 45
    echo
    echo "# the same with callers (children included)"
    perf report -i "$OUT/perf-$step.data" --comm server --children \
        --sort sym --stdio -g caller,0.5,callee --percent-limit 3 2>/dev/null |
        grep -v '^$' | head -n 150
} >"$OUT/profile-$step.txt"
echo "profile: $OUT/profile-$step.txt"
