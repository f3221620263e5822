/**
 * @file step03_fork_shm/shm.h
 * @brief The room's shared memory: one ring of messages per client slot,
 *        laid out for the readers.
 *
 * Book 13.6 keeps one BUFFER_SIZE slot per client in shared memory: the
 * client's child reads into it and the other children copy it out. A
 * second message overwrites the first before everyone has copied it. Here
 * each slot is a ring of #RING_SLOTS messages with a sequence number:
 *
 * - one writer per ring at any time: the parent writes the user's join
 *   before it forks the slot's child, the child its user's messages, and
 *   the parent the leave notice after the child is reaped. Writing needs
 *   no lock: write the record, then publish it by advancing the ring's
 *   head with release ordering. A writer killed in the middle of a record
 *   never advanced the head: nobody sees the torn record, and the next
 *   writer writes over it;
 * - each reader keeps its own cursor per ring, in its own memory, and
 *   copies records from its cursor up to the head;
 * - every record also gets a room-wide publication number (`pub_seq`),
 *   and each reader publishes one number: every record numbered up to it
 *   has been copied (`done`). A writer whose ring is full waits until the
 *   slowest reader's number passes its oldest record, instead of
 *   overwriting what is not copied yet: the senders' bytes stay in the
 *   kernel, and TCP slows the senders down;
 * - a reader that does not move for #LAG_GRACE_MS while a writer waits
 *   (a stopped process) is passed over: the writer overwrites, and the
 *   reader notices (seqlock-style check of the head after the copy) and
 *   leaves as a slow reader. A writer is never blocked for long by it.
 *
 * The layout follows who reads what on every wake-up. The heads, the
 * per-group counters and the readers' numbers are small dense arrays at
 * the front of the region (8 bytes a slot), away from the records: a
 * wake-up reads a few cache lines, not one page per ring. A reader first
 * compares the room-wide `pub_seq` with the value it saw last (nothing
 * new: done), then the counter of each group of #SHM_GROUP rings (a
 * group that did not move is skipped), and only in the groups that moved
 * the heads. Only the slots ever used (`high`) are looked at.
 *
 * Wake-ups go from writer to reader directly, without the parent: a
 * child about to sleep sets its bit in the `asleep` bitmap (its doorbell)
 * and looks once more for news; a writer, after publishing, clears the
 * bit of each sleeper and sends that child one datagram on its own Unix
 * socket (in the abstract namespace, under a random name per child). A
 * child that is awake is never poked, and a stopped parent delays nothing
 * but accepting and reaping.
 *
 * The region grows linearly with the limit: about 40 bytes of dense
 * arrays and one ring of records per slot. The file is sparse
 * (ftruncate()), and its pages are reserved (posix_fallocate()) before
 * anything may write them, so that a full /dev/shm is an error with a
 * message, never a SIGBUS later: the dense arrays and the rings of the
 * first #SHM_UPFRONT_SLOTS slots at start (a server that cannot have
 * them does not start), the rings of any later group of #SHM_GROUP slots
 * when one of its slots is first used (a connection that cannot have
 * them is refused, with a warning, and the room goes on). Every record holds
 * the whole line as sent to clients ("user3: hi\n"), so it names its true
 * sender even after the slot has changed hands.
 */
#ifndef STEP03_SHM_H
#define STEP03_SHM_H

#include "proto.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* [shm-types] */
/** Messages a ring holds; a reader this far behind is a slow reader. */
#define RING_SLOTS 256
/** Longest record: the longest line the room makes (proto.h). */
#define RECORD_MAX PROTO_LINE_MAX
/** How long a writer waits for readers that do not move. */
#define LAG_GRACE_MS 1000
/** Rings per group counter: a reader skips a group that did not move. */
#define SHM_GROUP 64
/** Records at the start of each lap of a ring that lie beside those of
 * its group's other rings: a silent user's join and leave (shm_record()). */
#define RING_SIDE 2
/** Slots whose rings are reserved at start; later ones on first use. */
#define SHM_UPFRONT_SLOTS 64
/** Free records below which ring_room() looks at the readers again. */
#define RING_RESCAN (RING_SLOTS / 4)
/** A reader's `done` while no process reads for that slot. */
#define SHM_NOT_READING UINT64_MAX

/** One message in a ring. */
struct record {
    uint32_t len; /**< bytes used in #line */
    char line[RECORD_MAX]; /**< the line as clients receive it */
};

/** The writer's side of one slot's ring; its records follow those of
 * its group's rings (shm_record()). */
struct ring {
    /** Publication number of the newest record overwritten: a reader
     * whose `done` is below it has been passed over. Writer's side. */
    uint64_t lost;
    /** Publication number of each record: which readers copied it. Set
     * just after the record is published: a reader may still see the
     * previous lap's (smaller) number, which only makes it claim less. */
    _Atomic uint64_t pub[RING_SLOTS];
};

/** The shared region: counters, the dense arrays, then the rings. */
struct shm_room {
    /** Records published in the whole room: a reader that saw this
     * value last time has nothing new. */
    _Atomic uint64_t pub_seq;
    _Atomic unsigned long relayed; /**< messages sent by clients (SIGHUP) */
    _Atomic unsigned long pauses; /**< times a writer waited (SIGHUP) */
    /** The rest of the first cache line (the region starts on a page):
     * what writers bump on every message stays off the line of what
     * readers only read. */
    char pad[64 - 3 * sizeof(uint64_t)];
    /** Slots ever used (set by the parent before it forks): no one
     * looks beyond. */
    _Atomic size_t high;
    size_t nrings; /**< slots (the limit) */
    int fd; /**< the parent's descriptor, for shm_slot_reserve() */
    size_t reserved; /**< groups whose pages are reserved (the parent's) */
    /** [slot]: sequence number of the ring's next record; records
     * [head - RING_SLOTS, head) are readable. Only ever grows. */
    _Atomic uint64_t *head;
    _Atomic uint64_t *group; /**< [slot / SHM_GROUP]: records published */
    _Atomic uint64_t *done; /**< [reader]: copied all up to this pub */
    _Atomic uint64_t *asleep; /**< bit per slot: the child sleeps */
    uint64_t *bell; /**< [slot]: random name of the child's doorbell */
    /** [slot]: no record below it was written for its user: readers skip
     * to it (ring_restart()). */
    _Atomic uint64_t *base;
    /** Page-aligned, reserved a group at a time: for each group of
     * #SHM_GROUP slots, their `struct ring`s, the first #RING_SIDE
     * records of each ring side by side, then the other records, ring
     * after ring. */
    char *rings;
};
/* [shm-types] */

/** What a new reader starts from: a copy of the room as it was when it
 * joined, made by the parent and inherited across fork(). */
struct shm_view {
    uint64_t seen; /**< pub_seq then */
    uint64_t *cursor; /**< [ring]: the head then, then the next record */
    uint64_t *group_seen; /**< [group]: the group counter then */
};

/**
 * @brief Creates, maps and at once unlinks the shared region.
 *
 * The name is unique to this server instance ("/chat-<pid>-<random>"),
 * created with O_EXCL and mode 0600: no other server or user can open it.
 * It is unlinked as soon as it is mapped: the mapping lives on in the
 * parent and in every child forked later, and when the last of them exits
 * the kernel frees it. Nothing is left in /dev/shm after any exit, SIGKILL
 * of the parent included. The pages that may be written before the first
 * #SHM_UPFRONT_SLOTS slots are all used are reserved now (see the file
 * comment).
 * @param nrings one ring per client slot.
 * @param name   receives the name used (for diagnostics); 64 bytes.
 * @return the mapped region, or NULL with errno set.
 */
struct shm_room *shm_room_create(size_t nrings, char name[64]);

/**
 * @brief Reserves the pages of ring @p slot before its first use.
 *
 * The region is sparse beyond the first #SHM_UPFRONT_SLOTS rings; a page
 * the tmpfs cannot supply would be a SIGBUS in whichever process first
 * writes it. The parent calls this before a slot's first use, and does
 * without the slot if it fails (chapter 3 refuses the connection, chapter
 * 4 does not start). A slot's records are spread over the pages of its
 * group of #SHM_GROUP rings, so the first slot used in a group reserves
 * the whole group, and the others find it done.
 * @param shm  the region.
 * @param slot the slot about to be used for the first time.
 * @return 0, or an error number (ENOSPC...).
 */
int shm_slot_reserve(struct shm_room *shm, size_t slot);

/**
 * @brief Makes @p reader a reader from the current end of every ring.
 *
 * Called by the parent before it forks the reading process: @p view,
 * in the parent's memory, is inherited by the child as its starting
 * point, so it hears every message published from then on, and writers
 * wait for it from then on.
 * @param shm    the region.
 * @param reader the new process's slot.
 * @param view   receives the starting point; arrays of the limit's size.
 */
void shm_reader_start(struct shm_room *shm, size_t reader,
                      struct shm_view *view);

/**
 * @brief @p reader reads no more (its process has been reaped).
 * @param shm    the region.
 * @param reader the slot.
 */
void shm_reader_stop(struct shm_room *shm, size_t reader);

/**
 * @brief Records ring @p ring can take before it overwrites unread ones.
 *
 * The slowest reader decides, except a reader already passed over: it
 * will leave. @p floor caches the slowest reader's `done` between calls
 * (it only grows): the readers are scanned again only when the cached
 * value leaves fewer than #RING_RESCAN records. A writer must never wait
 * for more room than that: it would wait on a stale floor.
 * @param shm   the region.
 * @param ring  the writer's ring.
 * @param floor the writer's cache; 0 at first.
 * @return free records, 0 when the writer must wait.
 */
size_t ring_room(struct shm_room *shm, size_t ring, uint64_t *floor);

/**
 * @brief Starts ring @p ring on a new lap for the slot's next user, if no
 *        reader has anything of it left to copy.
 *
 * Only the first #RING_SIDE records of a lap lie beside the group's other
 * rings (shm_record()); a join written anywhere else costs every child
 * that copies it a page fault of its own, N x N / 2 for N joins into
 * slots that changed hands (docs/performance.md, "Joins a page apart").
 * So the head skips to the next lap, and readers skip with it to `base`.
 * Only when every reader has copied the ring up to its head, so that
 * nothing is skipped that anyone has yet to read; otherwise the join goes
 * where the head is, and costs its page faults. Called by the writer.
 * @param shm  the region.
 * @param ring the ring; the caller must be its only writer.
 */
void ring_restart(struct shm_room *shm, size_t ring);

/**
 * @brief Appends one line to a ring: the single writer's side.
 * @param shm  the region.
 * @param ring the ring; the caller must be its only writer.
 * @param line the line, ending in `\n`.
 * @param len  its length, at most #RECORD_MAX.
 */
void ring_put(struct shm_room *shm, size_t ring, const char *line, size_t len);

/**
 * @brief Copies one record out of a ring, if it is still there.
 * @param shm  the region.
 * @param ring the ring.
 * @param seq  sequence number of the record; must be below its head.
 * @param out  receives the line; #RECORD_MAX bytes.
 * @return its length, or -1 if the writer has lapped @p seq (the copy may
 *         be torn: the reader is too slow and must not use it).
 */
long ring_get(struct shm_room *shm, size_t ring, uint64_t seq, char *out);

/**
 * @brief The publication number of a record a reader has not copied yet.
 *
 * A reader that stops short of a ring's head (its queue is too long)
 * can still claim every record numbered below this one as copied.
 * @param shm  the region.
 * @param ring the ring.
 * @param seq  the record's sequence number; must be below its head.
 * @return its number, or a smaller one, or 0 if the writer may have
 *         lapped it: never more than the truth.
 */
uint64_t ring_pub(struct shm_room *shm, size_t ring, uint64_t seq);

/**
 * @brief Rings the doorbell of every child that sleeps, but @p self.
 *
 * Called by a writer after it has published, once per pass: each sleeper
 * gets one datagram, and its bit is cleared by the writer that sends it,
 * so that a sleeper is poked once however many writers publish.
 *
 * A Unix datagram counts against the sender's buffer until its receiver
 * has read it: a writer that pokes hundreds of sleepers at once may find
 * its own buffer full (EAGAIN). The sleeper's bit is then set again, and
 * the caller must try again shortly: a wake-up is late, never lost.
 * @param shm  the region.
 * @param self the writer's slot (never poked), or the limit for none.
 * @param fd   a datagram socket to send from (AF_UNIX).
 * @return true when every sleeper was poked, false: call again soon.
 */
bool shm_ring_bells(struct shm_room *shm, size_t self, int fd);

/**
 * @brief The name of a child's doorbell in the abstract namespace.
 *
 * Abstract names (a leading NUL) live in no directory, so nothing is left
 * behind by any exit; the random part, drawn by the parent for each child,
 * keeps another process from taking a name before the child binds it.
 * @param bell the random part, shm->bell[slot].
 * @param addr receives the address.
 * @return its length, for bind() and sendto().
 */
socklen_t shm_bell_addr(uint64_t bell, struct sockaddr_un *addr);

/**
 * @brief A child is about to sleep: sets its doorbell bit, then looks
 *        once more for news.
 *
 * The order is the whole point: a writer publishes, then reads the bits;
 * the child sets its bit, then reads `pub_seq` (both sequentially
 * consistent). Either the writer sees the bit and pokes, or the child
 * sees the news and does not sleep: a wake-up is never lost.
 * @param shm  the region.
 * @param slot the child's slot.
 * @param seen the `pub_seq` the child has read up to.
 * @return true if news arrived meanwhile: do not sleep.
 */
bool shm_doze(struct shm_room *shm, size_t slot, uint64_t seen);

/**
 * @brief A child is awake: writers need not poke it.
 * @param shm  the region.
 * @param slot the child's slot.
 */
void shm_awake(struct shm_room *shm, size_t slot);

#endif
