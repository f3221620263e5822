/**
 * @file conn.c
 * @brief A connection's first moments, and what connections cost in
 *        descriptors.
 */
#include "conn.h"

#include "args.h"
#include "log.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int
conn_spare_open(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        die_errno("cannot open /dev/null");
    return fd;
}

void
conn_refuse(int fd)
{
    if (send(fd, PROTO_ROOM_FULL, strlen(PROTO_ROOM_FULL),
             MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_errno("cannot tell a refused client the room is full");
    close(fd);
}

/**
 * @brief accept() ran out of descriptors: shed one waiting connection.
 *
 * Giving up the spare lets us accept the connection, refuse it and close
 * it; then the spare is taken back.
 * @param listen_fd the listening socket.
 * @param spare     the spare descriptor, reopened on return (or -1).
 */
/* [shed] */
static void
shed_connection(int listen_fd, int *spare)
{
    if (*spare >= 0) {
        close(*spare);
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            conn_refuse(fd);
    }
    *spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (*spare < 0)
        log_errno("cannot reopen the spare descriptor");
}
/* [shed] */

/* [accept] */
int
conn_accept(int listen_fd, int *spare)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        switch (errno) {
        case EINTR:
        case ECONNABORTED: /* the peer gave up while in the backlog */
            continue;
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
            return -1;
        case EMFILE:
        case ENFILE:
            /* Book pitfall: log and `continue`, and a level-triggered
             * wait reports the same connection again at once: a spin --
             * guarded by tests/protocol/protocol.bats ("out of file
             * descriptors"). */
            log_errno("cannot accept a connection");
            shed_connection(listen_fd, spare);
            trace_add(": out of descriptors, shed one connection");
            errno = EMFILE;
            return -1;
        default:
            /* ENOBUFS, ENOMEM, EPERM...: this connection is lost, the
             * server goes on and hears of the next one. */
            log_errno("cannot accept a connection");
            return -1;
        }
    }
}
/* [accept] */

/* [fd-limit] */
size_t
conn_fd_limit(size_t users)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die_errno("cannot read the descriptor limit");
    rlim_t most = (rlim_t)ARGS_USERS_MAX + CONN_FD_RESERVE;
    rlim_t want = users > 0 ? (rlim_t)users + CONN_FD_RESERVE : most;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    rlim_t old = rl.rlim_cur;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            die_errno("cannot raise the descriptor limit to %lu",
                      (unsigned long)want);
        if (log_verbose && users > 0)
            log_msg("raised the descriptor limit from %lu to %lu for %zu "
                    "users",
                    (unsigned long)old, (unsigned long)want, users);
        else if (log_verbose)
            log_msg("raised the descriptor limit from %lu to %lu",
                    (unsigned long)old, (unsigned long)want);
    }
    rlim_t have =
        rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > most ? most : rl.rlim_cur;
    size_t fit = have > CONN_FD_RESERVE ? (size_t)(have - CONN_FD_RESERVE) : 1;
    if (users == 0)
        return fit;
    if (users > fit)
        log_msg("-n %zu: only %lu descriptors may be open (hard limit); "
                "connections past that are refused",
                users, (unsigned long)have);
    return users;
}
/* [fd-limit] */

int
conn_close_others(int a, int b)
{
    unsigned lo = (unsigned)(a < b ? a : b), hi = (unsigned)(a < b ? b : a);

    /* Three gaps: [3, lo), (lo, hi), (hi, the end]. */
    if ((lo > 3 && close_range(3, lo - 1, 0) < 0) ||
        (hi > lo + 1 && close_range(lo + 1, hi - 1, 0) < 0))
        return -1;
    return close_range(hi + 1, ~0U, 0);
}
