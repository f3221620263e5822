#!/usr/bin/env bats
# Fault: one line of 100 MiB. The server must relay it as 1023-byte
# pieces, lose nothing, and hold no more than a few pieces of it at a time:
# its memory stays bounded while the line streams through.

# SC2016: the single-quoted bash -c script expands its own "$1".
# SC2154: bats's run sets $stderr.
# shellcheck disable=SC2016,SC2154

setup() {
    load ../helpers/common
    load faults
    small_quarantine
}

# The line: MIB copies of a 1 MiB random block without "\n". A block is
# 1048576 bytes, one more than 1025 pieces, so every copy is cut at a
# different place: a piece lost, doubled or swapped changes the checksum.
# The block may hold "\r" anywhere but at its end: a "\r" just before the
# line's "\n" is the protocol's CRLF, which the server drops (1 run in 256
# failed that way, short of one byte, until the block ended in a letter).
MIB=100
@test "a 100 MiB line is relayed as 1023-byte pieces, byte for byte, in bounded memory" {
    local block=$BATS_TEST_TMPDIR/block
    { head -c 1048575 /dev/urandom | tr '\n' 'N' && printf E; } >"$block"
    local want
    want=$(for _ in $(seq "$MIB"); do cat "$block"; done | sha256sum)
    server_start
    # The bound: the sender's and the receiver's queues at their limit
    # (see memory_bound_kb): memory that grew with the line would pass it
    # many times over.
    local before bound peak=$BATS_TEST_TMPDIR/peak
    # In chapter 3 both clients get a process of their own.
    bound=$(memory_bound_kb 2 $((STEP_NUM == 3 ? 2 : 0))) || fail "no memory bound for $STEP"
    before=$(pss_kb)
    echo "$before" >"$peak"
    sample_pss_peak "$peak" 3>&- &
    bg_track "$!"
    local sampler=$!
    run --separate-stderr bash -c 'set -o pipefail; perl "$1" 127.0.0.1 "$2" "$3" "$4" | sha256sum' _ \
        "$FAULTS_DIR/bigline.pl" "$SERVER_PORT" "$block" "$MIB"
    kill "$sampler"
    # Every piece but the last is 1023 bytes long; 1023 does not divide
    # 100 MiB, so the last is shorter.
    local bytes=$((MIB * 1048576))
    assert_equal "$stderr" \
        "pieces $(((bytes + 1022) / 1023)) bytes $bytes short 0 other 0"
    assert_success
    assert_equal "$output" "$want"
    local grew=$(($(cat "$peak") - before))
    ((grew <= bound)) ||
        fail "the server grew by $grew KiB while the line went through (bound $bound KiB)"
    CHECKED_BYTES=$((CHECKED_BYTES + bytes))
    figure 1 "$bytes bytes in one line, $(((bytes + 1022) / 1023)) pieces, checksum equal; PSS grew $grew KiB (bound $bound KiB)"
    server_stop
}
