/*
 * unit.h: a minimal TAP producer for the shim's unit test programs.
 * Each program prints "ok N - name" lines and exits non-zero on any failure.
 */
#ifndef ACTLOOM_UNIT_H
#define ACTLOOM_UNIT_H

#include <stdio.h>
#include <stdlib.h>

static int unit_count, unit_failed;

#define CHECK(cond, name)                                                                                              \
    do {                                                                                                               \
        unit_count++;                                                                                                  \
        if (cond) {                                                                                                    \
            printf("ok %d - %s\n", unit_count, name);                                                                  \
        } else {                                                                                                       \
            unit_failed++;                                                                                             \
            printf("not ok %d - %s (%s:%d: %s)\n", unit_count, name, __FILE__, __LINE__, #cond);                       \
        }                                                                                                              \
    } while (0)

static inline int
unit_done(void)
{
    printf("1..%d\n", unit_count);
    return unit_failed ? 1 : 0;
}

#endif
