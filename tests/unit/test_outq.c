/**
 * @file tests/unit/test_outq.c
 * @brief Unit tests of the output queue (common/outq.c).
 *
 * `test_outq NAME` runs one case and exits 0 if it passes; `test_outq`
 * alone runs them all. tests/unit/outq.bats runs each case as one Bats
 * test. tests/fuzz/fuzz_outq.c checks the queue against a model; these
 * cases pin down what it found.
 */
#include "outq.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/** The smallest buffer a queue allocates. */
#define SMALLEST ((size_t)OUTQ_MIN_CAP)

/**
 * @brief Pushing nothing onto an empty queue is a no-op (found by fuzzing:
 *        it used to do arithmetic on the NULL buffer).
 * @return 0 on success.
 */
static int
t_zero(void)
{
    struct outq q = {0};

    if (outq_push(&q, "", 0, 100) != 0)
        return unit_fail("zero", "a push of 0 bytes was refused");
    if (q.buf != NULL || q.len != 0 || outq_pending(&q))
        return unit_fail("zero", "a push of 0 bytes changed the empty queue");
    if (outq_push(&q, "ab", 2, 100) != 0 || outq_push(&q, "", 0, 100) != 0 ||
        q.len != 2 || memcmp(q.buf + q.head, "ab", 2) != 0)
        return unit_fail("zero", "a push of 0 bytes changed a queue");
    outq_free(&q);
    return 0;
}

/**
 * @brief A push past the limit is refused with ENOBUFS, all or nothing.
 * @return 0 on success.
 */
static int
t_limit(void)
{
    struct outq q = {0};

    if (outq_push(&q, "abcd", 4, 6) != 0)
        return unit_fail("limit", "a push under the limit was refused");
    errno = 0;
    if (outq_push(&q, "efg", 3, 6) != -1 || errno != ENOBUFS)
        return unit_fail("limit", "a push past the limit was not ENOBUFS");
    if (q.len != 4 || memcmp(q.buf + q.head, "abcd", 4) != 0)
        return unit_fail("limit", "a refused push changed the queue");
    if (outq_push(&q, "ef", 2, 6) != 0 || q.len != 6)
        return unit_fail("limit", "a push up to the limit was refused");
    outq_free(&q);
    return 0;
}

/**
 * @brief A flush writes everything to a socket, and the emptied queue's
 *        buffer is freed when nothing may be kept; a gone peer is -1 with
 *        EPIPE, not SIGPIPE.
 * @return 0 on success.
 */
static int
t_flush(void)
{
    struct outq q = {0};
    char buf[16];
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return unit_fail("flush", "socketpair failed");
    outq_set_budget(0);
    if (outq_push(&q, "hello\n", 6, 100) != 0 || outq_flush(&q, sv[0]) != 6)
        return unit_fail("flush", "the flush did not write 6 bytes");
    if (q.buf != NULL || outq_pending(&q))
        return unit_fail("flush", "an emptied queue kept memory past a budget "
                                  "of 0");
    if (read(sv[1], buf, sizeof buf) != 6 || memcmp(buf, "hello\n", 6) != 0)
        return unit_fail("flush", "the peer did not read what was queued");
    close(sv[1]);
    outq_push(&q, "x\n", 2, 100);
    errno = 0;
    if (outq_flush(&q, sv[0]) != -1 || errno != EPIPE)
        return unit_fail("flush", "a gone peer is not -1 with EPIPE");
    close(sv[0]);
    outq_free(&q);
    outq_set_budget(OUTQ_KEEP_BUDGET);
    return 0;
}

/**
 * @brief Pushes @p n bytes onto @p q and writes them to @p fd, whose peer
 *        @p peer reads them back.
 * @param q    the queue.
 * @param n    bytes, at most 131072.
 * @param fd   the writing end of a socket pair.
 * @param peer the reading end.
 * @return 0 if all @p n bytes went through and the queue is empty.
 */
static int
push_flush(struct outq *q, size_t n, int fd, int peer)
{
    static char data[131072];
    size_t got = 0;

    if (outq_push(q, data, n, sizeof data) != 0)
        return -1;
    while (outq_pending(q)) {
        if (outq_flush(q, fd) < 0)
            return -1;
        ssize_t r = read(peer, data, sizeof data);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    while (got < n) {
        ssize_t r = read(peer, data, sizeof data);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return got == n ? 0 : -1;
}

/**
 * @brief An emptied queue keeps its buffer within the budget, and the next
 *        push reuses it: no allocation per pass in a busy room.
 * @return 0 on success.
 */
static int
t_keep(void)
{
    struct outq q = {0};
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return unit_fail("keep", "socketpair failed");
    if (outq_kept() != 0)
        return unit_fail("keep", "bytes kept before any queue emptied");
    if (push_flush(&q, 100, sv[0], sv[1]) != 0)
        return unit_fail("keep", "100 bytes did not go through");
    char *buf = q.buf;
    size_t cap = q.cap;
    if (buf == NULL || cap == 0 || outq_pending(&q))
        return unit_fail("keep", "an emptied queue did not keep its buffer");
    if (outq_kept() != cap)
        return unit_fail("keep",
                         "the kept buffer is not counted in the budget");
    if (outq_push(&q, "ab", 2, 100) != 0 || q.buf != buf || q.len != 2 ||
        memcmp(q.buf + q.head, "ab", 2) != 0)
        return unit_fail("keep", "a push did not reuse the kept buffer");
    if (outq_kept() != 0)
        return unit_fail("keep", "a buffer in use is still counted as kept");
    outq_free(&q);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/**
 * @brief Past the budget, or above OUTQ_KEEP_MAX, an emptied queue's buffer
 *        is freed: an idle room holds at most the budget.
 * @return 0 on success.
 */
static int
t_budget(void)
{
    struct outq q[3] = {{0}};
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return unit_fail("budget", "socketpair failed");
    outq_set_budget(2 * SMALLEST); /* two smallest buffers */
    for (int i = 0; i < 3; i++)
        if (push_flush(&q[i], 100, sv[0], sv[1]) != 0)
            return unit_fail("budget", "100 bytes did not go through");
    if (q[0].buf == NULL || q[1].buf == NULL)
        return unit_fail("budget", "a buffer within the budget was freed");
    if (q[2].buf != NULL || q[2].cap != 0)
        return unit_fail("budget", "a buffer past the budget was kept");
    if (outq_kept() != q[0].cap + q[1].cap || outq_kept() > 2 * SMALLEST)
        return unit_fail("budget", "the kept bytes are not the kept buffers'");
    outq_free(&q[1]);
    outq_set_budget(OUTQ_KEEP_BUDGET);
    /* Room in the budget, but the buffer is too big to be worth keeping. */
    if (push_flush(&q[2], OUTQ_KEEP_MAX + 1, sv[0], sv[1]) != 0)
        return unit_fail("budget", "a big push did not go through");
    if (q[2].buf != NULL)
        return unit_fail("budget", "a buffer above OUTQ_KEEP_MAX was kept");
    outq_free(&q[0]);
    if (outq_kept() != 0)
        return unit_fail("budget", "bytes still kept after every queue freed");
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/**
 * @brief outq_free() frees a kept buffer and gives its bytes back to the
 *        budget (a client that leaves holds nothing).
 * @return 0 on success.
 */
static int
t_free_kept(void)
{
    struct outq q = {0};
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return unit_fail("free_kept", "socketpair failed");
    if (push_flush(&q, 10, sv[0], sv[1]) != 0 || q.buf == NULL)
        return unit_fail("free_kept", "no buffer kept to free");
    outq_free(&q);
    if (q.buf != NULL || q.cap != 0 || q.len != 0 || q.head != 0)
        return unit_fail("free_kept", "the freed queue is not empty");
    if (outq_kept() != 0)
        return unit_fail("free_kept", "the freed buffer is still counted");
    outq_free(&q); /* twice is harmless */
    if (outq_kept() != 0)
        return unit_fail("free_kept", "a second free changed the count");
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/**
 * @brief outq_release_idle() frees the kept buffer of a queue given
 *        nothing since the last call, and only that: a busy queue keeps
 *        its buffer, a queue with bytes waiting keeps them.
 * @return 0 on success.
 */
static int
t_idle(void)
{
    struct outq busy = {0}, idle = {0}, full = {0};
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return unit_fail("idle", "socketpair failed");
    if (push_flush(&busy, 10, sv[0], sv[1]) != 0 ||
        push_flush(&idle, 10, sv[0], sv[1]) != 0 ||
        outq_push(&full, "abc", 3, 100) != 0)
        return unit_fail("idle", "the queues did not fill");
    /* The first look starts a period: all three were given bytes. */
    outq_release_idle(&busy);
    outq_release_idle(&idle);
    outq_release_idle(&full);
    if (busy.buf == NULL || idle.buf == NULL || full.len != 3)
        return unit_fail("idle", "a queue used this period lost its buffer");
    if (push_flush(&busy, 10, sv[0], sv[1]) != 0)
        return unit_fail("idle", "10 bytes did not go through");
    size_t cap = busy.cap;
    outq_release_idle(&busy);
    outq_release_idle(&idle);
    outq_release_idle(&full);
    if (busy.buf == NULL || idle.buf != NULL || idle.cap != 0)
        return unit_fail("idle", "not the idle queue alone let go");
    if (full.len != 3 || memcmp(full.buf + full.head, "abc", 3) != 0)
        return unit_fail("idle", "a queue with bytes waiting lost them");
    if (outq_kept() != cap)
        return unit_fail("idle", "the kept count is not the busy buffer's");
    outq_free(&busy);
    outq_free(&full);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/**
 * @brief Every freed buffer is counted for the heap's trim, and a trim
 *        starts the count again (the room trims after a burst, room.c).
 * @return 0 on success.
 */
static int
t_freed(void)
{
    struct outq q = {0};
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return unit_fail("freed", "socketpair failed");
    outq_trim();
    if (outq_freed() != 0)
        return unit_fail("freed", "a trim did not start the count again");
    outq_set_budget(0); /* nothing kept: the flush frees */
    if (push_flush(&q, 100, sv[0], sv[1]) != 0 || q.buf != NULL)
        return unit_fail("freed", "the emptied buffer was not freed");
    if (outq_freed() != SMALLEST)
        return unit_fail("freed", "a buffer freed by a flush was not counted");
    outq_set_budget(OUTQ_KEEP_BUDGET);
    if (push_flush(&q, 10, sv[0], sv[1]) != 0)
        return unit_fail("freed", "10 bytes did not go through");
    /* Growing past the kept buffer (the smallest, to four times it) frees
     * the old one. */
    if (outq_push(&q, "x", 1, 1) != 0)
        return unit_fail("freed", "a push into a kept buffer failed");
    char big[2 * SMALLEST] = {0};
    if (outq_push(&q, big, sizeof big, 4 * sizeof big) != 0)
        return unit_fail("freed", "a push that grows the buffer failed");
    if (outq_freed() != 2 * SMALLEST)
        return unit_fail("freed", "the buffer a push outgrew was not counted");
    outq_free(&q); /* the buffer of four times the smallest */
    if (outq_freed() != 2 * SMALLEST + 4 * SMALLEST)
        return unit_fail("freed", "outq_free's buffer was not counted");
    outq_trim();
    if (outq_freed() != 0)
        return unit_fail("freed", "a trim did not start the count again");
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/** Every case, in the order `test_outq` runs them. */
static const struct test_case cases[] = {
    {"zero", t_zero},   {"limit", t_limit},   {"flush", t_flush},
    {"keep", t_keep},   {"budget", t_budget}, {"free_kept", t_free_kept},
    {"freed", t_freed}, {"idle", t_idle},
};

/**
 * @brief Runs the named case, or all of them (unit_run()).
 * @param argc 1 or 2.
 * @param argv optional case name.
 * @return 0 if every case run passed, 1 otherwise, 2 for an unknown name.
 */
int
main(int argc, char **argv)
{
    return unit_run("test_outq", cases, sizeof cases / sizeof cases[0], argc,
                    argv);
}
