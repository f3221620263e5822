#!/usr/bin/env bash
# make samples: every transcript and -v trace the chapter pages show, from
# a real run. Each chapter's server (build/stepNN/server, on 127.0.0.1 port
# 0) is driven through the session its page describes, with the bundled
# client, nc and socat, and what each of them printed is written to
# OUTDIR/stepNN-*.txt, which the pages include (\verbinclude).
#
#   tests/docs/samples.sh generate OUTDIR   run every session into OUTDIR
#   tests/docs/samples.sh update            make samples: generate into a
#                                           temporary directory, then copy
#                                           what changed to docs/samples/
#   tests/docs/samples.sh compare DIR       compare DIR with docs/samples/;
#                                           print a diff, exit 1 if they differ
#   tests/docs/samples.sh shape FILE        the shape of a trace (see below)
#
# Every step of a session waits for the lines it expects, with a deadline
# (SAMPLES_WAIT seconds, default 20), never a fixed time; each typed line is
# placed in its transcript after the lines its user had received when it
# was typed, so a transcript is the same on every run.
#
# Before each next step, the script also waits until every process of the
# server sleeps in its poll() or epoll_wait() (settle): what the server does
# for one step is never folded into the wake-up of the next.
#
# What varies from run to run is rewritten to stable values: the port is
# shown as 40313; process ids as 12000, 12001, ... in the order the
# processes were created; the random part of a shared-memory name as
# XXXXXXXX; socket and pipe inodes as 100001, 100002, ... in order of
# appearance; a mapping's address as 7f0000000000 (a second address as
# 7f1000000000; sizes are kept); the uptime of a status line as N; the run
# directory as /tmp/run. A line too wide for the page (over 128
# characters) is folded after a `; `, the rest indented by four spaces.
#
# Chapters 3 and 4 run several processes, each writing its own trace lines:
# how their lines interleave, and which events one wake-up gathers, depend
# on the scheduler; in chapter 2, how the closing connections are reported
# depends on when the clients answer. For those traces (RACY below) the
# committed file is one real run, and what is compared is its shape: the
# kinds of clause each kind of process printed (numbers and the grouping of
# clauses into lines aside), and for chapter 2 every line before the
# SIGTERM as it is. `update` replaces such a file only when its shape
# changed, so that the page's prose about that run stays true.
set -u
cd "$(dirname "$0")/../.." || exit 1

export LC_ALL=C
SAMPLES_WAIT=${SAMPLES_WAIT:-20}
POLL=0.02
SHOWN_PORT=40313
PIDS=()
BORN=()
declare -A CPID=() HOLDER=()
trap end_session EXIT
RACY="step02-trace.txt step03-trace.txt step04-trace.txt"
# Racy traces whose lines before the first one naming TERM are compared
# exactly: chapter 2 is one process; only its closing depends on when the
# clients' TCP stacks answer.
EXACT_BEFORE_TERM="step02-trace.txt"

# --- waiting ------------------------------------------------------------------

# now_ms: milliseconds since the epoch.
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# fail MESSAGE: end the whole run.
fail() {
    echo "samples: $*" >&2
    if [ -n "${run:-}" ] && [ -d "$run" ]; then
        local f
        for f in "$run"/*.out "$run"/*.err; do
            echo "--- ${f##*/}:" >&2
            tail -n 30 "$f" >&2
        done
    fi
    exit 1
}

# wait_until WHAT COMMAND...: run COMMAND until it succeeds, at most
# SAMPLES_WAIT seconds; then fail naming WHAT.
wait_until() {
    local what=$1
    shift
    local deadline=$(($(now_ms) + SAMPLES_WAIT * 1000))
    until "$@"; do
        (($(now_ms) <= deadline)) || fail "timed out after ${SAMPLES_WAIT}s waiting for $what"
        sleep "$POLL"
    done
}

# has_line FILE LINE: FILE holds LINE as a whole line.
has_line() {
    grep -Fxq -- "$2" "$1" 2>/dev/null
}

# has_match FILE REGEX: a line of FILE matches the extended REGEX.
has_match() {
    grep -Eq -- "$2" "$1" 2>/dev/null
}

# gone PID: the process has exited.
gone() {
    ! kill -0 "$1" 2>/dev/null
}

# --- the server ---------------------------------------------------------------

# server_start STEP OPTIONS...: start build/STEP/server OPTIONS 127.0.0.1 0
# in $run, wait for its listening line; sets SRV_PID, PORT, SRV_ERR.
server_start() {
    local step=$1
    shift
    SRV_CMD="build/$step/server $* 127.0.0.1 0"
    SRV_OUT=$run/server.out SRV_ERR=$run/server.err
    # Only the standard streams are passed on: a descriptor the caller
    # left open (bats keeps several) would show in the trace's numbers.
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            [ "$fd" -le 2 ] || eval "exec $fd>&-" 2>/dev/null
        done
        exec "build/$step/server" "$@" 127.0.0.1 0
    ) <"/dev/null" >"$SRV_OUT" 2>"$SRV_ERR" &
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    BORN=("$SRV_PID")
    wait_until "the listening line of $step" has_match "$SRV_OUT" '^listening on '
    PORT=$(sed -n 's/^listening on .*://p' "$SRV_OUT")
}

# server_exit: wait for the server to exit; fail unless its status is 0.
server_exit() {
    local rc=0
    wait_until "the server to exit" gone "$SRV_PID"
    wait "$SRV_PID" || rc=$?
    [ "$rc" -eq 0 ] || fail "the server exited with status $rc"
}

# asleep PID: the process sleeps in poll() or epoll_wait(), or is gone. A
# process asleep there has handled every event it was told of and printed
# its trace line: the next step cannot be folded into the same wake-up.
# Where /proc does not say, the answer is yes.
asleep() {
    local state wchan nr
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 0
    [ -n "$state" ] || return 0
    [ "$state" = S ] || return 1
    wchan=$(cat "/proc/$1/wchan" 2>/dev/null)
    case $wchan in
    *poll*) return 0 ;;
    "" | 0) ;;
    *) return 1 ;;
    esac
    # No symbol: the system call number (x86-64: poll, ppoll, epoll_wait,
    # epoll_pwait, epoll_pwait2).
    read -r nr _ <"/proc/$1/syscall" 2>/dev/null || return 0
    case $nr in
    7 | 271 | 232 | 281 | 441) return 0 ;;
    *) return 1 ;;
    esac
}

# all_asleep: the server and every child it has are asleep, twice in a row
# with nothing printed in between.
all_asleep() {
    local before pid
    before=$(stat -c %s "$SRV_ERR")
    for _ in 1 2; do
        for pid in "$SRV_PID" $(ps -o pid= --ppid "$SRV_PID"); do
            asleep "$pid" || return 1
        done
    done
    [ "$before" = "$(stat -c %s "$SRV_ERR")" ]
}

# settle: wait until the server's processes have done all they were told;
# note the children that have appeared.
settle() {
    wait_until "the server to settle" all_asleep
    note_children
}

# trace_has REGEX: wait until the server's standard error has a line
# matching REGEX.
trace_has() {
    wait_until "'$1' on the server's standard error" has_match "$SRV_ERR" "$1"
    settle
}

# --- clients ------------------------------------------------------------------

# join NAME TOOL: NAME connects with TOOL (client, nc, nc-N or socat), its
# input a FIFO held open until `eof`. Waits for its welcome.
join() {
    local name=$1 tool=$2
    local in=$run/$name.in
    mkfifo "$in"
    : >"$run/$name.out"
    : >"$run/$name.notes"
    case $tool in
    client) set -- build/client 127.0.0.1 "$PORT" ;;
    nc) set -- nc 127.0.0.1 "$PORT" ;;
    nc-N) set -- nc -N 127.0.0.1 "$PORT" ;;
    socat) set -- socat - "TCP:127.0.0.1:$PORT" ;;
    esac
    echo "\$ $*" >"$run/$name.cmd"
    "$@" <"$in" >"$run/$name.out" 2>"$run/$name.err" 3>&- &
    CPID[$name]=$!
    PIDS+=("$!")
    sleep infinity >"$in" 3>&- &
    HOLDER[$name]=$!
    PIDS+=("$!")
    wait_until "a welcome for $name" has_match "$run/$name.out" '^\* welcome, you are user'
    settle
}

# note NAME TEXT: put TEXT in NAME's transcript after what NAME received
# so far.
note() {
    printf '%s\t%s\n' "$(wc -l <"$run/$1.out")" "$2" >>"$run/$1.notes"
}

# say NAME LINE: NAME types LINE.
say() {
    note "$1" "$(printf '%-36s <- typed' "$2")"
    printf '%s\n' "$2" >"$run/$1.in"
}

# expect LINE NAME...: wait until every NAME has received LINE.
expect() {
    local line=$1 name
    shift
    for name in "$@"; do
        wait_until "'$line' at $name" has_line "$run/$name.out" "$line"
    done
    settle
}

# eof NAME [WHEN]: NAME ends its input (Ctrl-D).
eof() {
    note "$1" "$(printf '%-36s <- typed: end of input%s' '^D' "${2:+, $2}")"
    kill "${HOLDER[$1]}"
}

# interrupt NAME: NAME stops its program with Ctrl-C. (A script's
# background job ignores SIGINT, so it gets SIGTERM: the same end.)
interrupt() {
    note "$1" '^C'
    kill -TERM "${CPID[$1]}"
}

# finish NAME [STATUS]: wait until NAME's program has exited; with STATUS,
# the transcript shows `echo $?` and the status, which must be STATUS.
finish() {
    local name=$1 rc=0
    wait_until "$name to exit" gone "${CPID[$name]}"
    wait "${CPID[$name]}" || rc=$?
    if [ $# -gt 1 ]; then
        [ "$rc" -eq "$2" ] || fail "$name exited with status $rc, not $2"
        printf '%s\n' "$(wc -l <"$run/$name.out")" >"$run/$name.status"
        echo "$rc" >>"$run/$name.status"
    fi
}

# transcript NAME: NAME's session as the reader sees it: the command, the
# lines received with the typed lines among them, what the program said on
# standard error, and its exit status if `finish` asked for it.
transcript() {
    local name=$1
    cat "$run/$name.cmd"
    awk -F '\t' -v notes="$run/$name.notes" '
        BEGIN { while ((getline l < notes) > 0) { split(l, f, "\t"); at[++n] = f[1]; text[n] = f[2] } }
        { while (i < n && at[i + 1] < NR) { i++; print text[i] } print }
        END { while (i < n) { i++; print text[i] } }' "$run/$name.out"
    cat "$run/$name.err"
    if [ -f "$run/$name.status" ]; then
        echo "\$ echo \$?"
        sed -n 2p "$run/$name.status"
    fi
}

# --- normalizing --------------------------------------------------------------

# normalize: rewrite standard input's run-dependent values (see the top of
# this file). PID_MAP holds "real shown" pairs.
normalize() {
    # Through a token, so that a shown number that is also a real pid of
    # the session is not rewritten twice.
    local script="" back="" pair
    for pair in "${PID_MAP[@]}"; do
        script+="s/\\b${pair% *}\\b/@pid${pair#* }@/g;"
    done
    back='s/@pid([0-9]+)@/\1/g;'

    awk -v port="$PORT" -v shown="$SHOWN_PORT" -v run="$run" '
        function inode(kind, n) {
            if (!((kind n) in seen)) seen[kind n] = 100000 + ++count
            return kind ":[" seen[kind n] "]"
        }
        {
            gsub("127\\.0\\.0\\.1:" port, "127.0.0.1:" shown)
            gsub("TCP:127\\.0\\.0\\.1:" port, "TCP:127.0.0.1:" shown)
            gsub(" 127\\.0\\.0\\.1 " port "$", " 127.0.0.1 " shown)
            gsub(run, "/tmp/run")
            out = ""
            while (match($0, /(socket|pipe):\[[0-9]+\]/)) {
                tok = substr($0, RSTART, RLENGTH)
                k = substr(tok, 1, index(tok, ":") - 1)
                v = substr(tok, index(tok, "[") + 1); sub(/\]$/, "", v)
                out = out substr($0, 1, RSTART - 1) inode(k, v)
                $0 = substr($0, RSTART + RLENGTH)
            }
            $0 = out $0
            gsub(/up [0-9]+ s/, "up N s")
            gsub(/chat-[0-9]+-[0-9a-f]+/, "&@")
            print
        }' | sed -E "$script$back"'s/(chat-[0-9]+-)[0-9a-f]+@/\1XXXXXXXX/g' |
        awk '
            # A run of ps lines, in the order of the pids shown: the real
            # pids may have wrapped (pid_max), so their order is not it.
            function flush(   i, j, t) {
                for (i = 2; i <= n; i++)
                    for (j = i; j > 1 && key[j] < key[j - 1]; j--) {
                        t = key[j]; key[j] = key[j - 1]; key[j - 1] = t
                        t = row[j]; row[j] = row[j - 1]; row[j - 1] = t
                    }
                for (i = 1; i <= n; i++) print row[i]
                n = 0
            }
            /^@ps / {
                key[++n] = $2 + 0
                line = sprintf("%5s %5s", $2, $3)
                $1 = $2 = $3 = ""; sub(/^ +/, "")
                row[n] = line " " $0
                next
            }
            { flush(); print }
            END { flush() }' |
        fold_long
}

# fold_long: fold a line longer than FOLD characters after its last `; `
# that keeps the first part within FOLD, the rest indented by four spaces,
# so that it fits the page; unfold undoes it.
FOLD=128
fold_long() {
    awk -v w="$FOLD" '{
        line = $0
        while (length(line) > w) {
            cut = 0
            for (i = w - 1; i > 4; i--) if (substr(line, i, 2) == "; ") { cut = i; break }
            if (!cut) break
            print substr(line, 1, cut)
            line = "    " substr(line, cut + 2)
        }
        print line
    }'
}

# unfold FILE: FILE's lines as the program printed them.
unfold() {
    awk 'NR > 1 && /^    / { sub(/^    /, " "); held = held $0; next }
         NR > 1 { print held } { held = $0 } END { if (NR) print held }' "$1"
}

# map_pids PID...: number the processes of a session from 12000: those the
# session saw being created (BORN, in that order) first, then each PID not
# among them, in the order given.
map_pids() {
    local pid n=12000
    local -A seen=()
    PID_MAP=()
    for pid in "${BORN[@]}" "$@"; do
        [ -z "${seen[$pid]:-}" ] || continue
        seen[$pid]=1
        PID_MAP+=("$pid $n")
        n=$((n + 1))
    done
}

# note_children: add the server's children not seen before to BORN, oldest
# first (by start time, then pid). The order of creation is not that of
# the pids, which wrap around at pid_max.
note_children() {
    local pid start new=()
    for pid in $(ps -o pid= --ppid "$SRV_PID"); do
        case " ${BORN[*]} " in *" $pid "*) continue ;; esac
        start=$(awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$pid/stat" 2>/dev/null) || continue
        new+=("$start $pid")
    done
    [ ${#new[@]} -eq 0 ] ||
        while read -r _ pid; do BORN+=("$pid"); done < <(printf '%s\n' "${new[@]}" | sort -n -k1,1 -k2,2)
}

# nth_child N: the pid of the Nth child the server created.
nth_child() {
    note_children
    echo "${BORN[$1]:-}"
}

# born_more_than N: more than N processes of the server were seen created
# (the server itself is one).
born_more_than() {
    note_children
    [ ${#BORN[@]} -gt "$1" ]
}

# status_lines_at_least N: the server has printed N status lines or more.
status_lines_at_least() {
    [ "$(grep -c 'status:' "$SRV_ERR")" -ge "$1" ]
}

# pids_in FILE: every pid the server's trace names, in order of appearance.
pids_in() {
    grep -oE '(pid|child) [0-9]+' "$1" | grep -oE '[0-9]+$' | awk '!seen[$0]++'
}

# shell_ps PARENT: `ps -o pid,ppid,args --ppid PARENT`, in the five-digit
# columns ps uses for the pids shown.
shell_ps() {
    echo "\$ ps -o pid,ppid,args --ppid $1"
    echo "  PID  PPID COMMAND"
    # Marked lines: normalize lays them out once the pids are rewritten.
    ps -o pid=,ppid=,args= --ppid "$1" | sed 's/^ */@ps /'
}

# shell_maps PID: the region's line of /proc/PID/maps, its device and inode
# fixed, its address moved: the first address seen to 7f0000000000, the
# next different one to 7f1000000000, ... (size kept).
declare -A SHOWN_ADDR=()
shell_maps() {
    echo "\$ grep chat /proc/$1/maps"
    local range perms off path from to
    read -r range perms off _ _ path < <(grep chat "/proc/$1/maps")
    from=$((16#${range%-*}))
    to=$((16#${range#*-}))
    [ -n "${SHOWN_ADDR[$from]:-}" ] ||
        SHOWN_ADDR[$from]=$((16#7f0000000000 + ${#SHOWN_ADDR[@]} * 16#1000000000))
    printf '%-73s%s\n' "$(printf '%x-%x %s %s 00:1a 250' "${SHOWN_ADDR[$from]}" \
        $((SHOWN_ADDR[$from] + to - from)) "$perms" "$off")" "$path"
}

# shell_fds PID: the descriptors of a process, as `ls -l` shows them.
shell_fds() {
    echo "\$ ls -l /proc/$1/fd | sed 1d | awk '{print \$9, \$10, \$11}'"
    # shellcheck disable=SC2012 # the command shown is the one run
    ls -l "/proc/$1/fd" | sed 1d | awk '{print $9, $10, $11}'
}

# shell_shm PID: the server's shared-memory names in /dev/shm (none).
shell_shm() {
    echo "\$ ls /dev/shm/chat-$1-*"
    # shellcheck disable=SC2012 # the command shown is the one run
    ls "/dev/shm/chat-$1-"* 2>&1
}

# no_shm_left: nothing of the server is left in /dev/shm.
no_shm_left() {
    ! compgen -G "/dev/shm/chat-$SRV_PID-*" >/dev/null || fail "the server left /dev/shm/chat-$SRV_PID-*"
}

# save NAME: normalize standard input into OUT/NAME.
save() {
    normalize >"$out/$1"
}

# --- the sessions -------------------------------------------------------------

# Chapter 1: three clients, the -v trace, and a full room.
session_step01() {
    server_start step01 -v
    join user1 client
    join user2 client
    expect '* user2 joined' user1
    join user3 nc
    expect '* user3 joined' user1 user2
    say user1 'hello, room'
    expect 'user1: hello, room' user2 user3
    say user2 'hi user1, this is user2'
    expect 'user2: hi user1, this is user2' user1 user3
    say user3 'nc here, bye'
    expect 'user3: nc here, bye' user1 user2
    interrupt user3
    expect '* user3 left' user1 user2
    finish user3
    eof user2
    expect '* user2 left' user1
    finish user2 0
    eof user1
    finish user1 0
    trace_has 'user1 left$'
    kill "$SRV_PID"
    wait "$SRV_PID" 2>/dev/null
    map_pids
    printf '$ %s\n' "$SRV_CMD" | cat - "$SRV_OUT" | save step01-server.txt
    local who
    for who in user1 user2 user3; do
        transcript "$who" | save "step01-$who.txt"
    done
    save step01-trace.txt <"$SRV_ERR"
}

# Chapter 1 with -n 1: the second client is refused.
session_step01_full() {
    server_start step01 -v -n 1
    join user1 client
    "build/client" 127.0.0.1 "$PORT" </dev/null >"$run/refused.out" 2>&1 3>&- &
    local refused=$!
    PIDS+=("$refused")
    wait_until "the refused client to exit" gone "$refused"
    has_line "$run/refused.out" 'too many users' || fail "no 'too many users' for the refused client"
    trace_has 'room full, refused fd'
    kill "$SRV_PID"
    wait "$SRV_PID" 2>/dev/null
    map_pids
    save step01-full-trace.txt <"$SRV_ERR"
}

# Chapter 1 without -v: user1 floods, user2 never reads and is dropped.
session_step01_slow() {
    server_start step01
    join user1 client
    perl tests/helpers/peer.pl 127.0.0.1 "$PORT" noread >"$run/user2.out" 2>&1 3>&- &
    PIDS+=("$!")
    wait_until "the reader that never reads" has_line "$run/user2.out" connected
    expect '* user2 joined' user1
    yes "$(printf 'flood %.0s' {1..20})" >"$run/user1.in" 3>&- &
    PIDS+=("$!")
    # (Not trace_has: the flood goes on, the server never settles.)
    wait_until "the slow reader's drop" has_match "$SRV_ERR" 'slow reader'
    kill "$SRV_PID"
    wait "$SRV_PID" 2>/dev/null
    map_pids
    save step01-slow.txt <"$SRV_ERR"
}

# three_talk_then_hup: the opening of chapters 2-4's sessions. user1
# joins with the bundled client, user2 with nc -N, user3 with socat; each
# says a line that the other two hear; then SIGHUP, and its trace.
three_talk_then_hup() {
    join user1 client
    join user2 nc-N
    expect '* user2 joined' user1
    join user3 socat
    expect '* user3 joined' user1 user2
    say user1 'hello, room'
    expect 'user1: hello, room' user2 user3
    say user2 'hi user1, nc here'
    expect 'user2: hi user1, nc here' user1 user3
    say user3 'socat here'
    expect 'user3: socat here' user1 user2
    kill -HUP "$SRV_PID"
    trace_has 'signal pipe.*HUP'
}

# Chapter 2: the bundled client, nc -N and socat; SIGHUP, then SIGTERM.
session_step02() {
    server_start step02 -v
    three_talk_then_hup
    kill -TERM "$SRV_PID"
    expect '* server shutting down' user1 user2 user3
    finish user1 0
    finish user3 0
    server_exit
    eof user2 'after the server closed'
    finish user2
    map_pids
    printf '$ %s\n' "$SRV_CMD" | cat - "$SRV_OUT" | save step02-server.txt
    local who
    for who in user1 user2 user3; do
        transcript "$who" | save "step02-$who.txt"
    done
    grep '^status:' "$SRV_ERR" | save step02-status.txt
    save step02-trace.txt <"$SRV_ERR"
}

# Chapter 3: as chapter 2, then a look from the shell, the SIGKILL of
# user2's child, one more line, SIGTERM.
session_step03() {
    server_start step03 -v
    three_talk_then_hup
    local child2
    child2=$(nth_child 2)
    {
        echo "\$ kill -HUP $SRV_PID"
        shell_shm "$SRV_PID"
        shell_maps "$SRV_PID"
        shell_ps "$SRV_PID"
        shell_maps "$child2"
        shell_fds "$child2"
        echo "\$ kill -KILL $child2"
        echo "\$ kill -TERM $SRV_PID"
    } >"$run/shell"
    kill -KILL "$child2"
    expect '* user2 left' user1 user3
    say user1 'after the kill'
    expect 'user1: after the kill' user3
    kill -TERM "$SRV_PID"
    expect '* server shutting down' user1 user3
    finish user1 0
    finish user3 0
    server_exit
    no_shm_left
    eof user2 'after the kill'
    finish user2
    # shellcheck disable=SC2046 # one pid a word
    map_pids $(pids_in "$SRV_ERR")
    printf '$ %s\n' "$SRV_CMD" | cat - "$SRV_OUT" | save step03-server.txt
    local who
    for who in user1 user2 user3; do
        transcript "$who" | save "step03-$who.txt"
    done
    save step03-shell.txt <"$run/shell"
    grep '^\[parent\] status:' "$SRV_ERR" | save step03-status.txt
    save step03-trace.txt <"$SRV_ERR"
}

# Chapter 4: two workers; SIGHUP and a look from the shell, the SIGKILL of
# user2's worker, a fourth client on its replacement, SIGHUP, SIGTERM.
session_step04() {
    server_start step04 -v -w 2
    three_talk_then_hup
    local worker1 reports
    worker1=$(nth_child 2)
    reports=$(grep -c 'status:' "$SRV_ERR")
    {
        echo "\$ kill -HUP $SRV_PID"
        shell_shm "$SRV_PID"
        shell_maps "$SRV_PID"
        shell_ps "$SRV_PID"
        shell_fds "$worker1"
        shell_fds "$SRV_PID"
        echo "\$ kill -KILL $worker1"
    } >"$run/shell"
    kill -KILL "$worker1"
    expect '* user2 left' user1 user3
    wait_until "a replacement for worker 1" born_more_than 3
    say user1 'after the kill'
    expect 'user1: after the kill' user3
    join user4 nc-N
    expect '* user4 joined' user1 user3
    say user4 'new here'
    expect 'user4: new here' user1 user3
    kill -HUP "$SRV_PID"
    wait_until "the second status report" status_lines_at_least $((2 * reports))
    {
        echo "\$ kill -HUP $SRV_PID"
        shell_ps "$SRV_PID"
        echo "\$ kill -TERM $SRV_PID"
    } >"$run/shell2"
    kill -TERM "$SRV_PID"
    expect '* server shutting down' user1 user3 user4
    finish user1 0
    finish user3 0
    server_exit
    no_shm_left
    eof user2 'after the kill'
    eof user4 'after the server closed'
    finish user2
    finish user4
    # shellcheck disable=SC2046 # one pid a word
    map_pids $(pids_in "$SRV_ERR")
    printf '$ %s\n' "$SRV_CMD" | cat - "$SRV_OUT" | save step04-server.txt
    local who
    for who in user1 user2 user3 user4; do
        transcript "$who" | save "step04-$who.txt"
    done
    save step04-shell.txt <"$run/shell"
    save step04-shell2.txt <"$run/shell2"
    # The two reports, a blank line between them.
    awk '/^\[parent\] status: [0-9]+ users online/ && n++ { print "" }
         /^\[parent\] status:/' "$SRV_ERR" | save step04-status.txt
    grep -v '^\[parent\] status:' "$SRV_ERR" | save step04-trace.txt
}

# end_session: kill what the session started and is still running (by
# pid), remove its run directory.
end_session() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    PIDS=()
    [ -z "${run:-}" ] || rm -rf "$run"
    run=
}

# run_session NAME: one session in a fresh run directory.
run_session() {
    run=$(mktemp -d "${TMPDIR:-/tmp}/samples.XXXXXX")
    PIDS=()
    PID_MAP=()
    CPID=()
    HOLDER=()
    SHOWN_ADDR=()
    "session_$1"
    end_session
}

generate() {
    out=$1
    mkdir -p "$out"
    local s
    for s in step01 step01_full step01_slow step02 step03 step04; do
        run_session "$s" || fail "session $s failed"
    done
}

# --- comparing ----------------------------------------------------------------

# shape FILE: the kinds of clause of a trace, per kind of process (parent,
# child, worker): its lines split at `; `, every number replaced by N,
# signal names one a clause, each kind once. Which user's child reports a
# closed socketpair before it is reaped, say, is the scheduler's choice;
# that such lines exist, and their wording, is the program's. The numbers
# the reader checks are in the exact samples: the descriptors in the shell
# listings, the bytes in the chapter 1 and 2 traces. For EXACT_BEFORE_TERM,
# first the lines before the SIGTERM as they are.
shape() {
    case " $EXACT_BEFORE_TERM " in
    *" ${1##*/} "*) unfold "$1" | sed '/TERM/,$d; s/^/exact\t/' ;;
    esac
    unfold "$1" | sed -E 's/^\[(parent|user[0-9]+ pid [0-9]+|worker [0-9]+ pid [0-9]+)\] /\1\t/;
            s/^user[0-9]+ pid [0-9]+\t/child\t/; s/^worker [0-9]+ pid [0-9]+\t/worker\t/
            s/[0-9]+/N/g' |
        awk -F '\t' '{
            who = NF > 1 ? $1 : "-"; rest = NF > 1 ? $2 : $1
            n = split(rest, c, "; ")
            for (i = 1; i <= n; i++) {
                if (c[i] ~ /^signal pipe fd N: /) {
                    p = c[i]; sub(/: .*/, ":", p); s = c[i]; sub(/^[^:]*: /, "", s)
                    m = split(s, sig, " ")
                    for (j = 1; j <= m; j++) print who "\t" p " " sig[j]
                } else print who "\t" c[i]
            }
        }' | sort -u
}

# same NAME A B: the sample NAME is the same in files A and B (its shape,
# for a racy trace).
same() {
    case " $RACY " in
    *" $1 "*) cmp -s <(shape "$2") <(shape "$3") ;;
    *) cmp -s "$2" "$3" ;;
    esac
}

# compare DIR: every sample of docs/samples is in DIR and the same, and
# DIR has no other; print a diff of each that is not.
compare() {
    local dir=$1 f name status=0
    for f in docs/samples/*.txt "$dir"/*.txt; do
        name=${f##*/}
        [ -f "docs/samples/$name" ] || { echo "new sample, not committed: $name"; status=1; continue; }
        [ -f "$dir/$name" ] || { echo "committed sample no run produces: docs/samples/$name"; status=1; continue; }
        [[ $f == docs/* ]] || continue
        if ! same "$name" "docs/samples/$name" "$dir/$name"; then
            status=1
            echo "docs/samples/$name differs from a fresh run (make samples updates it):"
            case " $RACY " in
            *" $name "*) diff -u --label "committed $name (shape)" --label "fresh run (shape)" \
                <(shape "docs/samples/$name") <(shape "$dir/$name") ;;
            *) diff -u --label "committed $name" --label "fresh run" "docs/samples/$name" "$dir/$name" ;;
            esac
        fi
    done
    return "$status"
}

# update: make samples.
update() {
    local tmp name f
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/samples.XXXXXX")
    # shellcheck disable=SC2064 # expand now
    trap "end_session; rm -rf '$tmp'" EXIT
    generate "$tmp"
    mkdir -p docs/samples
    for f in "$tmp"/*.txt; do
        name=${f##*/}
        if [ -f "docs/samples/$name" ] && same "$name" "docs/samples/$name" "$f"; then
            continue
        fi
        cp "$f" "docs/samples/$name"
        echo "updated docs/samples/$name"
    done
    for f in docs/samples/*.txt; do
        [ -f "$tmp/${f##*/}" ] || { rm "$f"; echo "removed $f"; }
    done
}

case ${1:-} in
generate) generate "${2:?usage: samples.sh generate OUTDIR}" ;;
update) update ;;
compare) compare "${2:?usage: samples.sh compare DIR}" ;;
shape) shape "${2:?usage: samples.sh shape FILE}" ;;
*)
    echo "usage: tests/docs/samples.sh generate OUTDIR | update | compare DIR | shape FILE" >&2
    exit 2
    ;;
esac
