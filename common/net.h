/**
 * @file net.h
 * @brief Socket plumbing shared by every step: addresses, listen, connect.
 *
 * None of this is a chapter's lesson, so it lives here once (like redis's
 * anet.c). Functions return 0 or a descriptor on success and -1 with errno
 * set on failure; the caller decides whether a failure is fatal.
 */
#ifndef COMMON_NET_H
#define COMMON_NET_H

#include <stddef.h>
#include <sys/socket.h>

/** Room for "[" IPv6 "]:" port and the terminating NUL. */
#define NET_ADDRSTRLEN 64

/** The listen(2) backlog; the kernel caps it at net.core.somaxconn. */
#define NET_BACKLOG 511

/**
 * @brief Turns a numeric HOST and PORT into a socket address.
 *
 * Only literal IPv4 and IPv6 addresses are accepted (no name lookup: the
 * SPEC's HOST is an address, and a server must not block on DNS).
 * @param host text such as "127.0.0.1" or "::1".
 * @param port text of a decimal number 0..65535.
 * @param ss   filled with the address on success.
 * @param len  filled with the used length of @p ss.
 * @return 0 on success, -1 with errno EINVAL if either text is not valid.
 */
int net_parse_addr(const char *host, const char *port,
                   struct sockaddr_storage *ss, socklen_t *len);

/**
 * @brief Formats an address as "HOST:PORT", an IPv6 host in brackets.
 * @param sa   the address (AF_INET or AF_INET6).
 * @param buf  output buffer.
 * @param size size of @p buf; #NET_ADDRSTRLEN is always enough.
 * @return @p buf, for use inside a printf argument list.
 */
char *net_format_addr(const struct sockaddr *sa, char *buf, size_t size);

/**
 * @brief Creates a listening TCP socket bound to @p sa.
 *
 * Sets SO_REUSEADDR so a restarted server does not wait for TIME_WAIT,
 * TCP_NODELAY so that every accepted socket (which inherits it) sends a
 * short line at once instead of waiting for the previous line's ACK, and
 * marks the socket close-on-exec. The socket stays blocking: each step
 * decides how it watches it.
 * @param sa  address to bind, port 0 for a kernel-chosen one.
 * @param len length of @p sa.
 * @return the listening descriptor, or -1 with errno set.
 */
int net_listen(const struct sockaddr *sa, socklen_t len);

/**
 * @brief Prints "listening on HOST:PORT" on stdout with the real port.
 *
 * Tests and readers learn the kernel-chosen port from this line, so it is
 * flushed at once (stdout is a pipe or a file under test, fully buffered).
 * @param fd a listening socket.
 * @return 0, or -1 with errno set if the address cannot be read or printed.
 */
int net_announce(int fd);

/**
 * @brief Connects a new TCP socket to @p sa, blocking until done.
 * @param sa  peer address.
 * @param len length of @p sa.
 * @return the connected descriptor, or -1 with errno set.
 */
int net_connect(const struct sockaddr *sa, socklen_t len);

/**
 * @brief Sets O_NONBLOCK on a descriptor, keeping its other flags.
 * @param fd descriptor to change.
 * @return 0, or -1 with errno set.
 */
int net_set_nonblock(int fd);

#endif
