/**
 * @file log.c
 * @brief Diagnostics on stderr: errors, fatal errors and the `-v` trace.
 *
 * Each line is built in one buffer and written with a single write(2), so
 * lines from several processes sharing stderr never interleave mid-line.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool log_verbose;

/** Process tag set by log_set_tag(), or NULL. */
static const char *log_tag;

/** Longest diagnostic or trace line; longer ones are cut, never split. */
#define LOG_LINE_MAX 4096

/** The `-v` line being assembled between trace_begin() and trace_end(). */
static char trace_buf[LOG_LINE_MAX];
/** Bytes used in #trace_buf. */
static size_t trace_len;

void
log_set_tag(const char *tag)
{
    log_tag = tag;
}

/**
 * @brief Appends formatted text to a line buffer, never past its end.
 *
 * A message too long for the buffer is cut, not split: a diagnostic is
 * always one line.
 * @param line the buffer.
 * @param size its size.
 * @param len  bytes used so far; updated.
 * @param fmt  printf-style format.
 * @param ap   arguments of @p fmt.
 */
static void
line_vadd(char *line, size_t size, size_t *len, const char *fmt, va_list ap)
{
    if (*len >= size - 1)
        return;
    int n = vsnprintf(line + *len, size - *len, fmt, ap);
    if (n > 0)
        *len = *len + (size_t)n < size - 1 ? *len + (size_t)n : size - 1;
}

/**
 * @brief line_vadd() with a variable argument list.
 * @param line the buffer.
 * @param size its size.
 * @param len  bytes used so far; updated.
 * @param fmt  printf-style format.
 */
static void __attribute__((format(printf, 4, 5)))
line_add(char *line, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    line_vadd(line, size, len, fmt, ap);
    va_end(ap);
}

/**
 * @brief Formats "[tag] message[: errno text]\n" and writes it at once.
 * @param err errno value to append, or 0 for none.
 * @param fmt printf-style format.
 * @param ap  arguments of @p fmt.
 */
static void
log_write(int err, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len = 0;

    if (log_tag != NULL)
        line_add(line, sizeof line - 1, &len, "[%s] ", log_tag);
    line_vadd(line, sizeof line - 1, &len, fmt, ap);
    if (err != 0)
        line_add(line, sizeof line - 1, &len, ": %s", strerror(err));
    line[len++] = '\n'; /* room kept: the adds above stop one byte short */

    /* Best effort: there is nowhere left to report a failing stderr. */
    const char *p = line;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        len -= (size_t)w;
    }
}

void
log_msg(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(0, fmt, ap);
    va_end(ap);
    errno = saved;
}

void
log_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(saved, fmt, ap);
    va_end(ap);
    errno = saved;
}

void
die_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(saved, fmt, ap);
    va_end(ap);
    exit(EXIT_RUNTIME);
}

void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_write(0, fmt, ap);
    va_end(ap);
    exit(EXIT_RUNTIME);
}

void
die_child(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(saved, fmt, ap);
    va_end(ap);
    _exit(EXIT_RUNTIME);
}

void
trace_begin(const char *fmt, ...)
{
    va_list ap;

    if (!log_verbose)
        return;
    trace_len = 0;
    va_start(ap, fmt);
    line_vadd(trace_buf, sizeof trace_buf, &trace_len, fmt, ap);
    va_end(ap);
}

void
trace_add(const char *fmt, ...)
{
    va_list ap;

    if (!log_verbose)
        return;
    va_start(ap, fmt);
    line_vadd(trace_buf, sizeof trace_buf, &trace_len, fmt, ap);
    va_end(ap);
}

void
trace_end(void)
{
    if (!log_verbose || trace_len == 0)
        return;
    log_msg("%s", trace_buf);
    trace_len = 0;
}
