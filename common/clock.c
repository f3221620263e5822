/**
 * @file clock.c
 * @brief Elapsed time in milliseconds, for deadlines and grace periods.
 */
#include "clock.h"

#include <limits.h>
#include <time.h>

long long
clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
clock_ms_until(long long deadline)
{
    long long left = deadline - clock_ms();

    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

int
clock_earlier(int a, int b)
{
    if (a < 0)
        return b;
    return b >= 0 && b < a ? b : a;
}
