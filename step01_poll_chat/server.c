/**
 * @file step01_poll_chat/server.c
 * @brief Chapter 1: a chat room served by one process with poll().
 *
 * Book: 9.6.2, listing 9-7 (the poll chat-room server).
 *
 * The idea: one process watches the listening socket and every client
 * socket with one poll() call, and only ever does work that will not
 * block. What one client sends is queued for every other client and written
 * when poll() says that client's socket can take it.
 *
 * What this step does differently from the book:
 * - each client has its own output queue, so two messages in one pass, or
 *   a message read while the last one is still being written, are never
 *   lost (the book points every reader at the sender's one buffer);
 * - input is framed into lines (common/line.c) instead of relaying whatever
 *   one recv() returned;
 * - POLLOUT is asked for only while a queue holds data (the book's
 *   `events |= ~POLLIN` turns on every bit and spins);
 * - a slow reader is dropped when its queue passes #HIGH_WATER, never
 *   blocked on and never fed half a line;
 * - clients live in a table of #USER_LIMIT slots with a free list, not in
 *   a table indexed by descriptor number;
 * - SIGPIPE is ignored and `EMFILE` on accept() sheds the connection
 *   instead of spinning.
 */
#include "args.h"
#include "line.h"
#include "log.h"
#include "net.h"
#include "outq.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

/* [types] */
/** One connected user. A slot with fd -1 is free. */
struct client {
    int fd; /**< its socket, or -1 when the slot is free */
    unsigned long id; /**< lifetime-unique: user<id> */
    bool leaving; /**< dropped; announced and freed by reap */
    struct line_framer in; /**< its unfinished input line */
    struct outq out; /**< output not yet written to it */
};

/** The whole server: the listening socket, the users, the poll set. */
struct room {
    int listen_fd; /**< the listening socket */
    int reserve_fd; /**< spare descriptor, spent when out of fds */
    size_t limit; /**< most users at once (`-n`) */
    size_t online; /**< users in the room */
    unsigned long next_id; /**< id of the last user admitted */
    struct client *clients; /**< #limit slots */
    size_t *free_slots; /**< stack of free slot indices */
    size_t nfree; /**< entries on #free_slots */
    size_t *leaving; /**< stack of slots waiting for room_reap() */
    size_t nleaving; /**< entries on #leaving */
    /** poll set: [0] the listening socket, [1 + i] clients[i] */
    struct pollfd *fds;
};
/* [types] */

/**
 * @brief Allocates the room's tables for @p limit users.
 *
 * Every table is sized once from the user limit, so nothing in the loop
 * allocates per connection except output queues.
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
    room->limit = limit;
    room->clients = calloc(limit, sizeof *room->clients);
    room->free_slots = calloc(limit, sizeof *room->free_slots);
    room->leaving = calloc(limit, sizeof *room->leaving);
    room->fds = calloc(limit + 1, sizeof *room->fds);
    if (room->clients == NULL || room->free_slots == NULL ||
        room->leaving == NULL || room->fds == NULL)
        die_errno("cannot allocate a room for %zu users", limit);

    room->fds[0].fd = listen_fd;
    room->fds[0].events = POLLIN;
    /* Push slots in reverse so that slot 0 is handed out first. */
    for (size_t i = limit; i-- > 0;) {
        room->clients[i].fd = -1;
        room->fds[1 + i].fd = -1; /* poll() skips negative descriptors */
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
 * Nothing is written here: the loop writes when poll() says POLLOUT, so
 * several messages of one pass leave in one write.
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
    if (outq_push(&c->out, data, n, HIGH_WATER) < 0) {
        if (errno == ENOBUFS)
            log_msg("dropping user%lu: more than %d bytes queued (slow "
                    "reader)",
                    c->id, HIGH_WATER);
        else
            log_errno("dropping user%lu: cannot queue output", c->id);
        client_drop(room, c);
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

        close(c->fd);
        c->fd = -1;
        room->fds[1 + slot].fd = -1;
        outq_free(&c->out);
        room->online--;
        room->free_slots[room->nfree++] = slot;
        trace_add("; user%lu left", c->id);

        int n = snprintf(msg, sizeof msg, "* user%lu left\n", c->id);
        broadcast(room, c, msg, (size_t)n);
        c->leaving = false;
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

    size_t slot = room->free_slots[--room->nfree];
    struct client *c = &room->clients[slot];
    c->fd = fd;
    c->id = ++room->next_id;
    c->leaving = false;
    line_init(&c->in);
    room->fds[1 + slot].fd = fd;
    room->fds[1 + slot].events = POLLIN;
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
    int n = snprintf(msg, sizeof msg, "user%lu: ", lc->sender->id);

    /* Book pitfall: every reader's write_buf points at the sender's one
     * buffer, so a second message overwrites the first before it is sent
     * -- guarded by tests/protocol/protocol.bats ("concurrent senders").
     * Here each receiver gets its own copy in its own queue. */
    memcpy(msg + n, line, len);
    msg[(size_t)n + len] = '\n';
    broadcast(lc->room, lc->sender, msg, (size_t)n + len + 1);
}
/* [on-line] */

/**
 * @brief A client's socket is readable (or hung up): read once and relay.
 *
 * One read per wake-up: poll() is level-triggered, so whatever is left
 * wakes us again at once, and one busy client cannot starve the others.
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
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        trace_add(" %s", strerror(errno));
        client_drop(room, c);
    }
}
/* [read] */

/**
 * @brief A client's socket can take data: write its queue.
 *
 * Writes as much as the kernel takes; what is left waits for the next
 * POLLOUT. A write error (the peer reset) drops the client.
 * @param room the room.
 * @param c    the client.
 */
/* [write] */
static void
on_writable(struct room *room, struct client *c)
{
    long n = outq_flush(&c->out, c->fd);

    if (n < 0) {
        trace_add(" write: %s", strerror(errno));
        client_drop(room, c);
    } else {
        trace_add(" wrote %ld", n);
    }
}
/* [write] */

/**
 * @brief Spells poll() events for the `-v` trace, e.g. "IN|OUT".
 * @param ev  revents of one descriptor.
 * @param buf output buffer of at least 32 bytes.
 * @return @p buf.
 */
static const char *
events_name(short ev, char *buf)
{
    buf[0] = '\0';
    if (ev & POLLIN)
        strcat(buf, "|IN");
    if (ev & POLLOUT)
        strcat(buf, "|OUT");
    if (ev & POLLHUP)
        strcat(buf, "|HUP");
    if (ev & POLLERR)
        strcat(buf, "|ERR");
    if (ev & POLLNVAL)
        strcat(buf, "|NVAL");
    return buf[0] ? buf + 1 : buf;
}

/**
 * @brief The event loop: wait in poll(), handle what is ready, repeat.
 *
 * Before each wait the poll set is derived from the state: every client
 * wants POLLIN, and POLLOUT only while its queue holds data. Asking for
 * POLLOUT on an empty queue would wake the loop at once, forever.
 * @param room the room; never returns.
 */
static void
loop(struct room *room)
{
    char names[32];

    for (;;) {
        /* [loop-events] */
        for (size_t i = 0; i < room->limit; i++) {
            struct client *c = &room->clients[i];
            /* Book pitfall: `fds[j].events |= ~POLLIN` sets every bit,
             * POLLOUT included, so poll() never sleeps -- guarded by
             * tests/protocol/protocol.bats ("idle clients cost no CPU"). */
            if (c->fd >= 0)
                room->fds[1 + i].events =
                    POLLIN | (outq_pending(&c->out) ? POLLOUT : 0);
        }

        int ready = poll(room->fds, room->limit + 1, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die_errno("poll");
        }
        /* [loop-events] */
        /* [loop-dispatch] */
        trace_begin("poll: %d ready", ready);

        if (room->fds[0].revents & POLLIN) {
            trace_add("; listen fd %d IN", room->listen_fd);
            on_accept(room);
        }
        for (size_t i = 0; i < room->limit; i++) {
            struct client *c = &room->clients[i];
            short ev = room->fds[1 + i].revents;

            /* A client admitted in this pass had fd -1 in this poll, so
             * its revents are 0; one dropped in this pass is done with. */
            if (ev == 0 || c->fd < 0 || c->leaving)
                continue;
            trace_add("; user%lu fd %d %s", c->id, c->fd,
                      events_name(ev, names));
            if (ev & POLLOUT)
                on_writable(room, c);
            if ((ev & (POLLIN | POLLHUP | POLLERR)) && !c->leaving)
                on_readable(room, c);
        }
        room_reap(room);
        trace_end();
        /* [loop-dispatch] */
    }
}

/**
 * @brief Caps the user limit so the poll set fits the descriptor limit.
 *
 * poll() fails with EINVAL when asked to watch more entries than
 * RLIMIT_NOFILE allows, and a room cannot hold more users than the process
 * may open sockets anyway. Say so rather than fail later.
 * @param users the limit asked for with `-n`.
 * @return the limit the room will use.
 */
static size_t
fit_user_limit(long users)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die_errno("cannot read the descriptor limit");
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)users + 1 > rl.rlim_cur) {
        long fit = (long)rl.rlim_cur - 1;
        log_msg("-n %ld: only %ld descriptors may be open (ulimit -n); "
                "the room holds at most %ld users",
                users, (long)rl.rlim_cur, fit);
        users = fit;
    }
    return (size_t)users;
}

/**
 * @brief Parses the command line, listens, and runs the room.
 * @param argc argument count.
 * @param argv arguments: [options] HOST PORT.
 * @return never returns normally; exits 1 on a start-up failure.
 */
int
main(int argc, char **argv)
{
    struct server_args args;
    struct room room;
    char where[NET_ADDRSTRLEN];

    args_parse(argc, argv, &args, 0, USER_LIMIT);

    /* [sigpipe] */
    /* Book pitfall: SIGPIPE is left at its default, so writing to a
     * client that reset kills the server -- guarded by
     * tests/protocol/protocol.bats ("a client that resets mid-line...").
     * outq_flush() also sends with MSG_NOSIGNAL. */
    struct sigaction sa = {.sa_handler = SIG_IGN};
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        die_errno("cannot ignore SIGPIPE");
    /* [sigpipe] */

    /* [listen] */
    int listen_fd = net_listen((struct sockaddr *)&args.addr, args.addrlen);
    if (listen_fd < 0)
        die_errno("cannot listen on %s",
                  net_format_addr((struct sockaddr *)&args.addr, where,
                                  sizeof where));
    /* [listen] */
    if (net_set_nonblock(listen_fd) < 0)
        die_errno("cannot make the listening socket nonblocking");

    room_init(&room, listen_fd, fit_user_limit(args.users));
    if (net_announce(listen_fd) < 0)
        die_errno("cannot write the listening line");
    loop(&room);
}
