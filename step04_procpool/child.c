/**
 * @file step04_procpool/child.c
 * @brief A worker of the pool: many clients, one epoll loop, one ring.
 *
 * Inside, a worker is chapter 2's server: edge-triggered clients and
 * chapter 1's room (room.c, carried unchanged). What is new is that the
 * room is shared with the other workers, through the room's hooks:
 *
 * - what its clients say goes to its other clients directly, and into its
 *   ring in shared memory for the other workers (hook_publish()); at the
 *   end of the pass it rings their doorbells (ring_bells());
 * - when its own doorbell rings, it copies the other rings' new records
 *   to all of its clients (read_rings()). The parent is not in that
 *   path: stopped or busy, it delays accepting and reaping, never a
 *   message;
 * - ids, the online count and the user limit are room-wide (shm.h);
 * - it accepts only when the parent says so ('A'), until EAGAIN, and then
 *   tells the parent it is done ('D').
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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* [child-state] */
/** Most milliseconds a worker lingers for its clients after the notice. */
#define SHUTDOWN_GRACE_MS 2000
/** Events taken from one epoll_wait(). */
#define EPOLL_BATCH 256
/** While its ring is full, how often a worker looks again for room. */
#define RETRY_MS 5
/** Records kept free in the ring for join and leave notices, so that a
 * burst of them rarely has to wait for room (see wait_for_room()). */
#define RING_RESERVED 1024

/** The worker's whole state. */
struct child {
    const struct child_start *cs; /**< what the parent handed over */
    int epfd; /**< the worker's epoll instance */
    struct room room; /**< its part of the room */
    struct room_hooks hooks; /**< how its part reaches the rest */
    size_t *free_seats; /**< entries of its users row given back */
    size_t nfree; /**< entries on #free_seats */
    bool news; /**< own ring grew: ring the others' doorbells */
    bool unread; /**< the other rings may hold records not yet read */
    bool blocked; /**< own ring full: waiting for the readers */
    long long blocked_since; /**< when the wait began (clock_ms()) */
    struct room_stats told; /**< the counts already added to the books */
    long long deadline; /**< when lingering gives up (clock_ms()) */
};

/** epoll token of the socketpair to the parent; a client's token is the
 * client itself. */
static char token_parent;
/** epoll token of the worker's own doorbell. */
static char token_bell;
/* [child-state] */

/**
 * @brief Leaves the worker process; never flushes the parent's stdio.
 * @param status exit status for the parent's waitpid().
 */
static _Noreturn void
child_exit(int status)
{
    _exit(status);
}

/**
 * @brief Copies every new record of the other workers' rings to every
 *        client of this worker, as long as the room takes them.
 *
 * A ring whose writer has lapped this worker's cursor means the worker
 * missed messages: it exits, and its replacement announces its clients as
 * left, rather than let them believe they heard everything. A queue that
 * grows too long on the way stops the copy: the rest waits in the rings,
 * and their writers wait for this worker. A full ring of its own does not
 * (room_taking(), not room_reading()): copying publishes nothing.
 * @param ch the worker.
 */
/* [read-rings] */
static void
read_rings(struct child *ch)
{
    struct shm_room *shm = ch->cs->shm;
    char line[RECORD_MAX];

    ch->unread = false;
    for (size_t i = 0; i < shm->nrings; i++) {
        if (i == ch->cs->index)
            continue; /* our own clients heard it directly */
        struct ring *r = &shm->rings[i];
        _Atomic uint64_t *cursor = shm_progress(shm, ch->cs->index, i);
        uint64_t at = atomic_load_explicit(cursor, memory_order_relaxed);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        /* A reader that stopped copying, its queue too long, learns here
         * that the writer has passed it over. */
        if (head - at > RING_SLOTS) {
            log_msg("dropping: fell %d messages behind (slow reader)",
                    RING_SLOTS);
            child_exit(CHILD_EXIT_LAPPED);
        }
        for (; at < head && room_taking(&ch->room); at++) {
            long len = ring_get(r, at, line);
            if (len < 0) {
                log_msg("fell %d messages behind worker %zu; exiting",
                        RING_SLOTS, i);
                child_exit(CHILD_EXIT_LAPPED);
            }
            room_broadcast(&ch->room, line, (size_t)len);
        }
        ch->unread |= at < head;
        /* Publish the progress: a writer waiting for room may go on. */
        atomic_store_explicit(cursor, at, memory_order_release);
    }
}
/* [read-rings] */

/**
 * @brief Tells the other workers that this worker's ring has new records.
 *
 * Once per pass, however many records the pass published: a doorbell
 * says "look", the rings say what. Directly, not through the parent (as
 * until issue 15): a stopped parent would leave every reader asleep, the
 * rings would fill, and the readers would be passed over as slow --
 * guarded by tests/faults/stop.bats ("the parent stopped for 2 s...").
 * @param ch the worker.
 */
/* [ring-bells] */
static void
ring_bells(struct child *ch)
{
    if (!ch->news)
        return;
    ch->news = false;
    shm_ring_bells(ch->cs->bells, ch->cs->shm->nrings, ch->cs->index);
}
/* [ring-bells] */

/**
 * @brief Records the own ring can take now, keeping #RING_RESERVED free.
 *
 * A ring that stays full for #LAG_GRACE_MS is written anyway: the worker
 * holding it up is stuck, and will exit when it finds itself lapped.
 * @param ch the worker.
 * @return records that may be written now; 0 means wait.
 */
/* [room-to-write] */
static size_t
room_to_write(struct child *ch)
{
    size_t room = ring_room(ch->cs->shm, ch->cs->index);

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
 * @param ch   the worker.
 * @param need records about to be written.
 */
/* [wait-for-room] */
static void
wait_for_room(struct child *ch, size_t need)
{
    const struct timespec pause = {0, RETRY_MS * 1000000L};
    long long start = clock_ms();

    while (ring_room(ch->cs->shm, ch->cs->index) < need) {
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
 * @param ctx the worker.
 * @return the id.
 */
/* [hooks] */
static unsigned long
hook_new_id(void *ctx)
{
    struct child *ch = ctx;

    return atomic_fetch_add(&ch->cs->shm->next_id, 1) + 1;
}

/**
 * @brief Room hook: users online in the whole pool.
 *
 * Only one worker accepts at a time (the parent hands out one 'A' and
 * waits for its 'D'), so the count and the limit need no lock.
 * @param ctx the worker.
 * @return the count.
 */
static size_t
hook_online(void *ctx)
{
    struct child *ch = ctx;

    return shm_online(ch->cs->shm);
}

/**
 * @brief Room hook: lines the own ring may take now.
 * @param ctx the worker.
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
 * @param ctx  the worker.
 * @param line the line, ending in `\n`.
 * @param len  its length.
 */
static void
hook_publish(void *ctx, const char *line, size_t len)
{
    struct child *ch = ctx;

    wait_for_room(ch, 1);
    ring_put(&ch->cs->shm->rings[ch->cs->index], line, len);
    ch->news = true;
}

/**
 * @brief Room hook: books a newcomer in the worker's row of users, so a
 *        replacement can announce it if this worker dies.
 * @param ctx the worker.
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
        size_t top = atomic_load(&shm->top[ch->cs->index]);
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
        atomic_store(&shm->top[ch->cs->index], top + 1);
    }
    atomic_store(&shm_users(shm, ch->cs->index)[c->tag], c->id);
    atomic_fetch_add(&shm->online[ch->cs->index], 1);
    return 0;
}

/**
 * @brief Room hook: a client's leave has been published; off the books.
 *
 * Only now: killed before this line, the worker's replacement still
 * announces the user as left.
 * @param ctx the worker.
 * @param c   the client who left.
 */
static void
hook_left(void *ctx, struct client *c)
{
    struct child *ch = ctx;
    struct shm_room *shm = ch->cs->shm;

    atomic_store(&shm_users(shm, ch->cs->index)[c->tag], 0);
    atomic_fetch_sub(&shm->online[ch->cs->index], 1);
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
 * @param ch the worker.
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
 * @param ch the worker.
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
 * @brief The doorbell rang: some ring has new records; copy them.
 *
 * The eventfd is level-triggered in the epoll set: it is read back to
 * zero first, so that a ring after this read wakes the worker again and
 * no ring is missed (the writer publishes its records before it rings).
 * @param ch the worker.
 */
/* [on-bell] */
static void
on_bell(struct child *ch)
{
    uint64_t rings;

    for (;;) {
        ssize_t n = read(ch->cs->bells[ch->cs->index], &rings, sizeof rings);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue; /* zero after a read; the next one says EAGAIN */
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            log_errno("cannot read the doorbell");
        break;
    }
    trace_add(" poke");
    if (!ch->room.closing)
        read_rings(ch);
}
/* [on-bell] */

/**
 * @brief A replacement worker's first duty: the users of the worker it
 *        replaces that the room has not heard of yet are gone; tell it.
 *
 * Their connections died with that worker. The parent announces them as
 * soon as it has reaped it (announce_leaves() in server.c), but a ring
 * full of unread records may have kept some of them back; its row of the
 * users table still lists those, and this worker now owns that row and
 * that ring.
 * @param ch the worker.
 */
/* [announce-predecessor] */
static void
announce_predecessor(struct child *ch)
{
    struct shm_room *shm = ch->cs->shm;
    _Atomic unsigned long *users = shm_users(shm, ch->cs->index);
    size_t top = atomic_load(&shm->top[ch->cs->index]);
    char msg[PROTO_LINE_MAX];

    for (size_t i = 0; i < top; i++) {
        unsigned long id = atomic_load(&users[i]);
        if (id == 0)
            continue;
        wait_for_room(ch, 1);
        ring_put(&shm->rings[ch->cs->index], msg, proto_left(msg, id));
        atomic_store(&users[i], 0);
        log_note("user%lu left", id);
        ch->news = true;
    }
    atomic_store(&shm->online[ch->cs->index], 0);
    atomic_store(&shm->top[ch->cs->index], 0); /* the row is ours, empty */
}
/* [announce-predecessor] */

/**
 * @brief Adds what the room counted since last time to the pool's books,
 *        for the parent's status line.
 * @param ch the worker.
 */
static void
tell_books(struct child *ch)
{
    struct shm_room *shm = ch->cs->shm;
    const struct room_stats *now = &ch->room.stats;
    unsigned long relayed = now->relayed - ch->told.relayed;

    if (relayed > 0) {
        atomic_fetch_add_explicit(&shm->relayed, relayed, memory_order_relaxed);
        atomic_fetch_add_explicit(&shm->sent[ch->cs->index], relayed,
                                  memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&shm->pauses, now->pauses - ch->told.pauses,
                              memory_order_relaxed);
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
 * @param ch the worker, its start-up data filled in.
 */
static void
child_begin(struct child *ch)
{
    static char tag[32];
    const struct child_start *cs = ch->cs;

    snprintf(tag, sizeof tag, "worker %zu pid %ld", cs->index, (long)getpid());
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
 * @brief Makes the worker's epoll set: the parent and the doorbell.
 *
 * The listening socket is not in it: a worker accepts only when told to.
 * @param ch the worker.
 */
static void
child_watch(struct child *ch)
{
    const struct child_start *cs = ch->cs;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &token_parent};
    struct epoll_event bell = {.events = EPOLLIN, .data.ptr = &token_bell};

    ch->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ch->epfd < 0 ||
        epoll_ctl(ch->epfd, EPOLL_CTL_ADD, cs->parent_fd, &ev) < 0 ||
        epoll_ctl(ch->epfd, EPOLL_CTL_ADD, cs->bells[cs->index], &bell) < 0) {
        log_errno("cannot set up the worker");
        child_exit(CHILD_EXIT_FATAL);
    }
}

void
run_child(const struct child_start *cs)
{
    struct child ch = {.cs = cs};

    child_begin(&ch);
    child_watch(&ch);
    announce_predecessor(&ch);
    ring_bells(&ch);
    child_loop(&ch);
}
/* [run-child] */

/* [child-loop] */
/**
 * @brief Sleeps until something happens.
 *
 * The timeout is the room's, 0 while records wait in the other rings and
 * the room takes them, and after 'Q' no later than the worker's grace.
 * @param ch     the worker.
 * @param events receives what epoll reports.
 * @param max    room in @p events.
 * @return the number of events.
 */
static int
child_wait(struct child *ch, struct epoll_event *events, int max)
{
    int timeout = room_timeout(&ch->room);
    int ready;

    if (ch->room.closing) {
        int left = clock_ms_until(ch->deadline);
        if (left == 0)
            child_exit(0); /* clients that did not close in time */
        if (timeout < 0 || left < timeout)
            timeout = left;
    } else if (ch->unread && room_taking(&ch->room)) {
        timeout = 0; /* records wait in the rings */
    }
    while ((ready = epoll_wait(ch->epfd, events, max, timeout)) < 0) {
        if (errno != EINTR) {
            log_errno("epoll_wait");
            child_exit(CHILD_EXIT_FATAL);
        }
    }
    return ready;
}

/**
 * @brief One pass of the worker's loop: the events, then the room, the
 *        rings, the bells and the books.
 * @param ch     the worker.
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
    room_settle(&ch->room, true);
    if (ch->unread && room_taking(&ch->room) && !ch->room.closing) {
        read_rings(ch);
        room_settle(&ch->room, true);
    }
    ring_bells(ch);
    tell_books(ch);
    trace_end();
}

/**
 * @brief The worker's loop: wait, handle, until it is closing and its
 *        clients have gone.
 * @param ch the worker, set up.
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
