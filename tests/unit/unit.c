/**
 * @file tests/unit/unit.c
 * @brief The unit-test harness: run one named case, or all of them.
 */
#include "unit.h"

#include <stdio.h>
#include <string.h>

int
unit_run(const char *prog, const struct test_case *cases, size_t n, int argc,
         char **argv)
{
    int failed = 0, found = 0;

    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        found = 1;
        int rc = cases[i].fn();
        printf("%s %s\n", rc ? "FAIL" : "ok", cases[i].name);
        failed |= rc;
    }
    if (!found) {
        fprintf(stderr, "%s: no case named '%s'\n", prog, argv[1]);
        return 2;
    }
    return failed != 0;
}

int
unit_fail(const char *name, const char *what)
{
    fprintf(stderr, "%s: %s\n", name, what);
    return 1;
}
