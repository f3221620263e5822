#!/usr/bin/env bats
# The protocol suite: the SPEC's chat protocol, identical in every step.
#
# Written once, here; each step's suite links it (tests/stepNN/protocol.bats
# -> ../protocol/protocol.bats), so `bats tests/step02` runs it against
# build/step02/server. Point it at any server with SERVER=path.
#
# Which shared suites apply to which step is the list of links in each
# tests/stepNN/ directory (`ls -l tests/step0*/`):
#   protocol.bats    every step
#   user_limit.bats  steps 1-3 (the book's USER_LIMIT 5 as the default)
#   signals.bats     steps 2 on (chapter 1 has no signal handling)
#   fd_limit.bats    steps 2 and 3 (chapter 4 derives its limit instead)

# shellcheck disable=SC2154 # bats's run sets $stderr

setup() {
    load ../helpers/common
}

# --- the server's command line ----------------------------------------------

@test "the server prints its real address on stdout and nothing else" {
    server_start
    run cat "$SERVER_OUT"
    assert_output "listening on 127.0.0.1:$SERVER_PORT"
}

@test "-h prints usage on stdout and exits 0" {
    run --separate-stderr "$SERVER" -h
    assert_success
    assert_output --partial "usage:"
    assert_equal "$stderr" ""
}

@test "no arguments: usage on stderr, exit 2" {
    run --separate-stderr "$SERVER"
    assert_failure 2
    assert_output ""
    [[ $stderr == *usage:* ]]
}

@test "an unknown option: usage on stderr, exit 2" {
    run --separate-stderr "$SERVER" -Z 127.0.0.1 0
    assert_failure 2
    [[ $stderr == *usage:* ]]
}

@test "a bad port, a bad host or a bad -n: exit 2" {
    run "$SERVER" 127.0.0.1 70000
    assert_failure 2
    run "$SERVER" 127.0.0.1 12ab
    assert_failure 2
    run "$SERVER" not-an-address 0
    assert_failure 2
    run "$SERVER" -n 0 127.0.0.1 0
    assert_failure 2
    run "$SERVER" -n many 127.0.0.1 0
    assert_failure 2
    run "$SERVER" 127.0.0.1 0 extra
    assert_failure 2
}

@test "a control byte in an argument is quoted as '?': the reason stays one line" {
    # Found by tests/fuzz/fuzz_args.c: a newline or an escape sequence in
    # HOST, PORT or -n used to be quoted as it was.
    run --separate-stderr "$SERVER" $'::1\n\e[2J' 0
    assert_failure 2
    [ "${stderr_lines[0]}" = "server: '::1??[2J' '0' is not an IPv4/IPv6 address and a port 0-65535" ]
    [[ ${stderr_lines[1]} == usage:* ]]
    run --separate-stderr "$SERVER" -n $'5\r' 127.0.0.1 0
    assert_failure 2
    [ "${stderr_lines[0]}" = "server: USERS must be a number from 1 to 1000000: '5?'" ]
    run --separate-stderr "$SERVER" -$'\t' 127.0.0.1 0
    assert_failure 2
    [ "${stderr_lines[0]}" = "server: unknown option -?" ]
}

@test "-: is an unknown option, not one that needs an argument" {
    # Found by tests/fuzz/fuzz_args.c: ':' is in getopt's option string.
    run --separate-stderr "$SERVER" -: 127.0.0.1 0
    assert_failure 2
    [ "${stderr_lines[0]}" = "server: unknown option -:" ]
    run --separate-stderr "$SERVER" -n
    assert_failure 2
    [ "${stderr_lines[0]}" = "server: option -n needs an argument" ]
}

@test "a taken port is one clear line on stderr and exit 1" {
    server_start
    run --separate-stderr "$SERVER" 127.0.0.1 "$SERVER_PORT"
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" \
        "cannot listen on 127.0.0.1:$SERVER_PORT: Address already in use"
}

@test "IPv6: listens on [::1] and relays lines" {
    SERVER_HOST=::1 server_start
    run cat "$SERVER_OUT"
    assert_output "listening on [::1]:$SERVER_PORT"
    SERVER_HOST=::1 client_join a
    SERVER_HOST=::1 client_join b nc
    say a "over IPv6"
    expect b "$(user_of a): over IPv6"
}

# --- joining and leaving -----------------------------------------------------

@test "the first client is welcomed as user1, 1 online" {
    server_start
    client_join a
    run cat "$(out_of a)"
    assert_output "* welcome, you are user1 (1 online)"
}

@test "the welcome counts everyone online and the others hear the join" {
    server_start
    client_join a
    client_join b nc
    client_join c socat
    expect b "* welcome, you are user2 (2 online)"
    expect c "* welcome, you are user3 (3 online)"
    expect a "* user2 joined"
    expect a "* user3 joined"
    expect b "* user3 joined"
    run cat "$(out_of a)"
    assert_output "* welcome, you are user1 (1 online)
* user2 joined
* user3 joined"
}

@test "a client that closes is announced as left to everyone else" {
    server_start
    client_join a
    client_join b nc
    client_join c socat
    client_close b
    expect a "* user2 left"
    expect c "* user2 left"
    wait_until "b's client to exit" client_gone b
    run count_lines "$(out_of b)" "* user2 left"
    assert_output 0
}

@test "a client whose process is killed is announced as left" {
    server_start
    client_join a
    client_join b
    client_kill b
    expect a "* user2 left"
}

@test "ids are never reused: a new client after a leave gets the next id" {
    server_start
    client_join a
    client_join b
    client_close a
    expect b "* user1 left"
    client_join c nc
    expect c "* welcome, you are user3 (2 online)"
    expect b "* user3 joined"
}

@test "a full room refuses with 'too many users' and closes" {
    server_start -n 2
    client_join a
    client_join b nc
    client_start c socat
    wait_until "the refused client to be closed" client_gone c
    run cat "$(out_of c)"
    assert_output "too many users"
    # The room did not change: nobody heard a join, and a leave makes room.
    say a "still here"
    expect b "user1: still here"
    run grep -c joined "$(out_of a)"
    assert_output 1
    client_close b
    expect a "* user2 left"
    client_join d
    expect a "* user3 joined"
    run head -n 1 "$(out_of d)"
    assert_output "* welcome, you are user3 (2 online)"
}

# --- relaying lines ------------------------------------------------------------

@test "a line reaches every other client and never the sender" {
    server_start
    client_join a
    client_join b nc
    client_join c socat
    say a "hello, room"
    expect b "user1: hello, room"
    expect c "user1: hello, room"
    say b "and back"
    expect a "user2: and back"
    expect c "user2: and back"
    run count_lines "$(out_of a)" "user1: hello, room"
    assert_output 0
    run count_lines "$(out_of b)" "user2: and back"
    assert_output 0
}

@test "concurrent senders: every line arrives exactly once, in each sender's order" {
    server_start -n 10
    client_join a
    client_join b nc
    client_join c socat
    client_join l
    local n=300 who
    for who in a b c; do
        seq -f "$who %g" 1 "$n" >"$BATS_TEST_TMPDIR/$who.lines"
    done
    # All three write at once; each sender's lines leave in one burst.
    local pids=()
    for who in a b c; do
        send_file "$who" "$BATS_TEST_TMPDIR/$who.lines" 3>&- &
        pids+=("$!")
    done
    wait "${pids[@]}"
    local lo
    lo=$(out_of l)
    expect l "user1: a $n"
    expect l "user2: b $n"
    expect l "user3: c $n"
    for who in a b c; do
        local id=$(( $(printf '%d' "'$who") - 96 ))
        run diff <(sed -n "s/^user$id: //p" "$lo") "$BATS_TEST_TMPDIR/$who.lines"
        assert_success
    done
    # Each sender heard the other two, exactly, and never itself.
    expect a "user3: c $n"
    expect a "user2: b $n"
    run diff <(sed -n 's/^user2: //p' "$(out_of a)") "$BATS_TEST_TMPDIR/b.lines"
    assert_success
    run grep -c '^user1: ' "$(out_of a)"
    assert_output 0
}

@test "a line written byte by byte is relayed once" {
    server_start
    client_join a
    client_join b
    local ch
    for ch in s p l i t ' ' l i n e; do
        say_raw a '%s' "$ch"
    done
    say_raw a '\n'
    expect b "user1: split line"
    run grep -c '^user1: ' "$(out_of b)"
    assert_output 1
}

@test "many lines in one write are separate messages" {
    server_start
    client_join a
    client_join b
    say_raw a 'one\ntwo\nthree\n'
    expect b "user1: three"
    run sed -n 's/^user1: //p' "$(out_of b)"
    assert_output "one
two
three"
}

@test "CRLF: a \\r before \\n is dropped (telnet)" {
    server_start
    client_join a
    client_join b
    say_raw a 'from telnet\r\n'
    expect b "user1: from telnet"
}

@test "an empty line is relayed as an empty message" {
    server_start
    client_join a
    client_join b
    say_raw a '\nafter\n'
    expect b "user1: after"
    run sed -n '/^user1:/p' "$(out_of b)"
    assert_output "user1: 
user1: after"
}

@test "NUL bytes and invalid UTF-8 are relayed unchanged" {
    server_start
    client_join a
    client_join b socat
    local want=$BATS_TEST_TMPDIR/want
    say_raw a 'a\000b\377\376\001\r\033[31m\n'
    printf 'user1: a\000b\377\376\001\r\033[31m\n' >"$want"
    local size
    size=$(stat -c %s "$want")
    wait_until "b to receive the binary line" eval \
        "[ \$(stat -c %s '$(out_of b)') -ge \$(( $size + 36 )) ]"
    run cmp <(tail -c "$size" "$(out_of b)") "$want"
    assert_success
}

@test "a 5000-byte line arrives as 1023-byte pieces with nothing lost" {
    server_start
    client_join a
    client_join b nc
    local line
    line=$(seq -s '' 1 2000 | head -c 5000)
    say a "$line"
    expect b "user1: ${line:4092}"
    run sed -n 's/^user1: //p' "$(out_of b)"
    assert_output "${line:0:1023}
${line:1023:1023}
${line:2046:1023}
${line:3069:1023}
${line:4092}"
}

@test "a 1 MiB line in one write is relayed whole" {
    server_start
    client_join a
    client_join b socat
    local big=$BATS_TEST_TMPDIR/big
    head -c $((1024 * 1024)) /dev/urandom | base64 -w 0 | head -c $((1024 * 1024)) >"$big"
    printf '\n' >>"$big"
    send_file a "$big"
    local pieces=$(((1024 * 1024 + 1022) / 1023))
    wait_until "b to receive $pieces pieces" eval \
        "[ \$(grep -c '^user1: ' '$(out_of b)') -ge $pieces ]"
    run cmp <(sed -n 's/^user1: //p' "$(out_of b)" | tr -d '\n') \
        <(head -c $((1024 * 1024)) "$big")
    assert_success
    run grep -c '^user1: ' "$(out_of b)"
    assert_output "$pieces"
}

@test "the last line without \\n is relayed when its sender closes" {
    server_start
    client_join a
    client_join b
    say_raw a 'no newline at the end'
    client_close a
    expect b "user1: no newline at the end"
    expect b "* user1 left"
    run tail -n 2 "$(out_of b)"
    assert_output "user1: no newline at the end
* user1 left"
}

# --- faults --------------------------------------------------------------------

@test "a client that resets mid-line is announced as left and the server stays up" {
    server_start
    client_join a
    client_join b nc
    peer_start r reset 'half a li'
    expect a "* user3 joined"
    wait_for_line "$(out_of r)" reset
    expect a "* user3 left"
    say b "still talking"
    expect a "user2: still talking"
    client_join c
    expect c "* welcome, you are user4 (3 online)"
}

@test "a reader that never reads is dropped while the rest keep chatting" {
    server_start -n 10
    client_join a
    client_join b socat
    peer_start slow noread
    expect a "* user3 joined"
    # 5.4 MB at full speed, far more than the kernel's socket buffers and
    # any queue hold: the server paces the sender, b keeps up, and only
    # the peer that never reads falls behind.
    local flood=$BATS_TEST_TMPDIR/flood n=6000
    seq -f "%0900g" 1 "$n" >"$flood"
    send_file a "$flood" 3>&- &
    bg_track "$!"
    # shellcheck disable=SC2034 # read by the helpers' waits
    WAIT_SECONDS=60
    expect b "* user3 left"
    expect b "user1: $(printf '%0900d' "$n")"
    run grep -c '^user1: ' "$(out_of b)"
    assert_output "$n"
    say b "after the flood"
    expect a "user2: after the flood"
    run server_alive
    assert_success
}

# --- no busy loop, and running out of descriptors ------------------------------

# How long CPU use is measured. Not a wait for a condition: a spinning
# server burns a whole second of CPU in it, an idle one none.
IDLE_WINDOW=1
# Clock ticks (normally 1/100 s) an idle server may use in IDLE_WINDOW.
IDLE_TICKS=5

# cpu_over_window: prints the CPU ticks the server used during IDLE_WINDOW.
cpu_over_window() {
    local before after
    before=$(server_cpu_ticks)
    sleep "$IDLE_WINDOW"
    after=$(server_cpu_ticks)
    echo $((after - before))
}

@test "idle clients cost no CPU (the book's events |= ~POLLIN spin)" {
    server_start
    client_join a
    client_join b nc
    client_join c socat
    say a "one message, so every queue has been used once"
    expect b "user1: one message, so every queue has been used once"
    expect c "user1: one message, so every queue has been used once"
    run cpu_over_window
    assert_success
    ((output <= IDLE_TICKS)) || fail "idle server used $output ticks in ${IDLE_WINDOW}s"
}

@test "out of file descriptors: the server refuses, stays up and does not spin" {
    SERVER_NOFILE=20 SERVER_NOFILE_HARD=20 server_start -n 100
    # One process runs out after about a dozen clients; the pool (chapter
    # 4) has a descriptor table per worker, one worker per CPU.
    local cpus
    cpus=$(getconf _NPROCESSORS_ONLN)
    local i refused=
    for i in $(seq 1 $((20 * cpus + 4))); do
        client_start "c$i"
        wait_until "c$i's first line" grep -q . "$(out_of "c$i")"
        if has_line "$(out_of "c$i")" "too many users"; then
            refused=$i
            break
        fi
    done
    [ -n "$refused" ] || fail "20 descriptors per process never ran out"
    # It was the descriptor limit, not the room, that refused (-n 100).
    run grep -c 'Too many open files' "$SERVER_ERR"
    ((output >= 1))
    wait_until "the refused client to be closed" client_gone "c$refused"
    run server_alive
    assert_success
    run cpu_over_window
    ((output <= IDLE_TICKS)) || fail "server used $output ticks in ${IDLE_WINDOW}s at EMFILE"
    # A leave frees a descriptor, and a new client is served again. In the
    # pool (chapter 4) descriptors are per worker: a connection handed to a
    # worker that is still full is refused, and the next one goes to the
    # next worker -- so try once per worker, and once more.
    client_close c1
    expect c2 "* user1 left"
    local attempt served=
    for attempt in $(seq 1 $((cpus + 1))); do
        client_start "again$attempt"
        wait_until "again$attempt's first line" grep -q . "$(out_of "again$attempt")"
        if grep -q '^\* welcome, you are ' "$(out_of "again$attempt")"; then
            served=again$attempt
            break
        fi
    done
    [ -n "$served" ] || fail "no new client was served after a leave"
    say "$served" "served"
    expect c2 "user$((refused)): served"
}
