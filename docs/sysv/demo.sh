#!/usr/bin/env bash
# make sysv-demo: the transcript of docs/step03.md's "System V shared memory
# beside POSIX", from a real run of docs/sysv/sysv_demo.c.
#
#   docs/sysv/demo.sh BUILD/sysv/sysv_demo
#
# The two windows, alice and bob, are two background runs of sysv_demo in a
# new temporary directory (so the ftok() key is the demo's own); what they
# "type" goes down FIFOs this script holds open, what they print goes to
# files it reads. Three chats: one ended by Ctrl-D, which leaves nothing;
# one whose first window is killed with SIGKILL, which leaves the segment
# behind, found again by the next window until ipcrm removes it; one with
# `rmid`, whose segment goes with its last window however it ends. `ipcs -m`
# is cut to its heading and the demo's row: other segments are not its
# business. With kernel.shm_rmid_forced=1 the kernel itself removes a
# segment when its last process detaches: the transcript says so instead of
# showing a leftover. No fixed sleeps: each step waits for the line it
# expects, 10 s at most. What the demo made is removed on the way out.
set -u
bin=$(realpath "${1:?usage: demo.sh PATH/TO/sysv_demo}") || exit 1
dir=$(mktemp -d) || exit 1
chat=$dir/chat
declare -A pid=() shown=() fd=()
key='' id=''

# cleanup: kill the windows still running, remove the demo's segment by its
# key (never another program's segment that might reuse a freed shmid; one
# already gone makes ipcrm fail: fine), and the directory.
cleanup() {
    local w
    for w in "${!pid[@]}"; do
        kill -KILL "${pid[$w]}" 2>/dev/null && wait "${pid[$w]}" 2>/dev/null
    done
    [ -z "$key" ] || ipcrm -M "$key" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
mkdir "$chat" || exit 1

# say WINDOW TEXT: print TEXT as a line of WINDOW's terminal.
say() {
    printf '%-8s%s\n' "[$1]" "$2"
}

# start WINDOW FD ARGS...: run `sysv_demo ARGS` as WINDOW in the chat
# directory, its input a FIFO this script holds open on FD (4 or 5; 0: no
# input), its output and errors in WINDOW.out.
start() {
    local w=$1 f=$2
    shift 2
    say "$w" "\$ sysv_demo $*"
    local src=/dev/null
    : >"$dir/$w.out"
    if [ "$f" != 0 ]; then
        src=$dir/$w.in
        rm -f "$src"
        mkfifo "$src" || exit 1
        eval "exec $f<>\"\$src\""
    fi
    (cd "$chat" && exec "$bin" "$@") <"$src" >"$dir/$w.out" 2>&1 4>&- 5>&- &
    pid[$w]=$! shown[$w]=0 fd[$w]=$f
}

# upto WINDOW N: wait until WINDOW has printed N lines; show those not
# shown yet.
upto() {
    local w=$1 n=$2 deadline=$((SECONDS + 10)) line
    until [ "$(wc -l <"$dir/$w.out")" -ge "$n" ]; do
        if [ "$SECONDS" -gt "$deadline" ]; then
            cat "$dir/$w.out" >&2
            echo "demo: $w did not print $n lines in 10 s" >&2
            exit 1
        fi
        sleep 0.02
    done
    while IFS= read -r line; do
        say "$w" "$line"
    done < <(sed -n "$((shown[$w] + 1)),${n}p" "$dir/$w.out")
    shown[$w]=$n
}

# typed WINDOW TEXT: WINDOW types the line TEXT; `^D` closes its input.
typed() {
    say "$1" "$2    <- typed"
    if [ "$2" = ^D ]; then
        eval "exec ${fd[$1]}>&-"
    else
        printf '%s\n' "$2" >&"${fd[$1]}"
    fi
}

# ended WINDOW STATUS: wait until WINDOW has exited (10 s at most), with
# STATUS.
ended() {
    local deadline=$((SECONDS + 10)) status=0
    while kill -0 "${pid[$1]}" 2>/dev/null; do
        if [ "$SECONDS" -gt "$deadline" ]; then
            echo "demo: $1 did not exit in 10 s" >&2
            exit 1
        fi
        sleep 0.02
    done
    wait "${pid[$1]}" 2>/dev/null || status=$?
    unset "pid[$1]"
    [ "$status" = "$2" ] || {
        echo "demo: $1 exited with status $status, not $2" >&2
        exit 1
    }
}

# segment: note the key and shmid alice's first line names.
segment() {
    local first
    first=$(head -n 1 "$dir/alice.out")
    [[ $first =~ segment\ ([0-9]+)\ \(key\ (0x[0-9a-f]+)\) ]] ||
        { echo "demo: no segment in: $first" >&2; exit 1; }
    id=${BASH_REMATCH[1]} key=${BASH_REMATCH[2]}
}

# show: `ipcs -m`, its heading and the demo's row only, without the blanks
# ipcs pads its columns with.
show() {
    echo "\$ ipcs -m"
    ipcs -m | awk -v id="$id" '/^---|^key/ || $2 == id' | sed 's/ *$//'
}

# run CMD...: show the command line, run it.
run() {
    echo "\$ $*"
    (cd "$chat" && "$@") || exit 1
}

# killed WINDOW: SIGKILL it, as a crash would, and reap it (the shell's
# "Killed" report goes nowhere: it is not part of the transcript).
killed() {
    local status=0
    echo "\$ kill -KILL ${pid[$1]}"
    kill -KILL "${pid[$1]}" || exit 1
    { wait "${pid[$1]}"; } 2>/dev/null || status=$?
    unset "pid[$1]"
    [ "$status" = 137 ] || {
        echo "demo: $1 exited with status $status, not 137" >&2
        exit 1
    }
}

# chat_begins [rmid]: alice and bob start, bob joins, each says a line.
chat_begins() {
    start alice 4 "$@" chat alice
    upto alice 1
    segment
    start bob 5 "$@" chat bob
    upto bob 2
    upto alice 2
    if [ $# -gt 0 ]; then
        upto bob 3
        upto alice 3
    fi
    typed alice "hi bob"
    upto bob $(($# + 3))
    typed bob "hello alice"
    upto alice $(($# + 3))
}

run cat /proc/sys/kernel/shm_rmid_forced
forced=$(cat /proc/sys/kernel/shm_rmid_forced)

echo "# 1. The book's order, and a clean end: bob types Ctrl-D."
chat_begins
show
typed bob ^D
upto alice 5
ended bob 0
ended alice 0
show
run ls

echo "# 2. The book's order, and alice is killed."
chat_begins
killed alice
upto bob 4
ended bob 0
show
run ls
if [ "$forced" = 1 ]; then
    echo "# kernel.shm_rmid_forced is 1 here: the kernel removed the segment"
    echo "# when its last process detached, so nothing is left over."
else
    start carol 0 chat carol
    upto carol 1
    ended carol 1
    run ipcrm -m "$id"
    show
fi
run rm sysv_demo.fifo0 sysv_demo.fifo1

echo "# 3. The cure: rmid, and alice is killed."
chat_begins rmid
show
killed alice
upto bob 5
ended bob 0
show
run ls
