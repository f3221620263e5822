/**
 * @file step04_procpool/worker.c
 * @brief A worker of the pool: many clients, one epoll loop, one ring.
 *
 * Inside, a worker is chapter 2's server: edge-triggered clients, output
 * queues written at the end of each pass, slow readers dropped. What is
 * new is that its room is shared with the other workers:
 *
 * - what its clients say goes to its other clients directly, and into its
 *   ring in shared memory for the other workers;
 * - when the parent pokes it ('N'), it copies the other rings' new
 *   records to all of its clients;
 * - ids, the online count and the user limit are room-wide (shm.h);
 * - it accepts only when the parent says so ('A'), until EAGAIN, and then
 *   tells the parent it is done ('D').
 */
#include "worker.h"

#include "log.h"
#include "net.h"
#include "outq.h"

#include <errno.h>
#include <fcntl.h>
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

/* [constants] */
/** Bytes read from one client per recv() at most. */
#define READ_SIZE 65536
/** Most bytes queued for one client before it counts as a slow reader. */
#define HIGH_WATER 262144 /* 256 KiB */
/** Sent to a client that cannot join (SPEC: exact text). */
#define ROOM_FULL "too many users\n"
/** Sent to every client on shutdown (SPEC: exact text). */
#define SHUTDOWN_NOTICE "* server shutting down\n"
/** Most milliseconds a worker lingers for its clients after the notice. */
#define SHUTDOWN_GRACE_MS 2000
/** Events taken from one epoll_wait(). */
#define EPOLL_BATCH 256
/** Reads from one client per pass before the others get their turn. */
#define READ_BUDGET 16
/** While its ring is full, how often a worker looks again for room. */
#define RETRY_MS 5
/** Records kept free in the ring for join and leave notices, so that a
 * burst of them rarely has to wait for room (see wait_for_room()). */
#define RING_RESERVED 1024
/** epoll token of the socketpair to the parent. */
#define TOKEN_PARENT UINT64_MAX
/* [constants] */

/* [worker-state] */
/** One connected user. A slot with fd -1 is free. */
struct client {
    int fd; /**< its socket, or -1 when the slot is free */
    unsigned long id; /**< room-wide lifetime-unique: user<id> */
    bool leaving; /**< dropped; announced and freed by reap */
    bool dirty; /**< the slot is on the worker's dirty list */
    bool unread; /**< the slot is on the unread list (ring was full) */
    bool shut; /**< shutdown(SHUT_WR) done (server closing) */
    struct line_framer in; /**< its unfinished input line */
    struct outq out; /**< output not yet written to it */
};

/** The worker's whole state. */
struct worker {
    const struct worker_start *ws; /**< what the parent handed over */
    int epfd; /**< the worker's epoll instance */
    int reserve_fd; /**< spare descriptor, spent when out of fds */
    struct client *clients; /**< ws->limit slots; [0, top) initialised */
    size_t top; /**< slots ever used */
    size_t *free_slots; /**< stack of free slots below #top */
    size_t nfree; /**< entries on #free_slots */
    size_t *leaving; /**< slots waiting for reap() */
    size_t nleaving; /**< entries on #leaving */
    size_t *dirty; /**< slots with output queued in this pass */
    size_t ndirty; /**< entries on #dirty */
    size_t *unread; /**< slots with input left unread (ring was full) */
    size_t nunread; /**< entries on #unread */
    size_t online; /**< this worker's users */
    bool news; /**< own ring grew: tell the parent */
    bool blocked; /**< own ring full: waiting for the readers */
    struct timespec blocked_since; /**< when the wait began */
    bool closing; /**< 'Q' seen: drain and leave */
    struct timespec deadline; /**< when lingering gives up */
};
/* [worker-state] */

/**
 * @brief Leaves the worker process; never flushes the parent's stdio.
 * @param status exit status for the parent's waitpid().
 */
static _Noreturn void
worker_exit(int status)
{
    _exit(status);
}

/**
 * @brief Milliseconds from @p a to @p b.
 * @param a the earlier time.
 * @param b the later time.
 * @return b - a in milliseconds.
 */
static long
ms_between(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1000L +
           (b->tv_nsec - a->tv_nsec) / 1000000L;
}

/**
 * @brief Marks a client as gone; reap() closes and announces it.
 * @param w the worker.
 * @param c the client to drop.
 */
/* [drop] */
static void
client_drop(struct worker *w, struct client *c)
{
    if (c->leaving)
        return;
    c->leaving = true;
    w->leaving[w->nleaving++] = (size_t)(c - w->clients);
}
/* [drop] */

/**
 * @brief Queues bytes for one client, dropping it if it reads too slowly.
 *
 * As in chapter 2: the client goes on the dirty list and its queue is
 * written once at the end of the pass; a queue about to pass #HIGH_WATER
 * is written at once, and judged after.
 * @param w    the worker.
 * @param c    the receiving client.
 * @param data bytes to queue (whole lines only).
 * @param n    number of bytes.
 */
/* [send] */
static void
client_send(struct worker *w, struct client *c, const char *data, size_t n)
{
    if (c->leaving)
        return;
    int rc = outq_push(&c->out, data, n, HIGH_WATER);
    if (rc < 0 && errno == ENOBUFS && outq_flush(&c->out, c->fd) >= 0)
        rc = outq_push(&c->out, data, n, HIGH_WATER); /* written, retry */
    if (rc < 0) {
        if (errno == ENOBUFS)
            log_msg("dropping user%lu: more than %d bytes queued (slow "
                    "reader)",
                    c->id, HIGH_WATER);
        else
            log_errno("dropping user%lu: cannot queue output", c->id);
        client_drop(w, c);
        return;
    }
    if (!c->dirty) {
        c->dirty = true;
        w->dirty[w->ndirty++] = (size_t)(c - w->clients);
    }
}
/* [send] */

/**
 * @brief Queues one line for every client of this worker but @p from.
 * @param w    the worker.
 * @param from the sender, who never hears itself; NULL for nobody.
 * @param data the line, ending in `\n`.
 * @param n    its length.
 */
/* [broadcast] */
static void
broadcast(struct worker *w, const struct client *from, const char *data,
          size_t n)
{
    for (size_t i = 0; i < w->top; i++) {
        struct client *c = &w->clients[i];
        /* cppcheck-suppress nullPointerRedundantCheck
         * c points into the table and is never NULL; only from may be. */
        if (c->fd >= 0 && c != from)
            client_send(w, c, data, n);
    }
}
/* [broadcast] */

/**
 * @brief Records the own ring can take now, keeping #RING_RESERVED free.
 *
 * A ring that stays full for #LAG_GRACE_MS is written anyway: the worker
 * holding it up is stuck, and will exit when it finds itself lapped.
 * @param w the worker.
 * @return records that may be written now; 0 means wait.
 */
/* [room-to-write] */
static size_t
room_to_write(struct worker *w)
{
    size_t room = ring_room(w->ws->shm, w->ws->index);
    struct timespec now;

    if (room >= RING_RESERVED + 3) {
        w->blocked = false;
        return room - RING_RESERVED;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!w->blocked) {
        trace_add(" ring full, waiting for readers");
        w->blocked = true;
        w->blocked_since = now;
        return 0;
    }
    if (ms_between(&w->blocked_since, &now) < LAG_GRACE_MS)
        return 0;
    /* Pass the stuck reader over: write a whole ring past it at once, so
     * that it is lapped (and no longer counted) right away. */
    return RING_SLOTS;
}
/* [room-to-write] */

/**
 * @brief Tells the parent that this worker's ring has new records.
 * @param w the worker.
 */
/* [tell-parent] */
static void
tell_parent(struct worker *w)
{
    if (!w->news)
        return;
    w->news = false;
    if (send(w->ws->parent_fd, "N", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
        errno != EAGAIN && errno != EWOULDBLOCK)
        worker_exit(0); /* the parent is gone */
}
/* [tell-parent] */

/**
 * @brief Waits, briefly, until the own ring can take @p need records.
 *
 * Messages never get here without room (on_readable() reads only as much
 * as the ring can take); join and leave notices cannot be put off, so in
 * a burst of them the worker waits for the readers -- at most
 * #LAG_GRACE_MS, then a stuck reader is passed over.
 * @param w    the worker.
 * @param need records about to be written.
 */
/* [wait-for-room] */
static void
wait_for_room(struct worker *w, size_t need)
{
    struct timespec start, now;
    const struct timespec pause = {0, RETRY_MS * 1000000L};

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (ring_room(w->ws->shm, w->ws->index) < need) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ms_between(&start, &now) >= LAG_GRACE_MS)
            return;
        tell_parent(w); /* the readers read when the parent pokes them */
        nanosleep(&pause, NULL);
    }
}
/* [wait-for-room] */

/**
 * @brief Tells the whole room: this worker's clients, then the ring for
 *        the other workers.
 * @param w    the worker.
 * @param from the sender on this worker, or NULL for a notice.
 * @param line the line, ending in `\n`.
 * @param len  its length.
 */
/* [publish] */
static void
publish(struct worker *w, const struct client *from, const char *line,
        size_t len)
{
    broadcast(w, from, line, len);
    wait_for_room(w, 1);
    ring_put(&w->ws->shm->rings[w->ws->index], line, len);
    w->news = true;
}
/* [publish] */

/**
 * @brief Closes every dropped client and tells the room it left.
 * @param w the worker.
 */
/* [reap] */
static void
reap(struct worker *w)
{
    struct shm_room *shm = w->ws->shm;
    char msg[64];

    while (w->nleaving > 0) {
        size_t slot = w->leaving[--w->nleaving];
        struct client *c = &w->clients[slot];

        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
        outq_free(&c->out);
        w->online--;
        trace_add("; user%lu left", c->id);
        if (!w->closing) {
            int n = snprintf(msg, sizeof msg, "* user%lu left\n", c->id);
            publish(w, c, msg, (size_t)n);
        }
        /* Only now off the books: killed before this line, the worker's
         * replacement still announces the user as left. */
        atomic_store(&shm_users(shm, w->ws->index)[slot], 0);
        atomic_fetch_sub(&shm->online[w->ws->index], 1);
        w->free_slots[w->nfree++] = slot;
        c->leaving = false;
        c->shut = false;
    }
}
/* [reap] */

/**
 * @brief Turns away a connection the room cannot take.
 * @param fd the accepted socket; closed on return.
 */
static void
refuse(int fd)
{
    if (send(fd, ROOM_FULL, strlen(ROOM_FULL), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_errno("cannot tell a refused client the room is full");
    close(fd);
}

/**
 * @brief Admits a new connection: a room-wide id, the welcome, the join.
 *
 * Only one worker accepts at a time (the parent hands out one 'A' and
 * waits for its 'D'), so the room-wide count and limit need no lock.
 * @param w  the worker.
 * @param fd the accepted socket.
 */
/* [join] */
static void
client_add(struct worker *w, int fd)
{
    struct shm_room *shm = w->ws->shm;
    char msg[96];

    size_t online = shm_online(shm);
    if (online >= w->ws->limit) {
        trace_add(": room full, refused fd %d", fd);
        refuse(fd);
        return;
    }
    size_t slot = w->nfree > 0 ? w->free_slots[w->nfree - 1] : w->top;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = slot};
    if (net_set_nonblock(fd) < 0 ||
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        log_errno("cannot watch a new connection");
        close(fd);
        return;
    }
    if (w->nfree > 0)
        w->nfree--;
    else
        w->top++;

    struct client *c = &w->clients[slot];
    c->fd = fd;
    c->id = atomic_fetch_add(&shm->next_id, 1) + 1;
    c->leaving = c->dirty = c->unread = c->shut = false;
    line_init(&c->in);
    /* The row lists our users, so a replacement can announce them if we
     * die; the count is only ever written by us. */
    atomic_store(&shm_users(shm, w->ws->index)[slot], c->id);
    atomic_fetch_add(&shm->online[w->ws->index], 1);
    w->online++;
    trace_add(": user%lu on fd %d", c->id, fd);

    int n =
        snprintf(msg, sizeof msg, "* welcome, you are user%lu (%zu online)\n",
                 c->id, online + 1);
    client_send(w, c, msg, (size_t)n);
    n = snprintf(msg, sizeof msg, "* user%lu joined\n", c->id);
    publish(w, c, msg, (size_t)n);
}
/* [join] */

static void read_rings(struct worker *w);

/**
 * @brief The parent said 'A': accept every waiting connection, say 'D'.
 *
 * Book pitfall (15.3): one accept() per notification leaves connections
 * that arrived together waiting in the backlog until the next one comes.
 * This loop takes them all, until EAGAIN.
 * @param w the worker.
 */
/* [worker-accept] */
static void
on_accept(struct worker *w)
{
    /* Catch up first: a newcomer hears what is said after its arrival,
     * not what this worker had not read yet. */
    read_rings(w);
    for (;;) {
        int fd = accept4(w->ws->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            client_add(w, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE) {
            /* Shed one: give up the spare, accept, refuse, take it back.
             * Then stop: the parent hands the next connection to the
             * next worker, which may have descriptors to spare. Shedding
             * the whole backlog here turned away clients the pool had
             * room for -- guarded by tests/faults/fd_exhaustion.bats. */
            log_errno("cannot accept a connection");
            close(w->reserve_fd);
            fd = accept4(w->ws->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                refuse(fd);
            w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_errno("cannot accept a connection");
        }
        break;
    }
    if (send(w->ws->parent_fd, "D", 1, MSG_NOSIGNAL) < 0)
        worker_exit(0); /* the parent is gone */
}
/* [worker-accept] */

/** What on_line() needs to know about the sender. */
struct line_ctx {
    struct worker *w; /**< the worker */
    struct client *sender; /**< who sent the line */
};

/**
 * @brief The framer found one message: relay it to the whole room.
 * @param ctx  a struct line_ctx.
 * @param line message bytes, 8-bit clean, no `\n`.
 * @param len  length of @p line.
 */
/* [on-line] */
static void
on_line(void *ctx, const char *line, size_t len)
{
    struct line_ctx *lc = ctx;
    struct shm_room *shm = lc->w->ws->shm;
    char msg[RECORD_MAX];

    if (lc->w->closing)
        return; /* the room is closing: nothing more is relayed */
    int n = snprintf(msg, sizeof msg, "user%lu: ", lc->sender->id);
    memcpy(msg + n, line, len);
    msg[(size_t)n + len] = '\n';
    publish(lc->w, lc->sender, msg, (size_t)n + len + 1);
    atomic_fetch_add_explicit(&shm->relayed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&shm->sent[lc->w->ws->index], 1,
                              memory_order_relaxed);
}
/* [on-line] */

/**
 * @brief A client's socket is readable: read it dry, as the ring allows.
 *
 * Edge-triggered, so the socket is read until EAGAIN -- except when the
 * own ring is full, or after #READ_BUDGET reads: then the client goes on
 * the unread list, its bytes wait in the kernel, and the loop comes back
 * to it (after #RETRY_MS if the ring was full, else at once, after the
 * other clients have had their turn). Each read
 * asks for at most room - 2 bytes, and n bytes make at most n + 2
 * records, so the ring never takes more than it has room for.
 * @param w the worker.
 * @param c the client.
 */
/* [read] */
static void
on_readable(struct worker *w, struct client *c)
{
    static char buf[READ_SIZE];
    struct line_ctx lc = {w, c};

    for (int reads = 0; !c->leaving; reads++) {
        size_t room = reads < READ_BUDGET ? room_to_write(w) : 0;
        if (room == 0) {
            if (!c->unread) {
                c->unread = true;
                w->unread[w->nunread++] = (size_t)(c - w->clients);
            }
            return;
        }
        size_t want = room - 2 < sizeof buf ? room - 2 : sizeof buf;
        ssize_t n = recv(c->fd, buf, want, 0);
        if (n > 0) {
            trace_add(" read %zd", n);
            line_feed(&c->in, buf, (size_t)n, on_line, &lc);
        } else if (n == 0) {
            trace_add(" end of stream");
            line_finish(&c->in, on_line, &lc);
            client_drop(w, c);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (errno != EINTR) {
            trace_add(" %s", strerror(errno));
            client_drop(w, c);
        }
    }
}
/* [read] */

/**
 * @brief Reads again the clients left unread while the ring was full.
 * @param w the worker.
 */
/* [read-unread] */
static void
read_unread(struct worker *w)
{
    size_t n = w->nunread;

    w->nunread = 0;
    for (size_t i = 0; i < n; i++) {
        struct client *c = &w->clients[w->unread[i]];
        c->unread = false;
        if (c->fd >= 0 && !c->leaving)
            on_readable(w, c);
    }
}
/* [read-unread] */

/**
 * @brief Copies every new record of the other workers' rings to every
 *        client of this worker.
 *
 * A ring whose writer has lapped this worker's cursor means the worker
 * missed messages: it exits, and its replacement announces its clients as
 * left, rather than let them believe they heard everything.
 * @param w the worker.
 */
/* [read-rings] */
static void
read_rings(struct worker *w)
{
    struct shm_room *shm = w->ws->shm;
    char line[RECORD_MAX];

    for (size_t i = 0; i < shm->nrings; i++) {
        if (i == w->ws->index)
            continue; /* our own clients heard it directly */
        struct ring *r = &shm->rings[i];
        _Atomic uint64_t *cursor = shm_progress(shm, w->ws->index, i);
        uint64_t at = atomic_load_explicit(cursor, memory_order_relaxed);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (at == head)
            continue;
        for (; at < head; at++) {
            long len = ring_get(r, at, line);
            if (len < 0) {
                log_msg("fell %d messages behind worker %zu; exiting",
                        RING_SLOTS, i);
                worker_exit(WORKER_EXIT_LAPPED);
            }
            broadcast(w, NULL, line, (size_t)len);
        }
        /* Publish the progress: a writer waiting for room may go on. */
        atomic_store_explicit(cursor, at, memory_order_release);
    }
}
/* [read-rings] */

/**
 * @brief Writes a client's queue until it is empty or the socket is full.
 *
 * After the shutdown notice, an emptied queue is followed by
 * shutdown(SHUT_WR), so the client reads every byte and then end of
 * stream.
 * @param w the worker.
 * @param c the client.
 */
/* [write] */
static void
client_flush(struct worker *w, struct client *c)
{
    long n = outq_flush(&c->out, c->fd);

    if (n < 0) {
        trace_add("; user%lu write: %s", c->id, strerror(errno));
        client_drop(w, c);
        return;
    }
    if (n > 0)
        trace_add("; user%lu wrote %ld", c->id, n);
    if (w->closing && !outq_pending(&c->out) && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = true;
    }
}
/* [write] */

/**
 * @brief Writes the queue of every client that got output in this pass.
 * @param w the worker.
 */
/* [flush] */
static void
flush_dirty(struct worker *w)
{
    while (w->ndirty > 0) {
        struct client *c = &w->clients[w->dirty[--w->ndirty]];
        c->dirty = false;
        if (c->fd >= 0 && !c->leaving)
            client_flush(w, c);
    }
}
/* [flush] */

/**
 * @brief The parent wrote: accept, look at the rings, or quit.
 * @param w the worker.
 */
/* [on-parent] */
static void
on_parent(struct worker *w)
{
    char cmd[64];

    for (;;) {
        ssize_t n = recv(w->ws->parent_fd, cmd, sizeof cmd, MSG_DONTWAIT);
        if (n == 0)
            worker_exit(0); /* the parent died: never outlive it */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            worker_exit(0);
        }
        for (ssize_t i = 0; i < n; i++) {
            if (cmd[i] == 'A' && !w->closing) {
                trace_add(" accept");
                on_accept(w);
            } else if (cmd[i] == 'N' && !w->closing) {
                trace_add(" poke");
                read_rings(w);
            } else if (cmd[i] == 'Q' && !w->closing) {
                trace_add(" quit");
                w->closing = true;
                clock_gettime(CLOCK_MONOTONIC, &w->deadline);
                w->deadline.tv_sec += SHUTDOWN_GRACE_MS / 1000;
                broadcast(w, NULL, SHUTDOWN_NOTICE, strlen(SHUTDOWN_NOTICE));
            }
        }
    }
}
/* [on-parent] */

/**
 * @brief A replacement worker's first duty: the users of the worker it
 *        replaces are gone; tell the room.
 *
 * Their connections died with that worker. Its row of the users table
 * still lists them, and this worker now owns that row and that ring.
 * @param w the worker.
 */
/* [announce-predecessor] */
static void
announce_predecessor(struct worker *w)
{
    struct shm_room *shm = w->ws->shm;
    _Atomic unsigned long *users = shm_users(shm, w->ws->index);
    char msg[64];

    for (size_t i = 0; i < shm->users_cap; i++) {
        unsigned long id = atomic_load(&users[i]);
        if (id == 0)
            continue;
        int n = snprintf(msg, sizeof msg, "* user%lu left\n", id);
        wait_for_room(w, 1);
        ring_put(&shm->rings[w->ws->index], msg, (size_t)n);
        atomic_store(&users[i], 0);
        w->news = true;
    }
    atomic_store(&shm->online[w->ws->index], 0);
}
/* [announce-predecessor] */

/* [run-worker] */
void
run_worker(const struct worker_start *ws)
{
    static char tag[32];
    struct worker w = {.ws = ws};
    struct epoll_event events[EPOLL_BATCH];

    snprintf(tag, sizeof tag, "worker %zu pid %ld", ws->index, (long)getpid());
    log_set_tag(tag);

    /* Never outlive the parent: the kernel sends SIGKILL when it dies.
     * If it died before prctl() ran, getppid() no longer names it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != ws->parent)
        worker_exit(0);

    w.clients = calloc(ws->limit, sizeof *w.clients);
    w.free_slots = calloc(ws->limit, sizeof *w.free_slots);
    w.leaving = calloc(ws->limit, sizeof *w.leaving);
    w.dirty = calloc(ws->limit, sizeof *w.dirty);
    w.unread = calloc(ws->limit, sizeof *w.unread);
    w.epfd = epoll_create1(EPOLL_CLOEXEC);
    w.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TOKEN_PARENT};
    if (w.clients == NULL || w.free_slots == NULL || w.leaving == NULL ||
        w.dirty == NULL || w.unread == NULL || w.epfd < 0 || w.reserve_fd < 0 ||
        epoll_ctl(w.epfd, EPOLL_CTL_ADD, ws->parent_fd, &ev) < 0) {
        log_errno("cannot set up the worker");
        worker_exit(WORKER_EXIT_FATAL);
    }

    announce_predecessor(&w);
    tell_parent(&w);
    /* [run-worker] */

    /* [worker-loop] */
    while (!w.closing || w.online > 0) {
        int timeout = -1;
        if (w.closing) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long left = ms_between(&now, &w.deadline);
            if (left <= 0)
                break; /* clients that did not close in time */
            timeout = (int)left;
        }
        if (w.nunread > 0 && !w.closing)
            timeout = w.blocked ? RETRY_MS : 0; /* unread input waits */

        int ready = epoll_wait(w.epfd, events, EPOLL_BATCH, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            log_errno("epoll_wait");
            worker_exit(WORKER_EXIT_FATAL);
        }
        trace_begin("epoll: %d ready", ready);
        for (int i = 0; i < ready; i++) {
            if (events[i].data.u64 == TOKEN_PARENT) {
                trace_add("; parent:");
                on_parent(&w);
                continue;
            }
            struct client *c = &w.clients[events[i].data.u64];
            uint32_t e = events[i].events;
            if (c->fd < 0 || c->leaving)
                continue;
            trace_add("; user%lu fd %d", c->id, c->fd);
            if ((e & EPOLLOUT) && outq_pending(&c->out))
                client_flush(&w, c);
            if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
                !c->unread)
                on_readable(&w, c);
        }
        if (w.nunread > 0 && !w.closing)
            read_unread(&w);
        while (w.nleaving > 0 || w.ndirty > 0) {
            reap(&w);
            flush_dirty(&w);
        }
        tell_parent(&w);
        trace_end();
    }
    worker_exit(0);
    /* [worker-loop] */
}
