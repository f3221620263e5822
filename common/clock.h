/**
 * @file clock.h
 * @brief Elapsed time in milliseconds, for deadlines and grace periods.
 *
 * Every timer of the servers (how long a shutdown may drain, how long a
 * reader may hold the room, how long a worker may take to accept) is a
 * number of milliseconds on the monotonic clock, which never jumps when
 * the wall clock is set. Plain integers make `deadline - now` the time
 * left, with no struct timespec arithmetic in the chapters.
 */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

/**
 * @brief Milliseconds on the monotonic clock since some fixed point.
 *
 * Only differences mean anything. CLOCK_MONOTONIC cannot fail on Linux
 * with a valid clock id, so there is no error to report.
 * @return the current time in milliseconds.
 */
long long clock_ms(void);

/**
 * @brief How long the loop may sleep until @p deadline.
 *
 * For poll() and epoll_wait(): 0 once the deadline has passed, never a
 * negative number (which would mean "forever"), capped at INT_MAX.
 * @param deadline a time from clock_ms().
 * @return milliseconds left, 0 to INT_MAX.
 */
int clock_ms_until(long long deadline);

/**
 * @brief Of two poll()/epoll_wait() timeouts, the one that ends first.
 *
 * A loop that waits for several timers at once sleeps until the first;
 * -1 ("until an event") loses to any other.
 * @param a milliseconds, or -1 for none.
 * @param b milliseconds, or -1 for none.
 * @return the smaller, -1 only if both are -1.
 */
int clock_earlier(int a, int b);

#endif
