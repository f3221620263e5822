/**
 * @file tests/unit/unit.h
 * @brief The little harness every unit-test binary shares.
 *
 * A unit-test binary is a table of named cases and a main() that calls
 * unit_run(): `test_line NAME` runs one case, `test_line` alone runs them
 * all. Each tests/unit/NAME.bats runs each case as one Bats test, so a
 * failure names the case.
 */
#ifndef TESTS_UNIT_UNIT_H
#define TESTS_UNIT_UNIT_H

#include <stddef.h>

/** One named case. */
struct test_case {
    const char *name; /**< as given on the command line */
    int (*fn)(void); /**< returns 0 on success */
};

/**
 * @brief Says on stderr why case @p name failed.
 * @param name the case.
 * @param what what went wrong.
 * @return 1, for the case to return.
 */
int unit_fail(const char *name, const char *what);

/**
 * @brief Runs the case named on the command line, or every case.
 *
 * Prints "ok NAME" or "FAIL NAME" for each case it runs.
 * @param prog  the binary's name, for the message about an unknown case.
 * @param cases the table of cases.
 * @param n     entries in @p cases.
 * @param argc  1 (every case) or 2 (one case).
 * @param argv  argv[1] names the case.
 * @return 0 if every case run passed, 1 otherwise, 2 for an unknown name.
 */
int unit_run(const char *prog, const struct test_case *cases, size_t n,
             int argc, char **argv);

#endif
