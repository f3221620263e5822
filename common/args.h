/**
 * @file args.h
 * @brief The server command line, identical in every step.
 *
 *     server [-h] [-v] [-n USERS] [-w WORKERS] HOST PORT
 *
 * `-h` prints usage on stdout and exits 0; a bad option or argument prints
 * a one-line reason and the usage on stderr and exits 2 (#EXIT_USAGE).
 */
#ifndef COMMON_ARGS_H
#define COMMON_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/** Most users a room may be configured for with `-n`. */
#define ARGS_USERS_MAX 1000000L
/** Most workers the pool (step 4) may be configured for with `-w`. */
#define ARGS_WORKERS_MAX 256L

/** Feature flag for args_parse(): accept `-w WORKERS` (the pool, step 4). */
#define ARGS_WORKERS 0x1u

/** What the command line asked for. */
struct server_args {
    struct sockaddr_storage addr; /**< HOST and PORT, parsed */
    socklen_t addrlen; /**< used length of #addr */
    long users; /**< `-n`: the room's user limit */
    long workers; /**< `-w`: pool size, 0 if not given */
    bool verbose; /**< `-v`: trace the event loop */
};

/**
 * @brief Copies a command-line argument for quoting in a one-line message.
 *
 * An argument may hold any byte but NUL. Quoted as it is, a newline
 * would break the message's one line and an escape sequence would drive
 * the terminal; here every control byte becomes '?'.
 * @param buf  receives the copy, cut to @p size - 1 bytes.
 * @param size size of @p buf.
 * @param text the argument.
 * @return @p buf, for use inside a printf argument list.
 */
const char *args_quote(char *buf, size_t size, const char *text);

/** What args_scan() found on the command line. */
enum args_result {
    ARGS_OK, /**< @p args is filled: run the server */
    ARGS_HELP, /**< `-h`: print the usage on stdout and exit 0 */
    ARGS_BAD /**< a mistake: the reason is in `why`; exit 2 */
};

/**
 * @brief Parses argv into @p args; prints nothing, never exits.
 *
 * The part of args_parse() that can be tested (tests/fuzz/fuzz_args.c):
 * it stops at the first `-h` or mistake, as args_parse() does, and words
 * a mistake as one line. May be called again: getopt(3) starts afresh.
 * @param argc          as passed to main().
 * @param argv          as passed to main().
 * @param args          filled when the result is #ARGS_OK.
 * @param features      0 or #ARGS_WORKERS.
 * @param default_users user limit when `-n` is not given.
 * @param why           receives a one-line reason for #ARGS_BAD.
 * @param why_size      size of @p why.
 * @return #ARGS_OK, #ARGS_HELP or #ARGS_BAD.
 */
enum args_result args_scan(int argc, char **argv, struct server_args *args,
                           unsigned features, long default_users, char *why,
                           size_t why_size);

/**
 * @brief Parses argv into @p args, or exits with the SPEC's status.
 *
 * Also sets #log_verbose from `-v`, so every module can trace.
 * @param argc          as passed to main().
 * @param argv          as passed to main().
 * @param args          filled on return.
 * @param features      0 or #ARGS_WORKERS.
 * @param default_users user limit when `-n` is not given.
 */
void args_parse(int argc, char **argv, struct server_args *args,
                unsigned features, long default_users);

#endif
