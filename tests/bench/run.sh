#!/usr/bin/env bash
# The benchmark behind `make bench`: every chapter under the same load, and
# beside them two yardsticks: a plain single-process epoll chat server
# (tests/bench/plain_epoll.c, `plain`) and Redis pub/sub.
#
#   tests/bench/run.sh          the full matrix, median of 3 (<= 10 minutes)
#   QUICK=1 tests/bench/run.sh  a smoke run (< 1 minute): figures produced,
#                               exactness checked, no speed thresholds
#   BENCH_STEPS="step02 plain redis"  only the servers named
#   BENCH_ROWS="flood flood10"        only the rows named (below; default:
#                                     all of fanout limit paced connect
#                                     flood flood10 hold)
#
# For each chapter that builds (build/stepNN/server), a fresh server is
# started on 127.0.0.1 port 0 for each measurement and stopped after it.
# In the fanout and limit rows the servers take turns, one run each per
# round, three rounds (turns()): the ratios between them are the figures,
# and a slow spell of the machine then falls on all of them alike.
# Redis (redis-server, installed from apt when missing and run as root) is
# started the same way on a free loopback port, with no configuration file
# and persistence off. build/bench/loadgen (tests/bench/loadgen.c) is the
# load:
#
#   fanout  (clients, senders) = (10,1) (100,1) (100,10) (1000,10) (5000,10),
#           32-byte payloads, window 64, each run bounded by SEND_S seconds
#           of sending; every delivery is checked (exactly once, in order,
#           byte-exact). Redis: the clients are subscribers of one channel,
#           each sender publishes through a connection of its own.
#   limit   every chapter: the fanout row (100,10) with -n 116 and with
#           -n 100000, and the server's Pss before anyone joins
#   paced   (100,10) at 1 M deliveries/s, each message timed from its
#           scheduled send time: latency at a load every server can carry
#   connect N clients join; clients per second
#   hold    N idle clients (10,000 where a server can hold them cheaply);
#           proportional set size (Pss) of the server and all its children,
#           minus that of the same server idle with a room of 16, per client
#   flood   chapters only (build/bench/flood, tests/bench/flood.c): one
#           sender sends FLOOD_LINES lines of 1,000 bytes at full speed, one
#           reader reads as fast as it can, one at 2 MB/s, and a short line
#           said in the middle is timed to the fast reader; every line
#           checked exactly once, in order. (The plain server has no flow
#           control and drops the steady reader by design; Redis drops a
#           subscriber past its output buffer limit: neither is run.)
#   flood10 chapters and Redis (flood.c again): one sender sends
#           FLOOD_LINES lines of 1,000 bytes at full speed to
#           FLOOD10_READERS readers, each reading as fast as it can; the
#           sender's achieved rate (until the server had its last line),
#           readers complete (every line exactly once, in order) and
#           readers dropped (connection closed before the last line, or
#           announced as left). Redis: the readers subscribe to one
#           channel, the sender publishes through a connection of its own;
#           Redis drops a subscriber past its client output buffer limit
#           (pubsub 32mb 8mb 60 by default), and such a drop is a figure,
#           not a failure. A chapter that drops a reader fails the run.
#
# Output: build/bench/results.csv, build/bench/flood.csv,
# build/bench/flood10.csv, build/bench/results.md, build/bench/runs.log
# (every loadgen line), build/bench/*.png (gnuplot, installed from apt when
# missing and run as root).
# Exit status 1 if any run was not exact or did not finish, 0 otherwise:
# never because of a speed.
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
    PACED_S=0.5
    CONNECT_N=100
    HOLD_N=100
    HOLD_BIG=100
    FLOOD_LINES=2000
    DEADLINE=20
else
    MATRIX=("10 1" "100 1" "100 10" "1000 10" "5000 10")
    REPS=3
    SEND_S=1.5
    PACED_S=2
    CONNECT_N=1000
    HOLD_N=1000
    HOLD_BIG=10000
    FLOOD_LINES=20972 # 20 MiB
    DEADLINE=40
fi
MESSAGES=1000000000
BYTES=32
WINDOW=64
# The paced run: this room, this many deliveries per second in all.
PACED_CLIENTS=100
PACED_SENDERS=10
PACED_DELIVERIES=1000000
# Who holds HOLD_BIG idle clients; the others hold HOLD_N (step 1 polls
# every descriptor on every pass, step 3 forks a process per client).
BIG_HOLDERS=" step02 step04 plain redis "
# The flood's steady reader, bytes per second.
FLOOD_RATE=2000000
# The flood10 row's readers.
FLOOD10_READERS=10

SRV_PID=
GEN_PID=
FAILED=0

# log MESSAGE...: progress on stderr.
log() { printf 'bench: [%3ds] %s\n' "$SECONDS" "$*" >&2; }

# row NAME: is row NAME to be run (BENCH_ROWS, every row by default)?
row() { case " ${BENCH_ROWS:-$1} " in *" $1 "*) return 0 ;; esac; return 1; }

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

# start_chapter BINARY USERS LOG: starts it on port 0 and sets SRV_PID and
# SRV_PORT from its `listening on` line (5 s deadline).
start_chapter() {
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

# free_port: a loopback TCP port nobody listens on, below the ephemeral
# range (where port-0 servers and outgoing connections take theirs).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        # /proc/net/tcp{,6}: local address as HEXADDR:HEXPORT, field 2.
        if ! awk -v p="$(printf '%04X' "$port")" \
            'NR > 1 { split($2, a, ":"); if (a[2] == p) found = 1 }
             END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# start_redis USERS LOG: starts our own redis-server on a free loopback port:
# no configuration file (its defaults, not the system's), no snapshots, no
# append-only file, room for USERS clients. Sets SRV_PID and SRV_PORT once it
# says it accepts connections; another port is tried if one was taken.
start_redis() {
    local users=$1 logf=$2 port try i
    mkdir -p "$OUT/redis"
    for ((try = 0; try < 5; try++)); do
        port=$(free_port)
        : >"$OUT/server.out"
        setsid redis-server --bind "$HOST" --port "$port" --save '' \
            --appendonly no --dir "$OUT/redis" --maxclients "$users" \
            --daemonize no --logfile '' >"$OUT/server.out" 2>>"$logf" 3>&- &
        SRV_PID=$!
        for ((i = 0; i < 100; i++)); do
            if grep -q 'Ready to accept connections' "$OUT/server.out"; then
                SRV_PORT=$port
                return 0
            fi
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep "$POLL_S"
        done
        cat "$OUT/server.out" >>"$logf"
        stop_server
        grep -q 'Address already in use' "$OUT/server.out" || break
    done
    log "redis-server did not start; see $logf"
    return 1
}

# start_target NAME USERS: starts chapter NAME (stepNN), the plain server or
# Redis for USERS clients, its stderr appended to build/bench/server-NAME.log.
start_target() {
    local logf=$OUT/server-$1.log
    if [ "$1" = plain ]; then
        start_chapter "$OUT/plain_epoll" "$2" "$logf"
    elif [ "$1" = redis ]; then
        # Its publishers are clients too; and some slack for the clients of
        # the previous run that Redis has not yet seen leave.
        start_redis $(($2 + 64)) "$logf"
    else
        start_chapter "build/$1/server" "$2" "$logf"
    fi
}

# proto NAME: the loadgen protocol a target speaks.
proto() { if [ "$1" = redis ]; then echo redis; else echo chat; fi; }

# field LINE KEY: the value of KEY=value in a loadgen result line.
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# loadgen ARGS...: runs one load against the current server, appends its
# result line to runs.log and prints it; a failed run is counted.
loadgen() {
    local line rc=0
    # loadgen gives up at its deadline; timeout is the backstop for a
    # generator starved of CPU by a server that spins.
    line=$(timeout -s KILL $((DEADLINE + 20)) \
        "$LOADGEN" -d "$DEADLINE" -P "$SRV_PID" -p "$(proto "$TARGET")" "$@" \
        "$HOST" "$SRV_PORT" 2>>"$OUT/loadgen.log" | tail -n 1) || rc=$?
    [ -n "$line" ] || line="mode=? ok=0"
    echo "$TARGET $line" >>"$OUT/runs.log"
    if [ "$rc" != 0 ] || [ "$(field "$line" ok)" != 1 ]; then
        log "$TARGET: FAILED: loadgen $* (see $OUT/loadgen.log)"
        FAILED=1
    fi
    echo "$line"
}

# median KEY LINE...: the line whose KEY is the median of the lines'.
median() {
    local key=$1 l
    shift
    for l in "$@"; do
        echo "$(field "$l" "$key") $l"
    done | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }' |
        cut -d' ' -f2-
}

# drained KIDS: waits, at most 30 s, until the server holds none of the
# last run's connections (in /proc/net/tcp: local port SRV_PORT, any state
# but LISTEN and TIME_WAIT, which is no user) and has no more processes
# than KIDS, its children before the first run (chapter 3's child per
# client is reaped, and its user's leave written, after its socket has
# closed). A repetition then starts in an empty room, as the first did,
# not among the last run's users on their way out, whom the room still
# counts against its limit and whose leaves it is still writing. (The
# paced row's; the rows that take turns start a server for every run.)
drained() {
    local kids=$1 hex i
    hex=$(printf '%04X' "$SRV_PORT")
    for ((i = 0; i < 600; i++)); do
        if awk -v p=":$hex" '$2 ~ p "$" && $4 != "0A" && $4 != "06" { n++ }
                END { exit n > 0 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null &&
            (($(pgrep -c -P "$SRV_PID" || true) <= kids)); then
            return 0
        fi
        sleep "$POLL_S"
    done
    log "$TARGET: the last run's users were still there after 30 s"
}

# reps KEY ARGS...: REPS runs of loadgen ARGS... against the current server,
# which it stops afterwards (at once after a failed run: a server that
# failed once is not timed again). Sets LINE to the run with the median
# KEY (the last run if one failed), RUNS to the runs made and ALLOK to 1 if
# every run was exact. Each repetition after the first waits until the
# last one's users are gone (drained).
reps() {
    local key=$1 rep line kids
    shift
    local lines=()
    ALLOK=1
    kids=$(pgrep -c -P "$SRV_PID" || true)
    for ((rep = 0; rep < REPS; rep++)); do
        ((rep == 0)) || drained "$kids"
        line=$(loadgen "$@")
        lines+=("$line")
        if [ "$(field "$line" ok)" != 1 ]; then
            ALLOK=0
            stop_server now
            break
        fi
    done
    stop_server
    RUNS=${#lines[@]}
    # loadgen ran in a command substitution: its count of failures is lost.
    [ "$ALLOK" = 1 ] || FAILED=1
    if [ "$ALLOK" = 1 ]; then
        LINE=$(median "$key" "${lines[@]}")
    else
        LINE=${lines[-1]}
    fi
}

# turns KEY ENTRY... -- ARGS...: REPS rounds of loadgen ARGS...; in each
# round every ENTRY ("TARGET USERS": a server and its -n) takes its turn,
# on a server started for the run and stopped after it. The servers take
# turns so that a slow spell of the machine falls on all of them alike:
# the ratios between them (to plain, to Redis, -n 116 to -n 100000) are
# the figures, and one server's three runs in a row had them swing by a
# fifth from one benchmark to the next. An entry that failed once is not
# timed again. Sets, by entry: T_LINE (the run with the median KEY, or
# the failed one), T_RUNS (runs made), T_OK (1 if every run was exact)
# and T_PSS (the server's Pss before anyone joined, at its first start).
turns() {
    local key=$1 e rep line users
    shift
    local entries=()
    while [ "$1" != -- ]; do
        entries+=("$1")
        shift
    done
    shift
    declare -gA T_LINE=() T_RUNS=() T_OK=() T_PSS=()
    local -A good=()
    local -a runs=()
    for e in "${entries[@]}"; do
        T_OK[$e]=1 T_RUNS[$e]=0 good[$e]=
    done
    for ((rep = 0; rep < REPS; rep++)); do
        for e in "${entries[@]}"; do
            [ "${T_OK[$e]}" = 1 ] || continue
            read -r TARGET users <<<"$e"
            if ! start_target "$TARGET" "$users"; then
                T_OK[$e]=0 T_LINE[$e]="mode=? ok=0"
                FAILED=1
                continue
            fi
            ((rep > 0)) || T_PSS[$e]=$(pss_kib "$SRV_PID")
            line=$(loadgen "$@")
            T_RUNS[$e]=$((T_RUNS[$e] + 1))
            if [ "$(field "$line" ok)" = 1 ]; then
                stop_server
                good[$e]+="$line"$'\n'
            else
                # loadgen ran in a command substitution: its count of
                # failures is lost.
                stop_server now
                T_OK[$e]=0 T_LINE[$e]=$line
                FAILED=1
            fi
        done
    done
    for e in "${entries[@]}"; do
        [ "${T_OK[$e]}" = 1 ] || continue
        mapfile -t runs <<<"${good[$e]%$'\n'}"
        T_LINE[$e]=$(median "$key" "${runs[@]}")
    done
}

# ---- build -----------------------------------------------------------------

mkdir -p "$OUT"
rm -f "$OUT"/results.csv "$OUT"/flood.csv "$OUT"/flood10.csv "$OUT"/results.md "$OUT"/runs.log "$OUT"/loadgen.log \
    "$OUT"/server-*.log "$OUT"/*.dat "$OUT"/*.png

# The tools: gnuplot for the plots, redis-server for the baseline.
if ! bash tests/deps.sh check gnuplot redis-server 2>/dev/null; then
    bash tests/deps.sh install gnuplot redis-server >"$OUT/apt.log" 2>&1 ||
        log "$(tail -n 2 "$OUT/apt.log" | tr '\n' ' ')"
fi

TARGETS=()
for dir in step0[0-9]_*/; do
    step=${dir%%_*}
    case " ${BENCH_STEPS:-$step} " in *" $step "*) ;; *) continue ;; esac
    if make --no-print-directory "$step" >"$OUT/make-$step.log" 2>&1; then
        TARGETS+=("$step")
    else
        log "$step does not build; left out (see $OUT/make-$step.log)"
    fi
done
case " ${BENCH_STEPS:-plain} " in
*" plain "*)
    if make --no-print-directory "$OUT/plain_epoll" >"$OUT/make-plain.log" 2>&1; then
        TARGETS+=(plain)
    else
        log "the plain epoll server does not build; left out (see $OUT/make-plain.log)"
    fi
    ;;
esac
case " ${BENCH_STEPS:-redis} " in
*" redis "*)
    if command -v redis-server >/dev/null 2>&1; then
        TARGETS+=(redis)
    else
        log "redis-server is missing: no baseline (as root: bash tests/deps.sh install gnuplot redis-server)"
    fi
    ;;
esac
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow \
    -Wstrict-prototypes -Wmissing-prototypes -Werror -Icommon \
    common/log.c common/net.c tests/bench/resp.c tests/bench/loadgen.c \
    -o "$LOADGEN"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow \
    -Wstrict-prototypes -Wmissing-prototypes -Werror -Icommon \
    common/log.c common/net.c tests/bench/resp.c tests/bench/flood.c \
    -o "$OUT/flood"
FLOOD_CSV=$OUT/flood.csv
echo "server,lines,bytes,steady_rate,ok,seconds,mb_per_s,steady_s,human_ms" >"$FLOOD_CSV"
FLOOD10_CSV=$OUT/flood10.csv
echo "server,readers,lines,bytes,ok,sender_s,sender_mb_per_s,sender_lines_per_s,complete,dropped,first_drop_s,seconds" \
    >"$FLOOD10_CSV"

CSV=$OUT/results.csv
echo "server,mode,clients,senders,rate_per_sender,runs,ok,deliveries,seconds,deliveries_per_s,p50_us,p99_us,p999_us,max_us,srv_cpu_s_per_M,gen_cpu_s_per_M,srv_cpu_pct,gen_cpu_pct,connects_per_s,pss_kib_total,pss_kib_per_client" \
    >"$CSV"

# csv_load SERVER MODE CLIENTS SENDERS RATE RUNS OK LINE: prints one CSV
# row of a fan-out or paced run.
csv_load() {
    local l=$8
    awk -v c="$1" -v mode="$2" -v n="$3" -v s="$4" -v rate="$5" -v r="$6" \
        -v ok="$7" -v d="$(field "$l" deliveries)" \
        -v sec="$(field "$l" seconds)" -v dps="$(field "$l" deliveries_per_s)" \
        -v p50="$(field "$l" p50_us)" -v p99="$(field "$l" p99_us)" \
        -v p999="$(field "$l" p999_us)" -v mx="$(field "$l" max_us)" \
        -v scpu="$(field "$l" srv_cpu_s)" -v gcpu="$(field "$l" gen_cpu_s)" \
        'BEGIN { m = d > 0 ? d / 1e6 : 0
                 printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,", c, mode,
                        n, s, rate, r, ok, d, sec, dps, p50, p99, p999, mx
                 if (m > 0 && sec > 0)
                     printf "%.3f,%.3f,%.0f,%.0f,,,\n", scpu / m, gcpu / m,
                            100 * scpu / sec, 100 * gcpu / sec
                 else
                     printf ",,,,,,\n" }'
}

# flood ARGS...: runs build/bench/flood ARGS... against the current server,
# which it stops afterwards; appends the result line to runs.log and prints
# it. A run that was not exact or did not finish is counted (for Redis a
# dropped subscriber is neither: flood.c says ok=1 for it).
flood() {
    local line
    # flood gives up at its deadline; timeout is the backstop.
    line=$(timeout -s KILL $((DEADLINE + 60)) "$OUT/flood" -d $((DEADLINE + 40)) \
        "$@" "$HOST" "$SRV_PORT" 2>>"$OUT/loadgen.log" | tail -n 1) || true
    stop_server
    [ -n "$line" ] || line="mode=flood ok=0"
    echo "$TARGET $line" >>"$OUT/runs.log"
    if [ "$(field "$line" ok)" != 1 ]; then
        log "$TARGET: FAILED: flood $* (see $OUT/loadgen.log)"
        FAILED=1
    fi
    echo "$line"
}

# ---- the matrix --------------------------------------------------------------

# The fan-out rows, the servers taking turns (turns()); their CSV rows
# wait in ROWS, by server, to be written with the server's other rows.
declare -A ROWS=()
if row fanout; then
    for cfg in "${MATRIX[@]}"; do
        read -r n s <<<"$cfg"
        log "fanout clients=$n senders=$s: ${TARGETS[*]} in turn, x$REPS"
        entries=()
        for TARGET in "${TARGETS[@]}"; do entries+=("$TARGET $((n + 16))"); done
        # The run with the median deliveries/s stands for the three.
        turns deliveries_per_s "${entries[@]}" -- -m fanout -n "$n" -s "$s" \
            -M "$MESSAGES" -b "$BYTES" -w "$WINDOW" -T "$SEND_S"
        for e in "${entries[@]}"; do
            ((T_RUNS[$e] > 0)) || continue
            ROWS[${e% *}]+=$(csv_load "${e% *}" fanout "$n" "$s" 0 \
                "${T_RUNS[$e]}" "${T_OK[$e]}" "${T_LINE[$e]}")$'\n'
        done
    done
fi

# The user limit costs nothing until users come: the same (100,10) load
# with -n 116 and with -n 100000, taking turns, and the server's Pss
# before anyone joins. Every chapter (chapter 3's shared region is
# reserved sparsely, its pages taken as slots are used); not Redis, which
# has no such limit, nor the plain server, which sizes its tables by the
# limit on purpose.
if row limit; then
    entries=()
    for TARGET in "${TARGETS[@]}"; do
        [ "${TARGET#step}" != "$TARGET" ] || continue
        entries+=("$TARGET 116" "$TARGET 100000")
    done
    if ((${#entries[@]} > 0)); then
        log "limit: fanout clients=100 senders=10 with -n 116 and -n 100000, in turn, x$REPS"
        turns deliveries_per_s "${entries[@]}" -- -m fanout -n 100 -s 10 \
            -M "$MESSAGES" -b "$BYTES" -w "$WINDOW" -T "$SEND_S"
        for e in "${entries[@]}"; do
            ((T_RUNS[$e] > 0)) || continue
            # Its Pss at start goes in the pss_kib_total column.
            ROWS[${e% *}]+=$(csv_load "${e% *}" "limit${e#* }" 100 10 0 \
                "${T_RUNS[$e]}" "${T_OK[$e]}" "${T_LINE[$e]}" |
                sed 's/,,,$/,,'"${T_PSS[$e]}"',/')$'\n'
        done
    fi
fi

for TARGET in "${TARGETS[@]}"; do
    printf '%s' "${ROWS[$TARGET]:-}" >>"$CSV"

    # Paced: PACED_DELIVERIES per second in all, whatever a message makes
    # (Redis delivers to every subscriber, a chat room to all but one).
    if row paced; then
        n=$PACED_CLIENTS s=$PACED_SENDERS
        receivers=$((n - 1))
        if [ "$TARGET" = redis ]; then receivers=$n; fi
        rate=$(awk -v d="$PACED_DELIVERIES" -v s="$s" -v r="$receivers" \
            'BEGIN { printf "%.2f", d / (s * r) }')
        log "$TARGET: paced clients=$n senders=$s at $rate messages/s each x$REPS"
        if start_target "$TARGET" $((2 * n + 16)); then
            # The run with the median p99 stands for the three.
            reps p99_us -m fanout -n "$n" -s "$s" -M "$MESSAGES" \
                -b "$BYTES" -w "$WINDOW" -R "$rate" -T "$PACED_S"
            csv_load "$TARGET" paced "$n" "$s" "$rate" "$RUNS" "$ALLOK" "$LINE" >>"$CSV"
        else
            FAILED=1
        fi
    fi

    if row connect; then
        log "$TARGET: connect $CONNECT_N clients"
        if start_target "$TARGET" $((CONNECT_N + 16)); then
            line=$(loadgen -m connect -n "$CONNECT_N")
            stop_server
            echo "$TARGET,connect,$CONNECT_N,0,,1,$(field "$line" ok),,,,,,,,,,,,$(field "$line" connects_per_s),," \
                >>"$CSV"
        else
            FAILED=1
        fi
    fi

    if row flood && [ "${TARGET#step}" != "$TARGET" ]; then
        log "$TARGET: flood of $FLOOD_LINES lines, a reader at $FLOOD_RATE B/s"
        if start_target "$TARGET" 16; then
            line=$(flood -n 1 -r "$FLOOD_RATE" -H -L "$FLOOD_LINES" -b 1000)
            echo "$TARGET,$FLOOD_LINES,1000,$FLOOD_RATE,$(field "$line" ok),$(field "$line" seconds),$(field "$line" mb_per_s),$(field "$line" steady_s),$(field "$line" human_ms)" \
                >>"$FLOOD_CSV"
        else
            FAILED=1
        fi
    fi

    # The flood to ten readers who all keep up: the chapters must pace the
    # sender to them and drop nobody; Redis is run to see whether it does.
    if row flood10 && { [ "${TARGET#step}" != "$TARGET" ] ||
        [ "$TARGET" = redis ]; }; then
        log "$TARGET: flood10 of $FLOOD_LINES lines to $FLOOD10_READERS readers"
        if start_target "$TARGET" $((FLOOD10_READERS + 16)); then
            line=$(flood -p "$(proto "$TARGET")" -n "$FLOOD10_READERS" \
                -L "$FLOOD_LINES" -b 1000)
            printf '%s,%s,%s,1000,%s,%s,%s,%s,%s,%s,%s,%s\n' "$TARGET" \
                "$FLOOD10_READERS" "$FLOOD_LINES" "$(field "$line" ok)" \
                "$(field "$line" sender_s)" "$(field "$line" sender_mb_per_s)" \
                "$(field "$line" sender_lines_per_s)" "$(field "$line" complete)" \
                "$(field "$line" dropped)" "$(field "$line" first_drop_s)" \
                "$(field "$line" seconds)" >>"$FLOOD10_CSV"
        else
            FAILED=1
        fi
    fi

    if row hold; then
        hold=$HOLD_N
        case $BIG_HOLDERS in *" $TARGET "*) hold=$HOLD_BIG ;; esac
        log "$TARGET: hold $hold idle clients"
        # The baseline is the server with a room of 16 and nobody in it: what
        # a server sizes by its user limit (a table of slots) counts as the
        # clients' memory, as it should.
        base=
        if start_target "$TARGET" 16; then
            base=$(pss_kib "$SRV_PID")
            stop_server
        fi
        if [ -n "$base" ] && start_target "$TARGET" $((hold + 16)); then
            # Emptied here, not by the redirection below: that runs in the
            # background job, maybe after the first look for `holding`.
            : >"$OUT/hold.out"
            "$LOADGEN" -p "$(proto "$TARGET")" -m hold -n "$hold" -t 60 -d 120 \
                "$HOST" "$SRV_PORT" >"$OUT/hold.out" 2>>"$OUT/loadgen.log" &
            GEN_PID=$!
            held=0
            for ((i = 0; i < 2400; i++)); do
                if grep -q '^holding ' "$OUT/hold.out"; then
                    held=1
                    break
                fi
                kill -0 "$GEN_PID" 2>/dev/null || break
                sleep "$POLL_S"
            done
            # An idle room is measured once it has settled: after the burst of
            # joins the room gives its freed buffers back within a second
            # (room.c, TRIM_MS). Look every POLL_S until the figure has not
            # moved for half a second, for at most 5 s.
            total=$(pss_kib "$SRV_PID")
            still=0
            for ((i = 0; i < 100 && still < 10; i++)); do
                sleep "$POLL_S"
                now=$(pss_kib "$SRV_PID")
                if [ "$now" = "$total" ]; then still=$((still + 1)); else still=0; fi
                total=$now
            done
            kill -TERM "$GEN_PID" 2>/dev/null || true
            wait "$GEN_PID" || held=0
            GEN_PID=
            line=$(tail -n 1 "$OUT/hold.out")
            echo "$TARGET $line" >>"$OUT/runs.log"
            stop_server
            if [ "$held" = 1 ] && [ "$(field "$line" ok)" = 1 ]; then
                per=$(awk -v t="$total" -v b="$base" -v n="$hold" \
                    'BEGIN { printf "%.2f", (t - b) / n }')
                echo "$TARGET,hold,$hold,0,,1,1,,,,,,,,,,,,$(field "$line" connects_per_s),$total,$per" >>"$CSV"
            else
                log "$TARGET: FAILED: hold of $hold clients"
                FAILED=1
                echo "$TARGET,hold,$hold,0,,1,0,,,,,,,,,,,,,," >>"$CSV"
            fi
        else
            FAILED=1
        fi
    fi
done

# ---- the tables ----------------------------------------------------------------

bash tests/bench/report.sh "$CSV" "$QUICK" "$FLOOD_CSV" "$FLOOD10_CSV" \
    >"$OUT/results.md"

# ---- the plots -------------------------------------------------------------------

if ! row fanout; then
    log "no fan-out rows in this run (BENCH_ROWS): no plots"
elif command -v gnuplot >/dev/null 2>&1; then
    bash tests/bench/plot.sh "$CSV" "$OUT" || log "gnuplot failed; no plots"
else
    log "gnuplot is not installed; no plots"
fi

cat "$OUT/results.md"
log "results: $CSV $OUT/results.md"
if [ "$FAILED" != 0 ]; then
    log "some runs failed (exactness or deadline): see $OUT/runs.log and $OUT/loadgen.log"
    exit 1
fi
