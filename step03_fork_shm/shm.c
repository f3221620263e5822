/**
 * @file step03_fork_shm/shm.c
 * @brief The room's shared memory: POSIX shm_open(), dense heads, one ring
 *        per slot, doorbells.
 */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/**
 * @brief Rounds @p n up to a multiple of the page size.
 *
 * The rings start on a page of their own, so that reserving and touching
 * the rings of the slots in use never touches the dense arrays' pages.
 * @param n a size in bytes.
 * @return n rounded up.
 */
static size_t
page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    return (n + page - 1) / page * page;
}

/**
 * @brief Opens a new shared-memory object under a name unique to us.
 * @param name receives the name; 64 bytes.
 * @return the descriptor, or -1 with errno set.
 */
static int
shm_open_unique(char name[64])
{
    struct timespec ts;
    int fd = -1;

    /* Book pitfall: shm_open("/my_shm", ..., 0666) -- one fixed name for
     * every server on the machine, readable by every user, and never
     * removed after a crash. Guarded by tests/step03/shm.bats. */
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int attempt = 0; fd < 0 && attempt < 16; attempt++) {
        snprintf(name, 64, "/chat-%ld-%lx", (long)getpid(),
                 (unsigned long)ts.tv_nsec + (unsigned long)attempt * 7919);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return -1;
    }
    return fd;
}

/* [ring-layout] */
/** Bytes of one slot in the rings' area: its ring and its records. */
#define SLOT_BYTES (sizeof(struct ring) + RING_SLOTS * sizeof(struct record))

/**
 * @brief Where group @p g begins in the rings' area.
 *
 * Groups are laid end to end, each as wide as it has slots: the pages of
 * a group lie together, and are reserved together (shm_slot_reserve()).
 * @param shm the region.
 * @param g   the group.
 * @return its first byte: its rings, then their records.
 */
static char *
group_area(const struct shm_room *shm, size_t g)
{
    return shm->rings + g * SHM_GROUP * SLOT_BYTES;
}

/**
 * @brief Slots in group @p g: #SHM_GROUP, fewer in the last one.
 * @param shm the region.
 * @param g   the group.
 * @return its width.
 */
static size_t
group_width(const struct shm_room *shm, size_t g)
{
    size_t left = shm->nrings - g * SHM_GROUP;

    return left < SHM_GROUP ? left : SHM_GROUP;
}

/**
 * @brief The writer's side of ring @p ring: its lost mark and numbers.
 * @param shm  the region.
 * @param ring the ring.
 * @return its `struct ring`, at the front of its group.
 */
static struct ring *
shm_ring(const struct shm_room *shm, size_t ring)
{
    return (struct ring *)group_area(shm, ring / SHM_GROUP) + ring % SHM_GROUP;
}

/**
 * @brief Where record @p seq of ring @p ring lives.
 *
 * Record 0 of every ring of a group lies side by side, four to a page,
 * then record 1 of each (#RING_SIDE); the other records of each ring
 * follow, ring after ring. A user's first record is its join, which every
 * other child copies, at record 0 (ring_restart()), and a user who never
 * speaks has its leave at record 1: in a room that fills up often the
 * only records its ring ever holds.
 * With every ring's records in one piece, 267 KiB apart, each child
 * touched one page (and its share of a page table) per user that joined
 * after it: N x N / 2 page faults for a room of N (docs/performance.md,
 * "Joins a page apart"). Side by side, one fault maps the joins of some
 * sixty rings. A ring's other records stay in one piece, so a busy
 * sender's lines still lie page after page.
 * @param shm  the region.
 * @param ring the ring.
 * @param seq  the record's sequence number.
 * @return its place; whether it is still there is the caller's to check.
 */
static struct record *
shm_record(const struct shm_room *shm, size_t ring, uint64_t seq)
{
    size_t g = ring / SHM_GROUP, width = group_width(shm, g);
    struct record *first =
        (struct record *)((struct ring *)group_area(shm, g) + width);
    size_t i = ring % SHM_GROUP, s = (size_t)(seq % RING_SLOTS);

    if (s < RING_SIDE)
        return &first[s * width + i];
    return &first[RING_SIDE * width + i * (RING_SLOTS - RING_SIDE) + s -
                  RING_SIDE];
}
/* [ring-layout] */

/**
 * @brief Marks the slots of group @p g as read by no one, as its rings
 *        are reserved.
 *
 * Writers wait for every reader's `done`, so a slot's must say "not
 * reading" before the slot is first used. Set a group at a time, as
 * groups come into use, not for the whole limit at start: with
 * `-n 100000` that would be 800 KB of pages touched before anyone joins.
 * @param shm the region.
 * @param g   the group.
 */
static void
group_open(struct shm_room *shm, size_t g)
{
    size_t first = g * SHM_GROUP, end = first + group_width(shm, g);

    for (size_t i = first; i < end; i++)
        atomic_store_explicit(&shm->done[i], SHM_NOT_READING,
                              memory_order_relaxed);
}

/* [shm-create] */
/**
 * @brief Points the region's arrays at their places behind the counters,
 *        in the order shm_room_create() counted them.
 *
 * The pointers are stored inside the region: that works because every
 * process maps it at the same address, the parent's, inherited across
 * fork().
 * @param room    the region, its sizes set.
 * @param ngroups groups of #SHM_GROUP slots, the last one partial.
 */
static void
place_arrays(struct shm_room *room, size_t ngroups)
{
    size_t n = room->nrings;

    room->head = (_Atomic uint64_t *)(room + 1);
    room->group = room->head + n;
    room->done = room->group + ngroups;
    room->asleep = room->done + n;
    room->bell = (uint64_t *)(room->asleep + ngroups);
    room->base = (_Atomic uint64_t *)(room->bell + n);
}

struct shm_room *
shm_room_create(size_t nrings, char name[64])
{
    size_t ngroups = nrings / SHM_GROUP + 1;
    size_t dense = (4 * nrings + 2 * ngroups) * sizeof(uint64_t);
    size_t meta = page_round(sizeof(struct shm_room) + dense);
    /* Whole groups: the records of a group's rings are interleaved. */
    size_t upfront_groups = (SHM_UPFRONT_SLOTS + SHM_GROUP - 1) / SHM_GROUP;
    size_t upfront = upfront_groups * SHM_GROUP;
    size_t size = meta + nrings * SLOT_BYTES;
    int fd = shm_open_unique(name);

    if (fd < 0)
        return NULL;
    /* ftruncate() makes the object sparse: its size grows with the limit,
     * but its pages are only taken as they are reserved. A page that is
     * written without having been reserved could not be refused politely:
     * on a full /dev/shm the tmpfs answers with SIGBUS, in whichever
     * process touches it, at any time. So posix_fallocate() takes the
     * pages that may be written before a slot is first handed out -- the
     * dense arrays and the first rings -- now, or fails with ENOSPC: the
     * server fails at start, with a message (tests/faults/shm.bats); the
     * rings of later slots are reserved by shm_slot_reserve(). */
    void *p = MAP_FAILED;
    int saved = ftruncate(fd, (off_t)size) < 0 ? errno : 0;
    if (saved == 0) /* posix_fallocate() returns the error number */
        saved = posix_fallocate(
            fd, 0,
            (off_t)(meta + (upfront < nrings ? upfront : nrings) * SLOT_BYTES));
    if (saved == 0) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        saved = errno;
    }
    /* The name has done its job: every process that needs the region
     * gets it by inheriting this mapping, and the descriptor (for
     * shm_slot_reserve()) across fork(). */
    shm_unlink(name);
    if (p == MAP_FAILED) {
        close(fd);
        errno = saved;
        return NULL;
    }
    struct shm_room *room = p; /* a new object reads as zeros */
    room->nrings = nrings;
    room->fd = fd;
    room->reserved = upfront_groups;
    place_arrays(room, ngroups);
    room->rings = (char *)p + meta;
    for (size_t g = 0; g < upfront_groups && g * SHM_GROUP < nrings; g++)
        group_open(room, g);
    return room;
}
/* [shm-create] */

int
shm_slot_reserve(struct shm_room *shm, size_t slot)
{
    /* A slot's records are spread over its group's pages: the group is
     * reserved whole, when the first of its slots is used (and every
     * group before it, should slots come out of order). */
    while (shm->reserved * SHM_GROUP <= slot) {
        size_t g = shm->reserved;
        off_t at = (off_t)(group_area(shm, g) - (char *)shm);
        int err = posix_fallocate(shm->fd, at,
                                  (off_t)(group_width(shm, g) * SLOT_BYTES));
        if (err != 0)
            return err;
        group_open(shm, g);
        shm->reserved++;
    }
    return 0;
}

/* [readers] */
void
shm_reader_start(struct shm_room *shm, size_t reader, struct shm_view *view)
{
    /* Counted by writers from now on, as having read nothing new. */
    atomic_store(&shm->done[reader], atomic_load(&shm->pub_seq));
    if (reader >= atomic_load(&shm->high))
        atomic_store(&shm->high, reader + 1);
    atomic_fetch_and(&shm->asleep[reader / 64],
                     ~((uint64_t)1 << (reader % 64)));
    /* In the order writers publish backwards (pub_seq, then the group,
     * then the head): a record counted in what we saw of pub_seq or of a
     * group is already in what we see of its head, so the new reader
     * never skips a record it should read -- at worst it looks at a group
     * once for nothing. */
    size_t high = atomic_load(&shm->high);
    view->seen = atomic_load(&shm->pub_seq);
    for (size_t g = 0; g * SHM_GROUP < high; g++)
        view->group_seen[g] = atomic_load(&shm->group[g]);
    for (size_t i = 0; i < high; i++)
        view->cursor[i] = atomic_load(&shm->head[i]);
}

void
shm_reader_stop(struct shm_room *shm, size_t reader)
{
    atomic_store(&shm->done[reader], SHM_NOT_READING);
    atomic_fetch_and(&shm->asleep[reader / 64],
                     ~((uint64_t)1 << (reader % 64)));
}
/* [readers] */

/**
 * @brief The slowest reader's `done`, passed-over readers left out.
 *
 * One look at each used slot's 8 bytes, all in a row: called only when
 * the writer's cached floor leaves its ring short of room.
 * @param shm  the region.
 * @param ring the writer's ring.
 * @return every reader still counted has copied every record up to it.
 */
static uint64_t
slowest_reader(struct shm_room *shm, size_t ring)
{
    size_t high = atomic_load_explicit(&shm->high, memory_order_acquire);
    uint64_t lost = shm_ring(shm, ring)->lost;
    uint64_t low = atomic_load(&shm->pub_seq);

    for (size_t q = 0; q < high; q++) {
        uint64_t at = atomic_load_explicit(&shm->done[q], memory_order_acquire);
        /* A reader that has not copied a record already overwritten has
         * been passed over: it will notice and leave; waiting for it
         * would only stall the room. */
        if (q == ring || at == SHM_NOT_READING || at < lost)
            continue;
        if (at < low)
            low = at;
    }
    return low;
}

/**
 * @brief Records of ring @p r that some reader may not have copied.
 * @param r     the ring.
 * @param head  its head.
 * @param floor every reader counted has copied every record up to it.
 * @return how many of the newest records are still wanted.
 */
static size_t
ring_unread(const struct ring *r, uint64_t head, uint64_t floor)
{
    uint64_t lo = head > RING_SLOTS ? head - RING_SLOTS : 0, hi = head;

    /* Publication numbers grow along the ring: the first record above the
     * floor, by bisection. */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (atomic_load_explicit(&r->pub[mid % RING_SLOTS],
                                 memory_order_relaxed) > floor)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (size_t)(head - lo);
}

/**
 * @brief Records a writer may add to a ring that has @p unread of them.
 *
 * One record stays free: a reader that finds the head a whole ring ahead
 * of its cursor cannot tell a full ring from one whose writer has begun
 * to overwrite its record (ring_get()), and would leave as passed over.
 * So no writer takes the last one.
 * @param unread records some reader may not have copied.
 * @return the room, 0 if the ring is full.
 */
static size_t
free_records(size_t unread)
{
    return unread < RING_SLOTS ? RING_SLOTS - 1 - unread : 0;
}

/* [ring-room] */
size_t
ring_room(struct shm_room *shm, size_t ring, uint64_t *floor)
{
    const struct ring *r = shm_ring(shm, ring);
    uint64_t head =
        atomic_load_explicit(&shm->head[ring], memory_order_relaxed);
    size_t room = free_records(ring_unread(r, head, *floor));

    /* The cached floor is still true (readers' numbers only grow, and a
     * newcomer starts at the present); look at the readers again only
     * when it leaves the ring short. */
    if (room < RING_RESCAN) {
        uint64_t low = slowest_reader(shm, ring);
        if (low > *floor)
            *floor = low;
        room = free_records(ring_unread(r, head, *floor));
    }
    return room;
}
/* [ring-room] */

/* [ring-put] */
void
ring_restart(struct shm_room *shm, size_t ring)
{
    struct ring *r = shm_ring(shm, ring);
    uint64_t head =
        atomic_load_explicit(&shm->head[ring], memory_order_relaxed);
    size_t high = atomic_load_explicit(&shm->high, memory_order_acquire);

    if (head % RING_SLOTS == 0)
        return; /* at the start of a lap already */
    uint64_t last = atomic_load_explicit(&r->pub[(head - 1) % RING_SLOTS],
                                         memory_order_relaxed);
    for (size_t q = 0; q < high; q++) {
        uint64_t at = atomic_load_explicit(&shm->done[q], memory_order_acquire);
        if (q != ring && at != SHM_NOT_READING && at < last)
            return; /* a reader has records of this ring to copy yet */
    }
    uint64_t next = head - head % RING_SLOTS + RING_SLOTS;
    /* The places skipped keep the numbers growing along the ring, as
     * ring_unread() needs: each gets the last real record's. */
    for (uint64_t s = head; s < next; s++)
        atomic_store_explicit(&r->pub[s % RING_SLOTS], last,
                              memory_order_relaxed);
    /* base before head: a reader that sees the new head sees the base. */
    atomic_store_explicit(&shm->base[ring], next, memory_order_relaxed);
    atomic_store_explicit(&shm->head[ring], next, memory_order_release);
}

void
ring_put(struct shm_room *shm, size_t ring, const char *line, size_t len)
{
    struct ring *r = shm_ring(shm, ring);
    uint64_t seq = atomic_load_explicit(&shm->head[ring], memory_order_relaxed);
    struct record *rec = shm_record(shm, ring, seq);

    if (seq >= RING_SLOTS)
        r->lost = atomic_load_explicit(&r->pub[seq % RING_SLOTS],
                                       memory_order_relaxed);
    /* The record we overwrite was published RING_SLOTS records ago; the
     * fence keeps our writes from showing before that head did, so a
     * reader's check in ring_get() cannot miss them (a no-op on x86, a
     * write barrier on weaker machines). */
    atomic_thread_fence(memory_order_release);
    rec->len = (uint32_t)len;
    memcpy(rec->line, line, len);
    /* Publish, in this order: the head (a reader that sees it sees the
     * record too), the group's counter, the room's number. A reader looks
     * in the other order, so it never misses a head that was counted. */
    atomic_store_explicit(&shm->head[ring], seq + 1, memory_order_release);
    atomic_fetch_add_explicit(&shm->group[ring / SHM_GROUP], 1,
                              memory_order_release);
    atomic_store_explicit(&r->pub[seq % RING_SLOTS],
                          atomic_fetch_add(&shm->pub_seq, 1) + 1,
                          memory_order_relaxed);
}
/* [ring-put] */

/* [ring-get] */
long
ring_get(struct shm_room *shm, size_t ring, uint64_t seq, char *out)
{
    const struct record *rec = shm_record(shm, ring, seq);
    uint32_t len = rec->len;

    if (len > RECORD_MAX)
        len = RECORD_MAX; /* torn; the check below rejects it */
    memcpy(out, rec->line, len);
    /* The copy must be complete before head is read again. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t head =
        atomic_load_explicit(&shm->head[ring], memory_order_relaxed);
    /* The writer starts overwriting record seq once head reaches
     * seq + RING_SLOTS; before that, the copy is intact. */
    if (head - seq >= RING_SLOTS)
        return -1;
    return (long)len;
}

uint64_t
ring_pub(struct shm_room *shm, size_t ring, uint64_t seq)
{
    uint64_t pub = atomic_load_explicit(
        &shm_ring(shm, ring)->pub[seq % RING_SLOTS], memory_order_relaxed);

    /* As in ring_get(): lapped meanwhile, the number may be a later
     * record's, larger than the truth. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t head =
        atomic_load_explicit(&shm->head[ring], memory_order_relaxed);
    return head - seq >= RING_SLOTS ? 0 : pub;
}
/* [ring-get] */

/* [doorbell] */
socklen_t
shm_bell_addr(uint64_t bell, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    int n = snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1,
                     "chat-bell-%016llx", (unsigned long long)bell);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

bool
shm_doze(struct shm_room *shm, size_t slot, uint64_t seen)
{
    atomic_fetch_or(&shm->asleep[slot / 64], (uint64_t)1 << (slot % 64));
    return atomic_load(&shm->pub_seq) != seen;
}

void
shm_awake(struct shm_room *shm, size_t slot)
{
    uint64_t bit = (uint64_t)1 << (slot % 64);

    /* A child woken by a poke finds its bit cleared by the writer: a load
     * spares the shared word a write. */
    if (atomic_load_explicit(&shm->asleep[slot / 64], memory_order_relaxed) &
        bit)
        atomic_fetch_and(&shm->asleep[slot / 64], ~bit);
}

bool
shm_ring_bells(struct shm_room *shm, size_t self, int fd)
{
    size_t high = atomic_load(&shm->high);
    struct sockaddr_un addr;
    bool all = true;

    for (size_t w = 0; w * 64 < high; w++) {
        uint64_t bits = atomic_load(&shm->asleep[w]);
        if (self / 64 == w)
            bits &= ~((uint64_t)1 << (self % 64));
        while (bits != 0) {
            uint64_t bit = bits & -bits;
            bits &= ~bit;
            /* Whoever clears the bit pokes: one datagram per sleep. */
            if (!(atomic_fetch_and(&shm->asleep[w], ~bit) & bit))
                continue;
            size_t slot = w * 64 + (size_t)__builtin_ctzll(bit);
            socklen_t len = shm_bell_addr(shm->bell[slot], &addr);
            ssize_t n;
            while ((n = sendto(fd, "N", 1, MSG_DONTWAIT | MSG_NOSIGNAL,
                               (struct sockaddr *)&addr, len)) < 0 &&
                   errno == EINTR)
                ;
            /* ECONNREFUSED: it died, and the parent will reap it. Out of
             * buffer (our own, or its queue: we cannot tell which), the
             * poke is owed still: the bit goes back, for us or another
             * writer to try again. */
            if (n < 0 && errno != ECONNREFUSED && errno != ENOENT) {
                atomic_fetch_or(&shm->asleep[w], bit);
                all = false;
            }
        }
    }
    return all;
}
/* [doorbell] */
