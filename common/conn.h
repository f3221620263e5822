/**
 * @file conn.h
 * @brief A connection's first moments, and what connections cost in
 *        descriptors: accept with a spare descriptor, refuse, the limit.
 *
 * Every chapter accepts the same way and meets the same trap: when the
 * process runs out of descriptors, accept() fails with EMFILE and the
 * connection stays in the backlog, so a level-triggered wait reports it
 * again at once, forever (the book logs and `continue`s: a spin). The cure
 * is a spare descriptor, kept open for that moment: give it up, accept
 * the connection, refuse it, and take the spare back.
 */
#ifndef COMMON_CONN_H
#define COMMON_CONN_H

#include <stddef.h>

/** Descriptors kept back from the limit for the server's own use: stdio,
 * the listening socket, epoll, the signal pipe, the spare... */
#define CONN_FD_RESERVE 16

/**
 * @brief Opens the spare descriptor that conn_accept() gives up at EMFILE.
 * @return a descriptor on /dev/null; exits with one line if there is none
 *         (a start-up failure).
 */
int conn_spare_open(void);

/**
 * @brief Accepts one waiting connection, nonblocking and close-on-exec.
 *
 * EINTR and ECONNABORTED (the peer gave up in the backlog) are retried.
 * Out of descriptors (EMFILE, ENFILE), it sheds one waiting connection
 * with the spare -- accept, refuse, close -- so that the backlog moves
 * and the wait does not spin, and returns -1. Every failure but "nothing
 * waits" is logged as one line, for the caller stops accepting either way.
 * @param listen_fd a nonblocking listening socket.
 * @param spare     the spare descriptor; reopened after use (-1 if that
 *                  failed, and it is tried again next time).
 * @return the new socket, or -1: nothing waits (errno EAGAIN), or a
 *         failure already logged.
 */
int conn_accept(int listen_fd, int *spare);

/**
 * @brief Turns a connection away with "too many users" and closes it.
 *
 * One nonblocking send of a fresh socket's first bytes cannot fall short,
 * so the line always arrives whole.
 * @param fd the accepted socket; closed on return.
 */
void conn_refuse(int fd);

/**
 * @brief Makes the descriptor limit fit @p users clients.
 *
 * Each client costs a descriptor, and the soft RLIMIT_NOFILE (often 1024)
 * may be raised by any process up to the hard limit: raise it to
 * @p users + #CONN_FD_RESERVE, or as far as the hard limit allows, and
 * say so when that is not enough (accept() will then meet EMFILE, and
 * conn_accept() sheds the connection). With @p users 0 -- "what the
 * machine allows" -- the limit is raised to the hard limit. `-v` tells
 * what was raised.
 * @param users the room's user limit (`-n`), or 0.
 * @return @p users; for 0, the users the raised limit has room for.
 */
size_t conn_fd_limit(size_t users);

/**
 * @brief In a new child: closes every descriptor but 0-2, @p a and @p b.
 *
 * fork() copies the whole descriptor table. A child that closes what is
 * not its own one close() at a time pays a system call for every
 * descriptor the parent holds: in chapter 3, one per user online, so that
 * each fork cost O(users) and 5,000 joins took 7 s instead of 4.
 * close_range(2) closes each gap around the two kept descriptors in one
 * call, whatever the parent held.
 * @param a a descriptor to keep (a client, or the listening socket); like
 *          @p b, above 2: log_init() keeps 0-2 open.
 * @param b another (the child's end of its socketpair); not @p a.
 * @return 0, or -1 with errno set (some may then be closed already).
 */
int conn_close_others(int a, int b);

#endif
