/**
 * @file events.c
 * @brief The names of poll() and epoll events, for the `-v` trace.
 */
#include "events.h"

#include <poll.h>
#include <string.h>
#include <sys/epoll.h>

/**
 * @brief Appends "|NAME" to @p buf when @p on.
 * @param buf  the names so far.
 * @param on   whether the event is set.
 * @param name its name.
 */
static void
add_name(char *buf, int on, const char *name)
{
    if (on) {
        strcat(buf, "|");
        strcat(buf, name);
    }
}

const char *
poll_events_name(short ev, char *buf)
{
    buf[0] = '\0';
    add_name(buf, ev & POLLIN, "IN");
    add_name(buf, ev & POLLOUT, "OUT");
    add_name(buf, ev & POLLHUP, "HUP");
    add_name(buf, ev & POLLERR, "ERR");
    add_name(buf, ev & POLLNVAL, "NVAL");
    return buf[0] ? buf + 1 : buf;
}

const char *
epoll_events_name(uint32_t ev, char *buf)
{
    buf[0] = '\0';
    add_name(buf, (ev & EPOLLIN) != 0, "IN");
    add_name(buf, (ev & EPOLLOUT) != 0, "OUT");
    add_name(buf, (ev & EPOLLRDHUP) != 0, "RDHUP");
    add_name(buf, (ev & EPOLLHUP) != 0, "HUP");
    add_name(buf, (ev & EPOLLERR) != 0, "ERR");
    return buf[0] ? buf + 1 : buf;
}
