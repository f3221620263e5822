/**
 * @file tests/fuzz/fuzz_outq.c
 * @brief libFuzzer target: the output queue (common/outq.c) against a model.
 *
 * The input is a script of operations on one queue: push n bytes under a
 * limit, flush, look for idleness (outq_release_idle()), free. The kernel is
 * played by the script too: outq.c's calls to send() and malloc() are linked to
 * __wrap_send() and
 * __wrap_malloc() here (`-Wl,--wrap=send,--wrap=malloc`), which take
 * their fate from the input -- a short write, EINTR, EAGAIN, EPIPE, or a
 * failed allocation. So every path of outq_push() and outq_flush() is
 * reached without a socket, and deterministically.
 *
 * The model is the byte stream itself: byte i of everything ever pushed
 * is i % PERIOD, so the queue must always hold the pattern from "bytes
 * sent so far" to "bytes pushed so far", and what send() was given must
 * be the stream from where it left off. Checked after every operation:
 *
 * - a push is refused with ENOBUFS exactly when it would pass the limit,
 *   and with ENOMEM only when an allocation failed; a refused push leaves
 *   the queue as it was;
 * - a flush returns the bytes the kernel took, sends with MSG_NOSIGNAL,
 *   retries EINTR, stops at EAGAIN, returns -1 with errno on an error,
 *   and keeps an emptied queue's buffer only if it is at most
 *   OUTQ_KEEP_MAX bytes and within the budget, else frees it;
 * - outq_release_idle() frees the buffer of an empty queue that was not
 *   pushed to since the last look, and changes nothing else;
 * - head + len <= cap; no buffer exactly when cap is 0; the bytes counted
 *   as kept are this one queue's buffer exactly when it is empty.
 */
#include "outq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/** Most bytes one push asks for; larger counts are cut to this. */
#define PUSH_MAX 307200 /* 300 KiB */
/** The queue's limit the servers use (HIGH_WATER in every step). */
#define SERVER_LIMIT 262144 /* 256 KiB */
/** Most bytes the model lets the queue hold, so one input stays small. */
#define MODEL_MAX 655360 /* 640 KiB */

/** The script: input bytes consumed by operations and by the fakes. */
static const uint8_t *script;
/** Bytes left in #script. */
static size_t script_left;

/** Byte offset of the next byte send() must be handed. */
static uint64_t sent;
/** Byte offset of the next byte to push. */
static uint64_t pushed;
/** Bytes were pushed since the last outq_release_idle(). */
static bool pushed_since_look;
/** True while the next malloc() should fail. */
static int fail_malloc;
/** Allocations attempted while #fail_malloc was set. */
static int malloc_tries;

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

/**
 * @brief Stops the run: prints why, and aborts so libFuzzer keeps the input.
 * @param what the broken rule.
 */
static _Noreturn void
fail(const char *what)
{
    fprintf(stderr, "fuzz_outq: %s\n", what);
    abort();
}

/**
 * @brief Takes one byte of the script.
 * @return the byte, or 0 when the script is used up.
 */
static uint8_t
take(void)
{
    if (script_left == 0)
        return 0;
    script_left--;
    return *script++;
}

/**
 * @brief The next two bytes of the script, high byte first.
 *
 * Two take() calls in one expression would run in an unspecified order;
 * here they are two statements.
 * @return a number 0..65535.
 */
static size_t
take16(void)
{
    size_t hi = take();

    return hi << 8 | take();
}

/** Period of the stream's pattern: a prime, so no power-of-two shift of
 * the bytes goes unnoticed. */
#define PERIOD 251

/** The pattern, long enough to hold any window of the stream. */
static char pattern_table[PERIOD + MODEL_MAX];

/**
 * @brief The stream of everything pushed, from offset @p from on.
 * @param from an offset in the stream.
 * @return bytes from: byte i of the stream is i % PERIOD.
 */
static const char *
stream_at(uint64_t from)
{
    if (pattern_table[1] == 0)
        for (size_t i = 0; i < sizeof pattern_table; i++)
            pattern_table[i] = (char)(i % PERIOD);
    return pattern_table + from % PERIOD;
}

/**
 * @brief Checks that @p n bytes at @p p are the stream from offset @p from.
 * @param p    the bytes.
 * @param n    their number, at most #MODEL_MAX.
 * @param from their offset in the stream.
 * @return 1 if they are, else 0.
 */
static int
is_stream(const char *p, size_t n, uint64_t from)
{
    return memcmp(p, stream_at(from), n) == 0;
}

/**
 * @brief The kernel's send(), as the script says.
 *
 * A fate byte decides: EINTR, EAGAIN, EPIPE, or a write of part or all of
 * the bytes. With the script used up, the socket is full (EAGAIN), so a
 * flush always ends.
 * @param fd    ignored.
 * @param buf   the bytes outq_flush() offers.
 * @param len   their number.
 * @param flags must hold MSG_NOSIGNAL.
 * @return bytes taken, or -1 with errno set.
 */
ssize_t
__wrap_send(int fd, const void *buf, size_t len, int flags)
{
    (void)fd;
    if (!(flags & MSG_NOSIGNAL))
        fail("send() without MSG_NOSIGNAL: a gone peer would raise SIGPIPE");
    if (len == 0)
        fail("send() of zero bytes");
    if (!is_stream(buf, len, sent))
        fail("send() was handed bytes that are not the next ones pushed");
    if (script_left == 0) {
        errno = EAGAIN;
        return -1;
    }
    uint8_t fate = take();
    switch (fate % 8) {
    case 0:
        errno = EINTR;
        return -1;
    case 1:
        errno = EAGAIN;
        return -1;
    case 2:
        if (fate & 0x80) {
            errno = (fate & 0x40) ? EPIPE : ECONNRESET;
            return -1;
        }
        errno = EINTR;
        return -1;
    case 3: {
        size_t k = 1 + take() % (len < 256 ? len : 256); /* a few bytes */
        sent += k;
        return (ssize_t)k;
    }
    default: {
        size_t k = len;
        if (fate & 0x80) /* part: as much as a socket buffer takes */
            k = 1 + take16() % len;
        sent += k;
        return (ssize_t)k;
    }
    }
}

/**
 * @brief malloc(), failing when the script says so.
 * @param size bytes asked for.
 * @return the memory, or NULL with errno ENOMEM.
 */
void *
__wrap_malloc(size_t size)
{
    if (fail_malloc) {
        malloc_tries++;
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(size);
}

/**
 * @brief The invariants of the queue's fields, and its bytes.
 * @param q the queue.
 */
static void
check_queue(const struct outq *q)
{
    if ((q->buf == NULL) != (q->cap == 0))
        fail("a buffer without capacity, or capacity without a buffer");
    if (q->head > q->cap || q->len > q->cap - q->head)
        fail("head + len is past the capacity");
    if (outq_pending(q) != (q->len > 0))
        fail("outq_pending() disagrees with len");
    if (q->len != pushed - sent)
        fail("the queue does not hold what was pushed and not sent");
    if (q->len > 0 && !is_stream(q->buf + q->head, q->len, sent))
        fail("the queued bytes are not the ones pushed");
    if (outq_kept() != (q->len == 0 ? q->cap : 0))
        fail("the bytes counted as kept are not the empty queue's buffer");
}

/**
 * @brief One push, as the script says, checked against the model.
 * @param q the queue.
 */
static void
op_push(struct outq *q)
{
    size_t n = take16();
    uint8_t how = take();

    if (how & 1)
        n = n * 8 + take(); /* reach past the 256 KiB limit */
    if (n > PUSH_MAX)
        n = PUSH_MAX;
    size_t limit;
    switch ((how >> 1) % 4) {
    case 0:
        limit = SERVER_LIMIT;
        break;
    case 1:
        limit = q->len + n; /* just fits */
        break;
    case 2:
        limit = q->len + n > 0 ? q->len + n - 1 : 0; /* one byte too many */
        break;
    default:
        limit = how & 0x80 ? SIZE_MAX : (size_t)take() << 10;
        break;
    }
    if (pushed - sent + n > MODEL_MAX)
        return;
    const char *data = stream_at(pushed);

    struct outq before = *q;
    int over = n > limit || q->len > limit - n;
    fail_malloc = (how & 0x40) != 0;
    malloc_tries = 0;
    errno = 0;
    int rc = outq_push(q, data, n, limit);
    fail_malloc = 0;

    if (rc == 0) {
        if (over)
            fail("a push past the limit was accepted");
        pushed += n;
        pushed_since_look |= n > 0;
    } else {
        if (rc != -1)
            fail("a refused push does not return -1");
        if (over ? errno != ENOBUFS : errno != ENOMEM || malloc_tries == 0)
            fail("a refusal's errno is not ENOBUFS (over) or ENOMEM");
        if (q->buf != before.buf || q->head != before.head ||
            q->len != before.len || q->cap != before.cap)
            fail("a refused push changed the queue");
    }
    check_queue(q);
}

/**
 * @brief One look for idleness (outq_release_idle()), checked against the
 *        model: only a queue that is empty, keeps a buffer and was not
 *        pushed to since the last look lets it go; nothing else changes.
 * @param q the queue.
 */
static void
op_release_idle(struct outq *q)
{
    struct outq before = *q;

    outq_release_idle(q);
    bool let_go = !pushed_since_look && before.len == 0 && before.buf != NULL;
    if (let_go ? q->buf != NULL
               : q->buf != before.buf || q->cap != before.cap ||
                     q->head != before.head || q->len != before.len)
        fail("outq_release_idle() did not free just an idle kept buffer");
    pushed_since_look = false;
    check_queue(q);
}

/**
 * @brief One flush, checked against the model.
 * @param q the queue.
 */
static void
op_flush(struct outq *q)
{
    uint64_t from = sent;

    errno = 0;
    long rc = outq_flush(q, 7);
    if (rc >= 0) {
        if ((uint64_t)rc != sent - from)
            fail("a flush does not return the bytes the kernel took");
    } else if (rc != -1 || (errno != EPIPE && errno != ECONNRESET)) {
        fail("a failed flush is not -1 with the kernel's errno");
    }
    if (rc >= 0 && q->len == 0 && q->buf != NULL &&
        (q->cap > OUTQ_KEEP_MAX || outq_kept() > OUTQ_KEEP_BUDGET))
        fail("an emptied queue keeps its memory past the budget");
    check_queue(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);

/**
 * @brief libFuzzer's entry point: one script on a fresh queue.
 * @param in   the script.
 * @param size its length.
 * @return 0 (a broken rule aborts instead).
 */
int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    struct outq q = {0};

    script = in;
    script_left = size;
    sent = pushed = 0;
    pushed_since_look = false;
    while (script_left > 0) {
        switch (take() % 6) {
        case 0:
        case 1:
            op_push(&q);
            break;
        case 2:
        case 3:
            op_flush(&q);
            break;
        case 4:
            op_release_idle(&q);
            break;
        default:
            outq_free(&q);
            sent = pushed; /* what was queued is gone with it */
            check_queue(&q);
            break;
        }
    }
    outq_free(&q);
    return 0;
}
