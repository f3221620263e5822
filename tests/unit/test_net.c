/**
 * @file tests/unit/test_net.c
 * @brief Unit tests of the socket plumbing (common/net.c).
 *
 * `test_net NAME` runs one case and exits 0 if it passes; `test_net` alone
 * runs them all. tests/unit/net.bats runs each case as one Bats test.
 */
#include "net.h"
#include "unit.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/**
 * @brief An accepted connection inherits TCP_NODELAY from net_listen().
 *
 * Without it, Nagle's algorithm holds a short line back until the previous
 * one is acknowledged, and a delayed ACK makes that up to 40 ms: every
 * chapter stalled on ACK timers in a busy room (docs/performance.md).
 * @return 0 if the accepted socket has TCP_NODELAY set.
 */
static int
t_listen_nodelay(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int on = 0, rc = 1;

    if (net_parse_addr("127.0.0.1", "0", &ss, &len) < 0) {
        fprintf(stderr, "listen_nodelay: cannot parse 127.0.0.1\n");
        return 1;
    }
    int lfd = net_listen((struct sockaddr *)&ss, len);
    if (lfd < 0) {
        fprintf(stderr, "listen_nodelay: net_listen: %s\n", strerror(errno));
        return 1;
    }
    len = sizeof ss;
    int cfd = -1, afd = -1;
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0 ||
        (cfd = net_connect((struct sockaddr *)&ss, len)) < 0 ||
        (afd = accept(lfd, NULL, NULL)) < 0) {
        fprintf(stderr, "listen_nodelay: cannot connect to the listener: %s\n",
                strerror(errno));
    } else {
        len = sizeof on;
        if (getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &on, &len) < 0)
            fprintf(stderr, "listen_nodelay: getsockopt: %s\n",
                    strerror(errno));
        else if (!on)
            fprintf(stderr, "listen_nodelay: the accepted socket has "
                            "Nagle's algorithm on\n");
        else
            rc = 0;
    }
    if (afd >= 0)
        close(afd);
    if (cfd >= 0)
        close(cfd);
    close(lfd);
    return rc;
}

/** Every case, in the order `test_net` runs them. */
static const struct test_case cases[] = {
    {"listen_nodelay", t_listen_nodelay},
};

/**
 * @brief Runs the named case, or all of them (unit_run()).
 * @param argc 1 or 2.
 * @param argv optional case name.
 * @return 0 if every case run passed, 1 otherwise, 2 for an unknown name.
 */
int
main(int argc, char **argv)
{
    return unit_run("test_net", cases, sizeof cases / sizeof cases[0], argc,
                    argv);
}
