/**
 * @file step01_poll_chat/server.c
 * @brief Chapter 1: a chat room served by one process with poll().
 *
 * Book: 9.6.2, listing 9-7 (the poll chat-room server).
 *
 * The idea: one process watches the listening socket and every client
 * socket with one poll() call, and only ever does work that will not
 * block. What one client sends is queued for every other client (the
 * room, room.c) and written when poll() says that client's socket can
 * take it.
 *
 * What this step does differently from the book:
 * - POLLOUT is asked for only while a queue holds data (the book's
 *   `events |= ~POLLIN` turns on every bit and spins), and POLLIN only
 *   while the room reads (flow control: room.h);
 * - the poll set holds the users online, rebuilt before each poll(), not
 *   a table indexed by descriptor number;
 * - SIGPIPE is ignored and `EMFILE` on accept() sheds the connection
 *   instead of spinning (common/conn.c);
 * - the descriptor limit is raised when `-n` needs it.
 */
#include "args.h"
#include "conn.h"
#include "events.h"
#include "log.h"
#include "net.h"
#include "room.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

/** Default room size, the book's USER_LIMIT; `-n` changes it. */
#define USER_LIMIT 5

/* [types] */
/** The poll server: the listening socket, the room, the poll set. */
struct server {
    int listen_fd; /**< the listening socket */
    struct room room; /**< the chat room */
    /** poll set: [0] the listening socket, [1 + i] room.users[i] */
    struct pollfd *fds;
    size_t cap; /**< entries allocated in #fds */
};
/* [types] */

/**
 * @brief Makes the poll set big enough for everyone in the room.
 *
 * The set grows with the users who are there, never with the limit.
 * @param srv the server.
 * @return 0, or -1 with errno ENOMEM (the set is unchanged).
 */
/* [watch] */
static int
poll_set_fit(struct server *srv)
{
    size_t need = 1 + srv->room.online;
    if (need <= srv->cap)
        return 0;
    size_t cap = 2 * need;
    struct pollfd *fds = realloc(srv->fds, cap * sizeof *fds);
    if (fds == NULL)
        return -1;
    srv->fds = fds;
    srv->cap = cap;
    return 0;
}
/* [watch] */

/**
 * @brief Makes the room and the poll set, which watches the listening
 *        socket first.
 * @param srv       the server to fill.
 * @param listen_fd the listening socket.
 * @param limit     most users at once.
 */
/* [server-init] */
static void
server_init(struct server *srv, int listen_fd, size_t limit)
{
    srv->listen_fd = listen_fd;
    room_init(&srv->room, limit, NULL);
    if (poll_set_fit(srv) < 0)
        die_errno("cannot allocate the poll set");
    srv->fds[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
}
/* [server-init] */

/**
 * @brief The listening socket is readable: admit every waiting connection.
 *
 * The listening socket is nonblocking, so the loop ends at EAGAIN instead
 * of blocking when another wake-up already took the connection.
 * @param srv the server.
 */
/* [accept] */
static void
on_accept(struct server *srv)
{
    int fd;

    while ((fd = room_accept(&srv->room, srv->listen_fd)) >= 0) {
        struct client *c = room_join(&srv->room, fd);
        if (c != NULL && poll_set_fit(srv) < 0) {
            log_errno("cannot watch user%lu", c->id);
            room_drop(&srv->room, c);
        }
    }
}
/* [accept] */

/**
 * @brief The event loop: wait in poll(), tell the room what is ready,
 *        repeat.
 *
 * Before each wait the poll set is derived from the state: POLLIN while
 * the room reads, and POLLOUT only while a queue holds data. Asking for
 * POLLOUT on an empty queue would wake the loop at once, forever. The
 * users table changes only in room_settle() (a newcomer is added at its
 * end), so entry 1 + i of the set is still users[i] when poll() returns.
 * @param srv the server; never returns.
 */
static void
loop(struct server *srv)
{
    struct room *room = &srv->room;
    char names[EVENTS_NAME_MAX];

    for (;;) {
        /* [loop-events] */
        bool reading = room_reading(room);
        size_t n = room->online;
        for (size_t i = 0; i < n; i++) {
            struct client *c = room->users[i];
            /* Book pitfall: `fds[j].events |= ~POLLIN` sets every bit,
             * POLLOUT included, so poll() never sleeps -- guarded by
             * tests/protocol/protocol.bats ("idle clients cost no CPU"). */
            short want = (short)((reading ? POLLIN : 0) |
                                 (outq_pending(&c->out) ? POLLOUT : 0));
            /* poll() reports a hang-up even unasked: a client with
             * nothing to do now is left out of this poll altogether. */
            srv->fds[1 + i].fd = want != 0 ? c->fd : -1;
            srv->fds[1 + i].events = want;
        }

        int ready = poll(srv->fds, 1 + n, room_timeout(room));
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die_errno("poll");
        }
        /* [loop-events] */
        /* [loop-dispatch] */
        trace_begin("poll: %d ready", ready);
        if (srv->fds[0].revents & POLLIN) {
            trace_add("; listen fd %d IN", srv->listen_fd);
            on_accept(srv);
        }
        for (size_t i = 0; i < n; i++) {
            struct client *c = room->users[i];
            short ev = srv->fds[1 + i].revents;

            if (ev == 0)
                continue;
            trace_add("; user%lu fd %d %s", c->id, c->fd,
                      poll_events_name(ev, names));
            if (ev & POLLOUT)
                room_writable(room, c);
            if (ev & (POLLIN | POLLHUP | POLLERR))
                room_readable(room, c);
        }
        /* Written on POLLOUT, not now: poll() says when a socket can
         * take more. */
        room_settle(room, false);
        trace_end();
        /* [loop-dispatch] */
    }
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
    struct server srv = {0};
    char where[NET_ADDRSTRLEN];

    log_init(); /* first: 0-2 valid, stderr never blocks (common/log.c) */
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
    if (net_set_nonblock(listen_fd) < 0)
        die_errno("cannot make the listening socket nonblocking");
    /* [listen] */

    /* [run] */
    server_init(&srv, listen_fd, conn_fd_limit((size_t)args.users));
    if (net_announce(listen_fd) < 0)
        die_errno("cannot write the listening line");
    loop(&srv);
    /* [run] */
}
