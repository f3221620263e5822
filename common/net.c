/**
 * @file net.c
 * @brief Socket plumbing shared by every step: addresses, listen, connect.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
net_parse_addr(const char *host, const char *port, struct sockaddr_storage *ss,
               socklen_t *len)
{
    char *end;
    unsigned long p;

    memset(ss, 0, sizeof *ss);
    /* strtoul alone accepts "-1", " 7" and "": insist on plain digits. */
    if (port[0] < '0' || port[0] > '9')
        goto invalid;
    errno = 0;
    p = strtoul(port, &end, 10);
    if (errno != 0 || *end != '\0' || p > 65535)
        goto invalid;

    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((unsigned short)p);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)p);
        *len = sizeof *in6;
        return 0;
    }
invalid:
    errno = EINVAL;
    return -1;
}

char *
net_format_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(buf, size, "(address family %d)", sa->sa_family);
    }
    return buf;
}

/**
 * @brief Closes a socket after a failed call, keeping that call's errno.
 * @param fd the socket.
 * @return -1, for the caller to return.
 */
static int
close_failed(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
    return -1;
}

int
net_listen(const struct sockaddr *sa, socklen_t len)
{
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Nagle's algorithm holds a small write back while an earlier one is
     * unacknowledged, and the peer may delay its ACK by up to 40 ms: a
     * chat line would wait that long for the line before it. Accepted
     * sockets inherit TCP_NODELAY from the listening socket -- guarded by
     * tests/unit/net.bats. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        bind(fd, sa, len) < 0 || listen(fd, NET_BACKLOG) < 0)
        return close_failed(fd);
    return fd;
}

int
net_announce(int fd)
{
    /* Zeroed: a family getsockname() did not fill in reads as unknown. */
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof ss;
    char name[NET_ADDRSTRLEN];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    net_format_addr((struct sockaddr *)&ss, name, sizeof name);
    if (printf("listening on %s\n", name) < 0 || fflush(stdout) == EOF)
        return -1;
    return 0;
}

int
net_connect(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A signal may interrupt connect(); the attempt then goes on in the
     * kernel, and calling connect() again would fail with EALREADY. We
     * install no handlers in the client, so plain retry is never needed. */
    if (connect(fd, sa, len) < 0)
        return close_failed(fd);
    return fd;
}

int
net_set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -1;
    if (flags & O_NONBLOCK)
        return 0;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}
