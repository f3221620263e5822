/**
 * @file step02_unified_signals/server.c
 * @brief Chapter 2: epoll, and signals as events of the same loop.
 *
 * Book: 10.4, listing 10-1 (unified event source), with 9.3 (epoll, LT
 * and ET) as background; the chat room is chapter 1's.
 *
 * The idea: every source of events goes through one epoll_wait(): the
 * listening socket, the clients, and the signals, whose handlers only
 * write the signal number into a pipe the loop watches. So SIGTERM is
 * handled in the loop like any message: the room is told, queues are
 * flushed, and the server exits 0 -- nothing is cut off mid-write.
 *
 * What this step does differently from the book:
 * - client sockets are edge-triggered, so every read and every write loops
 *   until EAGAIN, and output is written at the end of the pass that queued
 *   it (an idle socket gives no new EPOLLOUT edge to wait for);
 * - the handler writes one byte that is the signal number (the book sends
 *   the first byte of an int, right only on little-endian machines) and
 *   preserves errno;
 * - SIGINT/SIGTERM shut down gracefully within #SHUTDOWN_GRACE_MS, SIGHUP
 *   prints a status line, SIGPIPE is ignored;
 * - the descriptor limit is raised to the hard limit when `-n` needs it.
 */
#include "args.h"
#include "line.h"
#include "log.h"
#include "net.h"
#include "outq.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/** Default room size, the book's USER_LIMIT; `-n` changes it. */
#define USER_LIMIT 5
/** Bytes read from one client per wake-up. */
#define READ_SIZE 65536
/** Most bytes queued for one client before it counts as a slow reader. */
#define HIGH_WATER 262144 /* 256 KiB */
/** Room for "user<id>: " + one message + "\n". */
#define MSG_MAX (LINE_MAX_PIECE + 32)
/** Sent to a client that cannot join (SPEC: exact text). */
#define ROOM_FULL "too many users\n"
/* [constants] */
/** Sent to every client on SIGINT/SIGTERM (SPEC: exact text). */
#define SHUTDOWN_NOTICE "* server shutting down\n"
/** Most milliseconds a graceful shutdown waits for output to drain. */
#define SHUTDOWN_GRACE_MS 2000
/** Events taken from one epoll_wait(). */
#define EPOLL_BATCH 256
/** Reads from one client per pass before the others get their turn. */
#define READ_BUDGET 16
/** epoll token of the listening socket (client tokens are slot numbers). */
#define TOKEN_LISTEN UINT64_MAX
/** epoll token of the signal pipe. */
#define TOKEN_SIGNAL (UINT64_MAX - 1)
/* [constants] */

/* [types] */
/** One connected user. A slot with fd -1 is free. */
struct client {
    int fd; /**< its socket, or -1 when the slot is free */
    unsigned long id; /**< lifetime-unique: user<id> */
    bool leaving; /**< dropped; announced and freed by reap */
    bool dirty; /**< the slot is on the room's dirty list */
    bool more; /**< the slot is on the room's more list */
    bool shut; /**< shutdown(SHUT_WR) done (server closing) */
    struct line_framer in; /**< its unfinished input line */
    struct outq out; /**< output not yet written to it */
};

/** The whole server: the listening socket, the users, the event loop. */
struct room {
    int epfd; /**< the epoll instance */
    int listen_fd; /**< the listening socket, -1 once closing */
    int sig_fd; /**< read end of the signal pipe */
    int reserve_fd; /**< spare descriptor, spent when out of fds */
    size_t limit; /**< most users at once (`-n`) */
    size_t online; /**< users in the room */
    unsigned long next_id; /**< id of the last user admitted */
    struct client *clients; /**< #limit slots */
    size_t *free_slots; /**< stack of free slot indices */
    size_t nfree; /**< entries on #free_slots */
    size_t *leaving; /**< stack of slots waiting for room_reap() */
    size_t nleaving; /**< entries on #leaving */
    size_t *dirty; /**< slots with output queued in this pass */
    size_t ndirty; /**< entries on #dirty */
    size_t *more; /**< slots whose input was not read dry this pass */
    size_t nmore; /**< entries on #more */
    unsigned long relayed; /**< messages relayed since start (SIGHUP) */
    struct timespec started; /**< start time, for the uptime (SIGHUP) */
    bool closing; /**< SIGINT/SIGTERM seen: draining, then exit */
    struct timespec deadline; /**< when a graceful shutdown gives up */
};

/** Both ends of the signal pipe: the handler writes [1], the loop reads
 * [0]. A global because a signal handler can reach nothing else. */
static int sig_pipefd[2];
/* [types] */

/**
 * @brief Adds a descriptor to the epoll set.
 * @param room   the room.
 * @param fd     the descriptor.
 * @param events EPOLLIN, EPOLLET...
 * @param token  what epoll hands back: a slot number or a TOKEN_ constant.
 * @return 0, or -1 with errno set.
 */
/* [watch] */
static int
watch(struct room *room, int fd, uint32_t events, uint64_t token)
{
    struct epoll_event ev = {.events = events, .data.u64 = token};

    return epoll_ctl(room->epfd, EPOLL_CTL_ADD, fd, &ev);
}
/* [watch] */

/**
 * @brief Allocates the room's tables for @p limit users, and the loop.
 *
 * Every table is sized once from the user limit, so nothing in the loop
 * allocates per connection except output queues. The listening socket and
 * the signal pipe stay level-triggered: if an accept or a read is cut
 * short, epoll simply reports them again.
 * @param room      the room to fill.
 * @param listen_fd the listening socket.
 * @param limit     most users at once.
 */
/* [room-init] */
static void
room_init(struct room *room, int listen_fd, size_t limit)
{
    memset(room, 0, sizeof *room);
    room->listen_fd = listen_fd;
    room->sig_fd = sig_pipefd[0];
    room->limit = limit;
    room->clients = calloc(limit, sizeof *room->clients);
    room->free_slots = calloc(limit, sizeof *room->free_slots);
    room->leaving = calloc(limit, sizeof *room->leaving);
    room->dirty = calloc(limit, sizeof *room->dirty);
    room->more = calloc(limit, sizeof *room->more);
    if (room->clients == NULL || room->free_slots == NULL ||
        room->leaving == NULL || room->dirty == NULL || room->more == NULL)
        die_errno("cannot allocate a room for %zu users", limit);
    clock_gettime(CLOCK_MONOTONIC, &room->started);

    room->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (room->epfd < 0)
        die_errno("cannot create an epoll instance");
    if (watch(room, listen_fd, EPOLLIN, TOKEN_LISTEN) < 0 ||
        watch(room, room->sig_fd, EPOLLIN, TOKEN_SIGNAL) < 0)
        die_errno("cannot watch the listening socket and the signal pipe");

    /* Push slots in reverse so that slot 0 is handed out first. */
    for (size_t i = limit; i-- > 0;) {
        room->clients[i].fd = -1;
        room->free_slots[room->nfree++] = i;
    }
    /* A spare descriptor to give up when accept() fails with EMFILE. */
    room->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (room->reserve_fd < 0)
        die_errno("cannot open /dev/null");
}
/* [room-init] */

/**
 * @brief Marks a client as gone; room_reap() closes and announces it.
 *
 * Dropping is deferred because it is often discovered in the middle of a
 * broadcast, and announcing the departure is itself a broadcast that may
 * drop further slow readers: a worklist keeps that iterative, never
 * recursive. Calling it twice for one client is harmless.
 * @param room the room.
 * @param c    the client to drop.
 */
/* [drop] */
static void
client_drop(struct room *room, struct client *c)
{
    if (c->leaving)
        return;
    c->leaving = true;
    room->leaving[room->nleaving++] = (size_t)(c - room->clients);
}
/* [drop] */

/**
 * @brief Queues bytes for one client, dropping it if it reads too slowly.
 *
 * The client goes on the dirty list, and room_flush() writes its queue
 * once at the end of the pass, so several messages leave in one write.
 * A queue about to pass #HIGH_WATER is written at once, before the client
 * is judged: a reader that keeps up is never dropped because one long
 * read loop queued a lot before the end of the pass.
 * @param room the room.
 * @param c    the receiving client.
 * @param data bytes to queue (whole lines only).
 * @param n    number of bytes.
 */
/* [send] */
static void
client_send(struct room *room, struct client *c, const char *data, size_t n)
{
    if (c->leaving)
        return;
    /* Book pitfall: send() once and forget, so a partial write or EAGAIN
     * loses the rest -- guarded by tests/protocol/protocol.bats ("a reader
     * that never reads is dropped while the rest keep chatting"). */
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
        client_drop(room, c);
        return;
    }
    if (!c->dirty) {
        c->dirty = true;
        room->dirty[room->ndirty++] = (size_t)(c - room->clients);
    }
}
/* [send] */

/**
 * @brief Queues one line for every user but @p from.
 * @param room the room.
 * @param from the sender, who never hears itself; NULL for nobody.
 * @param data the line, ending in `\n`.
 * @param n    its length.
 */
/* [broadcast] */
static void
broadcast(struct room *room, const struct client *from, const char *data,
          size_t n)
{
    for (size_t i = 0; i < room->limit; i++) {
        struct client *c = &room->clients[i];
        /* cppcheck-suppress nullPointerRedundantCheck
         * c points into the table and is never NULL; only from may be. */
        if (c->fd >= 0 && c != from)
            client_send(room, c, data, n);
    }
}
/* [broadcast] */

/**
 * @brief Closes every dropped client and tells the room it left.
 *
 * Runs after each batch of events. The announcement may drop more slow
 * readers; they join the worklist and are handled in the same call.
 * @param room the room.
 */
/* [reap] */
static void
room_reap(struct room *room)
{
    char msg[64];

    while (room->nleaving > 0) {
        size_t slot = room->leaving[--room->nleaving];
        struct client *c = &room->clients[slot];

        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
        outq_free(&c->out);
        room->online--;
        room->free_slots[room->nfree++] = slot;
        trace_add("; user%lu left", c->id);

        /* While shutting down, everyone leaves: nobody to tell. */
        if (!room->closing) {
            int n = snprintf(msg, sizeof msg, "* user%lu left\n", c->id);
            broadcast(room, c, msg, (size_t)n);
        }
        c->leaving = false;
        c->shut = false;
    }
}
/* [reap] */

/**
 * @brief Turns away a connection the room cannot take.
 *
 * One nonblocking send of a fresh socket's first bytes cannot fall short,
 * so the refusal line always arrives whole.
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
 * @brief accept() ran out of descriptors: shed one pending connection.
 *
 * With level-triggered poll a connection left in the backlog makes the
 * listening socket readable forever, so a server that just logs EMFILE
 * spins at full CPU (the book's `if (connfd < 0) { ...; continue; }`).
 * Giving up the spare descriptor lets us accept it, refuse it and close
 * it, then take the spare back.
 * @param room the room.
 */
/* [shed] */
static void
shed_connection(struct room *room)
{
    if (room->reserve_fd >= 0) {
        close(room->reserve_fd);
        int fd = accept4(room->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            refuse(fd);
    }
    room->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (room->reserve_fd < 0)
        log_errno("cannot reopen the spare descriptor");
}
/* [shed] */

/**
 * @brief Admits a new connection: slot, id, welcome, and the join notice.
 * @param room the room.
 * @param fd   the accepted socket.
 */
/* [join] */
static void
client_add(struct room *room, int fd)
{
    char msg[96];
    int n;

    if (room->online == room->limit) {
        trace_add(": room full, refused fd %d", fd);
        refuse(fd);
        return;
    }
    if (net_set_nonblock(fd) < 0) {
        log_errno("cannot make a new connection nonblocking");
        close(fd);
        return;
    }

    size_t slot = room->free_slots[room->nfree - 1];
    /* Edge-triggered: one report per change, so on_readable() reads and
     * client_flush() writes until EAGAIN, or the rest waits forever. */
    if (watch(room, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, slot) < 0) {
        log_errno("cannot watch a new connection");
        close(fd);
        return;
    }
    room->nfree--;
    struct client *c = &room->clients[slot];
    c->fd = fd;
    c->id = ++room->next_id;
    c->leaving = false;
    line_init(&c->in);
    room->online++;
    trace_add(": user%lu on fd %d", c->id, fd);

    n = snprintf(msg, sizeof msg, "* welcome, you are user%lu (%zu online)\n",
                 c->id, room->online);
    client_send(room, c, msg, (size_t)n);
    n = snprintf(msg, sizeof msg, "* user%lu joined\n", c->id);
    broadcast(room, c, msg, (size_t)n);
}
/* [join] */

/**
 * @brief The listening socket is readable: accept every waiting connection.
 *
 * The listening socket is nonblocking, so the loop ends at EAGAIN instead
 * of blocking when another wake-up already took the connection.
 * @param room the room.
 */
/* [accept] */
static void
on_accept(struct room *room)
{
    for (;;) {
        int fd = accept4(room->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            client_add(room, fd);
            continue;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED: /* the peer gave up while in the backlog */
            continue;
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
            return;
        case EMFILE:
        case ENFILE:
            /* Book pitfall: log and `continue`, and a level-triggered
             * wait reports the same connection again at once: a spin --
             * guarded by tests/protocol/protocol.bats ("out of file
             * descriptors"). */
            log_errno("cannot accept a connection");
            shed_connection(room);
            trace_add(": out of descriptors, shed one connection");
            return;
        default:
            /* ENOBUFS, ENOMEM, EPERM...: this connection is lost, the
             * server goes on and hears of the next one. */
            log_errno("cannot accept a connection");
            return;
        }
    }
}
/* [accept] */

/** What on_line() needs to know about the sender. */
struct line_ctx {
    struct room *room; /**< the room */
    struct client *sender; /**< who sent the line */
};

/**
 * @brief The framer found one message: relay it to everyone else.
 *
 * The message is formatted once and the same bytes are queued for each
 * receiver; the sender never hears itself.
 * @param ctx  a struct line_ctx.
 * @param line message bytes, 8-bit clean, no `\n`.
 * @param len  length of @p line.
 */
/* [on-line] */
static void
on_line(void *ctx, const char *line, size_t len)
{
    struct line_ctx *lc = ctx;
    char msg[MSG_MAX];

    if (lc->room->closing)
        return; /* the room is closing: nothing more is relayed */
    int n = snprintf(msg, sizeof msg, "user%lu: ", lc->sender->id);

    /* Book pitfall: every reader's write_buf points at the sender's one
     * buffer, so a second message overwrites the first before it is sent
     * -- guarded by tests/protocol/protocol.bats ("concurrent senders").
     * Here each receiver gets its own copy in its own queue. */
    memcpy(msg + n, line, len);
    msg[(size_t)n + len] = '\n';
    broadcast(lc->room, lc->sender, msg, (size_t)n + len + 1);
    lc->room->relayed++;
}
/* [on-line] */

/**
 * @brief A client's socket is readable (or hung up): read it dry and relay.
 *
 * Edge-triggered: epoll reported a change once, and will not report the
 * bytes still waiting, so the loop reads until EAGAIN -- or until it has
 * read #READ_BUDGET times: then the client goes on the more list, and the
 * loop comes back to it after the others have had their turn (a client
 * streaming without pause would otherwise hold the loop, signals and all).
 * End of stream relays a last line without `\n`; a reset or error
 * discards an unfinished line (the client never finished it).
 * @param room the room.
 * @param c    the client.
 */
/* [read] */
static void
on_readable(struct room *room, struct client *c)
{
    static char buf[READ_SIZE];
    struct line_ctx lc = {room, c};

    for (int reads = 0; !c->leaving; reads++) {
        if (reads == READ_BUDGET) {
            if (!c->more) {
                c->more = true;
                room->more[room->nmore++] = (size_t)(c - room->clients);
            }
            return;
        }
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            trace_add(" read %zd", n);
            /* Book pitfall: one recv() relayed as one message, split lines
             * and all -- guarded by tests/protocol/protocol.bats ("a line
             * written byte by byte is relayed once"). */
            line_feed(&c->in, buf, (size_t)n, on_line, &lc);
        } else if (n == 0) {
            trace_add(" end of stream");
            line_finish(&c->in, on_line, &lc);
            client_drop(room, c);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (errno != EINTR) {
            trace_add(" %s", strerror(errno));
            client_drop(room, c);
        }
    }
}
/* [read] */

/**
 * @brief Gives the clients on the more list their next turn.
 * @param room the room.
 */
static void
read_more(struct room *room)
{
    size_t n = room->nmore;

    room->nmore = 0;
    for (size_t i = 0; i < n; i++) {
        struct client *c = &room->clients[room->more[i]];
        c->more = false;
        if (c->fd >= 0 && !c->leaving)
            on_readable(room, c);
    }
}

/**
 * @brief Writes a client's queue until it is empty or the socket is full.
 *
 * outq_flush() loops until EAGAIN, as edge triggering requires: when the
 * socket is full, EPOLLOUT reports the moment it can take more. While the
 * server shuts down, an emptied queue is followed by shutdown(SHUT_WR), so
 * the client reads every byte and then end of stream.
 * @param room the room.
 * @param c    the client.
 */
/* [write] */
static void
client_flush(struct room *room, struct client *c)
{
    long n = outq_flush(&c->out, c->fd);

    if (n < 0) {
        trace_add("; user%lu write: %s", c->id, strerror(errno));
        client_drop(room, c);
        return;
    }
    if (n > 0)
        trace_add("; user%lu wrote %ld", c->id, n);
    if (room->closing && !outq_pending(&c->out) && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = true;
    }
}
/* [write] */

/**
 * @brief Writes the queue of every client that got output in this pass.
 *
 * Called once per pass, after all events: however many messages a client
 * was sent in the pass, they leave in one write.
 * @param room the room.
 */
/* [flush] */
static void
room_flush(struct room *room)
{
    while (room->ndirty > 0) {
        struct client *c = &room->clients[room->dirty[--room->ndirty]];
        c->dirty = false;
        if (c->fd >= 0 && !c->leaving)
            client_flush(room, c);
    }
}
/* [flush] */

/**
 * @brief Spells epoll events for the `-v` trace, e.g. "IN|OUT".
 * @param ev  the events of one descriptor.
 * @param buf output buffer of at least 32 bytes.
 * @return @p buf.
 */
static const char *
events_name(uint32_t ev, char *buf)
{
    buf[0] = '\0';
    if (ev & EPOLLIN)
        strcat(buf, "|IN");
    if (ev & EPOLLOUT)
        strcat(buf, "|OUT");
    if (ev & EPOLLRDHUP)
        strcat(buf, "|RDHUP");
    if (ev & EPOLLHUP)
        strcat(buf, "|HUP");
    if (ev & EPOLLERR)
        strcat(buf, "|ERR");
    return buf[0] ? buf + 1 : buf;
}

/**
 * @brief The signal handler: puts the signal number into the pipe.
 *
 * It does nothing else, so it is async-signal-safe and cannot race with
 * the loop: the loop reads the number and acts on it between two events.
 * write() may change errno under the interrupted code, so errno is saved
 * and restored. If the pipe were ever full, the loop has not read the
 * numbers already waiting; it will, and wake.
 * @param sig the signal number.
 */
/* [sig-handler] */
static void
sig_handler(int sig)
{
    int saved = errno;
    /* Book pitfall: `send(pipefd[1], (char *)&msg, 1, 0)` sends the first
     * byte of an int, the signal number only on little-endian machines.
     * One unsigned char holds every signal number, on any machine. */
    unsigned char byte = (unsigned char)sig;

    if (write(sig_pipefd[1], &byte, 1) < 0) {
        /* EAGAIN: the pipe is full and the loop will wake anyway. */
    }
    errno = saved;
}
/* [sig-handler] */

/**
 * @brief Creates the signal pipe and routes SIGINT, SIGTERM, SIGHUP into it.
 *
 * Both ends are nonblocking: the handler must never block, and the loop
 * reads until EAGAIN. SA_RESTART spares the rest of the program EINTR
 * from most calls; epoll_wait() still returns EINTR, which the loop
 * expects. SIGPIPE is ignored.
 */
/* [signals] */
static void
install_signals(void)
{
    static const int routed[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa = {.sa_handler = sig_handler, .sa_flags = SA_RESTART};

    if (pipe2(sig_pipefd, O_NONBLOCK | O_CLOEXEC) < 0)
        die_errno("cannot create the signal pipe");
    sigfillset(&sa.sa_mask); /* one handler at a time */
    for (size_t i = 0; i < sizeof routed / sizeof routed[0]; i++)
        if (sigaction(routed[i], &sa, NULL) < 0)
            die_errno("cannot install a handler for %s", strsignal(routed[i]));

    /* Book pitfall: SIGPIPE is left at its default, so writing to a
     * client that reset kills the server -- guarded by
     * tests/protocol/protocol.bats ("a client that resets mid-line...").
     * outq_flush() also sends with MSG_NOSIGNAL. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    if (sigaction(SIGPIPE, &ign, NULL) < 0)
        die_errno("cannot ignore SIGPIPE");
}
/* [signals] */

/**
 * @brief Milliseconds from @p a to @p b.
 * @param a the earlier time.
 * @param b the later time.
 * @return b - a in milliseconds (negative if @p b is earlier).
 */
static long
ms_between(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1000L +
           (b->tv_nsec - a->tv_nsec) / 1000000L;
}

/**
 * @brief SIGHUP: one status line on stderr; the server goes on.
 * @param room the room.
 */
/* [status] */
static void
report_status(struct room *room)
{
    struct timespec now;
    size_t largest = 0;

    clock_gettime(CLOCK_MONOTONIC, &now);
    for (size_t i = 0; i < room->limit; i++)
        if (room->clients[i].fd >= 0 && room->clients[i].out.len > largest)
            largest = room->clients[i].out.len;
    log_msg("status: %zu users online, %lu messages relayed, up %ld s, "
            "largest output queue %zu bytes",
            room->online, room->relayed,
            ms_between(&room->started, &now) / 1000, largest);
}
/* [status] */

/**
 * @brief SIGINT/SIGTERM: stop accepting, tell everyone, start draining.
 *
 * The loop keeps running until every client has been written its queue
 * (the notice last) and has closed, or #SHUTDOWN_GRACE_MS have passed.
 * @param room the room.
 */
/* [shutdown] */
static void
begin_shutdown(struct room *room)
{
    if (room->closing)
        return;
    room->closing = true;
    clock_gettime(CLOCK_MONOTONIC, &room->deadline);
    room->deadline.tv_sec += SHUTDOWN_GRACE_MS / 1000;
    room->deadline.tv_nsec += (SHUTDOWN_GRACE_MS % 1000) * 1000000L;
    if (room->deadline.tv_nsec >= 1000000000L) {
        room->deadline.tv_sec++;
        room->deadline.tv_nsec -= 1000000000L;
    }
    close(room->listen_fd); /* new connections are refused by the kernel */
    room->listen_fd = -1;
    broadcast(room, NULL, SHUTDOWN_NOTICE, strlen(SHUTDOWN_NOTICE));
}
/* [shutdown] */

/**
 * @brief The signal pipe is readable: act on every signal number in it.
 *
 * Runs in the loop, not in a handler, so it may do anything.
 * @param room the room.
 */
/* [on-signal] */
static void
on_signal(struct room *room)
{
    unsigned char sigs[64];
    ssize_t n;

    while ((n = read(room->sig_fd, sigs, sizeof sigs)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_errno("cannot read the signal pipe");
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            trace_add(" %s",
                      sigabbrev_np(sigs[i]) ? sigabbrev_np(sigs[i]) : "?");
            if (sigs[i] == SIGHUP)
                report_status(room);
            else if (sigs[i] == SIGINT || sigs[i] == SIGTERM)
                begin_shutdown(room);
        }
    }
}
/* [on-signal] */

/**
 * @brief The event loop: wait in epoll_wait(), handle what is ready, repeat.
 *
 * Each pass handles its events, then settles the room: announces who left
 * and writes every queue that received output, until neither has work
 * (a write error drops a client, whose departure is news again). After
 * SIGINT/SIGTERM the loop runs on until every client is gone or the grace
 * period is over.
 * @param room the room.
 */
static void
loop(struct room *room)
{
    struct epoll_event events[EPOLL_BATCH];
    char names[32];

    while (!room->closing || room->online > 0) {
        /* [loop-events] */
        /* Sleep until something happens -- unless a client has input left
         * from the last pass: then only look for events, and go on. */
        int timeout = room->nmore > 0 ? 0 : -1;
        if (room->closing) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long left = ms_between(&now, &room->deadline);
            if (left <= 0) {
                log_msg("shutdown: closing %zu client(s) that still had "
                        "output or had not closed after %d ms",
                        room->online, SHUTDOWN_GRACE_MS);
                return;
            }
            if (timeout < 0)
                timeout = (int)left;
        }

        int ready = epoll_wait(room->epfd, events, EPOLL_BATCH, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue; /* a signal: its number waits in the pipe */
            die_errno("epoll_wait");
        }
        /* [loop-events] */
        /* [loop-dispatch] */
        trace_begin("epoll: %d ready", ready);
        for (int i = 0; i < ready; i++) {
            uint64_t token = events[i].data.u64;
            uint32_t ev = events[i].events;

            if (token == TOKEN_LISTEN) {
                trace_add("; listen fd %d IN", room->listen_fd);
                if (room->listen_fd >= 0)
                    on_accept(room);
                continue;
            }
            if (token == TOKEN_SIGNAL) {
                trace_add("; signal pipe fd %d:", room->sig_fd);
                on_signal(room);
                continue;
            }
            struct client *c = &room->clients[token];
            /* A client dropped earlier in this pass is done with. */
            if (c->fd < 0 || c->leaving)
                continue;
            trace_add("; user%lu fd %d %s", c->id, c->fd,
                      events_name(ev, names));
            if ((ev & EPOLLOUT) && outq_pending(&c->out))
                client_flush(room, c);
            if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !c->more)
                on_readable(room, c);
        }
        read_more(room);
        while (room->nleaving > 0 || room->ndirty > 0) {
            room_reap(room);
            room_flush(room);
        }
        trace_end();
        /* [loop-dispatch] */
    }
}

/**
 * @brief Raises the descriptor limit so the room can hold `-n` users.
 *
 * Each user costs one descriptor; the soft RLIMIT_NOFILE (often 1024) may
 * be raised by any process up to the hard limit. If even that is too low,
 * accept() will fail with EMFILE and the connection is shed; say so now.
 * @param users the room's user limit.
 */
/* [fd-limit] */
static void
raise_fd_limit(size_t users)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)users + 16; /* stdio, listen, epoll, pipe... */

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die_errno("cannot read the descriptor limit");
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want
                      : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die_errno("cannot raise the descriptor limit to %lu",
                  (unsigned long)rl.rlim_cur);
    if (log_verbose)
        log_msg("raised the descriptor limit from %lu to %lu for %zu users",
                (unsigned long)old, (unsigned long)rl.rlim_cur, users);
    if (rl.rlim_cur < want)
        log_msg("-n %zu: only %lu descriptors may be open (hard limit); "
                "connections past that are refused",
                users, (unsigned long)rl.rlim_cur);
}
/* [fd-limit] */

/**
 * @brief Closes every connection still open once the loop has ended.
 * @param room the room.
 */
/* [room-close] */
static void
room_close(struct room *room)
{
    for (size_t i = 0; i < room->limit; i++) {
        if (room->clients[i].fd >= 0) {
            close(room->clients[i].fd);
            outq_free(&room->clients[i].out);
        }
    }
    free(room->clients);
    free(room->free_slots);
    free(room->leaving);
    free(room->dirty);
    free(room->more);
    close(room->epfd);
}
/* [room-close] */

/**
 * @brief Parses the command line, listens, runs the room until a signal
 *        ends it.
 * @param argc argument count.
 * @param argv arguments: [options] HOST PORT.
 * @return 0 after a graceful shutdown; exits 1 on a start-up failure.
 */
int
main(int argc, char **argv)
{
    struct server_args args;
    struct room room;
    char where[NET_ADDRSTRLEN];

    args_parse(argc, argv, &args, 0, USER_LIMIT);
    install_signals();

    /* [listen] */
    int listen_fd = net_listen((struct sockaddr *)&args.addr, args.addrlen);
    if (listen_fd < 0)
        die_errno("cannot listen on %s",
                  net_format_addr((struct sockaddr *)&args.addr, where,
                                  sizeof where));
    /* [listen] */
    if (net_set_nonblock(listen_fd) < 0)
        die_errno("cannot make the listening socket nonblocking");

    /* [run] */
    raise_fd_limit((size_t)args.users);
    room_init(&room, listen_fd, (size_t)args.users);
    if (net_announce(listen_fd) < 0)
        die_errno("cannot write the listening line");
    loop(&room);
    room_close(&room);
    return 0;
    /* [run] */
}
