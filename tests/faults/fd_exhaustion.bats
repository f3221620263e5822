#!/usr/bin/env bats
# Fault: the server runs out of file descriptors (a low ulimit -n) while
# more clients arrive than fit. It must refuse them cleanly ("too many
# users", or at least an orderly close), stay up, not spin, and recover
# when clients leave -- cycle after cycle, with nothing leaked.

setup() {
    load ../helpers/common
    load faults
}

# Descriptors per process (soft and hard): a dozen or two clients each.
NOFILE=32
# Fill and drain cycles.
CYCLES=4

# fds_are COUNTS: fd_counts prints COUNTS: the same processes, with the
# same number of open descriptors each.
fds_are() {
    [ "$(fd_counts)" = "$1" ]
}

# fate_of NAME FATE: how many of NAME's connections met FATE.
fate_of() {
    sed -nE "s/^fates .*\\b$2 ([0-9]+).*/\\1/p" "$(out_of "$1")"
}

@test "out of descriptors, four times over: refused cleanly, no spin, the room talks while full, and every descriptor comes back" {
    local pool=() crowd=60
    if ((STEP_NUM == 4)); then
        # One descriptor table per worker: a pool of two, whatever the
        # machine's CPU count, and a crowd that overfills both.
        pool=(-w 2)
        crowd=100
    fi
    SERVER_NOFILE=$NOFILE SERVER_NOFILE_HARD=$NOFILE server_start -n 1000 "${pool[@]}"
    # w watches the room throughout: its leaves tell when a drain is over.
    client_join w
    local gone=0
    if ((STEP_NUM == 4)); then
        # Round-robin: the next client goes to the other worker, which has
        # then certainly started.
        client_join probe
        client_close probe
        expect w "* $(user_of probe) left"
        gone=1
    fi
    local baseline
    baseline=$(fd_counts)
    local cycle welcomed capacity='' refused=0
    for cycle in $(seq 1 "$CYCLES"); do
        piped_start "crowd$cycle" perl "$FAULTS_DIR/fill.pl" 127.0.0.1 "$SERVER_PORT" "$crowd"
        WAIT_SECONDS=90 wait_until "crowd$cycle to report" grep -q '^heard ' "$(out_of "crowd$cycle")"
        run cat "$(out_of "crowd$cycle")"
        welcomed=$(fate_of "crowd$cycle" welcomed)
        # Every connection got an answer: a welcome, or a clean refusal.
        [ "$(fate_of "crowd$cycle" pending)" -eq 0 ] || fail "connections left hanging: $output"
        [ "$(fate_of "crowd$cycle" reset)" -eq 0 ] || fail "connections reset: $output"
        [ "$(fate_of "crowd$cycle" odd)" -eq 0 ] || fail "odd answers: $output"
        ((welcomed >= 1 && welcomed < crowd)) || fail "not out of descriptors: $output"
        run grep -c 'Too many open files' "$SERVER_ERR"
        ((output >= 1))
        # The room works while it is full: all but the speaker heard it.
        grep -qx "heard $((welcomed - 1))" "$(out_of "crowd$cycle")" ||
            fail "not every welcomed client heard the room while full"
        # The same capacity every cycle: nothing leaked.
        : "${capacity:=$welcomed}"
        [ "$welcomed" -eq "$capacity" ] ||
            fail "cycle $cycle admitted $welcomed, cycle 1 admitted $capacity"
        refused=$((refused + crowd - welcomed))
        run server_alive
        assert_success
        assert_no_spin "while out of descriptors"
        client_close "crowd$cycle"
        wait_for_line "$(out_of "crowd$cycle")" drained
        gone=$((gone + welcomed))
        wait_until "w to hear all $gone leaves" eval \
            "[ \$(grep -c '^\* user[0-9]* left\$' '$(out_of w)') -eq $gone ]"
        wait_until "every descriptor of cycle $cycle to be closed" \
            fds_are "$baseline" || {
            echo "now: $(fd_counts)"$'\n'"before: $baseline" >&2
            false
        }
    done
    client_join after
    client_join after2 nc
    say after "recovered"
    expect after2 "$(user_of after): recovered"
    figure "$refused" "$CYCLES fill/drain cycles at ulimit -n $NOFILE, $capacity admitted and $((crowd - capacity)) refused per cycle, $refused refusals in all"
    server_stop
}
