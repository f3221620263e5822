#!/usr/bin/env bats
# Fault: the server's own standard descriptors are hostile. Its stderr is a
# pipe nobody reads (a log collector that has stalled, `server -v 2>&1 |
# less` left paused), or it is started with descriptors 0-2 closed (as
# some supervisors do). Neither may stall the room or make it spin (SPEC:
# diagnostics never stall the room; descriptors 0-2 are made valid at
# start). And a start that fails says why in one line, not two.

# SC2154: bats's run sets $stderr.
# shellcheck disable=SC2154

setup() {
    load ../helpers/common
    load faults
}

# Chapter 4 with a pool of 2, whatever the machine's CPU count.
pool_args() {
    ((STEP_NUM != 4)) || echo "-w 2"
}

# wrap_server REDIRECTIONS: SERVER becomes a script that execs the real
# server with REDIRECTIONS, in the same process (SERVER_PID stays right).
wrap_server() {
    local wrapper=$BATS_TEST_TMPDIR/wrapped-server
    printf '#!/bin/bash\nexec %q "$@" %s\n' "$SERVER" "$1" >"$wrapper"
    chmod +x "$wrapper"
    SERVER=$wrapper
}

# hold_fifo FIFO: a stalled log collector: a process that holds FIFO open
# and never reads it. Its pipe is shrunk to one page (F_SETPIPE_SZ), so a
# few dozen trace lines fill it, whatever the trace's length.
hold_fifo() {
    mkfifo "$1"
    # Opened read-write: neither this open nor the server's blocks.
    perl -e '$| = 1;
        open(my $f, "+<", $ARGV[0]) or die "$ARGV[0]: $!\n";
        fcntl($f, 1031, 4096) or die "F_SETPIPE_SZ: $!\n"; # F_SETPIPE_SZ
        print "holding\n";
        sleep;' "$1" >"$1.holder" 2>&1 3>&- &
    bg_track "$!"
    wait_for_line "$1.holder" holding
}

# dropped_total FILE: the trace lines the "dropped N trace lines" reports
# in FILE add up to.
dropped_total() {
    sed -nE 's/^(\[[^]]*\] )?dropped ([0-9]+) trace lines.*/\2/p' "$1" |
        awk '{ n += $1 } END { print n + 0 }'
}

@test "-v into a pipe nobody reads: the room never stalls; dropped trace lines are counted and reported once the pipe moves" {
    local fifo=$BATS_TEST_TMPDIR/err.fifo drained=$BATS_TEST_TMPDIR/drained
    hold_fifo "$fifo"
    wrap_server "2>$(printf %q "$fifo")"
    # shellcheck disable=SC2046 # no arguments, or -w 2
    server_start -v -n 50 $(pool_args)
    client_join a
    client_join b nc
    # 400 short connections: several KiB of trace, far more than the pipe
    # holds. A server that writes its trace blocking is asleep in write(2)
    # from the first few dozen on.
    run perl "$FAULTS_DIR/flood.pl" 127.0.0.1 "$SERVER_PORT" 400 fin
    assert_success
    say a "after the flood"
    WAIT_SECONDS=5 expect b "$(user_of a): after the flood"
    client_join late socat
    say late "a newcomer talks"
    WAIT_SECONDS=5 expect a "$(user_of late): a newcomer talks"

    # The collector wakes up: what was dropped is said once, in a line of
    # its own, and every line it gets is whole.
    cat "$fifo" >"$drained" 3>&- &
    bg_track "$!"
    client_join again
    wait_until "a report of the dropped trace lines" \
        grep -Eq '^(\[[^]]*\] )?dropped [0-9]+ trace lines: stderr was full$' "$drained"
    local dropped
    dropped=$(dropped_total "$drained")
    ((dropped > 0))
    # Whole lines only: each is a trace line (chapter 3's and 4's tagged
    # with their process), a report of drops, or a start-up message. A
    # torn write would start a line in the middle of another.
    run grep -vE '^(\[[^]]*\] )?(e?poll: |dropped [0-9]+ trace lines|shared memory /chat-)' "$drained"
    assert_output ""
    figure 400 "400 connections with stderr a full pipe: the room talked on; $dropped trace lines dropped and reported"
    server_stop
}

# listening_port PID: the TCP port PID listens on, from /proc/net/tcp and
# its descriptors (for a server whose standard output is closed, so its
# listening line is gone).
listening_port() {
    local link inode addr st ino
    local -A mine=()
    for link in /proc/"$1"/fd/*; do
        inode=$(readlink "$link" 2>/dev/null) || continue
        [[ $inode =~ ^socket:\[([0-9]+)\]$ ]] && mine[${BASH_REMATCH[1]}]=1
    done
    # Fields: sl local rem st queues tr retransmits uid timeout inode...
    while read -r _ addr _ st _ _ _ _ _ ino _; do
        if [ "$st" = 0A ] && [ -n "${mine[$ino]:-}" ]; then
            echo $((16#${addr##*:}))
            return 0
        fi
    done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    return 1
}

# server_start_std_closed OPTIONS...: start the server on 127.0.0.1 port 0
# with descriptors 0, 1 and 2 closed, the way server_start does otherwise
# (SERVER_PID, SERVER_PORT, server_exit_status), the port read from the
# kernel's table.
server_start_std_closed() {
    SERVER_OUT=$BATS_TEST_TMPDIR/closed.out
    rm -f "$SERVER_OUT.pid" "$SERVER_OUT.rc"
    (
        "$SERVER" "$@" 127.0.0.1 0 0<&- 1>&- 2>&- &
        echo "$!" >"$SERVER_OUT.pid"
        local rc=0
        wait "$!" || rc=$? # under set -e: record a failure too
        echo "$rc" >"$SERVER_OUT.rc"
    ) 3>&- &
    bg_track "$!"
    wait_until "the server's pid" test -s "$SERVER_OUT.pid"
    SERVER_PID=$(<"$SERVER_OUT.pid")
    bg_track "$SERVER_PID"
    SERVER_PIDS+=("$SERVER_PID")
    wait_until "the server to listen" listening_port "$SERVER_PID" || {
        test -s "$SERVER_OUT.rc" && echo "the server exited: $(<"$SERVER_OUT.rc")" >&2
        return 1
    }
    SERVER_PORT=$(listening_port "$SERVER_PID")
}

# on_dev_null FD...: in every server process, each descriptor FD is
# /dev/null.
on_dev_null() {
    local fd pid
    for pid in $(server_pids); do
        for fd in "$@"; do
            run readlink "/proc/$pid/fd/$fd"
            assert_output /dev/null
        done
    done
}

# room_talks_cleanly: two clients join and talk, the server does not spin
# with them idle, and nothing but the protocol reaches them (no trace).
room_talks_cleanly() {
    client_join a
    client_join b nc
    say a "hello"
    expect b "$(user_of a): hello"
    assert_no_spin "with two idle clients"
    run cat "$(out_of b)"
    assert_output "* welcome, you are $(user_of b) (2 online)
$(user_of a): hello"
    run cat "$(out_of a)"
    assert_output "* welcome, you are $(user_of a) (1 online)
* $(user_of b) joined"
}

@test "started with descriptors 0 and 2 closed: the trace does not go into the server's own signal pipe, the idle server does not spin" {
    wrap_server "0<&- 2>&-"
    # shellcheck disable=SC2046 # no arguments, or -w 2
    server_start -v $(pool_args)
    assert_no_spin "idle, started with 0 and 2 closed"
    on_dev_null 0 2
    room_talks_cleanly
    figure 2 "descriptors 0 and 2 closed at start: /dev/null in every process, no spin, the room talks"
    server_stop
}

@test "started with descriptors 0, 1 and 2 closed: it listens and serves, with 0-2 on /dev/null" {
    # shellcheck disable=SC2046 # no arguments, or -w 2
    server_start_std_closed -v $(pool_args)
    assert_no_spin "idle, started with 0-2 closed"
    on_dev_null 0 1 2
    room_talks_cleanly
    figure 3 "descriptors 0-2 closed at start: /dev/null in every process, no spin, the room talks"
    server_stop
}

@test "chapter 3: -n 1000000 starts -- its shared region is sparse -- with one warning, for a run that goes on" {
    only_steps "chapters 1, 2 and 4 need no shared memory per user of -n: they run" 3
    # Descriptor limits far below 1000000, so that the limit's warning
    # is due: this run goes on. (A region that cannot be had is one line
    # and exit 1: tests/faults/shm.bats.)
    SERVER_NOFILE=1024 SERVER_NOFILE_HARD=4096 server_start -n 1000000
    [ "$(wc -l <"$SERVER_ERR")" -eq 1 ] || fail "not one line: $(cat "$SERVER_ERR")"
    run cat "$SERVER_ERR"
    assert_output --regexp '^-n 1000000: '
    client_join a
    client_join b nc
    say a "a million seats, two taken"
    expect b "$(user_of a): a million seats, two taken"
    figure 1 "-n 1000000: starts, one warning: $(head -n 1 "$SERVER_ERR")"
    server_stop
}

@test "chapter 4: a pool that cannot fork its workers fails in one line naming the cause" {
    only_steps "chapter 4 forks its pool at start" 4
    # A process limit (RLIMIT_NPROC) already reached: fork() fails with
    # EAGAIN. The limit does not bind root, so as root the server runs as
    # nobody.
    local -a as_nobody=()
    if [ "$(id -u)" -eq 0 ]; then
        command -v setpriv >/dev/null || skip "as root, needs setpriv (util-linux) to run as nobody"
        as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
        "${as_nobody[@]}" test -x "$SERVER" || skip "nobody cannot run $SERVER"
    fi
    # LeakSanitizer checks at exit in a thread of its own, which the
    # reached process limit forbids too (SAN=1 builds).
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    run --separate-stderr timeout -k 5 "$WAIT_SECONDS" "${as_nobody[@]}" \
        bash -c 'ulimit -u 1; exec "$@"' limited "$SERVER" -w 2 127.0.0.1 0
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "cannot start the pool: cannot fork worker 0: Resource temporarily unavailable"
    figure 1 "fork fails at start: one line: $stderr"
}
