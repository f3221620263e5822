#!/usr/bin/env bash
# make sysv-demo: the transcript of docs/step03.md's "System V shared memory
# beside POSIX", from a real run of docs/sysv/sysv_demo.c.
#
#   docs/sysv/demo.sh BUILD/sysv/sysv_demo
#
# Two runs with the same ftok() key, each chatting from an input that never
# ends and killed with SIGKILL: the first leaves its segment behind
# (nattch 0, still listed), the second finds it again, `hello` and all,
# marks it IPC_RMID at once, and the segment goes with it. The key is that of a new temporary directory (ftok(".")), so the
# demo never meets another program's segment, and `ipcs -m` is shown with
# only this demo's row: other segments on the machine are not its business.
# Every segment the demo made is removed on the way out, even on failure.
set -u
bin=$(realpath "${1:?usage: demo.sh PATH/TO/sysv_demo}") || exit 1
dir=$(mktemp -d) || exit 1
pid='' id='' key=''

# cleanup: kill the run still waiting, remove the segment by its key (so
# never another program's segment that might reuse a freed shmid), and the
# directory. A segment already gone with the cure makes ipcrm fail: fine.
cleanup() {
    [ -z "$pid" ] || { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null
    [ -z "$key" ] || ipcrm -M "$key" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# sysv_demo chats from its standard input until that ends: a FIFO that this
# script holds open (fd 4) and never writes keeps it waiting to be killed.
mkfifo "$dir/in" || exit 1
exec 4<>"$dir/in"

# start ARGS...: run sysv_demo ARGS in the background in $dir, show its two
# lines once printed (5 s at most), note its pid, key and shmid.
start() {
    echo "\$ sysv_demo $* &"
    (cd "$dir" && exec "$bin" "$@") <"$dir/in" >"$dir/out" 2>&1 4>&- &
    pid=$!
    local tries=0
    until [ "$(grep -c . "$dir/out")" -ge 2 ]; do
        if ! kill -0 "$pid" 2>/dev/null || [ $((tries += 1)) -gt 100 ]; then
            cat "$dir/out"
            echo "demo: sysv_demo $* did not start" >&2
            exit 1
        fi
        sleep 0.05
    done
    cat "$dir/out"
    key=$(sed -n 's/^key \(0x[0-9a-f]*\) shmid [0-9]*$/\1/p' "$dir/out")
    id=$(sed -n 's/^key .* shmid \([0-9]*\)$/\1/p' "$dir/out")
}

# show: `ipcs -m`, its heading and this demo's row only, without the
# trailing blanks ipcs pads its columns with.
show() {
    echo "\$ ipcs -m"
    ipcs -m | awk -v id="$id" '/^---|^key/ || $2 == id' | sed 's/ *$//'
}

# stop: SIGKILL the waiting run, as a crash would, and reap it (the shell's
# "Killed" report goes nowhere: it is not part of the transcript).
stop() {
    echo "\$ kill -KILL $pid"
    kill -KILL "$pid" || exit 1
    wait "$pid" 2>/dev/null
    pid=
}

start .
show
stop
show
start rmid .
show
stop
show
