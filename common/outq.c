/**
 * @file outq.c
 * @brief A client's bounded queue of output not yet written.
 */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/** Smallest allocation: a welcome line and a few messages fit. */
#define OUTQ_MIN_CAP 4096

int
outq_push(struct outq *q, const void *data, size_t n, size_t limit)
{
    if (n > limit || q->len > limit - n) {
        errno = ENOBUFS;
        return -1;
    }
    /* Found by tests/fuzz/fuzz_outq.c: nothing to add to an empty queue
     * meant arithmetic on its NULL buffer (undefined behaviour). */
    if (n == 0)
        return 0;
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
                return -1; /* errno is ENOMEM */
            if (q->len > 0)
                memcpy(nb, q->buf + q->head, q->len);
            free(q->buf);
            q->buf = nb;
            q->cap = cap;
        }
        q->head = 0;
    }
    memcpy(q->buf + q->head + q->len, data, n);
    q->len += n;
    return 0;
}

long
outq_flush(struct outq *q, int fd)
{
    long total = 0;

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
    if (q->len == 0) {
        /* Give the memory back: most clients are idle most of the time,
         * and an idle client should cost no heap. */
        outq_free(q);
    }
    return total;
}

void
outq_free(struct outq *q)
{
    free(q->buf);
    q->buf = NULL;
    q->head = q->len = q->cap = 0;
}
