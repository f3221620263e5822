/**
 * @file tests/unit/test_ring.c
 * @brief Unit tests of chapter 4's rings (step04_procpool/shm.c).
 *
 * `test_ring NAME` runs one case and exits 0 if it passes; `test_ring`
 * alone runs them all. tests/unit/ring.bats runs each case as one Bats
 * test. The region is a real shared-memory object, unlinked at once.
 */
#include "../../step04_procpool/shm.h"
#include "unit.h"

#include <stdio.h>
#include <string.h>

/**
 * @brief A writer fills a ring as far as ring_room() lets it; the reader
 *        then copies every record, none of them taken for lapped.
 *
 * ring_get() cannot tell a ring that is exactly full from one whose
 * writer has begun to overwrite the reader's record, so it calls both
 * lapped; ring_room() used to let a writer fill the last record, and a
 * burst of leave notices made a reader that kept up leave as lapped (a
 * mass leave of 9,000 users on two workers, 4 runs of 4).
 * @return 0 on success.
 */
static int
t_full(void)
{
    char name[64], line[RECORD_MAX], out[RECORD_MAX];
    struct shm_room *shm = shm_room_create(2, 16, name);
    uint64_t cursor[2], group_seen[1], floor = 0;
    struct shm_view view = {.cursor = cursor, .group_seen = group_seen};
    size_t written = 0;

    if (shm == NULL)
        return unit_fail("full", "no shared memory");
    shm_reader_start(shm, 0, &view); /* the writer is a reader too */
    shm_reader_start(shm, 1, &view); /* worker 1 reads ring 0 */
    while (ring_room(shm, 0, &floor) > 0 && written < (size_t)2 * RING_SLOTS) {
        int len = snprintf(line, sizeof line, "line %zu\n", written);
        ring_put(shm, 0, line, (size_t)len);
        written++;
    }
    if (written < RING_SLOTS - 1 || written >= RING_SLOTS)
        return unit_fail("full", "the room was not one short of the ring");
    uint64_t at = view.cursor[0];
    uint64_t head = atomic_load(&shm->head[0]);
    for (; at < head; at++) {
        long len = ring_get(shm, 0, at, out);
        if (len < 0)
            return unit_fail("full", "a reader of a full ring was lapped");
        int want = snprintf(line, sizeof line, "line %lu\n", (unsigned long)at);
        if (len != want || memcmp(out, line, (size_t)len) != 0)
            return unit_fail("full", "a record came back changed");
    }
    return 0;
}

/**
 * @brief A ring whose records every reader has copied starts its next
 *        user on a new lap; one with a record left to copy does not.
 *
 * ring_restart() puts a new user's join at record 0, beside the other
 * rings' (the page faults of joins, docs/performance.md). Skipping must
 * lose nothing: a reader that has not copied the last record keeps the
 * ring where it is, and after a restart the reader finds the join next,
 * and the writer as much room as before.
 * @return 0 on success.
 */
static int
t_restart(void)
{
    char name[64], out[RECORD_MAX];
    struct shm_room *shm = shm_room_create(2, 16, name);
    uint64_t cursor[2], group_seen[1], floor = 0;
    struct shm_view view = {.cursor = cursor, .group_seen = group_seen};

    if (shm == NULL)
        return unit_fail("restart", "no shared memory");
    shm_reader_start(shm, 1, &view); /* slot 1 reads ring 0 */
    for (int i = 0; i < 3; i++)
        ring_put(shm, 0, "* user1 left\n", 13);
    ring_restart(shm, 0);
    if (atomic_load(&shm->head[0]) != 3)
        return unit_fail("restart", "skipped records a reader had not copied");
    atomic_store(&shm->done[1], atomic_load(&shm->pub_seq)); /* copied */
    ring_restart(shm, 0);
    if (atomic_load(&shm->head[0]) != RING_SLOTS ||
        atomic_load(&shm->base[0]) != RING_SLOTS)
        return unit_fail("restart", "a ring copied to its head did not skip");
    ring_put(shm, 0, "* user2 joined\n", 15);
    if (ring_get(shm, 0, RING_SLOTS, out) != 15 ||
        memcmp(out, "* user2 joined\n", 15) != 0)
        return unit_fail("restart",
                         "the join after the skip came back changed");
    if (ring_room(shm, 0, &floor) != RING_SLOTS - 2)
        return unit_fail("restart", "the skip cost the writer room");
    return 0;
}

/** Every case, by name. */
static const struct test_case cases[] = {
    {"full", t_full},
    {"restart", t_restart},
};

/**
 * @brief Runs one case, or all of them.
 * @param argc 1 or 2.
 * @param argv argv[1] names the case.
 * @return 0 if every case run passed.
 */
int
main(int argc, char **argv)
{
    return unit_run("test_ring", cases, sizeof cases / sizeof cases[0], argc,
                    argv);
}
