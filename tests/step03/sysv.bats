#!/usr/bin/env bats
# Chapter 3's sidebar "System V shared memory beside POSIX" (book 13.6.1 to
# 13.6.3, 13.8): a segment outlives a killed process unless shmctl(IPC_RMID)
# came first, whether SIGKILL or the SIGPIPE of a FIFO nobody reads ends it,
# shown by docs/sysv/sysv_demo.c and `make sysv-demo`, whose transcript is
# the page's. Each test makes its own segments (IPC_PRIVATE, or ftok() of
# its own temporary directory) and removes only those.

# SC2154: bats's run sets stderr. SC2317: bats calls the teardown that
# setup defines.
# shellcheck disable=SC2154,SC2317

setup() {
    load ../helpers/common
    export LC_ALL=C
    DEMO=${SYSV_DEMO:-$BUILD_DIR/sysv/sysv_demo}
    SEG_IDS=() SEG_PIDS=()
    # helpers/common, loaded above, defines teardown as stop_all; this
    # suite also removes the segments its tests made.
    teardown() {
        stop_all
        remove_segments
    }
}

# remove_segments: ipcrm every segment demo_start saw.
remove_segments() {
    local i
    for i in "${!SEG_IDS[@]}"; do
        # Only a segment still created by our own process: a freed shmid
        # may already belong to another test's segment.
        if [ "$(seg_field "${SEG_IDS[$i]}" cpid)" = "${SEG_PIDS[$i]}" ]; then
            ipcrm -m "${SEG_IDS[$i]}" || true
        fi
    done
}

# demo_start NAME ARGS...: run sysv_demo ARGS in $BATS_TEST_TMPDIR, its
# standard input the FIFO NAME.in, held open by the test (fd DEMO_IN) so
# that it chats until killed, its standard output NAME.out or, if set,
# DEMO_STDOUT (then NAME.out is the file its reader fills); wait for its
# "key ... shmid N" line. Sets DEMO_PID and DEMO_ID.
demo_start() {
    local name=$1
    shift
    local in=$BATS_TEST_TMPDIR/$name.in out=$BATS_TEST_TMPDIR/$name.out
    mkfifo "$in"
    exec {DEMO_IN}<>"$in"
    (cd "$BATS_TEST_TMPDIR" && exec "$DEMO" "$@") <"$in" \
        >"${DEMO_STDOUT:-$out}" 2>>"$out" 3>&- {DEMO_IN}>&- &
    DEMO_PID=$!
    BG_PIDS+=("$DEMO_PID")
    wait_until "sysv_demo $*: key and shmid" grep -q '^key ' "$out" ||
        { cat "$out" >&2; return 1; }
    DEMO_ID=$(sed -n 's/^key 0x[0-9a-f]* shmid \([0-9]*\)$/\1/p' "$out")
    [ -n "$DEMO_ID" ] || { cat "$out" >&2; return 1; }
    SEG_IDS+=("$DEMO_ID")
    SEG_PIDS+=("$DEMO_PID")
}

# demo_kill: SIGKILL the running sysv_demo, as a crash would, and reap it
# (so it is detached).
demo_kill() {
    kill -KILL "$DEMO_PID"
    wait "$DEMO_PID" || true
}

# seg_field ID NAME: a field of `ipcs -m -i ID` (cpid, nattch, mode...), or
# nothing when there is no segment ID (ipcs then exits 0 all the same).
seg_field() {
    ipcs -m -i "$1" 2>/dev/null | tr '\t' '\n' | sed -n "s/^$2=//p"
}

# page_transcript: the transcript docs/step03.md shows in its System V
# section, the indented block that starts with `$ sysv_demo . &`.
page_transcript() {
    awk '/^    \$ sysv_demo \. &$/ { on = 1 }
         on && !/^    / { exit }
         on { print substr($0, 5) }' "$REPO_ROOT/docs/step03.md"
}

# normalize: what changes from run to run or machine to machine -- the ftok
# key (not the 0 of a removed segment), shmid, owner, pid -- made a name,
# and runs of blanks one blank (the owner's width moves the columns).
normalize() {
    sed -E 's/^key 0x[0-9a-f]{8} shmid [0-9]+$/key KEY shmid ID/
            s/^\$ kill -KILL [0-9]+$/$ kill -KILL PID/' |
        awk '$1 ~ /^0x[0-9a-f]+$/ && NF >= 6 {
                 if ($1 != "0x00000000") $1 = "KEY"
                 $2 = "ID"; $3 = "OWNER"
             }
             { $1 = $1; print }'
}

@test "book pitfall: shmctl(IPC_RMID) left for the end -- a killed process leaves its segment in ipcs" {
    demo_start leak
    assert_equal "$(seg_field "$DEMO_ID" nattch)" 1
    demo_kill
    run ipcs -m -i "$DEMO_ID"
    assert_line "Shared memory Segment shmid=$DEMO_ID"
    assert_line --regexp "^bytes=5120	lpid=[0-9]+	cpid=$DEMO_PID	nattch=0$"
    assert_line "mode=0600	access_perms=0600"
}

@test "marked IPC_RMID right after shmat, the segment goes with its last process" {
    demo_start cure rmid
    run ipcs -m -i "$DEMO_ID"
    # 01000 is SHM_DEST: marked for removal, still attached once.
    assert_line "mode=01600	access_perms=0600"
    assert_line --regexp "^bytes=5120	lpid=[0-9]+	cpid=$DEMO_PID	nattch=1$"
    demo_kill
    run ipcs -m -i "$DEMO_ID"
    assert_output "ipcs: id $DEMO_ID not found"
}

@test "IPC_CREAT without IPC_EXCL finds a leaked segment again, contents and all" {
    demo_start first .
    run cat "$BATS_TEST_TMPDIR/first.out"
    assert_line --index 0 'found ""'
    local first_id=$DEMO_ID
    demo_kill
    demo_start second rmid .
    assert_equal "$DEMO_ID" "$first_id"
    run cat "$BATS_TEST_TMPDIR/second.out"
    assert_line --index 0 'found "hello"'
    demo_kill
    assert_equal "$(seg_field "$first_id" cpid)" ""
}

@test "book pitfall: the other window closed -- write() to its FIFO raises SIGPIPE before the clean-up, and the segment stays" {
    mkfifo "$BATS_TEST_TMPDIR/talk"
    # The other window: reads the FIFO until it is closed.
    cat "$BATS_TEST_TMPDIR/talk" >"$BATS_TEST_TMPDIR/chat.out" 3>&- &
    local reader=$!
    BG_PIDS+=("$reader")
    DEMO_STDOUT=$BATS_TEST_TMPDIR/talk demo_start chat
    echo "hi" >&"$DEMO_IN"
    wait_for_line "$BATS_TEST_TMPDIR/chat.out" "hi"
    kill "$reader"
    wait "$reader" || true
    echo "anyone there?" >&"$DEMO_IN"
    local status=0
    wait "$DEMO_PID" || status=$?
    assert_equal "$status" $((128 + 13)) # SIGPIPE
    run ipcs -m -i "$DEMO_ID"
    assert_line --regexp "^bytes=5120	lpid=[0-9]+	cpid=$DEMO_PID	nattch=0$"
}

@test "at the end of its input the book's order cleans up: shmdt, then IPC_RMID" {
    local out=$BATS_TEST_TMPDIR/end.out
    "$DEMO" <<<"bye" >"$out" 2>&1 3>&- &
    local pid=$! status=0
    wait "$pid" || status=$?
    run cat "$out"
    assert_line --index 0 'found ""'
    assert_line --index 2 'bye'
    local id
    id=$(sed -n 's/^key 0x00000000 shmid \([0-9]*\)$/\1/p' "$out")
    [ -n "$id" ] || fail "no IPC_PRIVATE key and shmid line"
    SEG_IDS+=("$id") SEG_PIDS+=("$pid")
    assert_equal "$status" 0
    run ipcs -m -i "$id"
    assert_output "ipcs: id $id not found"
}

@test "make sysv-demo prints the transcript docs/step03.md shows, and leaves no segment" {
    run --separate-stderr bash "$REPO_ROOT/docs/sysv/demo.sh" "$DEMO"
    assert_success
    assert_equal "$stderr" ""
    local shown
    shown=$(page_transcript | normalize)
    [ -n "$shown" ] || fail "no transcript found in docs/step03.md"
    assert_equal "$(printf '%s\n' "$output" | normalize)" "$shown"
    # The demo's segment is gone: the last `ipcs -m` of the transcript
    # showed no row of its own, and no key of its is left.
    local key
    key=$(printf '%s\n' "$output" | sed -n 's/^key \(0x[0-9a-f]*\) .*/\1/p' |
        head -n 1)
    run ipcs -m
    refute_output --partial "$key "
}
