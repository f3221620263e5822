#!/usr/bin/env bats
# Chapter 3: the shared memory (book 13.6) -- its name, its mode, and that
# nothing of it outlives the server, however it ends.

setup() {
    load ../helpers/common
}

# shm_names PID: the /dev/shm names a server with that pid created (ours
# are /chat-<pid>-<random>), if any are still there.
shm_names() {
    find /dev/shm -maxdepth 1 -name "chat-$1-*" 2>/dev/null
}

# mapped_shm PID: the deleted /dev/shm object the process has mapped.
mapped_shm() {
    grep -o '/dev/shm/chat-[^ ]*' "/proc/$1/maps" | head -n 1
}

@test "book pitfall: shm_open(\"/my_shm\", ..., 0666) -- ours is private to the instance and already unlinked" {
    server_start
    client_join a
    local name
    name=$(mapped_shm "$SERVER_PID")
    [[ $name == /dev/shm/chat-$SERVER_PID-* ]] || fail "no chat shm mapped: $name"
    # Unlinked at once: the mapping lives on, the name does not.
    grep -q "$name (deleted)" "/proc/$SERVER_PID/maps"
    run shm_names "$SERVER_PID"
    assert_output ""
    # Mode 0600, read through the mapping (map_files needs root).
    local range
    range=$(grep -m1 "$name" "/proc/$SERVER_PID/maps" | cut -d' ' -f1)
    if [ -r "/proc/$SERVER_PID/map_files/$range" ]; then
        run stat -L -c %a "/proc/$SERVER_PID/map_files/$range"
        assert_output 600
    fi
}

@test "two servers at once each have their own room" {
    server_start
    local first_pid=$SERVER_PID first_port=$SERVER_PORT
    client_join a
    client_join b
    server_start
    client_join c
    client_join d
    say c "second room"
    expect d "user1: second room"
    say a "first room"
    expect b "user1: first room"
    # a never hears the second room, c never the first.
    run grep -F 'second room' "$(out_of a)" "$(out_of b)"
    assert_failure
    run grep -F 'first room' "$(out_of c)" "$(out_of d)"
    assert_failure
    [ "$(mapped_shm "$first_pid")" != "$(mapped_shm "$SERVER_PID")" ]
    [ "$first_port" != "$SERVER_PORT" ]
}

@test "nothing stays in /dev/shm and no process stays after SIGTERM" {
    server_start
    client_join a
    client_join b
    local kids
    kids=$(children_of "$SERVER_PID")
    [ "$(echo "$kids" | wc -w)" -eq 2 ]
    kill -TERM "$SERVER_PID"
    run server_exit_status
    assert_output 0
    run shm_names "$SERVER_PID"
    assert_output ""
    local kid
    for kid in $kids; do
        wait_for_exit "$kid"
    done
}

@test "nothing stays in /dev/shm and no child outlives a SIGKILLed parent" {
    server_start
    client_join a
    client_join b nc
    local kids
    kids=$(children_of "$SERVER_PID")
    [ "$(echo "$kids" | wc -w)" -eq 2 ]
    kill -KILL "$SERVER_PID"
    local kid
    for kid in $kids; do
        wait_for_exit "$kid"
    done
    run shm_names "$SERVER_PID"
    assert_output ""
    # The clients see their connections closed.
    wait_until "a's client to see the close" client_gone a
}

@test "nothing stays in /dev/shm after a normal start and a usage error" {
    run "$SERVER" -n 0 127.0.0.1 0
    assert_failure 2
    server_start
    local pid=$SERVER_PID
    kill -INT "$pid"
    run server_exit_status
    assert_output 0
    run shm_names "$pid"
    assert_output ""
}

@test "a slot whose ring /dev/shm cannot supply when it is first used: that newcomer is refused with one warning, the room goes on (never SIGBUS)" {
    [ "$(id -u)" -eq 0 ] || skip "needs root for a private mount namespace"
    command -v unshare >/dev/null || skip "needs unshare (util-linux)"
    local jail=$REPO_ROOT/tests/faults/shm_jail.sh
    "$jail" tiny true 2>/dev/null ||
        skip "cannot mount a tmpfs in a private mount namespace here"
    # A /dev/shm with room for what is reserved at start -- the dense
    # arrays and the rings of the first 64 slots, 17,093 KiB with -n 100 --
    # and not for the ring of a 65th slot (267 KiB).
    local wrapper=$BATS_TEST_TMPDIR/jailed
    printf '#!/bin/sh\nexec %q size=17300k %q "$@"\n' "$jail" "$SERVER" >"$wrapper"
    chmod +x "$wrapper"
    SERVER=$wrapper server_start -n 100
    local i
    for ((i = 1; i <= 64; i++)); do client_join "c$i"; done
    client_start late
    wait_for_line "$(out_of late)" "too many users"
    wait_until "the warning" grep -q 'cannot make room for a new client: No space left on device' "$SERVER_ERR"
    say c1 "sixty-four, and still talking"
    expect c64 "user1: sixty-four, and still talking"
    run server_alive
    assert_success
}
