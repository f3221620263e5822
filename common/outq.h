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
 * An empty queue holds no memory, so idle clients cost nothing here.
 */
#ifndef COMMON_OUTQ_H
#define COMMON_OUTQ_H

#include <stdbool.h>
#include <stddef.h>

/** Bytes waiting to be written to one descriptor. Zeroed means empty. */
struct outq {
    char *buf; /**< heap storage, NULL while empty */
    size_t head; /**< offset of the first unwritten byte */
    size_t len; /**< unwritten bytes from #head */
    size_t cap; /**< allocated size of #buf */
};

/**
 * @brief Appends bytes, all or nothing.
 * @param q     the queue.
 * @param data  bytes to append.
 * @param n     number of bytes.
 * @param limit most bytes the queue may hold.
 * @return 0; or -1 with errno ENOBUFS (over @p limit: a slow reader) or
 *         ENOMEM, the queue unchanged.
 */
int outq_push(struct outq *q, const void *data, size_t n, size_t limit);

/**
 * @brief Writes queued bytes to a socket until empty or it would block.
 *
 * Handles partial writes and EINTR; uses MSG_NOSIGNAL so a peer that has
 * gone away is an EPIPE error here, never a SIGPIPE.
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
 * @brief Frees the queue's memory; the queue is empty and reusable after.
 * @param q the queue.
 */
void outq_free(struct outq *q);

#endif
