/**
 * @file outq.h
 * @brief A client's bounded queue of output not yet written.
 *
 * The server never blocks on one client: what the kernel will not take now
 * waits here until the socket is writable again. The queue is bounded by a
 * limit the caller passes (the high-water mark): a client whose queue would
 * pass it is a slow reader, and the caller drops it rather than let it
 * hold memory without end or receive partial lines.
 *
 * A queue that empties keeps its buffer for the next message, within a
 * budget of bytes shared by every queue of the process (#OUTQ_KEEP_BUDGET):
 * a busy room then writes pass after pass without a trip to the allocator.
 * A queue that falls idle gives its kept buffer back at the owner's next
 * look (outq_release_idle(), about once a second in the room), so an idle
 * room holds nothing in emptied buffers, however many clients it has. A
 * queue with nothing kept holds no memory.
 */
#ifndef COMMON_OUTQ_H
#define COMMON_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/**
 * Smallest buffer: a welcome line and a few notices fit. Small on
 * purpose: every client gets one as it joins, and 4 KiB freed between two
 * clients' records is a hole that no trim can give back (docs/
 * performance.md, "Idle memory"); a queue that needs more doubles it.
 */
#define OUTQ_MIN_CAP 256

/** Bytes that emptied buffers may hold in all, by default: every client
 * of a busy room of a thousand (32 KiB each a pass) keeps its buffer, so
 * no pass takes memory from the allocator and no pass gives it back (a
 * budget of 4 MiB left 7 clients in 8 to grow theirs from nothing on
 * every pass, copying as they doubled). Idle queues do not hold it: they
 * give their buffers back (outq_release_idle()). */
#define OUTQ_KEEP_BUDGET 67108864 /* 64 MiB */
/** The largest emptied buffer kept: a busy pass at 1000 clients fills
 * 32 KiB buffers; a flood's bigger ones go back to the allocator. */
#define OUTQ_KEEP_MAX 65536 /* 64 KiB */
/** Bytes freed after which a trim of the heap is worth its walk: a burst,
 * not the odd client leaving. */
#define OUTQ_TRIM_AFTER 1048576 /* 1 MiB */

/** Bytes waiting to be written to one descriptor. Zeroed means empty. */
struct outq {
    char *buf; /**< heap storage; NULL when empty and nothing is kept */
    size_t head; /**< offset of the first unwritten byte */
    size_t len; /**< unwritten bytes from #head */
    size_t cap; /**< allocated size of #buf */
    bool used; /**< pushed to since the last outq_release_idle() */
};

/**
 * @brief Appends bytes, all or nothing: every case (see outq_push()).
 * @param q     the queue.
 * @param data  bytes to append.
 * @param n     number of bytes.
 * @param limit most bytes the queue may hold.
 * @return 0; or -1 with errno ENOBUFS (over @p limit: a slow reader) or
 *         ENOMEM, the queue unchanged.
 */
int outq_push_any(struct outq *q, const void *data, size_t n, size_t limit);

/**
 * @brief Appends bytes, all or nothing.
 *
 * Inline for the case a busy room meets a thousand times a pass: bytes
 * already wait and the new ones fit after them, one copy and no call (a
 * call per delivery was a tenth of chapter 2's CPU at 1000 clients). Every
 * other case -- an empty queue, a buffer to grow or to take, a limit
 * passed -- is outq_push_any()'s.
 * @param q     the queue.
 * @param data  bytes to append.
 * @param n     number of bytes.
 * @param limit most bytes the queue may hold.
 * @return 0; or -1 with errno ENOBUFS (over @p limit: a slow reader) or
 *         ENOMEM, the queue unchanged.
 */
static inline int
outq_push(struct outq *q, const void *data, size_t n, size_t limit)
{
    if (q->len > 0 && n > 0 && n <= limit && q->len <= limit - n &&
        n <= q->cap - q->head - q->len) {
        memcpy(q->buf + q->head + q->len, data, n);
        q->len += n;
        q->used = true;
        return 0;
    }
    return outq_push_any(q, data, n, limit);
}

/**
 * @brief Writes queued bytes to a socket until empty or it would block.
 *
 * Handles partial writes and EINTR; uses MSG_NOSIGNAL so a peer that has
 * gone away is an EPIPE error here, never a SIGPIPE. A queue it empties
 * keeps its buffer if the buffer is at most #OUTQ_KEEP_MAX bytes and the
 * budget has room for it; otherwise the buffer is freed.
 * @param q  the queue.
 * @param fd a nonblocking connected socket.
 * @return bytes written (possibly 0 when the socket is full), or -1 with
 *         errno set on a real error (the caller drops the client).
 */
long outq_flush(struct outq *q, int fd);

/**
 * @brief Tells whether anything waits to be written.
 * @param q the queue.
 * @return true if the queue holds at least one byte.
 */
static inline bool
outq_pending(const struct outq *q)
{
    return q->len > 0;
}

/**
 * @brief Frees the queue's memory, kept or not; the queue is empty and
 *        reusable after.
 * @param q the queue.
 */
void outq_free(struct outq *q);

/**
 * @brief Frees the kept buffer of a queue that was given nothing since
 *        the last call; starts the next period for every queue.
 *
 * What tells a busy queue from an idle one: a busy queue is pushed to pass
 * after pass and keeps its buffer; one that has had nothing to send for a
 * whole period (its owner calls this at intervals, the room once a second
 * at most) lets it go. A queue with bytes waiting keeps them.
 * @param q the queue.
 */
void outq_release_idle(struct outq *q);

/**
 * @brief Bytes held now by emptied buffers kept for reuse, in all queues.
 * @return the count, at most the budget.
 */
size_t outq_kept(void);

/**
 * @brief Sets the budget of bytes that emptied buffers may hold in all.
 *
 * For tests, and for a program that knows its room better than the
 * default. Buffers kept already stay kept (a smaller budget is met as
 * they are reused or freed).
 * @param bytes the new budget; 0 keeps nothing.
 */
void outq_set_budget(size_t bytes);

/**
 * @brief Bytes of output buffers freed since the last outq_trim().
 *
 * The room trims the heap once this passes #OUTQ_TRIM_AFTER: below that,
 * there is too little to give back to be worth a walk of the heap.
 * @return the count.
 */
size_t outq_freed(void);

/**
 * @brief Gives the heap's free pages back to the kernel (malloc_trim()).
 *
 * free() returns memory only from the top of the heap; buffers freed
 * between records that stay (the clients') remain resident until this.
 * Costs a walk of the heap: call it after a burst, not every pass.
 */
void outq_trim(void);

#endif
