#!/usr/bin/env bats
# Unit tests of the room module, step01_poll_chat/room.c (carried
# unchanged into chapters 2, 3 and 4), driven alone over socketpairs. Each
# case lives in tests/unit/test_room.c; this file runs one case per test.

setup() {
    load ../helpers/common
    TEST_ROOM=${TEST_ROOM:-$BUILD_DIR/tests/test_room}
    [ -x "$TEST_ROOM" ] || fail "build $TEST_ROOM first (make all)"
}

@test "room: the welcome counts the newcomer, and everyone else hears the join" { run "$TEST_ROOM" join; assert_success; }
@test "room: a full room refuses with 'too many users' and closes" { run "$TEST_ROOM" limit; assert_success; }
@test "room: lines reach everyone else in the order sent, never the sender" { run "$TEST_ROOM" fanout; assert_success; }
@test "room: a leave is announced, the table stays dense, ids are never reused" { run "$TEST_ROOM" leave; assert_success; }
@test "room: a queue over the high mark pauses reading until it drains; nothing lost" { run "$TEST_ROOM" pause; assert_success; }
@test "room: a reader that does not drain within the grace period is dropped and announced" { run "$TEST_ROOM" slow; assert_success; }
@test "room: shutting down sends the notice, then end of stream, and relays nothing more" { run "$TEST_ROOM" shutdown; assert_success; }
@test "room: after a burst the heap is trimmed; a queue idle for a period lets go of its kept buffer, a busy one keeps it" { run "$TEST_ROOM" trim; assert_success; }
@test "room: closing the room frees every client, an unfinished line included" { run "$TEST_ROOM" close; assert_success; }
@test "room: a quiet room (chapter 3's child) welcomes and relays, but says no join or leave, here or through its hooks" { run "$TEST_ROOM" quiet; assert_success; }
