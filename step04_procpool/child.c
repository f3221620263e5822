/**
 * @file step04_procpool/child.c
 * @brief A worker of the pool: many clients, one epoll loop, one ring.
 *
 * Inside, a worker is chapter 2's server: chapter 1's room (room.c,
 * carried unchanged) with many clients, edge-triggered. The rest of the
 * room is in the other workers, and the room's hooks reach it: what its
 * clients say goes to its other clients directly and into this worker's
 * ring (hook_publish()), and what the others said is copied from their
 * rings into the room (read_rings()). Joins and leaves are the worker's
 * to write, and ids, the online count and the user limit are room-wide
 * (shm.h); the leaves of a dead worker's users are written after it is
 * gone, however it died: by the parent, and what did not fit in the ring
 * by the replacement (announce_predecessor()).
 *
 * The worker watches its clients' sockets, its end of the socketpair to
 * the parent, and its doorbell, a datagram socket of its own on which any
 * writer may poke it. What crosses the last two is one byte:
 *
 * | byte | on          | from        | meaning                             |
 * |------|-------------|-------------|-------------------------------------|
 * | 'N'  | doorbell    | any writer  | "some ring has new records: look"   |
 * | 'A'  | socketpair  | parent      | "accept every waiting connection"   |
 * | 'D'  | socketpair  | worker      | "done accepting" (to the parent)    |
 * | 'Q'  | socketpair  | parent      | "the server is shutting down"       |
 *
 * Pokes carry no data and may be merged: a child that is poked once for
 * many messages reads them all, because the records wait in the rings. A
 * child is poked only while it sleeps (its doorbell bit, shm.h): a writer
 * that finds it awake leaves it alone, since it looks for news itself
 * before it sleeps again. The parent is on no message's path: stopped,
 * it delays nothing but accepting and reaping.
 *
 * Flow control crosses workers: while a queue here is too long, this
 * worker reads neither its clients nor the rings; the other workers'
 * rings fill, and they stop reading their senders in turn.
 */
#include "child.h"

#include "clock.h"
#include "events.h"
#include "log.h"
#include "proto.h"
#include "room.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* [child-state] */
/** Most milliseconds a worker lingers for its clients after the notice. */
#define SHUTDOWN_GRACE_MS 2000
/** Events taken from one epoll_wait(). */
#define EPOLL_BATCH 256
/** While its ring is full, how often a writer looks again for room. */
#define RETRY_MS 5
/** Records kept free in the ring for join and leave notices, so that a
 * burst of them rarely has to wait for room (see wait_for_room()). */
#define RING_RESERVED 512
_Static_assert(RING_RESERVED + 3 <= RING_RESCAN,
               "room_to_write() must not wait for more than ring_room() sees");

/** The child's whole state. */
struct child {
    const struct child_start *cs; /**< what the parent handed over */
    int epfd; /**< the child's own epoll instance */
    struct room room; /**< its part of the room */
    struct room_hooks hooks; /**< how its part reaches the rest */
    bool blocked; /**< own ring full: waiting for the readers */
    long long blocked_since; /**< when the wait began (clock_ms()) */
    int bell_fd; /**< the doorbell: pokes in, and pokes out to others */
    struct shm_view view; /**< cursors: how far each ring has been read */
    uint64_t floor; /**< ring_room()'s cache of the slowest reader */
    uint64_t looked; /**< pub_seq when the rings were last looked at */
    uint64_t done; /**< what this reader last published as copied */
    bool news; /**< own ring grew: ring the sleepers' doorbells */
    bool bells_owed; /**< some sleeper could not be poked: try again */
    uint64_t mine; /**< records this child published since #looked */
    bool unread; /**< records wait in the rings: a queue was too long */
    size_t *free_seats; /**< entries of its users row given back */
    size_t nfree; /**< entries on #free_seats */
    struct room_stats told; /**< the counts already added to the books */
    long long deadline; /**< when lingering gives up (clock_ms()) */
};

/** epoll token of the socketpair to the parent; a client's token is the
 * client itself. */
static char token_parent;
/** epoll token of the child's doorbell. */
static char token_bell;
/* [child-state] */

/**
 * @brief Leaves the child process; never flushes the parent's stdio.
 * @param status exit status for the parent's waitpid().
 */
static _Noreturn void
child_exit(int status)
{
    _exit(status);
}

/**
 * @brief Copies the new records of one ring into the room, as many as
 *        its queue takes.
 *
 * A ring whose writer has lapped this reader's cursor means the client is
 * a whole ring behind: the worker exits, and the parent announces its
 * clients as left, rather than let them believe they heard everything.
 * @param ch   the child.
 * @param ring the ring, not the child's own.
 * @param low  lowered to below the first record left uncopied, if any.
 * @return true when the ring has been read to its head.
 */
/* [read-ring] */
static bool
read_ring(struct child *ch, size_t ring, uint64_t *low)
{
    struct shm_room *shm = ch->cs->shm;
    uint64_t at = ch->view.cursor[ring];
    uint64_t head =
        atomic_load_explicit(&shm->head[ring], memory_order_acquire);
    char line[RECORD_MAX];

    /* A slot that changed hands may have started its user on a new lap
     * (ring_restart()): nothing below its base is for us. A base above
     * the head just read is a restart after that read: next time. */
    uint64_t base =
        atomic_load_explicit(&shm->base[ring], memory_order_relaxed);
    if (at < base && base <= head)
        at = base;
    /* A reader that stopped copying, its queue too long, learns here
     * that the writer has passed it over. */
    if (head - at > RING_SLOTS) {
        log_msg("dropping: fell %d messages behind (slow reader)", RING_SLOTS);
        child_exit(CHILD_EXIT_SLOW);
    }
    /* Flow control: no more than the client takes (room_taking()). What
     * stays in the ring holds its writer, whose sender TCP then slows. */
    for (; at < head && room_taking(&ch->room); at++) {
        long len = ring_get(shm, ring, at, line);
        if (len < 0) {
            log_msg("dropping: fell %d messages behind (slow reader)",
                    RING_SLOTS);
            child_exit(CHILD_EXIT_SLOW);
        }
        room_broadcast(&ch->room, line, (size_t)len);
    }
    ch->view.cursor[ring] = at;
    if (at == head)
        return true;
    uint64_t pub = ring_pub(shm, ring, at);
    if (pub <= *low)
        *low = pub > 0 ? pub - 1 : 0;
    return false;
}
/* [read-ring] */

/**
 * @brief Publishes how far this reader has copied, if that moved.
 *
 * Writers only read it when their ring runs short of room; the store is
 * skipped when nothing changed, to leave the line alone.
 * @param ch   the child.
 * @param done every record numbered up to it has been copied.
 */
static void
publish_done(struct child *ch, uint64_t done)
{
    if (done > ch->done) {
        ch->done = done;
        atomic_store_explicit(&ch->cs->shm->done[ch->cs->slot], done,
                              memory_order_release);
    }
}

/**
 * @brief Copies every new record of every other ring into the room,
 *        looking only where something moved.
 *
 * Three levels, each a few bytes in a dense array (shm.h): the room's
 * `pub_seq` (unchanged: nothing to do), each group's counter (unchanged:
 * skip its #SHM_GROUP rings), and the heads of the groups that moved.
 * Then the reader publishes how far it has copied (`done`): the `pub_seq`
 * it started from, or, if its queue grew too long to copy everything,
 * the number just below the first record it left. Writers waiting for
 * room may go on.
 * @param ch the child.
 */
/* [read-rings] */
static void
read_rings(struct child *ch)
{
    struct shm_room *shm = ch->cs->shm;
    uint64_t now = atomic_load(&shm->pub_seq), low = now;
    bool all = true;

    /* The fast path of every wake-up: nobody else has published since we
     * last looked (the room's number moved by our own records only), and
     * there is nothing left to copy, or no room in the queue for it. */
    if (now == ch->looked + ch->mine &&
        (!ch->unread || !room_taking(&ch->room))) {
        ch->looked = now;
        ch->mine = 0;
        if (!ch->unread)
            publish_done(ch, ch->view.seen = now);
        return;
    }
    ch->looked = now;
    ch->mine = 0;
    size_t high = atomic_load_explicit(&shm->high, memory_order_acquire);
    for (size_t g = 0; g * SHM_GROUP < high; g++) {
        uint64_t count =
            atomic_load_explicit(&shm->group[g], memory_order_acquire);
        if (count == ch->view.group_seen[g])
            continue; /* no ring of this group moved */
        size_t end = (g + 1) * SHM_GROUP < high ? (g + 1) * SHM_GROUP : high;
        bool group_all = true;
        for (size_t i = g * SHM_GROUP; i < end; i++)
            if (i != ch->cs->slot) /* the own ring holds what this room said */
                group_all &= read_ring(ch, i, &low);
        if (group_all)
            ch->view.group_seen[g] = count;
        all &= group_all;
    }
    ch->unread = !all;
    if (all)
        ch->view.seen = now;
    publish_done(ch, low);
}
/* [read-rings] */

/**
 * @brief Wakes the children that sleep, if this child's ring grew.
 *
 * Once per loop pass, however many messages: a sleeper poked once reads
 * them all. Children that are awake are not poked; they look for news
 * before they sleep (shm_doze()). Pokes that could not be sent are owed,
 * and the loop comes back for them after #RETRY_MS.
 * @param ch the child.
 */
/* [ring-bells] */
static void
ring_bells(struct child *ch)
{
    if (!ch->news && !ch->bells_owed)
        return;
    ch->news = false;
    ch->bells_owed = !shm_ring_bells(ch->cs->shm, ch->cs->slot, ch->bell_fd);
}
/* [ring-bells] */

/**
 * @brief How many records the own ring can take now.
 *
 * A ring that stays full for #LAG_GRACE_MS is written anyway: the reader
 * holding it up is stuck, and will leave as a slow reader when it finds
 * itself lapped. Until then the writer waits, and its client's bytes wait
 * in the kernel.
 * @param ch the child.
 * @return the records that may be written now; 0 means wait.
 */
/* [room-to-write] */
static size_t
room_to_write(struct child *ch)
{
    size_t room = ring_room(ch->cs->shm, ch->cs->slot, &ch->floor);

    if (room >= RING_RESERVED + 3) {
        ch->blocked = false;
        return room - RING_RESERVED;
    }
    long long now = clock_ms();
    if (!ch->blocked) {
        trace_add("; ring full, waiting for readers");
        ch->blocked = true;
        ch->blocked_since = now;
        return 0;
    }
    if (now - ch->blocked_since < LAG_GRACE_MS)
        return 0;
    /* Pass the stuck reader over: write a whole ring past it at once, so
     * that it is lapped (and no longer counted) right away. */
    return RING_SLOTS;
}
/* [room-to-write] */

/**
 * @brief Waits, briefly, until the own ring can take @p need records.
 *
 * Messages never get here without room (the room reads only as much as
 * the ring can take); join and leave notices cannot be put off, so in a
 * burst of them the worker waits for the readers -- at most
 * #LAG_GRACE_MS, then a stuck reader is passed over -- copying their
 * rings while it waits, since they may be waiting for it.
 * @param ch   the child.
 * @param need records about to be written.
 */
/* [wait-for-room] */
static void
wait_for_room(struct child *ch, size_t need)
{
    const struct timespec pause = {0, RETRY_MS * 1000000L};
    long long start = clock_ms();

    while (ring_room(ch->cs->shm, ch->cs->slot, &ch->floor) < need) {
        if (clock_ms() - start >= LAG_GRACE_MS)
            return;
        /* Another worker may be waiting here for us: copy its ring
         * meanwhile, or the two wait for each other until one laps the
         * other (a mass leave on two workers at once). */
        if (room_taking(&ch->room))
            read_rings(ch);
        ring_bells(ch); /* the readers read when their doorbells ring */
        nanosleep(&pause, NULL);
    }
}
/* [wait-for-room] */

/**
 * @brief Room hook: a fresh id, unique in the whole pool.
 * @param ctx the child.
 * @return the id.
 */
/* [hooks] */
static unsigned long
hook_new_id(void *ctx)
{
    const struct child *ch = ctx;

    return atomic_fetch_add(&ch->cs->shm->next_id, 1) + 1;
}

/**
 * @brief Room hook: users online in the whole pool.
 *
 * Only one worker accepts at a time (the parent hands out one 'A' and
 * waits for its 'D'), so the count and the limit need no lock.
 * @param ctx the child.
 * @return the count.
 */
static size_t
hook_online(void *ctx)
{
    const struct child *ch = ctx;

    return shm_online(ch->cs->shm);
}

/**
 * @brief Room hook: lines the own ring may take now.
 *
 * The room reads its clients only as much as this allows, so a message
 * never finds the ring full (see room_to_write()).
 * @param ctx the child.
 * @return records; 0 while the ring is full.
 */
static size_t
hook_room_to_publish(void *ctx)
{
    return room_to_write(ctx);
}

/**
 * @brief Room hook: a line said here goes into the own ring, for the
 *        other workers.
 * @param ctx  the child.
 * @param line the line, ending in `\n`.
 * @param len  its length.
 */
static void
hook_publish(void *ctx, const char *line, size_t len)
{
    struct child *ch = ctx;

    wait_for_room(ch, 1);
    ring_put(ch->cs->shm, ch->cs->slot, line, len);
    ch->news = true;
    ch->mine++;
}

/**
 * @brief Room hook: books a newcomer in the worker's row of users, so a
 *        replacement can announce it if this worker dies.
 * @param ctx the child.
 * @param c   the newcomer; its tag becomes its entry in the row.
 * @return 0, or -1 if there is no entry for it (ENOMEM).
 */
static int
hook_joined(void *ctx, struct client *c)
{
    struct child *ch = ctx;
    struct shm_room *shm = ch->cs->shm;

    if (ch->nfree > 0) {
        c->tag = ch->free_seats[--ch->nfree];
    } else {
        /* The row's top is ours to move (shm.h); the parent reads it only
         * once we are dead. Every entry ever used may come back: make
         * room for it now, so that giving one back never needs memory. */
        size_t top = atomic_load(&shm->top[ch->cs->slot]);
        size_t *seats =
            realloc(ch->free_seats, (top + 1) * sizeof *ch->free_seats);
        if (seats == NULL || top == shm->users_cap) {
            if (seats != NULL)
                ch->free_seats = seats;
            errno = ENOMEM;
            return -1;
        }
        ch->free_seats = seats;
        c->tag = top;
        atomic_store(&shm->top[ch->cs->slot], top + 1);
    }
    atomic_store(&shm_users(shm, ch->cs->slot)[c->tag], c->id);
    atomic_fetch_add(&shm->online[ch->cs->slot], 1);
    return 0;
}

/**
 * @brief Room hook: a client's leave has been published; off the books.
 *
 * Only now: killed before this line, the worker's replacement still
 * announces the user as left.
 * @param ctx the child.
 * @param c   the client who left.
 */
static void
hook_left(void *ctx, struct client *c)
{
    struct child *ch = ctx;
    struct shm_room *shm = ch->cs->shm;

    atomic_store(&shm_users(shm, ch->cs->slot)[c->tag], 0);
    atomic_fetch_sub(&shm->online[ch->cs->slot], 1);
    ch->free_seats[ch->nfree++] = c->tag;
}
/* [hooks] */

/**
 * @brief The parent said 'A': accept every waiting connection, say 'D'.
 *
 * Book pitfall (15.3): one accept() per notification leaves connections
 * that arrived together waiting in the backlog until the next one comes.
 * This loop takes them all, until EAGAIN. Out of descriptors, it sheds
 * one and stops: the parent hands the next connection to the next
 * worker, which may have descriptors to spare (shedding the whole backlog
 * here turned away clients the pool had room for -- guarded by
 * tests/faults/fd_exhaustion.bats).
 * @param ch the child.
 */
/* [worker-accept] */
static void
on_accept(struct child *ch)
{
    int fd;

    /* Catch up first: a newcomer hears what is said after its arrival,
     * not what this worker had not read yet. */
    read_rings(ch);
    while ((fd = room_accept(&ch->room, ch->cs->listen_fd)) >= 0) {
        struct client *c = room_join(&ch->room, fd);
        struct epoll_event ev = {
            .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (c != NULL && epoll_ctl(ch->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            log_errno("cannot watch user%lu", c->id);
            room_drop(&ch->room, c);
        }
    }
    if (send(ch->cs->parent_fd, "D", 1, MSG_NOSIGNAL) < 0)
        child_exit(0); /* the parent is gone */
}
/* [worker-accept] */

/**
 * @brief The parent wrote: accept, or quit.
 * @param ch the child.
 */
/* [on-parent] */
static void
on_parent(struct child *ch)
{
    char cmd[64];

    for (;;) {
        ssize_t n = recv(ch->cs->parent_fd, cmd, sizeof cmd, MSG_DONTWAIT);
        if (n == 0)
            child_exit(0); /* the parent died: never outlive it */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            child_exit(0);
        }
        for (ssize_t i = 0; i < n; i++) {
            if (ch->room.closing)
                continue;
            if (cmd[i] == 'A') {
                trace_add(" accept");
                on_accept(ch);
            } else if (cmd[i] == 'Q') {
                trace_add(" quit");
                ch->deadline = clock_ms() + SHUTDOWN_GRACE_MS;
                room_shutdown(&ch->room);
            }
        }
    }
}
/* [on-parent] */

/**
 * @brief A writer rang the doorbell: takes the poke.
 *
 * The pokes only say "look"; the loop looks at the rings after every
 * wake-up anyway (read_rings() returns at once when nothing is new).
 * @param ch the child.
 */
/* [on-bell] */
static void
on_bell(struct child *ch)
{
    char poke[8];

    /* One datagram per wake-up: the doorbell is level-triggered, so any
     * other waiting is reported again, and a second recv() would almost
     * always only say EAGAIN. */
    ssize_t n;
    while ((n = recv(ch->bell_fd, poke, sizeof poke, MSG_DONTWAIT)) < 0 &&
           errno == EINTR)
        ;
    if (n >= 0)
        trace_add(" poke");
    else if (errno != EAGAIN && errno != EWOULDBLOCK)
        log_errno("cannot read the doorbell");
}
/* [on-bell] */

/**
 * @brief A replacement worker's first duty: the users of the worker it
 *        replaces that the room has not heard of yet are gone; tell it.
 *
 * Their connections died with that worker. The parent announces them as
 * soon as it has reaped it (announce_leaves() in children.c), but a ring
 * full of unread records may have kept some of them back; its row of the
 * users table still lists those, and this worker now owns that row and
 * that ring.
 * @param ch the child.
 */
/* [announce-predecessor] */
static void
announce_predecessor(struct child *ch)
{
    struct shm_room *shm = ch->cs->shm;
    _Atomic unsigned long *users = shm_users(shm, ch->cs->slot);
    size_t top = atomic_load(&shm->top[ch->cs->slot]);
    char msg[PROTO_LINE_MAX];

    for (size_t i = 0; i < top; i++) {
        unsigned long id = atomic_load(&users[i]);
        if (id == 0)
            continue;
        hook_publish(ch, msg, proto_left(msg, id));
        atomic_store(&users[i], 0);
        log_note("user%lu left", id);
    }
    atomic_store(&shm->online[ch->cs->slot], 0);
    atomic_store(&shm->top[ch->cs->slot], 0); /* the row is ours, empty */
}
/* [announce-predecessor] */

/**
 * @brief Adds what the room counted since last time to the pool's books,
 *        for the parent's status line.
 * @param ch the child.
 */
static void
tell_books(struct child *ch)
{
    struct shm_room *shm = ch->cs->shm;
    const struct room_stats *now = &ch->room.stats;
    unsigned long relayed = now->relayed - ch->told.relayed;

    if (relayed > 0) {
        atomic_fetch_add_explicit(&shm->relayed, relayed, memory_order_relaxed);
        atomic_fetch_add_explicit(&shm->sent[ch->cs->slot], relayed,
                                  memory_order_relaxed);
    }
    /* Only what changed: the counters share a cache line with pub_seq,
     * which every reader loads on every wake-up. */
    if (now->pauses != ch->told.pauses)
        atomic_fetch_add_explicit(&shm->pauses, now->pauses - ch->told.pauses,
                                  memory_order_relaxed);
    if (now->slow != ch->told.slow)
        atomic_fetch_add_explicit(&shm->slow, now->slow - ch->told.slow,
                                  memory_order_relaxed);
    ch->told = *now;
}

/* The loop comes after run_child(), where the chapter's page reads it. */
static _Noreturn void child_loop(struct child *ch);

/* [run-child] */
/**
 * @brief The worker's first steps: its tag, its tie to the parent, its
 *        room.
 * @param ch the child, its start-up data filled in.
 */
static void
child_begin(struct child *ch)
{
    static char tag[32];
    const struct child_start *cs = ch->cs;

    snprintf(tag, sizeof tag, "worker %zu pid %ld", cs->slot, (long)getpid());
    log_set_tag(tag);

    /* Never outlive the parent: the kernel sends SIGKILL when it dies.
     * If it died before prctl() ran, we were already adopted by init (or
     * a subreaper), and getppid() no longer names it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != cs->parent)
        child_exit(0);
    ch->hooks = (struct room_hooks){.ctx = ch,
                                    .new_id = hook_new_id,
                                    .online = hook_online,
                                    .room_to_publish = hook_room_to_publish,
                                    .publish = hook_publish,
                                    .joined = hook_joined,
                                    .left = hook_left};
    room_init(&ch->room, cs->limit, &ch->hooks);
}

/**
 * @brief Adds one descriptor to the child's epoll set.
 * @param epfd   the child's epoll instance.
 * @param fd     the descriptor.
 * @param events what to watch.
 * @param token  what epoll hands back for it.
 * @return 0, or -1 with errno set.
 */
static int
watch_fd(int epfd, int fd, uint32_t events, void *token)
{
    struct epoll_event ev = {.events = events, .data.ptr = token};

    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/**
 * @brief Opens the doorbell and the worker's epoll set: parent, doorbell.
 *
 * The doorbell is bound under the random name the parent drew for this
 * worker process (shm_bell_addr()); writers poke it only once the worker
 * has set its bit in `asleep`, which it does only after this. The
 * listening socket is not in the set: a worker accepts only when told to.
 * A worker that cannot do this exits with #CHILD_EXIT_FATAL: its
 * replacement would fail the same way.
 * @param ch the child.
 */
static void
child_watch(struct child *ch)
{
    const struct child_start *cs = ch->cs;
    struct sockaddr_un addr;
    socklen_t len = shm_bell_addr(cs->shm->bell[cs->slot], &addr);

    ch->bell_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ch->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ch->bell_fd < 0 ||
        bind(ch->bell_fd, (struct sockaddr *)&addr, len) < 0 || ch->epfd < 0 ||
        watch_fd(ch->epfd, cs->parent_fd, EPOLLIN, &token_parent) < 0 ||
        watch_fd(ch->epfd, ch->bell_fd, EPOLLIN, &token_bell) < 0) {
        log_errno("cannot set up the worker");
        child_exit(CHILD_EXIT_FATAL);
    }
}

void
run_child(const struct child_start *cs)
{
    struct child ch = {.cs = cs,
                       .view = cs->view,
                       .looked = cs->view.seen,
                       .done = cs->view.seen};

    child_begin(&ch);
    child_watch(&ch);
    announce_predecessor(&ch);
    ring_bells(&ch);
    child_loop(&ch);
}
/* [run-child] */

/* [child-loop] */
/**
 * @brief Sleeps until something happens, the doorbell armed meanwhile.
 *
 * The doorbell is armed until the child is closing, a child whose queue
 * is too long included: woken, it learns whether it has been passed over.
 * News is what was published since the rings were last looked at.
 * @param ch     the child.
 * @param events receives what epoll reports.
 * @param max    room in @p events.
 * @return the number of events.
 */
static int
child_wait(struct child *ch, struct epoll_event *events, int max)
{
    struct shm_room *shm = ch->cs->shm;
    int timeout = room_timeout(&ch->room);
    bool armed = !ch->room.closing;
    uint64_t seen = ch->looked + ch->mine;
    int ready;

    if (ch->room.closing) {
        int left = clock_ms_until(ch->deadline);
        if (left == 0)
            child_exit(0); /* clients that did not close in time */
        if (timeout < 0 || left < timeout)
            timeout = left;
    } else if (ch->unread && room_taking(&ch->room)) {
        timeout = 0; /* the queue drained: copy the rest */
    } else if (ch->bells_owed && (timeout < 0 || timeout > RETRY_MS)) {
        timeout = RETRY_MS; /* poke again */
    }
    /* Nothing new yet: let the other processes run once before sleeping.
     * Writers that run meanwhile publish, and a child that then finds
     * news goes on without a sleep or a poke: on two cores shared by a
     * hundred children this halved the wake-ups per delivery
     * (docs/performance.md, "One yield before sleeping"). */
    if (armed && timeout != 0 && atomic_load(&shm->pub_seq) == seen)
        sched_yield();
    /* "Asleep" first, then one more look: a writer that published
     * meanwhile either sees the bit and pokes, or is seen here. */
    if (armed && shm_doze(shm, ch->cs->slot, seen))
        timeout = 0;
    while ((ready = epoll_wait(ch->epfd, events, max, timeout)) < 0)
        if (errno != EINTR)
            die_child("epoll_wait");
    if (armed)
        shm_awake(shm, ch->cs->slot);
    return ready;
}

/**
 * @brief One pass of the worker's loop: the events, the rings, then the
 *        room, the bells and the books.
 * @param ch     the child.
 * @param events what epoll reported.
 * @param ready  how many.
 */
static void
child_pass(struct child *ch, const struct epoll_event *events, int ready)
{
    char names[EVENTS_NAME_MAX];

    trace_begin("epoll: %d ready", ready);
    for (int i = 0; i < ready; i++) {
        uint32_t ev = events[i].events;
        if (events[i].data.ptr == &token_parent) {
            trace_add("; parent:");
            on_parent(ch);
        } else if (events[i].data.ptr == &token_bell) {
            trace_add("; doorbell:");
            on_bell(ch);
        } else {
            struct client *c = events[i].data.ptr;
            trace_add("; user%lu fd %d %s", c->id, c->fd,
                      epoll_events_name(ev, names));
            if (ev & EPOLLOUT)
                room_writable(&ch->room, c);
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                room_readable(&ch->room, c);
        }
    }
    /* Every wake-up looks for news (one load when there is none) before
     * the room settles, so that what it copies is written in this pass. */
    if (!ch->room.closing)
        read_rings(ch);
    room_settle(&ch->room, true);
    ring_bells(ch);
    tell_books(ch);
    trace_end();
}

/**
 * @brief The worker's loop: wait, handle, until it is closing and its
 *        clients have gone.
 * @param ch the child, set up.
 */
static _Noreturn void
child_loop(struct child *ch)
{
    struct epoll_event events[EPOLL_BATCH];

    while (!ch->room.closing || ch->room.online > 0) {
        int ready = child_wait(ch, events, EPOLL_BATCH);
        child_pass(ch, events, ready);
    }
    child_exit(0);
}
/* [child-loop] */
