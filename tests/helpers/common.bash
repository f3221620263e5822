# Helpers every suite loads: start a server on port 0, connect clients with
# the bundled client, nc or socat, send lines, wait for lines with a
# deadline, and clean up every process a test started.
#
# Which server is tested:
#   SERVER=path   the binary (default build/<suite dir>/server, e.g. step01)
#   CLIENT=path   the bundled client (default build/client)
#   BUILD_DIR     where the defaults live (build, or build/san for SAN=1)
#   WAIT_SECONDS  the deadline of every wait (default 10)
#   STOP_GRACEFULLY  if set, teardown first sends SIGTERM to each server
#                 still running and waits for it to exit (make valgrind:
#                 valgrind reports leaks only when the program exits)
#
# Conventions: every background process is started with fd 3 closed (Bats
# waits for fd 3) and recorded in BG_PIDS; teardown kills them all. Each
# test works in its own $BATS_TEST_TMPDIR, and every server listens on port
# 0, so tests can run in parallel (bats --jobs).

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO_ROOT/build}
# The suite's directory names the step: tests/step01 -> step01. The shared
# protocol suite is linked into each step's directory, so it gets the
# step's name too.
STEP=${STEP:-$(basename "$BATS_TEST_DIRNAME")}
SERVER=${SERVER:-$BUILD_DIR/$STEP/server}
CLIENT=${CLIENT:-$BUILD_DIR/client}
WAIT_SECONDS=${WAIT_SECONDS:-10}
HELPERS=$REPO_ROOT/tests/helpers
# Pause between two looks at a condition; waits are bounded by WAIT_SECONDS.
POLL_INTERVAL=0.02

BG_PIDS=()
SERVER_PIDS=()
declare -gA CLIENT_PID CLIENT_HOLDER CLIENT_ID

# bg_track PID: remember a background process for teardown, and take it
# out of the shell's job table so its death is not reported as noise.
bg_track() {
    BG_PIDS+=("$1")
    disown "$1" 2>/dev/null || true
}

# --- waiting -----------------------------------------------------------------

# now_ms: milliseconds since the epoch, from bash itself (no fork).
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# wait_until DESCRIPTION COMMAND...: run COMMAND until it succeeds; fail the
# test with DESCRIPTION after WAIT_SECONDS.
wait_until() {
    local what=$1
    shift
    local deadline=$(($(now_ms) + WAIT_SECONDS * 1000))
    until "$@"; do
        if (($(now_ms) > deadline)); then
            echo "timed out after ${WAIT_SECONDS}s waiting for: $what" >&2
            return 1
        fi
        sleep "$POLL_INTERVAL"
    done
}

# has_line FILE LINE: FILE holds LINE exactly as a whole line.
has_line() {
    grep -Fxq -- "$2" "$1" 2>/dev/null
}

# count_lines FILE LINE: how many times LINE is a whole line of FILE.
count_lines() {
    grep -Fxc -- "$2" "$1" 2>/dev/null || true
}

# size_at_least FILE BYTES: FILE holds at least BYTES bytes.
size_at_least() {
    local size
    size=$(stat -c %s "$1" 2>/dev/null) || return 1
    ((size >= $2))
}

# wait_for_line FILE LINE: wait until FILE holds LINE; on timeout, show FILE.
wait_for_line() {
    if ! wait_until "line '$2' in $1" has_line "$1" "$2"; then
        echo "--- $1 holds:" >&2
        head -c 2000 "$1" | cat -A >&2
        return 1
    fi
}

# line_count_is FILE LINE N: LINE occurs exactly N times in FILE.
line_count_is() {
    [ "$(count_lines "$1" "$2")" -eq "$3" ]
}

# wait_for_exit PID: wait until the process is gone (it may not be our
# child, so `wait` cannot be used).
wait_for_exit() {
    wait_until "process $1 to exit" eval "! kill -0 $1 2>/dev/null"
}

# --- the server --------------------------------------------------------------

# server_start [OPTIONS...]: start $SERVER OPTIONS $SERVER_HOST 0 and wait
# for its `listening on HOST:PORT` line. Sets SERVER_PID, SERVER_PORT,
# SERVER_OUT (stdout) and SERVER_ERR (stderr); server_exit_status reads its
# exit status once it is gone. SERVER_HOST defaults to 127.0.0.1;
# SERVER_NOFILE and SERVER_NOFILE_HARD, if set, are the server's soft and
# hard descriptor limits (ulimit -S -n, ulimit -H -n).
server_start() {
    SERVER_HOST=${SERVER_HOST:-127.0.0.1}
    local n=${#BG_PIDS[@]}
    SERVER_OUT=$BATS_TEST_TMPDIR/server$n.out
    SERVER_ERR=$BATS_TEST_TMPDIR/server$n.err
    [ -x "$SERVER" ] || fail "no server at $SERVER (run make first)"
    rm -f "$SERVER_OUT.pid" "$SERVER_OUT.rc"
    # A small supervisor shell records the server's pid and, when it is
    # gone, its exit status (a test shell cannot wait for a grandchild).
    (
        # Soft first: it may not exceed the hard limit at any moment.
        if [ -n "${SERVER_NOFILE:-}" ]; then
            ulimit -S -n "$SERVER_NOFILE" || exit 1
        fi
        if [ -n "${SERVER_NOFILE_HARD:-}" ]; then
            ulimit -H -n "$SERVER_NOFILE_HARD" || exit 1
        fi
        "$SERVER" "$@" "$SERVER_HOST" 0 >"$SERVER_OUT" 2>"$SERVER_ERR" &
        echo "$!" >"$SERVER_OUT.pid"
        # Bats runs tests under `set -e`: a bare failing wait would end
        # this shell before it records a non-zero status.
        local rc=0
        wait "$!" || rc=$?
        echo "$rc" >"$SERVER_OUT.rc"
    ) 3>&- &
    bg_track "$!"
    wait_until "the server's pid" test -s "$SERVER_OUT.pid"
    SERVER_PID=$(<"$SERVER_OUT.pid")
    bg_track "$SERVER_PID"
    SERVER_PIDS+=("$SERVER_PID")
    wait_until "the server's listening line" grep -q '^listening on ' \
        "$SERVER_OUT" || {
        cat "$SERVER_ERR" >&2
        return 1
    }
    local line
    line=$(head -n 1 "$SERVER_OUT")
    SERVER_PORT=${line##*:}
    [[ $SERVER_PORT =~ ^[1-9][0-9]*$ ]] || fail "bad listening line: $line"
}

# server_exit_status: wait until the server has exited; print its status
# (128 + N if signal N killed it).
server_exit_status() {
    wait_until "the server to exit" test -s "$SERVER_OUT.rc" || return 1
    cat "$SERVER_OUT.rc"
}

# server_alive: the server process still runs.
server_alive() {
    kill -0 "$SERVER_PID" 2>/dev/null
}

# server_cpu_ticks: user+system CPU time of the server so far, in clock
# ticks, from /proc/PID/stat.
server_cpu_ticks() {
    local stat
    stat=$(<"/proc/$SERVER_PID/stat")
    stat=${stat##*) } # fields after the command name, which may hold spaces
    local -a f
    read -r -a f <<<"$stat"
    # fields 14 and 15 of stat are utime and stime; after "comm)" the
    # array starts at field 3.
    echo $((f[11] + f[12]))
}

# --- clients -----------------------------------------------------------------

# client_start NAME [TOOL]: connect a client called NAME with TOOL: client
# (the bundled one, default), nc or socat. Its standard input is a FIFO fed
# by say/say_raw; its output goes to $BATS_TEST_TMPDIR/NAME.out. Returns
# once the connection is up (the server's first line has arrived).
client_start() {
    local name=$1 tool=${2:-client}
    local dir=$BATS_TEST_TMPDIR
    local in=$dir/$name.in out=$dir/$name.out err=$dir/$name.err
    local host=${SERVER_HOST:-127.0.0.1}
    rm -f "$in" "$out"
    mkfifo "$in"
    : >"$out"
    case $tool in
    client)
        "$CLIENT" "$host" "$SERVER_PORT" <"$in" >"$out" 2>"$err" 3>&- &
        ;;
    nc)
        # -N: shut down the socket's sending side at end of input, as
        # the bundled client does, so the server sees end of stream.
        nc -N "$host" "$SERVER_PORT" <"$in" >"$out" 2>"$err" 3>&- &
        ;;
    socat)
        # -t 5: after end of input, wait up to 5 s for the server's close.
        socat -t 5 - "TCP:$host:$SERVER_PORT" <"$in" >"$out" 2>"$err" 3>&- &
        ;;
    *) fail "unknown client tool $tool" ;;
    esac
    CLIENT_PID[$name]=$!
    bg_track "$!"
    # Keep the FIFO's writing end open between two say calls; closing it
    # (client_close) is the client's end of input.
    sleep infinity >"$in" 3>&- &
    CLIENT_HOLDER[$name]=$!
    bg_track "$!"
    wait_until "$name to receive its first line" test -s "$out" || {
        cat "$err" >&2
        return 1
    }
}

# client_join NAME [TOOL]: client_start, then wait for the welcome and
# record the client's id in CLIENT_ID[NAME].
client_join() {
    client_start "$@"
    local out=$BATS_TEST_TMPDIR/$1.out
    wait_until "a welcome for $1" grep -q '^\* welcome, you are user' "$out"
    local line
    line=$(head -n 1 "$out")
    [[ $line =~ ^\*\ welcome,\ you\ are\ user([0-9]+)\ \(([0-9]+)\ online\)$ ]] ||
        fail "$1's first line is not a welcome: $line"
    CLIENT_ID[$1]=${BASH_REMATCH[1]}
}

# out_of NAME: the file holding everything NAME received.
out_of() {
    echo "$BATS_TEST_TMPDIR/$1.out"
}

# say NAME TEXT...: NAME sends each TEXT as one line.
say() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$BATS_TEST_TMPDIR/$name.in"
}

# say_raw NAME FORMAT [ARGS...]: NAME sends printf FORMAT's bytes as they
# are (no newline added): partial lines, NUL bytes, CRLF.
say_raw() {
    local name=$1
    shift
    # shellcheck disable=SC2059 # the format is the point
    printf "$@" >"$BATS_TEST_TMPDIR/$name.in"
}

# send_file NAME FILE: NAME sends FILE's bytes.
send_file() {
    cat "$2" >"$BATS_TEST_TMPDIR/$1.in"
}

# expect NAME LINE: wait until NAME has received LINE.
expect() {
    wait_for_line "$(out_of "$1")" "$2"
}

# client_close NAME: end NAME's input; the client half-closes and the
# server sees end of stream.
client_close() {
    kill "${CLIENT_HOLDER[$1]}" 2>/dev/null || true
}

# client_kill NAME: kill NAME's process outright (its socket is closed by
# the kernel).
client_kill() {
    kill -9 "${CLIENT_PID[$1]}" "${CLIENT_HOLDER[$1]}" 2>/dev/null || true
}

# client_gone NAME: NAME's process has exited.
client_gone() {
    ! kill -0 "${CLIENT_PID[$1]}" 2>/dev/null
}

# user_of NAME: "user<id>" of a joined client.
user_of() {
    echo "user${CLIENT_ID[$1]}"
}

# peer_start NAME MODE [BYTES]: a raw peer (helpers/peer.pl): MODE noread
# holds the connection and never reads; MODE reset sends BYTES, then
# aborts the connection with RST.
peer_start() {
    local name=$1 mode=$2 bytes=${3:-}
    local out=$BATS_TEST_TMPDIR/$name.out
    perl "$HELPERS/peer.pl" "${SERVER_HOST:-127.0.0.1}" "$SERVER_PORT" \
        "$mode" "$bytes" >"$out" 2>&1 3>&- &
    CLIENT_PID[$name]=$!
    bg_track "$!"
    wait_for_line "$out" connected
}

# --- clean-up ----------------------------------------------------------------

# stop_all: kill every background process this test started (with
# STOP_GRACEFULLY, each server still running gets SIGTERM first and is
# waited for).
stop_all() {
    local pid
    if [ -n "${STOP_GRACEFULLY:-}" ]; then
        for pid in "${SERVER_PIDS[@]}"; do
            if kill -TERM "$pid" 2>/dev/null; then
                wait_for_exit "$pid" || true
            fi
        done
    fi
    SERVER_PIDS=()
    for pid in "${BG_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    BG_PIDS=()
}

teardown() {
    stop_all
}

# children_of PID: the pids of PID's child processes, from /proc.
children_of() {
    local parent=$1 stat line pid
    local -a f
    for stat in /proc/[0-9]*/stat; do
        line=$(cat "$stat" 2>/dev/null) || continue
        pid=${line%% *}
        line=${line##*) } # after the command name, which may hold spaces
        read -r -a f <<<"$line"
        if [ "${f[1]}" = "$parent" ]; then echo "$pid"; fi
    done
}

# socket_inodes PID: the inode of every socket PID holds open, one a line,
# sorted (from the links in /proc/PID/fd: "socket:[12345]").
socket_inodes() {
    local fd target
    for fd in /proc/"$1"/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        [[ $target =~ ^socket:\[([0-9]+)\]$ ]] && echo "${BASH_REMATCH[1]}"
    done | sort -u
}

# shared_sockets PID1 PID2: the socket inodes both processes hold.
shared_sockets() {
    comm -12 <(socket_inodes "$1") <(socket_inodes "$2")
}
