/*
 * log.h: diagnostics on stderr, each line with its source location.  The
 * access log is separate (reply.c, stdout, one JSON object a line).
 */
#ifndef ACTLOOM_LOG_H
#define ACTLOOM_LOG_H

#include <stdio.h>

#define LOG_AT(level, fmt, ...)                                                                                        \
    fprintf(stderr, "actloom-shim: %s: " fmt " (%s:%d)\n", level, ##__VA_ARGS__, __FILE__, __LINE__)
#define LOG_ERROR(fmt, ...) LOG_AT("error", fmt, ##__VA_ARGS__)
#define LOG_WARN(fmt, ...) LOG_AT("warning", fmt, ##__VA_ARGS__)
#define LOG_INFO(fmt, ...) LOG_AT("info", fmt, ##__VA_ARGS__)

#endif
