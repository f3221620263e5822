# Helpers of the fault suite (tests/faults), loaded after
# tests/helpers/common.bash. The suite is one directory run against each
# chapter in turn, so the step comes from STEP, not from the directory:
#
#   STEP=step03 bats tests/faults                     chapter 3, plain build
#   STEP=step03 BUILD_DIR=$PWD/build/san bats tests/faults   the SAN=1 build
#
# A case that does not apply to a chapter skips and says why (only_steps).

# shellcheck disable=SC2034 # used by the suite's files
FAULTS_DIR=$REPO_ROOT/tests/faults

[[ $STEP =~ ^step0[1-9]$ ]] ||
    fail "the fault suite needs STEP=stepNN, e.g. STEP=step03 bats tests/faults"

# The chapter's number: step03 -> 3.
STEP_NUM=$((10#${STEP#step}))

# only_steps REASON N...: skip unless this is one of chapters N...
only_steps() {
    local reason=$1 n
    shift
    for n in "$@"; do
        [ "$n" -eq "$STEP_NUM" ] && return 0
    done
    skip "$reason"
}

# Bytes of clients' output this case has checked line by line against
# what was sent (heard_all adds to it).
CHECKED_BYTES=0

# figure FAULTS TEXT: note a figure of this case in $FAULTS_FIGURES, if
# set: how many faults it injected, how many bytes it checked, and TEXT.
# One line: "step03 build/san faults=6 bytes=123456 <case>: TEXT".
figure() {
    [ -n "${FAULTS_FIGURES:-}" ] || return 0
    local build=${BUILD_DIR#"$REPO_ROOT"/}
    echo "$STEP $build faults=$1 bytes=$CHECKED_BYTES $BATS_TEST_DESCRIPTION: $2" \
        >>"$FAULTS_FIGURES"
}

# --- the server's processes ---------------------------------------------------

# kids_of PID: PID's children. The kernel's list where it keeps one (fast
# enough to sample many times a second), else a scan of /proc.
kids_of() {
    local list=/proc/$1/task/$1/children
    local -a kids=()
    [ -d "/proc/$1" ] || return 0
    if [ -r "$list" ]; then
        read -r -a kids <"$list" 2>/dev/null || true
        [ "${#kids[@]}" -eq 0 ] || printf '%s\n' "${kids[@]}"
    else
        children_of "$1"
    fi
}

# server_pids: the server and its children (steps 3 and 4 fork; no step
# forks grandchildren).
server_pids() {
    echo "$SERVER_PID"
    kids_of "$SERVER_PID"
}

# proc_state PID: the one-letter state of a process (R, S, T, Z...).
proc_state() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    echo "${stat%% *}"
}

# zombies: the server's children that have died and not been reaped.
zombies() {
    local pid
    for pid in $(kids_of "$SERVER_PID"); do
        [ "$(proc_state "$pid")" != Z ] || echo "$pid"
    done
}

# no_zombies: the server has reaped every child that died.
no_zombies() {
    [ -z "$(zombies)" ]
}

# pss_kb: proportional set size of the server, summed over its processes,
# in KiB. PSS shares each shared page (the rings) among the processes that
# map it, so the sum counts every page once.
pss_kb() {
    local -a files=()
    local pid
    for pid in $(server_pids); do files+=("/proc/$pid/smaps_rollup"); done
    # One pass over all: fast enough to sample many times a second. A
    # process gone by the time its file is read counts 0.
    cat "${files[@]}" 2>/dev/null | awk '/^Pss:/ { kb += $2 } END { print kb + 0 }'
}

# sample_pss_peak FILE: until killed, sample pss_kb and keep the largest
# value seen in FILE (which may hold a first value). Start it in the
# background. A sample can miss a peak, never invent one.
sample_pss_peak() {
    local peak now
    peak=$(cat "$1" 2>/dev/null || echo 0)
    while :; do
        now=$(pss_kb)
        if ((${now:-0} > peak)); then
            peak=$now
            echo "$peak" >"$1.tmp" && mv "$1.tmp" "$1"
        fi
        sleep "$POLL_INTERVAL"
    done
}

# high_water_kb: the per-client output queue limit, HIGH_WATER in the
# chapter's sources (`#define HIGH_WATER 262144 /* 256 KiB */`), in KiB.
# Fails, saying so, if the sources do not define it as a number.
high_water_kb() {
    local value
    value=$(sed -nE 's/^#define HIGH_WATER[[:space:]]+([0-9]+)([^0-9].*)?$/\1/p' \
        "$REPO_ROOT"/"$STEP"_*/*.c | head -n 1)
    if ! [[ $value =~ ^[0-9]+$ ]]; then
        echo "no numeric HIGH_WATER in the sources of $STEP" >&2
        return 1
    fi
    echo $((value / 1024))
}

# shm_region_kb: the size of the server's shared region in KiB (0 for
# chapters 1 and 2). Fixed at start, and reserved then (posix_fallocate),
# its pages still join the server's PSS as they are first touched.
shm_region_kb() {
    local range
    range=$(awk '$6 ~ /^\/dev\/shm\/chat-/ { print $1; exit }' \
        "/proc/$SERVER_PID/maps")
    if [ -z "$range" ]; then
        echo 0
    else
        echo $(((16#${range#*-} - 16#${range%-*}) / 1024))
    fi
}

# Memory a server may use beyond what it must hold (its output queues and
# its shared region), in KiB: the allocator's rounding and free lists, and
# under AddressSanitizer its shadow memory and a quarantine of 1 MiB (see
# small_quarantine) -- once for the server, and once more for each other
# process (chapter 3's children, chapter 4's workers), which has an
# allocator of its own.
MEMORY_SLACK_KB=$((4 * 1024))
PROCESS_SLACK_KB=1024

# memory_bound_kb CLIENTS [NEW]: how much the server may grow, in KiB,
# while CLIENTS clients each have a queue at its limit: twice HIGH_WATER
# each (a queue, and the allocator's rounding), the shared region once
# touched, and the slack for each process it has now and for NEW processes
# still to come (chapter 3's children of clients not yet connected).
memory_bound_kb() {
    local procs high
    high=$(high_water_kb) || return 1
    procs=$(($(server_pids | wc -l) + ${2:-0}))
    echo $(($1 * 2 * high + $(shm_region_kb) + MEMORY_SLACK_KB +
        (procs - 1) * PROCESS_SLACK_KB))
}

# small_quarantine: under AddressSanitizer, freed memory waits in a
# quarantine (256 MiB by default) to catch use-after-free. That is the
# tool's memory, not the server's: for the memory bounds, keep it at 1 MiB.
small_quarantine() {
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1
}

# fd_counts: "PID N" for each server process: its open descriptors.
fd_counts() {
    local pid
    for pid in $(server_pids); do
        echo "$pid $(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
    done
}

# cpu_ticks_all: user+system CPU ticks of every server process, summed.
cpu_ticks_all() {
    local pid stat total=0
    local -a f
    for pid in $(server_pids); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# How long CPU use is measured to tell a spinning server from an idle one
# (a measurement window, not a wait for a condition), and the ticks
# (1/100 s) an idle server may use in it. A spin burns the whole window.
IDLE_WINDOW=1
IDLE_TICKS=10

# cpu_over_window: the CPU ticks every server process used in IDLE_WINDOW.
cpu_over_window() {
    local before after
    before=$(cpu_ticks_all)
    sleep "$IDLE_WINDOW"
    after=$(cpu_ticks_all)
    echo $((after - before))
}

# assert_no_spin WHAT: the server uses (almost) no CPU while idle.
assert_no_spin() {
    local ticks
    ticks=$(cpu_over_window)
    ((ticks <= IDLE_TICKS)) ||
        fail "the server used $ticks ticks in ${IDLE_WINDOW}s $1 (a spin?)"
}

# backlog_empty: no connection waits in the server's accept queue (for a
# listening socket, the rx_queue of /proc/net/tcp is that queue's length).
backlog_empty() {
    local port_hex sl addr rem st queues rest
    printf -v port_hex '%04X' "$SERVER_PORT"
    while read -r sl addr rem st queues rest; do
        if [ "$st" = 0A ] && [ "${addr##*:}" = "$port_hex" ]; then
            ((16#${queues#*:} == 0)) || return 1
        fi
    done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
}

# shm_left PID: /dev/shm names a server with that pid created that are
# still there (ours are /chat-<pid>-<random>).
shm_left() {
    find /dev/shm -maxdepth 1 -name "chat-$1-*" 2>/dev/null
}

# mapped_shm PID: the (deleted) /dev/shm object the process has mapped,
# with its inode: "/dev/shm/chat-123-abc 4567".
mapped_shm() {
    awk '$6 ~ /^\/dev\/shm\/chat-/ { print $6, $5; exit }' "/proc/$1/maps"
}

# server_stop: the clients go first (so the graceful shutdown does not
# wait out its grace period for clients like nc that never close), then
# SIGTERM (from step 2 on; chapter 1 has no graceful shutdown); checks the
# exit status, that no child outlives the server and that nothing of it
# stays in /dev/shm.
server_stop() {
    local kids pid=$SERVER_PID name
    for name in "${!CLIENT_PID[@]}"; do
        kill -9 "${CLIENT_PID[$name]}" "${CLIENT_HOLDER[$name]:-}" 2>/dev/null || true
    done
    kids=$(kids_of "$pid")
    if ((STEP_NUM >= 2)); then
        kill -TERM "$pid"
        run server_exit_status
        assert_output 0
    else
        kill -KILL "$pid"
        wait_for_exit "$pid"
    fi
    local kid
    for kid in $kids; do wait_for_exit "$kid"; done
    run shm_left "$pid"
    assert_output ""
}

# --- clients ------------------------------------------------------------------

# piped_start NAME COMMAND...: run COMMAND in the background as client
# NAME, the way client_start runs a client: its standard input a FIFO fed
# by say NAME and held open until client_close NAME, its output in
# out_of NAME, its errors in $BATS_TEST_TMPDIR/NAME.err. Does not wait.
piped_start() {
    local name=$1 in=$BATS_TEST_TMPDIR/$1.in
    shift
    rm -f "$in"
    mkfifo "$in"
    "$@" <"$in" >"$(out_of "$name")" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
    # shellcheck disable=SC2004 # associative arrays (common.bash)
    CLIENT_PID[$name]=$!
    bg_track "$!"
    sleep infinity >"$in" 3>&- &
    # shellcheck disable=SC2004 # associative arrays (common.bash)
    CLIENT_HOLDER[$name]=$!
    bg_track "$!"
}

# lines_from FILE USER: the messages USER sent, as FILE received them.
lines_from() {
    sed -n "s/^$2: //p" "$1"
}

# heard_all NAME USER FILE: NAME received exactly FILE's lines from USER,
# once each and in order (waits for the last one first). Uses run, so it
# sets $output, $lines and $status.
heard_all() {
    expect "$1" "$2: $(tail -n 1 "$3")"
    run diff <(lines_from "$(out_of "$1")" "$2") "$3"
    assert_success
    CHECKED_BYTES=$((CHECKED_BYTES + $(stat -c %s "$3")))
}

# worker_of USER: "INDEX PID" of the step 4 worker that took USER, from
# its -v trace ("[worker 1 pid 123] ...: user5 on fd 9").
worker_of() {
    sed -nE "s/^\[worker ([0-9]+) pid ([0-9]+)\] .*: $1 on fd .*/\1 \2/p" \
        "$SERVER_ERR" | tail -n 1
}

# child_pid_of USER: in step 3's -v trace, the pid of the child serving
# USER ("user2 in child 1234").
child_pid_of() {
    sed -nE "s/.*: $1 in child ([0-9]+).*/\\1/p" "$SERVER_ERR" | head -n 1
}

# join_victims COUNT STABLE...: in step 4 (started with -v), clients join
# until COUNT of them are on one worker that serves none of the clients
# STABLE...; those that land elsewhere leave again. Sets VICTIMS (their
# names, v1, v2... across calls), VICTIM_WORKER and VICTIM_PID.
join_victims() {
    local count=$1 stable=" " who w i
    shift
    for who in "$@"; do stable+="$(worker_of "$(user_of "$who")" | cut -d' ' -f1) "; done
    VICTIMS=()
    VICTIM_WORKER=
    for i in $(seq 1 $((4 * count + 8))); do
        VICTIM_SEQ=$((${VICTIM_SEQ:-0} + 1))
        who=v$VICTIM_SEQ
        client_join "$who"
        w=$(worker_of "$(user_of "$who")")
        if [[ $stable == *" ${w%% *} "* ]] ||
            [ "${VICTIM_WORKER:-${w%% *}}" != "${w%% *}" ]; then
            client_close "$who"
            continue
        fi
        VICTIMS+=("$who")
        VICTIM_WORKER=${w%% *}
        VICTIM_PID=${w##* }
        [ "${#VICTIMS[@]}" -lt "$count" ] || return 0
    done
    fail "no $count clients on a worker of no stable client"
}
