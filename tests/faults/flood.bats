#!/usr/bin/env bats
# Fault: a flood of connections that connect and vanish at once, closed
# (FIN) or aborted (RST) before the server has said a word to them.

# SC2154: CLIENT_ID[w] is an associative array's key, not a variable.
# shellcheck disable=SC2154

setup() {
    load ../helpers/common
    load faults
}

# check_pairs FILE FIRST LAST: every id FIRST..LAST is announced in FILE
# as joined once, then as left once, and no other id is; prints
# "joins J leaves L", or the first inconsistency and fails. Later ids
# (the clients that join after the flood) are not looked at.
check_pairs() {
    awk -v first="$2" -v last="$3" '
        /^\* user[0-9]+ (joined|left)$/ {
            id = substr($2, 5) + 0
            if (id > last) next
            if (id < first) { print "unexpected: " $0; bad = 1; exit }
            if ($3 == "joined") {
                if (id in joined) { print "joined twice: " $0; bad = 1; exit }
                joined[id] = 1; joins++
            } else {
                if (!(id in joined)) { print "left before it joined: " $0; bad = 1; exit }
                if (id in left) { print "left twice: " $0; bad = 1; exit }
                left[id] = 1; leaves++
            }
        }
        END {
            if (bad) exit 1
            for (id = first; id <= last; id++)
                if (!(id in left)) { print "never left: user" id; exit 1 }
            print "joins " joins + 0 " leaves " leaves + 0
        }' "$1"
}

# leaves_seen FILE FIRST LAST: FILE holds as many leaves as FIRST..LAST
# has ids.
leaves_seen() {
    [ "$(grep -cE '^\* user[0-9]+ left$' "$1")" -ge $(($3 - $2 + 1)) ]
}

@test "a flood of connections that vanish at once: ids advance, every join is followed by one leave, the room is served after" {
    # Thousands in one process or a pool; fewer for chapter 3, which forks
    # a process for every connection. In batches: each waits until the
    # server has taken every connection from its accept queue, so the
    # queue never overflows (a dropped SYN costs the flood a second) and
    # the flood's length is bounded.
    local batch=250 batches=3 limit=1000
    if ((STEP_NUM == 3)); then
        batch=100
        batches=2
        limit=100
    fi
    server_start -n "$limit"
    client_join w
    local mode n=0
    for mode in fin rst mixed; do
        for _ in $(seq 1 "$batches"); do
            run perl "$FAULTS_DIR/flood.pl" 127.0.0.1 "$SERVER_PORT" "$batch" "$mode"
            assert_success
            n=$((n + batch))
            wait_until "the accept queue to drain" backlog_empty
        done
    done
    # The accept queue is first come, first served: a client that
    # connects now is accepted after every connection of the flood, so
    # the flood's ids are exactly those between w's and f's.
    client_join f
    local first=$((CLIENT_ID[w] + 1)) last=$((CLIENT_ID[f] - 1))
    ((last >= first)) || fail "no connection of the flood was admitted"
    WAIT_SECONDS=60 wait_until "w to hear every flood user leave" \
        leaves_seen "$(out_of w)" "$first" "$last"
    run check_pairs "$(out_of w)" "$first" "$last"
    assert_success
    # Nobody of the flood is left in the room, and the room still talks.
    client_join g socat
    expect g "* welcome, you are user$((CLIENT_ID[f] + 1)) (3 online)"
    say g "after the flood"
    expect w "$(user_of g): after the flood"
    expect f "$(user_of g): after the flood"
    run server_alive
    assert_success
    wait_until "every dead child to be reaped" no_zombies
    figure "$n" "$n connections flooded, $((last - first + 1)) admitted, joins and leaves paired"
    server_stop
}
