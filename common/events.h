/**
 * @file events.h
 * @brief The names of poll() and epoll events, for the `-v` trace.
 */
#ifndef COMMON_EVENTS_H
#define COMMON_EVENTS_H

#include <stdint.h>

/** Room for the longest list of names, "IN|OUT|RDHUP|HUP|ERR|NVAL". */
#define EVENTS_NAME_MAX 32

/**
 * @brief Spells poll() revents, e.g. "IN|OUT".
 * @param ev  revents of one descriptor.
 * @param buf receives the names; #EVENTS_NAME_MAX bytes.
 * @return @p buf.
 */
const char *poll_events_name(short ev, char *buf);

/**
 * @brief Spells the events of one epoll_event, e.g. "IN|OUT|RDHUP".
 * @param ev  the events.
 * @param buf receives the names; #EVENTS_NAME_MAX bytes.
 * @return @p buf.
 */
const char *epoll_events_name(uint32_t ev, char *buf);

#endif
