/**
 * @file step03_fork_shm/shm.h
 * @brief The room's shared memory: one ring of messages per client slot.
 *
 * Book 13.6 keeps one BUFFER_SIZE slot per client in shared memory: the
 * client's child reads into it and the other children copy it out. A
 * second message overwrites the first before everyone has copied it. Here
 * each slot is a ring of #RING_SLOTS messages with a sequence number:
 *
 * - one writer per ring at any time (the slot's child, whose first
 *   record is its user's join; the parent writes the leave notice after
 *   the child is reaped), so writing needs no lock: write the record, then
 *   publish it by advancing `head` with release ordering;
 * - each reader keeps its own cursor per ring and copies records from its
 *   cursor up to `head`;
 * - each reader publishes how far it has read each ring (its row of the
 *   `progress` table), and a writer whose ring is full waits for the
 *   readers instead of overwriting what they have not copied yet: its
 *   client's bytes stay in the kernel, and TCP slows the client down;
 * - a reader that does not move for #LAG_GRACE_MS while a writer waits
 *   (a stopped process) is passed over: the writer overwrites, and the
 *   reader notices (seqlock-style check of `head` after the copy) and
 *   leaves as a slow reader. A writer is never blocked for long by it.
 *
 * Every record holds the whole line as sent to clients ("user3: hi\n"),
 * so it names its true sender even after the slot has changed hands.
 */
#ifndef STEP03_SHM_H
#define STEP03_SHM_H

#include "line.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* [shm-types] */
/** Messages a ring holds; a reader this far behind is a slow reader. */
#define RING_SLOTS 256
/** Longest record: "user<id>: " + a #LINE_MAX_PIECE message + "\n". */
#define RECORD_MAX (LINE_MAX_PIECE + 32)
/** How long a writer waits for readers that do not move. */
#define LAG_GRACE_MS 1000

/** One message in a ring. */
struct record {
    uint32_t len; /**< bytes used in #line */
    char line[RECORD_MAX]; /**< the line as clients receive it */
};

/** The messages of one client slot. */
struct ring {
    /** Sequence number of the next record; records [head - RING_SLOTS,
     * head) are readable. Only ever grows, across owners of the slot. */
    _Alignas(64) _Atomic uint64_t head;
    char pad[56]; /**< keeps each head on a cache line of its own */
    struct record rec[RING_SLOTS]; /**< record s lives at rec[s % RING_SLOTS] */
};

/** The shared region: counters, then one ring per client slot, then the
 * progress table (see shm_progress()) and the reader flags. */
struct shm_room {
    _Atomic unsigned long relayed; /**< messages sent by clients (SIGHUP) */
    size_t nrings; /**< rings that follow */
    _Atomic uint64_t *progress; /**< [reader * nrings + ring]: next record */
    _Atomic unsigned char *reading; /**< [reader]: 1 while a child reads */
    struct ring rings[]; /**< one per client slot */
};
/* [shm-types] */

/**
 * @brief Creates, maps and at once unlinks the shared region.
 *
 * The name is unique to this server instance ("/chat-<pid>-<random>"),
 * created with O_EXCL and mode 0600: no other server or user can open it.
 * It is unlinked as soon as it is mapped: the mapping lives on in the
 * parent and in every child forked later, and when the last of them exits
 * the kernel frees it. Nothing is left in /dev/shm after any exit, SIGKILL
 * of the parent included.
 * @param nrings one ring per client slot.
 * @param name   receives the name used (for diagnostics); 64 bytes.
 * @return the mapped region, or NULL with errno set.
 */
struct shm_room *shm_room_create(size_t nrings, char name[64]);

/**
 * @brief Where reader @p reader is in ring @p ring: its next record.
 *
 * The mapping is at the same address in every process (children inherit
 * it), so the table can be reached through a plain pointer.
 * @param shm    the region.
 * @param reader the reader's slot.
 * @param ring   the ring's slot.
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

#endif
