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
 * @brief Makes descriptors 0, 1 and 2 valid and stderr nonblocking; the
 *        first call of every main().
 *
 * A descriptor of 0-2 found closed is opened on /dev/null, before the
 * program creates anything that would take its number (a socket, the
 * signal pipe). Then writes to stderr are made nonblocking without
 * changing the open file description others share (see log.c): from
 * here on a full stderr drops and counts trace lines and never stalls
 * the caller for more than a short bounded wait.
 * @return a bit mask of the descriptors that were closed (bit 1 <<
 *         STDOUT_FILENO: standard output). Exits with #EXIT_RUNTIME if
 *         /dev/null cannot be opened.
 */
unsigned log_init(void);

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
 * @brief Keeps this process's diagnostics instead of printing them, to
 *        make them the cause in one fatal line.
 *
 * A start-up step that logs why it failed, called where its failure ends
 * the program: `log_catch(true); if (step() < 0) die("cannot start the
 * pool: %s", log_caught()); log_catch(false);` prints one line naming the
 * cause, not two. die() and its family always print. A child forked
 * meanwhile prints as usual (the catch belongs to the process that set
 * it).
 * @param on true to start keeping (and forget what was kept), false to
 *           print again.
 */
void log_catch(bool on);

/**
 * @brief What log_catch() kept: the diagnostics since it was turned on,
 *        joined by "; ".
 * @return the kept text, or "no reason given" if there is none.
 */
const char *log_caught(void);

/**
 * @brief Prints one diagnostic line on stderr.
 * @param fmt printf-style format, without a trailing newline.
 */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * @brief Prints one line of news on stderr (a user joined or left), so
 *        that the server's terminal shows who comes and goes.
 *
 * Only without `-v`: then the trace says it, with the descriptors.
 * Unlike log_msg(), it never waits for a full stderr: a terminal nobody
 * scrolls must not slow the room down by one pause per connection. A
 * note that does not fit is dropped and counted, as a trace line is.
 * @param fmt printf-style format, without a trailing newline.
 */
void log_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/**
 * @brief Prints the current trace line on stderr, if -v is on.
 *
 * Never waits: if stderr is full, the line is dropped and counted, and
 * the count is reported before the next line that gets through.
 */
void trace_end(void);

/** @} */

#endif
