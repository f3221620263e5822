/**
 * @file log.h
 * @brief Diagnostics: one line on stderr per event, the TLPI family of helpers.
 *
 * Every message the servers and the client print about themselves goes
 * through here, so errors read the same in every step: what we tried, the
 * object, the cause (`cannot listen on 127.0.0.1:4444: Address already in
 * use`). Standard output is reserved for the `listening on` line (servers)
 * and for chat lines (client).
 *
 * Library code in common/ returns -1 with errno set; only programs call the
 * functions that exit.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/** Exit status of a runtime failure (port taken, out of resources). */
#define EXIT_RUNTIME 1
/** Exit status of a bad option or argument. */
#define EXIT_USAGE 2

/** True when `-v` asked for a trace of every event-loop wake-up. */
extern bool log_verbose;

/**
 * @brief Names the process in every diagnostic line, e.g. "child 3".
 *
 * Single-process steps never call it; in the multi-process steps each
 * child sets its own tag right after fork() so interleaved lines on the
 * shared stderr can be told apart.
 * @param tag Text put in brackets before each line, or NULL for none.
 *            The string must outlive every later log call.
 */
void log_set_tag(const char *tag);

/**
 * @brief Prints one diagnostic line on stderr.
 * @param fmt printf-style format, without a trailing newline.
 */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * @brief Prints one line ending in ": <strerror(errno)>".
 *
 * errno is read before anything else runs, so the caller may pass the
 * failure straight through. errno is preserved for the caller.
 * @param fmt printf-style format naming what was tried and on what.
 */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * @brief Like log_errno(), then exits with #EXIT_RUNTIME.
 *
 * Only for start-up failures of a whole program (socket, bind, listen,
 * memory for the tables). Inside the event loop a failure belongs to one
 * client and is never fatal. Uses exit(), so stdio buffers are flushed:
 * forked children call die_child() instead.
 * @param fmt printf-style format naming what was tried and on what.
 */
void die_errno(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/**
 * @brief Prints one line and exits with #EXIT_RUNTIME.
 * @param fmt printf-style format of the whole message.
 */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/**
 * @brief Prints one line with the errno text and leaves with _exit().
 *
 * A forked child shares the parent's unflushed stdio buffers; exit() would
 * flush them a second time, so children leave with _exit().
 * @param fmt printf-style format naming what was tried and on what.
 */
void die_child(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/**
 * @name Event-loop trace
 * `-v` prints one line per wake-up of the loop: the call that woke, then
 * for each ready descriptor its events and what the server did. The loop
 * opens the line with trace_begin(), adds a clause per descriptor with
 * trace_add(), and prints it with trace_end(). Without `-v` all three cost
 * one branch.
 * @{
 */

/**
 * @brief Starts a new trace line (discarding any unfinished one).
 * @param fmt printf-style format of the line's opening words.
 */
void trace_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * @brief Appends a clause to the current trace line; truncates past 4 KiB.
 * @param fmt printf-style format of the clause.
 */
void trace_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** @brief Prints the current trace line on stderr, if -v is on. */
void trace_end(void);

/** @} */

#endif
