/**
 * @file step04_procpool/shm.c
 * @brief The room's shared memory: POSIX shm_open(), one ring per worker.
 */
#include "shm.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* [shm-create] */
struct shm_room *
shm_room_create(size_t nrings, size_t users_cap, char name[64])
{
    size_t rings = sizeof(struct shm_room) + nrings * sizeof(struct ring);
    size_t users = rings + nrings * nrings * sizeof(uint64_t);
    size_t size = users + nrings * users_cap * sizeof(unsigned long) +
                  nrings * (2 * sizeof(size_t) + sizeof(unsigned long)) +
                  nrings;
    struct timespec ts;
    int fd = -1;

    /* Book pitfall: shm_open("/my_shm", ..., 0666) -- one fixed name for
     * every server on the machine, readable by every user, and never
     * removed after a crash. Guarded by tests/step03/shm.bats and
     * tests/step04/pool.bats. */
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int attempt = 0; fd < 0 && attempt < 16; attempt++) {
        snprintf(name, 64, "/chat-%ld-%lx", (long)getpid(),
                 (unsigned long)ts.tv_nsec + (unsigned long)attempt * 7919);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return NULL;
    }
    if (fd < 0)
        return NULL;

    /* ftruncate() alone would make a sparse object: on a full /dev/shm it
     * succeeds, and the first write into a page the tmpfs cannot supply
     * raises SIGBUS -- in whichever process touches it, at any time.
     * posix_fallocate() takes every page now, or fails with ENOSPC: the
     * server fails at start, with a message, and cannot fail later --
     * guarded by tests/faults/shm.bats. It returns the error number. */
    void *p = MAP_FAILED;
    int saved = posix_fallocate(fd, 0, (off_t)size);
    if (saved == 0) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        saved = errno;
    }
    /* The name has done its job: every process that needs the region
     * gets it by inheriting this mapping across fork(). */
    shm_unlink(name);
    close(fd);
    if (p == MAP_FAILED) {
        errno = saved;
        return NULL;
    }
    struct shm_room *room = p; /* posix_fallocate() filled it with zeros */
    room->nrings = nrings;
    room->users_cap = users_cap;
    room->progress = (_Atomic uint64_t *)((char *)p + rings);
    room->users = (_Atomic unsigned long *)((char *)p + users);
    room->online = (_Atomic size_t *)(room->users + nrings * users_cap);
    room->top = room->online + nrings;
    room->sent = (_Atomic unsigned long *)(room->top + nrings);
    room->reading = (_Atomic unsigned char *)(room->sent + nrings);
    return room;
}
/* [shm-create] */

/* [online] */
size_t
shm_online(struct shm_room *shm)
{
    size_t n = 0;

    for (size_t w = 0; w < shm->nrings; w++)
        n += atomic_load(&shm->online[w]);
    return n;
}
/* [online] */

/* [readers] */
void
shm_reader_start(struct shm_room *shm, size_t reader)
{
    for (size_t i = 0; i < shm->nrings; i++)
        atomic_store(shm_progress(shm, reader, i),
                     atomic_load(&shm->rings[i].head));
    atomic_store(&shm->reading[reader], 1);
}

void
shm_reader_stop(struct shm_room *shm, size_t reader)
{
    atomic_store(&shm->reading[reader], 0);
}
/* [readers] */

/* [ring-room] */
size_t
ring_room(struct shm_room *shm, size_t ring)
{
    uint64_t head =
        atomic_load_explicit(&shm->rings[ring].head, memory_order_relaxed);
    uint64_t oldest = head; /* no reader: the whole ring is free */

    for (size_t q = 0; q < shm->nrings; q++) {
        if (q == ring || !atomic_load(&shm->reading[q]))
            continue;
        uint64_t at = atomic_load(shm_progress(shm, q, ring));
        /* A reader more than a ring behind has been passed over: it will
         * notice and leave; waiting for it would only stall the room. */
        if (head - at <= RING_SLOTS && at < oldest)
            oldest = at;
    }
    /* One record stays free: a reader that finds the head a whole ring
     * ahead of its cursor cannot tell a full ring from one whose writer
     * has begun to overwrite its record (ring_get()), and would leave as
     * lapped. So the writer never takes the last one. */
    size_t used = (size_t)(head - oldest);
    return used < RING_SLOTS ? RING_SLOTS - 1 - used : 0;
}
/* [ring-room] */

/* [ring-put] */
void
ring_put(struct ring *r, const char *line, size_t len)
{
    uint64_t seq = atomic_load_explicit(&r->head, memory_order_relaxed);
    struct record *rec = &r->rec[seq % RING_SLOTS];

    /* The record we overwrite was published RING_SLOTS records ago; the
     * fence keeps our writes from showing before that head did, so a
     * reader's check in ring_get() cannot miss them (a no-op on x86, a
     * write barrier on weaker machines). */
    atomic_thread_fence(memory_order_release);
    rec->len = (uint32_t)len;
    memcpy(rec->line, line, len);
    /* Publish: a reader that sees the new head sees the record too. */
    atomic_store_explicit(&r->head, seq + 1, memory_order_release);
}
/* [ring-put] */

/* [ring-get] */
long
ring_get(const struct ring *r, uint64_t seq, char *out)
{
    const struct record *rec = &r->rec[seq % RING_SLOTS];
    uint32_t len = rec->len;

    if (len > RECORD_MAX)
        len = RECORD_MAX; /* torn; the check below rejects it */
    memcpy(out, rec->line, len);
    /* The copy must be complete before head is read again. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* The writer starts overwriting record seq once head reaches
     * seq + RING_SLOTS; before that, the copy is intact. */
    if (head - seq >= RING_SLOTS)
        return -1;
    return (long)len;
}
/* [ring-get] */

/* [bells] */
void
shm_ring_bells(const int *bells, size_t n, size_t self)
{
    const uint64_t one = 1;

    for (size_t i = 0; i < n; i++) {
        if (i == self)
            continue;
        ssize_t w;
        while ((w = write(bells[i], &one, sizeof one)) < 0 && errno == EINTR)
            ;
        /* EAGAIN: the counter is full, so the bell is rung already. */
        if (w < 0 && errno != EAGAIN)
            log_errno("cannot ring worker %zu's doorbell", i);
    }
}
/* [bells] */
