#!/usr/bin/env bash
# make demo: a real chat room at work. Starts a chapter's server on a free
# loopback port, connects three people with three different clients (the
# bundled client, nc and socat), plays a short conversation, and prints
# what each of them saw.
#
#   tests/demo.sh [stepNN]     (default: step01)
set -eu
cd "$(dirname "$0")/.."

step=${1:-step01}
server=build/$step/server
client=build/client
deadline_s=10
poll_s=0.02 # pause between two looks at a condition

for tool in nc socat; do
    command -v "$tool" >/dev/null || bash tests/deps.sh install
done
if [ ! -x "$server" ] || [ ! -x "$client" ]; then
    echo "demo: build first: make $step" >&2
    exit 1
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for FILE LINE: wait until FILE holds LINE, at most deadline_s.
wait_for() {
    local end=$((SECONDS + deadline_s))
    until grep -Fxq -- "$2" "$1" 2>/dev/null; do
        if ((SECONDS > end)); then
            echo "demo: '$2' never arrived in $1" >&2
            exit 1
        fi
        sleep "$poll_s"
    done
}

"$server" 127.0.0.1 0 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
pids+=("$server_pid")
end=$((SECONDS + deadline_s))
until grep -q '^listening on ' "$tmp/server.out"; do
    ((SECONDS <= end)) || { echo "demo: the server did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }
    sleep "$poll_s"
done
addr=$(sed -n 's/^listening on //p' "$tmp/server.out")
port=${addr##*:}
echo "$ $server 127.0.0.1 0"
echo "listening on $addr"
echo

# join NAME COMMAND...: NAME connects with COMMAND, input from a FIFO.
join() {
    local name=$1
    shift
    mkfifo "$tmp/$name.in"
    : >"$tmp/$name.out"
    "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>/dev/null &
    pids+=($!)
    sleep infinity >"$tmp/$name.in" &
    pids+=($!)
    eval "hold_$name=$!"
    echo "-- $name joins with: $*"
}

# say NAME TEXT: NAME types a line.
say() {
    printf '%s\n' "$2" >"$tmp/$1.in"
    if ((${#2} > 60)); then
        echo "$1 types: ${2:0:20}... (${#2} bytes)"
    else
        echo "$1 types: $2"
    fi
}

join alice "$client" 127.0.0.1 "$port"
wait_for "$tmp/alice.out" "* welcome, you are user1 (1 online)"
join bob nc -N 127.0.0.1 "$port"
wait_for "$tmp/alice.out" "* user2 joined"
join carol socat - "TCP:127.0.0.1:$port"
wait_for "$tmp/bob.out" "* user3 joined"

say alice "hi both, I am on build/client"
say bob "hello from nc"
wait_for "$tmp/carol.out" "user2: hello from nc"
say carol "socat here; a long line follows"
say carol "$(printf 'x%.0s' $(seq 1 1100))"
wait_for "$tmp/alice.out" "user3: $(printf 'x%.0s' $(seq 1 77))"
echo "-- bob leaves (end of input)"
eval "kill \$hold_bob"
wait_for "$tmp/alice.out" "* user2 left"
say alice "bye carol"
wait_for "$tmp/carol.out" "user1: bye carol"

# From chapter 2 on, SIGTERM is an event of the loop: a graceful shutdown.
if [ "${step#step}" -ge 2 ] 2>/dev/null; then
    echo "-- the server gets SIGTERM"
    kill -TERM "$server_pid"
    wait_for "$tmp/alice.out" "* server shutting down"
    wait_for "$tmp/carol.out" "* server shutting down"
    rc=0
    wait "$server_pid" || rc=$?
    echo "-- the server exited with status $rc"
fi

echo
for who in alice bob carol; do
    echo "== what $who saw"
    # Shorten the 1023-byte piece of the long line for the screen.
    sed -E 's/^(user[0-9]+: x{20})x{100,}$/\1... (1023 bytes)/' "$tmp/$who.out"
    echo
done
echo "demo: every line arrived; the server ran as $server"
