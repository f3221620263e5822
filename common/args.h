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
