/**
 * @file step04_procpool/shm.h
 * @brief The room's shared memory: one ring of messages per worker, and
 *        the room's books (ids, who is on which worker).
 *
 * Chapter 3 gave each client a ring; here each worker has one, written by
 * that worker alone and read by every other worker:
 *
 * - one writer per ring at any time (the worker, and after its death its
 *   replacement), so writing needs no lock: write the record, then
 *   publish it by advancing `head` with release ordering. A worker killed
 *   in the middle of a record never advanced `head`: nobody sees the torn
 *   record, and the replacement writes over it. No lock can be left held,
 *   because there is none;
 * - each reader publishes how far it has read each ring (its row of the
 *   `progress` table), and a writer whose ring is full waits for the
 *   readers instead of overwriting what they have not copied yet: its
 *   clients' bytes stay in the kernel, and TCP slows them down;
 * - a reader that does not move for #LAG_GRACE_MS while a writer waits
 *   (a stopped process) is passed over: the writer overwrites, and the
 *   reader notices (seqlock-style check of `head` after the copy) and
 *   exits; the parent replaces it and its clients are announced as left.
 *
 * Every record holds the whole line as sent to clients ("user3: hi\n").
 * Each worker also lists its users' ids in its row of the `users` table,
 * so that after its death its replacement can tell the room who left.
 *
 * Workers wake each other without the parent: each worker index has a
 * doorbell, an eventfd the parent creates before it forks anyone and
 * keeps for the life of the server, so that every worker and every
 * replacement inherits all of them (shm_ring_bells()).
 */
#ifndef STEP04_SHM_H
#define STEP04_SHM_H

#include "proto.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* [shm-types] */
/** Messages a ring holds. */
#define RING_SLOTS 4096
/** Longest record: the longest line the room makes (proto.h). */
#define RECORD_MAX PROTO_LINE_MAX
/** How long a writer waits for readers that do not move. Longer than the
 * room's own grace period (room.c): a worker whose client reads slowly
 * stops reading the rings for at most that long, and must not be passed
 * over meanwhile. */
#define LAG_GRACE_MS 2000

/** One message in a ring. */
struct record {
    uint32_t len; /**< bytes used in #line */
    char line[RECORD_MAX]; /**< the line as clients receive it */
};

/** The messages of one worker. */
struct ring {
    /** Sequence number of the next record; records [head - RING_SLOTS,
     * head) are readable. Only ever grows, across owners of the ring. */
    _Alignas(64) _Atomic uint64_t head;
    char pad[56]; /**< keeps each head on a cache line of its own */
    struct record rec[RING_SLOTS]; /**< record s lives at rec[s % RING_SLOTS] */
};

/** The shared region: the room's counters, then one ring per worker, then
 * the progress table (see shm_progress()), the reader flags and the users
 * table (see shm_users()). */
struct shm_room {
    _Atomic unsigned long next_id; /**< last id given out, room-wide */
    _Atomic unsigned long relayed; /**< messages sent by clients (SIGHUP) */
    _Atomic unsigned long pauses; /**< times a worker paused reading */
    _Atomic unsigned long slow; /**< slow readers dropped, room-wide */
    size_t nrings; /**< rings that follow: one per worker */
    size_t users_cap; /**< entries per worker in the users table */
    _Atomic uint64_t *progress; /**< [reader * nrings + ring]: next record */
    _Atomic unsigned char *reading; /**< [reader]: 1 while a worker reads */
    _Atomic unsigned long *users; /**< [worker * users_cap + i]: an id or 0 */
    _Atomic size_t *online; /**< [worker]: its users, for the room count */
    /** [worker]: entries of its row ever used; no one looks beyond, so a
     * large limit costs pages only as users come. */
    _Atomic size_t *top;
    _Atomic unsigned long *sent; /**< [worker]: messages its clients sent */
    struct ring rings[]; /**< one per worker */
};
/* [shm-types] */

/**
 * @brief Creates, maps and at once unlinks the shared region.
 *
 * The name is unique to this server instance ("/chat-<pid>-<random>"),
 * created with O_EXCL and mode 0600: no other server or user can open it.
 * It is unlinked as soon as it is mapped: the mapping lives on in the
 * parent and in every worker forked later, and when the last of them
 * exits the kernel frees it. Nothing is left in /dev/shm after any exit,
 * SIGKILL of the parent included.
 * @param nrings    one ring per worker.
 * @param users_cap the room's user limit: a worker may hold all of them.
 * @param name      receives the name used (for diagnostics); 64 bytes.
 * @return the mapped region, or NULL with errno set.
 */
struct shm_room *shm_room_create(size_t nrings, size_t users_cap,
                                 char name[64]);

/**
 * @brief Where reader @p reader is in ring @p ring: its next record.
 *
 * The mapping is at the same address in every process (workers inherit
 * it), so the table can be reached through a plain pointer.
 * @param shm    the region.
 * @param reader the reading worker.
 * @param ring   the ring's worker.
 * @return the reader's cursor for that ring.
 */
/* [progress] */
static inline _Atomic uint64_t *
shm_progress(struct shm_room *shm, size_t reader, size_t ring)
{
    return &shm->progress[reader * shm->nrings + ring];
}
/* [progress] */

/**
 * @brief The row of worker @p w in the users table.
 * @param shm the region.
 * @param w   the worker.
 * @return its #shm_room::users_cap entries: a user's id, or 0 for none.
 */
/* [users] */
static inline _Atomic unsigned long *
shm_users(struct shm_room *shm, size_t w)
{
    return &shm->users[w * shm->users_cap];
}
/* [users] */

/**
 * @brief Users in the room: the sum of every worker's count.
 * @param shm the region.
 * @return the number online.
 */
size_t shm_online(struct shm_room *shm);

/**
 * @brief Makes @p reader a reader from the current end of every ring.
 *
 * Called by the parent before it forks the reading process: that process
 * hears every message published from then on, and writers wait for it.
 * @param shm    the region.
 * @param reader the new process's slot.
 */
void shm_reader_start(struct shm_room *shm, size_t reader);

/**
 * @brief @p reader reads no more (its process has been reaped).
 * @param shm    the region.
 * @param reader the slot.
 */
void shm_reader_stop(struct shm_room *shm, size_t reader);

/**
 * @brief Records ring @p ring can take before it overwrites unread ones.
 *
 * The slowest reader decides, except a reader already more than a ring
 * behind: it has been passed over and will leave.
 * @param shm  the region.
 * @param ring the writer's ring.
 * @return free records, 0 when the writer must wait.
 */
size_t ring_room(struct shm_room *shm, size_t ring);

/**
 * @brief Appends one line to a ring: the single writer's side.
 * @param r    the ring; the caller must be its only writer.
 * @param line the line, ending in `\n`.
 * @param len  its length, at most #RECORD_MAX.
 */
void ring_put(struct ring *r, const char *line, size_t len);

/**
 * @brief Copies one record out of a ring, if it is still there.
 * @param r    the ring.
 * @param seq  sequence number of the record; must be below head.
 * @param out  receives the line; #RECORD_MAX bytes.
 * @return its length, or -1 if the writer has lapped @p seq (the copy may
 *         be torn: the reader is too slow and must not use it).
 */
long ring_get(const struct ring *r, uint64_t seq, char *out);

/**
 * @brief Rings every worker's doorbell but @p self's: "new records, look".
 *
 * The doorbells are eventfds, one per worker index, shared by every
 * process of the pool (made by the parent before the first fork). A ring
 * adds 1 to the counter; the sleeper wakes when the counter is not zero
 * and reads it back to zero. Unlike chapter 3's datagrams, a ring cannot
 * fail for want of buffer (an eventfd's counter takes 2^64-2), so no poke
 * is ever owed; and it reaches a worker that is dead and not yet replaced
 * harmlessly: its replacement finds the bell rung and looks at the rings.
 *
 * Every doorbell is rung, the awake ones too: with a pool of a few
 * workers (one per CPU) a write per worker and per pass is cheap, and
 * cheaper than the parent's relay it replaces; chapter 3's `asleep` bits
 * pay off with thousands of children, not with a handful.
 * @param bells the doorbells, indexed by worker.
 * @param n     how many.
 * @param self  the caller's own index, not rung; @p n or more for none.
 */
void shm_ring_bells(const int *bells, size_t n, size_t self);

#endif
