#!/usr/bin/env bats
# Chapter 3's sidebar "System V shared memory beside POSIX" (book 13.4,
# 13.6.1 to 13.6.3, 13.8): docs/sysv/sysv_demo.c, two windows chatting
# through a System V segment and two FIFOs, and `make sysv-demo`
# (docs/sysv/demo.sh), whose transcript is the page's. A segment outlives a
# killed window unless shmctl(IPC_RMID) came first, and ipcs shows it.
#
# Each test chats in its own directory under $BATS_TEST_TMPDIR, so its
# ftok() key and FIFOs are its own, and removes only segments its own
# windows created. Where kernel.shm_rmid_forced=1 the kernel destroys a
# segment when its last process detaches, so nothing is ever left over:
# the tests that show a leftover skip there, and one test shows that case
# in a private IPC namespace (unshare), whatever the machine's setting.

# SC2154: bats's run sets stderr and output. SC2317: bats calls the
# teardown that setup defines.
# shellcheck disable=SC2154,SC2317

setup() {
    load ../helpers/common
    export LC_ALL=C
    DEMO=${SYSV_DEMO:-$BUILD_DIR/sysv/sysv_demo}
    [ -x "$DEMO" ] || fail "no $DEMO (run make first)"
    CHAT=$BATS_TEST_TMPDIR/chat
    mkdir -p "$CHAT"
    SEG_IDS=() SEG_PIDS=()
    declare -gA WIN_PID WIN_FD
    # helpers/common, loaded above, defines teardown as stop_all; this
    # suite also removes the segments its windows made.
    teardown() {
        stop_all
        remove_segments
    }
}

# rmid_forced: the machine's kernel.shm_rmid_forced is 1.
rmid_forced() {
    [ "$(cat /proc/sys/kernel/shm_rmid_forced 2>/dev/null)" = 1 ]
}

# skip_if_forced: skip a test that needs a leftover segment.
skip_if_forced() {
    if rmid_forced; then
        skip "kernel.shm_rmid_forced=1 here: the kernel destroys a segment when its last process detaches, so nothing is left over (see the unshare case)"
    fi
}

# remove_segments: ipcrm every segment our windows created and left, and
# any other with our directory's key (a window a deadline killed).
remove_segments() {
    local i
    if [ -n "${SEG_KEY:-}" ]; then
        ipcrm -M "$SEG_KEY" 2>/dev/null || true
    fi
    for i in "${!SEG_IDS[@]}"; do
        # Only one still created by our own window: a freed shmid may
        # already belong to another test's segment.
        if [ "$(seg_field "${SEG_IDS[$i]}" cpid)" = "${SEG_PIDS[$i]}" ]; then
            ipcrm -m "${SEG_IDS[$i]}" || true
        fi
    done
}

# seg_field ID NAME: a field of `ipcs -m -i ID` (cpid, nattch, mode...), or
# nothing when there is no segment ID.
seg_field() {
    ipcs -m -i "$1" 2>/dev/null | tr '\t' '\n' | sed -n "s/^$2=//p"
}

# window_start NAME [rmid]: start `sysv_demo [rmid] chat NAME` in $CHAT,
# its input the FIFO NAME.in, which the test shell holds open for reading
# and writing (so that neither opening it nor writing to it ever waits for
# the window) until window_eof, its output and errors in NAME.out.
window_start() {
    local name=$1 in=$BATS_TEST_TMPDIR/$1.in out=$BATS_TEST_TMPDIR/$1.out
    local fd
    mkfifo "$in"
    : >"$out"
    exec {fd}<>"$in"
    WIN_FD[$name]=$fd
    (
        # The window holds no one's input open but its own standard input.
        for fd in "${WIN_FD[@]}"; do
            eval "exec $fd>&-"
        done
        cd "$CHAT" && exec "$DEMO" ${2:+"$2"} chat "$name"
    ) <"$in" >"$out" 2>&1 3>&- &
    WIN_PID[$name]=$!
    BG_PIDS+=("$!")
}

# chat_start [rmid]: alice starts and creates the segment (sets SEG_ID and
# SEG_KEY),
# bob joins, both say they are talking.
chat_start() {
    window_start alice "$@"
    local out=$BATS_TEST_TMPDIR/alice.out
    wait_until "alice's segment" grep -q '^\* created segment ' "$out" ||
        { cat "$out" >&2; return 1; }
    SEG_ID=$(sed -n 's/^\* created segment \([0-9]*\) .*/\1/p' \
        "$BATS_TEST_TMPDIR/alice.out")
    SEG_IDS+=("$SEG_ID") SEG_PIDS+=("${WIN_PID[alice]}")
    SEG_KEY=$(sed -n 's/.*(key \(0x[0-9a-f]*\)).*/\1/p' "$out")
    window_start bob "$@"
    wait_for_line "$BATS_TEST_TMPDIR/alice.out" "* talking with bob"
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "* talking with alice"
}

# window_say NAME TEXT...: NAME types each TEXT as a line.
window_say() {
    local name=$1
    shift
    printf '%s\n' "$@" >&"${WIN_FD[$name]}"
}

# window_eof NAME: NAME's input ends (Ctrl-D): the test shell closes its
# end of the FIFO, the last writer.
window_eof() {
    eval "exec ${WIN_FD[$1]}>&-"
    unset "WIN_FD[$1]"
}

# window_status NAME: wait (with the deadline) until NAME has exited; set
# STATUS to its exit status. Not under `run`: only the test shell itself,
# whose child the window is, can wait for it.
window_status() {
    STATUS=0
    wait_for_exit "${WIN_PID[$1]}" || return 1
    wait "${WIN_PID[$1]}" 2>/dev/null || STATUS=$?
}

# window_kill NAME: SIGKILL NAME, as a crash would, and reap it (the
# shell's "Killed" report goes nowhere: it is not part of any output).
window_kill() {
    kill -KILL "${WIN_PID[$1]}"
    { wait "${WIN_PID[$1]}"; } 2>/dev/null || true
}

# page_transcript: the transcript docs/step03.md shows in its System V
# section, the indented block that starts with the shm_rmid_forced line.
page_transcript() {
    awk '/^    \$ cat \/proc\/sys\/kernel\/shm_rmid_forced$/ { on = 1 }
         on && !/^    / { exit }
         on { print substr($0, 5) }' "$REPO_ROOT/docs/step03.md"
}

# normalize: what changes from run to run or machine to machine -- the ftok
# key (not the 0 of a removed segment), shmid, owner, pid -- made a name,
# and runs of blanks one blank (the owner's width moves the columns).
normalize() {
    sed -E 's/0x[0-9a-f]{8}\)/KEY)/; s/segment [0-9]+/segment ID/g
            s/ipcrm -m [0-9]+/ipcrm -m ID/; s/^\$ kill -KILL [0-9]+$/$ kill -KILL PID/' |
        awk '$1 ~ /^0x[0-9a-f]+$/ && NF >= 6 {
                 if ($1 != "0x00000000") $1 = "KEY"
                 $2 = "ID"; $3 = "OWNER"
             }
             { $1 = $1; print }'
}

@test "two windows chat through the segment: every line typed in one appears in the other, exactly and in order" {
    chat_start
    window_say alice "hi bob" "a  line  with  blanks"
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "alice: a  line  with  blanks"
    window_say bob "hello alice"
    wait_for_line "$BATS_TEST_TMPDIR/alice.out" "bob: hello alice"
    # A line longer than a message (200 bytes) goes as several.
    local long
    long=$(printf 'x%.0s' {1..450})
    window_say alice "$long" "last"
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "alice: last"
    run cat "$BATS_TEST_TMPDIR/bob.out"
    assert_output "$(printf '%s\n' "* found segment $SEG_ID (key $(
        sed -n 's/.*(key \(0x[0-9a-f]*\)).*/\1/p' "$BATS_TEST_TMPDIR/alice.out"))" \
        "* talking with alice" "alice: hi bob" "alice: a  line  with  blanks" \
        "alice: ${long:0:200}" "alice: ${long:200:200}" "alice: ${long:400}" \
        "alice: last")"
    run cat "$BATS_TEST_TMPDIR/alice.out"
    assert_line --index 1 "* talking with bob"
    assert_line --index 2 "bob: hello alice"
    assert_equal "${#lines[@]}" 3
}

@test "a stopped window loses nothing: the writer waits while the 8-slot ring is full" {
    chat_start
    kill -STOP "${WIN_PID[bob]}"
    local i
    for i in $(seq 1 20); do
        window_say alice "line $i"
    done
    kill -CONT "${WIN_PID[bob]}"
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "alice: line 20"
    run sed -n '3,$p' "$BATS_TEST_TMPDIR/bob.out"
    assert_output "$(seq -f 'alice: line %g' 1 20)"
}

@test "Ctrl-D in one window ends both cleanly: exit 0, no segment, no FIFO left" {
    chat_start
    window_say bob "bye"
    wait_for_line "$BATS_TEST_TMPDIR/alice.out" "bob: bye"
    window_eof bob
    wait_for_line "$BATS_TEST_TMPDIR/alice.out" "* bob left"
    window_status bob
    assert_equal "$STATUS" 0
    window_status alice
    assert_equal "$STATUS" 0
    run cat "$BATS_TEST_TMPDIR/alice.out"
    assert_line --index 4 "* removed segment $SEG_ID (IPC_RMID)"
    run ipcs -m -i "$SEG_ID"
    assert_output "ipcs: id $SEG_ID not found"
    run ls -A "$CHAT"
    assert_output ""
}

@test "book pitfall: shmctl(IPC_RMID) left for the end -- a killed first window leaves its segment in ipcs" {
    skip_if_forced
    chat_start
    assert_equal "$(seg_field "$SEG_ID" nattch)" 2
    window_kill alice
    # The book exercise's other pitfall: bob's next write() to alice's
    # FIFO would raise SIGPIPE; ignored, it fails with EPIPE, and bob ends
    # cleanly on the end of file of his own FIFO.
    window_say bob "are you there?"
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "* alice left"
    window_status bob
    assert_equal "$STATUS" 0
    run ipcs -m -i "$SEG_ID"
    assert_line "Shared memory Segment shmid=$SEG_ID"
    assert_line --regexp "^bytes=[0-9]+	lpid=[0-9]+	cpid=${WIN_PID[alice]}	nattch=0$"
    assert_line "mode=0600	access_perms=0600"
}

@test "a later window finds the leftover segment by its key, alice's last line still in it, and names the cure" {
    skip_if_forced
    chat_start
    window_say alice "hi bob"
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "alice: hi bob"
    window_kill alice
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "* alice left"
    window_status bob
    local key
    key=$(sed -n 's/.*(key \(0x[0-9a-f]*\)).*/\1/p' "$BATS_TEST_TMPDIR/alice.out")
    cd "$CHAT"
    # A deadline: a carol that missed the leftover would wait for a peer.
    run --separate-stderr timeout "$WAIT_SECONDS" "$DEMO" chat carol </dev/null
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "sysv_demo: segment $SEG_ID (key $key) is left over, still holding alice's \"hi bob\": ipcrm -m $SEG_ID removes it"
    run ipcrm -m "$SEG_ID"
    assert_success
    run ipcs -m -i "$SEG_ID"
    assert_output "ipcs: id $SEG_ID not found"
}

@test "marked IPC_RMID once both windows attached, the segment goes with its last window however it ends" {
    chat_start rmid
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "* marked segment $SEG_ID for removal (IPC_RMID)"
    wait_for_line "$BATS_TEST_TMPDIR/alice.out" "* marked segment $SEG_ID for removal (IPC_RMID)"
    run ipcs -m -i "$SEG_ID"
    # 01000 is SHM_DEST: marked for removal, still attached twice.
    assert_line "mode=01600	access_perms=0600"
    assert_line --regexp "^bytes=[0-9]+	lpid=[0-9]+	cpid=${WIN_PID[alice]}	nattch=2$"
    window_kill alice
    wait_for_line "$BATS_TEST_TMPDIR/bob.out" "* alice left"
    window_status bob
    assert_equal "$STATUS" 0
    run ipcs -m -i "$SEG_ID"
    assert_output "ipcs: id $SEG_ID not found"
}

@test "a third window is refused while two are talking" {
    chat_start
    cd "$CHAT"
    # A deadline: a carol that missed the leftover would wait for a peer.
    run --separate-stderr timeout "$WAIT_SECONDS" "$DEMO" chat carol </dev/null
    assert_failure 1
    assert_equal "$stderr" "sysv_demo: segment $SEG_ID already has two windows"
    run "$DEMO" chat
    assert_failure 2
    assert_output "usage: sysv_demo [rmid] chat NAME   (NAME: 1 to 15 bytes)"
}

@test "make sysv-demo prints the transcript docs/step03.md shows, and leaves no segment" {
    if rmid_forced; then
        skip "kernel.shm_rmid_forced=1 here: the page shows the default, 0, where a killed window leaves its segment"
    fi
    run --separate-stderr bash "$REPO_ROOT/docs/sysv/demo.sh" "$DEMO"
    assert_success
    assert_equal "$stderr" ""
    local shown
    shown=$(page_transcript | normalize)
    [ -n "$shown" ] || fail "no transcript found in docs/step03.md"
    assert_equal "$(printf '%s\n' "$output" | normalize)" "$shown"
    local key
    key=$(printf '%s\n' "$output" | sed -n 's/.*(key \(0x[0-9a-f]*\)).*/\1/p' |
        head -n 1)
    [ -n "$key" ] || fail "no key in the transcript"
    run ipcs -m
    refute_output --partial "$key "
}

@test "with kernel.shm_rmid_forced=1 (a private IPC namespace) the kernel removes the segment a killed window left" {
    unshare -r -i true 2>/dev/null ||
        skip "unshare -r -i is not allowed here: no private IPC namespace to set shm_rmid_forced in"
    # The namespace's own setting, not the machine's.
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner shell
    run --separate-stderr unshare -r -i bash -c \
        'echo 1 >/proc/sys/kernel/shm_rmid_forced && exec bash "$1" "$2"' \
        demo "$REPO_ROOT/docs/sysv/demo.sh" "$DEMO"
    assert_success
    assert_equal "$stderr" ""
    assert_line --index 1 "1"
    assert_line "# kernel.shm_rmid_forced is 1 here: the kernel removed the segment"
    # After the kill of alice, bob's end: the segment alice made is gone.
    local after
    after=$(printf '%s\n' "$output" |
        sed -n '/^\[bob\]   \* alice left$/,/^\$ ls$/p' | head -n 5)
    assert_equal "$after" "$(printf '%s\n' "[bob]   * alice left" '$ ipcs -m' \
        '------ Shared Memory Segments --------' \
        'key        shmid      owner      perms      bytes      nattch     status' \
        '$ ls')"
    # No leftover for carol to find, nothing for ipcrm to remove.
    refute_output --partial "carol"
    refute_output --partial "ipcrm"
}
