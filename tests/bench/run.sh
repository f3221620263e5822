#!/usr/bin/env bash
# The benchmark behind `make bench`: every chapter under the same load.
#
#   tests/bench/run.sh          the full matrix, median of 3 (<= 10 minutes)
#   QUICK=1 tests/bench/run.sh  a smoke run (< 1 minute): figures produced,
#                               exactness checked, no speed thresholds
#
# For each chapter that builds (build/stepNN/server), a fresh server is
# started on 127.0.0.1 port 0 for each measurement and stopped after it;
# build/bench/loadgen (tests/bench/loadgen.c) is the load:
#
#   fanout  (clients, senders) = (10,1) (100,1) (100,10) (1000,10), 32-byte
#           payloads, window 64, each run bounded by SEND_S seconds of
#           sending; every delivery is checked (exactly once, in order,
#           byte-exact)
#   connect N clients join; clients per second
#   hold    N idle clients; proportional set size (Pss) of the server and
#           all its children, minus the idle server's, per client
#
# Output: build/bench/results.csv, build/bench/results.md, build/bench/runs.log
# (every loadgen line), build/bench/*.png when gnuplot is available.
# Exit status 1 if any run was not exact or did not finish, 0 otherwise.
set -euo pipefail
# Pause between two looks at a condition; every such loop is bounded.
POLL_S=0.05

cd "$(dirname "$0")/../.."
OUT=build/bench
LOADGEN=$OUT/loadgen
QUICK=${QUICK:-0}
HOST=127.0.0.1

if [ "$QUICK" = 1 ]; then
    MATRIX=("10 1" "100 10")
    REPS=1
    SEND_S=0.3
    MESSAGES=20000
    CONNECT_N=100
    HOLD_N=100
    DEADLINE=20
else
    MATRIX=("10 1" "100 1" "100 10" "1000 10")
    REPS=3
    SEND_S=1.5
    MESSAGES=1000000
    CONNECT_N=1000
    HOLD_N=1000
    DEADLINE=40
fi
BYTES=32
WINDOW=64

SRV_PID=
GEN_PID=
FAILED=0

# log MESSAGE...: progress on stderr.
log() { printf 'bench: [%3ds] %s\n' "$SECONDS" "$*" >&2; }

# descendants PID: every process whose parent is PID (one level: the
# chapters fork children of the server, never grandchildren that matter).
descendants() {
    # getline, not awk's own file loop: a process may exit between the
    # glob and the read, and a missing file must not end the scan.
    awk -v parent="$1" 'BEGIN {
        for (i = 1; i < ARGC; i++) {
            if ((getline line < ARGV[i]) > 0) {
                split(substr(line, index(line, ") ") + 2), f, " ")
                if (f[2] == parent) { split(ARGV[i], p, "/"); print p[3] }
            }
            close(ARGV[i])
        }
    }' /proc/[0-9]*/stat
}

# pss_kib PID: proportional set size of PID and its children, in KiB;
# shared memory mapped by many processes is counted once in total.
pss_kib() {
    local files=() p
    for p in "$1" $(descendants "$1"); do
        files+=("/proc/$p/smaps_rollup")
    done
    awk 'BEGIN {
        for (i = 1; i < ARGC; i++) {
            while ((getline line < ARGV[i]) > 0)
                if (line ~ /^Pss:/) { split(line, f, " "); t += f[2]; break }
            close(ARGV[i])
        }
        print t + 0
    }' "${files[@]}"
}

# stop_server [now]: SIGTERM and up to 5 s for a graceful exit (or, with
# "now", no grace at all), then SIGKILL to the server's whole process group:
# children included, so no server process outlives the benchmark. A server
# that failed a run may have a thousand busy children starving everything
# else; one signal to the group ends them all at once.
stop_server() {
    [ -n "$SRV_PID" ] || return 0
    local i
    if [ "${1:-}" != now ]; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep "$POLL_S"
        done
        if kill -0 "$SRV_PID" 2>/dev/null; then
            log "server $SRV_PID did not stop in 5 s; killing it"
        fi
    fi
    kill -KILL -- "-$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}

cleanup() {
    if [ -n "$GEN_PID" ]; then
        kill -TERM "$GEN_PID" 2>/dev/null || true
        wait "$GEN_PID" 2>/dev/null || true
    fi
    stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server BINARY USERS LOG: starts it on port 0 and sets SRV_PID and
# SRV_PORT from its `listening on` line (5 s deadline).
start_server() {
    local bin=$1 users=$2 logf=$3 i line
    : >"$OUT/server.out"
    # Its own process group (setsid execs it: same pid), for stop_server.
    setsid "$bin" -n "$users" "$HOST" 0 >"$OUT/server.out" 2>>"$logf" 3>&- &
    SRV_PID=$!
    for ((i = 0; i < 100; i++)); do
        line=$(grep -m1 '^listening on ' "$OUT/server.out" || true)
        if [ -n "$line" ]; then
            SRV_PORT=${line##*:}
            return 0
        fi
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep "$POLL_S"
    done
    log "$bin did not print its listening line; see $logf"
    stop_server
    return 1
}

# field LINE KEY: the value of KEY=value in a loadgen result line.
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# loadgen ARGS...: runs one load against the current server, appends its
# result line to runs.log and prints it; a failed run is counted.
loadgen() {
    local line rc=0
    # loadgen gives up at its deadline; timeout is the backstop for a
    # generator starved of CPU by a server that spins.
    line=$(timeout -s KILL $((DEADLINE + 20)) \
        "$LOADGEN" -d "$DEADLINE" -P "$SRV_PID" "$@" "$HOST" "$SRV_PORT" \
        2>>"$OUT/loadgen.log" | tail -n 1) || rc=$?
    [ -n "$line" ] || line="mode=? ok=0"
    echo "$CHAPTER $line" >>"$OUT/runs.log"
    if [ "$rc" != 0 ] || [ "$(field "$line" ok)" != 1 ]; then
        log "$CHAPTER: FAILED: loadgen $* (see $OUT/loadgen.log)"
        FAILED=1
    fi
    echo "$line"
}

# ---- build -----------------------------------------------------------------

mkdir -p "$OUT"
rm -f "$OUT"/results.csv "$OUT"/results.md "$OUT"/runs.log "$OUT"/loadgen.log \
    "$OUT"/server-*.log "$OUT"/*.dat "$OUT"/*.png
CHAPTERS=()
for dir in step0[0-9]_*/; do
    step=${dir%%_*}
    # BENCH_STEPS="step02 step04" benchmarks only those chapters.
    case " ${BENCH_STEPS:-$step} " in *" $step "*) ;; *) continue ;; esac
    if make --no-print-directory "$step" >"$OUT/make-$step.log" 2>&1; then
        CHAPTERS+=("$step")
    else
        log "$step does not build; left out (see $OUT/make-$step.log)"
    fi
done
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow \
    -Wstrict-prototypes -Wmissing-prototypes -Werror -Icommon \
    common/log.c common/net.c tests/bench/loadgen.c -o "$LOADGEN"

echo "chapter,mode,clients,senders,runs,ok,deliveries,seconds,deliveries_per_s,p50_us,p99_us,p999_us,max_us,srv_cpu_s_per_M,gen_cpu_s_per_M,connects_per_s,pss_kib_total,pss_kib_per_client" \
    >"$OUT/results.csv"

# csv_fanout CHAPTER CLIENTS SENDERS RUNS OK LINE: one CSV row.
csv_fanout() {
    local l=$6 d
    d=$(field "$l" deliveries)
    awk -v c="$1" -v n="$2" -v s="$3" -v r="$4" -v ok="$5" -v d="$d" \
        -v sec="$(field "$l" seconds)" -v dps="$(field "$l" deliveries_per_s)" \
        -v p50="$(field "$l" p50_us)" -v p99="$(field "$l" p99_us)" \
        -v p999="$(field "$l" p999_us)" -v mx="$(field "$l" max_us)" \
        -v scpu="$(field "$l" srv_cpu_s)" -v gcpu="$(field "$l" gen_cpu_s)" \
        'BEGIN { m = d > 0 ? d / 1e6 : 1;
                 printf "%s,fanout,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%.3f,%.3f,,,\n",
                        c, n, s, r, ok, d, sec, dps, p50, p99, p999, mx,
                        (d > 0 ? scpu / m : 0), (d > 0 ? gcpu / m : 0) }' \
        >>"$OUT/results.csv"
}

# ---- the matrix --------------------------------------------------------------

for CHAPTER in "${CHAPTERS[@]}"; do
    BIN=build/$CHAPTER/server
    SLOG=$OUT/server-$CHAPTER.log

    for cfg in "${MATRIX[@]}"; do
        read -r n s <<<"$cfg"
        log "$CHAPTER: fanout clients=$n senders=$s x$REPS"
        # Room for a previous run's clients that the server has not yet
        # seen leave, and no more: step 2 scans every slot per message.
        start_server "$BIN" $((2 * n + 16)) "$SLOG" || { FAILED=1; continue; }
        lines=()
        allok=1
        for ((rep = 0; rep < REPS; rep++)); do
            line=$(loadgen -m fanout -n "$n" -s "$s" -M "$MESSAGES" \
                -b "$BYTES" -w "$WINDOW" -T "$SEND_S")
            lines+=("$line")
            if [ "$(field "$line" ok)" != 1 ]; then
                allok=0
                stop_server now
                break # a server that failed once is not timed again
            fi
        done
        stop_server
        if [ "$allok" = 1 ]; then
            # The run with the median deliveries/s stands for the three.
            median=$(for l in "${lines[@]}"; do
                echo "$(field "$l" deliveries_per_s) $l"
            done | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }')
            median=${median#* }
        else
            median=${lines[-1]}
        fi
        csv_fanout "$CHAPTER" "$n" "$s" "${#lines[@]}" "$allok" "$median"
    done

    # Chapter 3 forks a process per client: keep it at <= 1000 clients.
    log "$CHAPTER: connect $CONNECT_N clients"
    if start_server "$BIN" $((CONNECT_N + 16)) "$SLOG"; then
        line=$(loadgen -m connect -n "$CONNECT_N")
        stop_server
        echo "$CHAPTER,connect,$CONNECT_N,0,1,$(field "$line" ok),,,,,,,,,,$(field "$line" connects_per_s),," \
            >>"$OUT/results.csv"
    else
        FAILED=1
    fi

    log "$CHAPTER: hold $HOLD_N idle clients"
    if start_server "$BIN" $((HOLD_N + 16)) "$SLOG"; then
        base=$(pss_kib "$SRV_PID")
        "$LOADGEN" -m hold -n "$HOLD_N" -t 60 -d 120 "$HOST" "$SRV_PORT" \
            >"$OUT/hold.out" 2>>"$OUT/loadgen.log" &
        GEN_PID=$!
        held=0
        for ((i = 0; i < 1200; i++)); do
            if grep -q '^holding ' "$OUT/hold.out"; then
                held=1
                break
            fi
            kill -0 "$GEN_PID" 2>/dev/null || break
            sleep "$POLL_S"
        done
        total=$(pss_kib "$SRV_PID")
        kill -TERM "$GEN_PID" 2>/dev/null || true
        wait "$GEN_PID" || held=0
        GEN_PID=
        line=$(tail -n 1 "$OUT/hold.out")
        echo "$CHAPTER $line" >>"$OUT/runs.log"
        stop_server
        if [ "$held" = 1 ] && [ "$(field "$line" ok)" = 1 ]; then
            per=$(awk -v t="$total" -v b="$base" -v n="$HOLD_N" \
                'BEGIN { printf "%.2f", (t - b) / n }')
            echo "$CHAPTER,hold,$HOLD_N,0,1,1,,,,,,,,,,,$total,$per" >>"$OUT/results.csv"
        else
            log "$CHAPTER: FAILED: hold of $HOLD_N clients"
            FAILED=1
            echo "$CHAPTER,hold,$HOLD_N,0,1,0,,,,,,,,,,,," >>"$OUT/results.csv"
        fi
    else
        FAILED=1
    fi
done

# ---- the table -----------------------------------------------------------------

awk -F, -v quick="$QUICK" '
NR == 1 { next }
$2 == "fanout" {
    f[++nf] = sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
        $1, $3, $4, ($6 == 1 ? sprintf("%.0f", $9) : "FAILED"),
        $10, $11, $12, $13, $14, $15, ($6 == 1 ? "yes" : "**no**"))
}
!($1 in seen) { seen[$1] = 1; names[++nc] = $1 }
$2 == "connect" { conn[$1] = ($6 == 1 ? sprintf("%.0f (%s clients)", $16, $3) : "FAILED") }
$2 == "hold" { hold[$1] = ($6 == 1 ? sprintf("%.1f (%s clients)", $18, $3) : "FAILED");
               tot[$1] = ($6 == 1 ? sprintf("%.0f", $17 / 1024) : "-") }
END {
    printf "Fan-out: 32-byte messages, window 64, %s.\n\n",
        (quick == 1 ? "one short run each (QUICK=1)" : "median of 3 runs")
    print "| chapter | clients | senders | deliveries/s | p50 µs | p99 µs | p99.9 µs | max µs | server CPU s per M deliveries | generator CPU s per M deliveries | exact |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for (i = 1; i <= nf; i++) print f[i]
    print ""
    print "| chapter | connects/s | idle Pss KiB per client | server Pss MiB while holding |"
    print "|---|---:|---:|---:|"
    for (i = 1; i <= nc; i++) printf "| %s | %s | %s | %s |\n", names[i], conn[names[i]], hold[names[i]], tot[names[i]]
}' "$OUT/results.csv" >"$OUT/results.md"

# ---- the plots -------------------------------------------------------------------

if ! command -v gnuplot >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing gnuplot-nox for the plots"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox \
        >"$OUT/apt.log" 2>&1 || log "gnuplot could not be installed; no plots"
fi
if command -v gnuplot >/dev/null 2>&1; then
    plots=()
    for c in "${CHAPTERS[@]}"; do
        awk -F, -v c="$c" '$1 == c && $2 == "fanout" && $6 == 1 {
            printf "%s/%s %s %s\n", $3, $4, $9, $11 }' "$OUT/results.csv" >"$OUT/$c.dat"
        [ -s "$OUT/$c.dat" ] && plots+=("$c")
    done
    awk -F, '$2 == "hold" && $6 == 1 { print $1, $18 }' "$OUT/results.csv" >"$OUT/memory.dat"
    if [ "${#plots[@]}" -gt 0 ]; then
        dps="" p99=""
        for c in "${plots[@]}"; do
            dps+="'$OUT/$c.dat' using 0:2:xtic(1) with linespoints title '$c', "
            p99+="'$OUT/$c.dat' using 0:3:xtic(1) with linespoints title '$c', "
        done
        gnuplot <<EOF || log "gnuplot failed; no plots"
set terminal pngcairo size 800,500 noenhanced
set grid
set key left top
set xlabel 'clients/senders'
set output '$OUT/deliveries.png'
set ylabel 'deliveries per second'
set logscale y
plot ${dps%, }
set output '$OUT/p99.png'
set ylabel 'p99 latency (µs)'
plot ${p99%, }
unset logscale y
set output '$OUT/memory.png'
set ylabel 'Pss per idle client (KiB)'
set xlabel 'chapter'
set style fill solid 0.5
set boxwidth 0.6
set yrange [0:*]
plot '$OUT/memory.dat' using 0:2:xtic(1) with boxes notitle
EOF
    fi
else
    log "gnuplot is not installed; no plots"
fi

cat "$OUT/results.md"
log "results: $OUT/results.csv $OUT/results.md"
if [ "$FAILED" != 0 ]; then
    log "some runs failed (exactness or deadline): see $OUT/runs.log and $OUT/loadgen.log"
    exit 1
fi
