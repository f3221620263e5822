/**
 * @file outq.c
 * @brief A client's bounded queue of output not yet written.
 *
 * Why keep emptied buffers: freeing a buffer the moment its queue empties
 * made glibc give the top of the heap back (brk) at the end of every pass
 * of a busy room, and take it again, page faults and all, in the next
 * one -- about one brk per send() at a thousand clients. A kept buffer
 * costs nothing to reuse. What keeps an idle room small is that a queue
 * given nothing for a period lets its buffer go (outq_release_idle()),
 * while a busy one keeps it across any number of periods; the budget only
 * caps the worst case.
 *
 * Why trim: free() gives memory back to the kernel only from the top of
 * the heap. After a burst (ten thousand joins, each notice queued for
 * everyone) the freed buffers lie between the clients' records, which
 * stay, and an idle room of 10,000 kept 9 to 16 KiB per client resident.
 * malloc_trim() hands every whole free page back, wherever it lies
 * (2.3 KiB per client after it); outq_trim() lets the room ask for it once
 * enough has been freed.
 */
#include "outq.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/** Bytes held by emptied buffers kept for reuse (one process: no lock). */
static size_t kept_bytes;
/** Most bytes #kept_bytes may reach. */
static size_t keep_budget = OUTQ_KEEP_BUDGET;
/** Bytes of buffers freed since the last outq_trim(). */
static size_t freed_bytes;

/**
 * @brief Frees @p q's buffer and counts it for outq_trim().
 *
 * Every buffer of this module leaves through here, so that the count of
 * what the heap may give back is never short.
 * @param q the queue; its buffer pointer and capacity are reset.
 */
static void
release(struct outq *q)
{
    if (q->buf != NULL)
        freed_bytes += q->cap;
    free(q->buf);
    q->buf = NULL;
    q->head = q->cap = 0;
}

/**
 * @brief Tells whether @p q is empty but holds a buffer kept for reuse.
 *
 * Such a buffer is counted in #kept_bytes; one that holds bytes is not,
 * since it is in use, not waiting.
 * @param q the queue.
 * @return true if its buffer is kept.
 */
static bool
is_kept(const struct outq *q)
{
    return q->buf != NULL && q->len == 0;
}

/**
 * @brief Bytes of the budget that @p q's buffer holds now.
 *
 * What a push that reuses the buffer, or a free, takes off #kept_bytes,
 * so that it counts only buffers that wait.
 * @param q the queue.
 * @return its capacity if its buffer is kept, else 0.
 */
static size_t
kept_by(const struct outq *q)
{
    return is_kept(q) ? q->cap : 0;
}

int
outq_push_any(struct outq *q, const void *data, size_t n, size_t limit)
{
    if (n > limit || q->len > limit - n) {
        errno = ENOBUFS;
        return -1;
    }
    /* Found by tests/fuzz/fuzz_outq.c: nothing to add to an empty queue
     * meant arithmetic on its NULL buffer (undefined behaviour). */
    if (n == 0)
        return 0;
    size_t kept = kept_by(q); /* leaves the budget once the push is done */
    if (q->head + q->len + n > q->cap) {
        if (q->len + n <= q->cap) {
            /* Enough room once the written part is gone. */
            memmove(q->buf, q->buf + q->head, q->len);
        } else {
            size_t cap = q->cap ? q->cap : OUTQ_MIN_CAP;
            while (cap < q->len + n)
                cap *= 2;
            char *nb = malloc(cap);
            if (nb == NULL)
                return -1; /* errno is ENOMEM; a kept buffer stays kept */
            if (q->len > 0)
                memcpy(nb, q->buf + q->head, q->len);
            release(q);
            q->buf = nb;
            q->cap = cap;
        }
        q->head = 0;
    }
    kept_bytes -= kept;
    memcpy(q->buf + q->head + q->len, data, n);
    q->len += n;
    q->used = true;
    return 0;
}

/**
 * @brief Keeps the buffer of a queue that just emptied, or frees it.
 *
 * Kept if it is small (#OUTQ_KEEP_MAX: a flood's big buffers are not worth
 * holding) and the budget has room; freed otherwise, so that an idle room
 * of any size holds at most the budget.
 * @param q the queue, just emptied, its buffer not yet counted.
 */
static void
keep_or_free(struct outq *q)
{
    if (q->cap <= OUTQ_KEEP_MAX && kept_bytes + q->cap <= keep_budget) {
        kept_bytes += q->cap;
        q->head = 0;
        return;
    }
    release(q);
}

long
outq_flush(struct outq *q, int fd)
{
    long total = 0;

    if (q->len == 0)
        return 0; /* nothing to write; a kept buffer stays as it is */
    while (q->len > 0) {
        ssize_t w = send(fd, q->buf + q->head, q->len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        q->head += (size_t)w;
        q->len -= (size_t)w;
        total += w;
    }
    if (q->len == 0)
        keep_or_free(q);
    return total;
}

void
outq_free(struct outq *q)
{
    kept_bytes -= kept_by(q);
    release(q);
    q->len = 0;
    q->used = false;
}

void
outq_release_idle(struct outq *q)
{
    if (!q->used && is_kept(q)) {
        kept_bytes -= q->cap;
        release(q);
    }
    q->used = false;
}

size_t
outq_kept(void)
{
    return kept_bytes;
}

void
outq_set_budget(size_t bytes)
{
    keep_budget = bytes;
}

size_t
outq_freed(void)
{
    return freed_bytes;
}

void
outq_trim(void)
{
    malloc_trim(0);
    freed_bytes = 0;
}
