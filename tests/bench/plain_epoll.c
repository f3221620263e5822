/**
 * @file tests/bench/plain_epoll.c
 * @brief A plain epoll chat server: the benchmark's yardstick of one core.
 *
 * Not a chapter, and nothing to learn the book from: a reference point for
 * tests/bench/run.sh (its `plain` row), to tell what one process with
 * epoll costs per delivery when it does the simplest thing that is still
 * correct. It speaks the SPEC's protocol (the welcome line, the join and
 * leave notices, `user<id>: ` before each message, lines of up to 1023
 * bytes, with common/line.c and common/proto.c) and relays every line
 * exactly once, in order.
 *
 * Left out on purpose: signals and graceful shutdown (SIGTERM kills it),
 * flow control (a reader with more than #OUT_LIMIT queued is dropped),
 * care for memory (a queue's buffer is kept until its client leaves).
 * Level-triggered: a readable client is read once per wake-up; the queues
 * given output are written when it is over, EPOLLOUT asked while bytes
 * remain.
 *
 * Usage: `plain_epoll [-n users] HOST PORT` (common/args.c).
 */
#include "args.h"
#include "line.h"
#include "log.h"
#include "net.h"
#include "proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/** Bytes asked of one recv(). */
#define READ_SIZE 16384
/** A reader with more than this queued is dropped (no flow control). */
#define OUT_LIMIT (4 << 20)
/** Events taken from one epoll_wait(). */
#define EVENTS 256

/** One connected user. */
struct user {
    int fd; /**< its socket */
    unsigned long id; /**< user<id> */
    size_t seat; /**< index in #users */
    bool dirty; /**< on #dirty: output given in this wake-up */
    bool gone; /**< dropped: closed once the wake-up is over */
    bool want_out; /**< EPOLLOUT asked for */
    char *out; /**< queued output */
    size_t head, len, cap; /**< #out: first unsent byte, bytes, size */
    struct line_framer in; /**< its unfinished line */
};

static int epfd; /**< the one epoll instance */
static struct user **users, **dirty; /**< online, dense; to write or close */
static size_t online, limit, ndirty; /**< entries; `-n`, their size */
static unsigned long next_id; /**< the last id given out */

/** @brief Puts user @p u on the list that reap() works through. */
static void
mark(struct user *u)
{
    if (!u->dirty) {
        u->dirty = true;
        dirty[ndirty++] = u;
    }
}

/** @brief Drops user @p u: reap() closes it once the wake-up is over. */
static void
drop(struct user *u)
{
    u->gone = true;
    mark(u);
}

/** @brief Queues @p n bytes @p p for user @p u; too much drops it. */
static void
queue(struct user *u, const char *p, size_t n)
{
    if (u->gone)
        return;
    if (u->len + n > OUT_LIMIT)
        drop(u);
    if (u->gone)
        return;
    if (u->out != NULL && u->head + u->len + n > u->cap) {
        memmove(u->out, u->out + u->head, u->len);
        u->head = 0;
    }
    if (u->out == NULL || u->len + n > u->cap) {
        size_t cap = u->cap ? u->cap : 4096;
        while (cap < u->len + n)
            cap *= 2;
        char *b = realloc(u->out, cap);
        if (b == NULL) {
            drop(u);
            return;
        }
        u->out = b;
        u->cap = cap;
    }
    memcpy(u->out + u->head + u->len, p, n);
    u->len += n;
    mark(u);
}

/** @brief Queues line @p p of @p n bytes for all but @p from (or NULL). */
static void
fan_out(const struct user *from, const char *p, size_t n)
{
    for (size_t i = 0; i < online; i++)
        if (users[i] != from)
            queue(users[i], p, n);
}

/** @brief line_feed()'s callback: message @p line (@p len bytes) from
 * sender @p ctx, relayed to the others. */
static void
on_line(void *ctx, const char *line, size_t len)
{
    char msg[PROTO_LINE_MAX];
    struct user *u = ctx;

    fan_out(u, msg, proto_message(msg, u->id, line, len));
}

/** @brief Writes what user @p u has queued; EPOLLOUT while some stays. */
static void
flush(struct user *u)
{
    ssize_t w = 0;

    while (u->len > 0 &&
           (w = send(u->fd, u->out + u->head, u->len, MSG_NOSIGNAL)) > 0) {
        u->head += (size_t)w;
        u->len -= (size_t)w;
    }
    /* EINTR too is left for the next wake-up: EPOLLOUT is asked below. */
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        drop(u);
        return;
    }
    if (u->len == 0)
        u->head = 0;
    bool want = u->len > 0;
    if (want != u->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                                 .data.ptr = u};
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, u->fd, &ev) < 0)
            drop(u);
        else
            u->want_out = want;
    }
}

/** @brief Admits (or refuses: room full) all connections waiting on the
 * nonblocking listening socket @p lfd. */
static void
accept_all(int lfd)
{
    char msg[PROTO_LINE_MAX];
    int fd;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (online >= limit) {
            if (send(fd, PROTO_ROOM_FULL, strlen(PROTO_ROOM_FULL),
                     MSG_NOSIGNAL) < 0)
                log_errno("refusing a client");
            close(fd);
            continue;
        }
        struct user *u = calloc(1, sizeof *u);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = u};
        if (u == NULL || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            log_errno("cannot admit a client");
            free(u);
            close(fd);
            continue;
        }
        u->fd = fd;
        u->id = ++next_id;
        u->seat = online;
        users[online++] = u;
        queue(u, msg, proto_welcome(msg, u->id, online));
        fan_out(u, msg, proto_joined(msg, u->id));
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log_errno("accept"); /* e.g. EMFILE: try again on the next wake-up */
}

/** @brief Reads once from user @p u and relays its complete lines. */
static void
on_readable(struct user *u)
{
    static char buf[READ_SIZE];
    ssize_t n = recv(u->fd, buf, sizeof buf, 0);

    if (n > 0) {
        if (line_feed(&u->in, buf, (size_t)n, on_line, u) < 0)
            drop(u); /* no memory to hold its unfinished line */
    } else if (n == 0) {
        line_finish(&u->in, on_line, u);
        drop(u);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        drop(u);
    }
}

/**
 * @brief Ends a wake-up: writes every queue given output, then closes the
 *        dropped users and announces them (which may drop more).
 */
static void
reap(void)
{
    char msg[PROTO_LINE_MAX];

    for (size_t i = 0; i < ndirty; i++) { /* ndirty may grow meanwhile */
        struct user *u = dirty[i];
        if (!u->gone)
            flush(u);
        if (!u->gone)
            continue;
        close(u->fd); /* leaves the epoll set too */
        struct user *last = users[--online];
        last->seat = u->seat;
        users[u->seat] = last;
        fan_out(u, msg, proto_left(msg, u->id));
        u->fd = -1;
    }
    for (size_t i = 0; i < ndirty; i++) {
        dirty[i]->dirty = false;
        if (dirty[i]->fd < 0) {
            line_free(&dirty[i]->in);
            free(dirty[i]->out);
            free(dirty[i]);
        }
    }
    ndirty = 0;
}

/**
 * @brief Parses the command line, listens, and serves until killed.
 *
 * The room's tables are sized by `-n` at start (the chapters grow theirs
 * with the users online: here it saves lines, not memory).
 * @param argc as given.
 * @param argv as given.
 * @return never returns normally; 1 if the loop fails.
 */
int
main(int argc, char **argv)
{
    struct server_args args;
    struct epoll_event evs[EVENTS];

    args_parse(argc, argv, &args, 0, 1024);
    limit = (size_t)args.users;
    /* Sized by the limit, once: this is a yardstick, not a chapter. */
    users = calloc(limit, sizeof(struct user *));
    dirty = calloc(limit, sizeof(struct user *));
    if (users == NULL || dirty == NULL)
        die_errno("cannot make a room of %zu", limit);
    int lfd = net_listen((struct sockaddr *)&args.addr, args.addrlen);
    if (lfd < 0 || net_set_nonblock(lfd) < 0)
        die_errno("cannot listen on %s:%s", argv[argc - 2], argv[argc - 1]);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die_errno("cannot set up epoll");
    if (net_announce(lfd) < 0)
        die_errno("cannot print the listening address");
    for (;;) {
        int n = epoll_wait(epfd, evs, EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die_errno("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct user *u = evs[i].data.ptr;
            if (u == NULL) {
                accept_all(lfd);
                continue;
            }
            if (u->gone)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(u);
            if (evs[i].events & EPOLLOUT)
                mark(u); /* written with the rest in reap() */
        }
        reap();
    }
}
