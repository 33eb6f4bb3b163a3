/*
 * metrics.h: counters for /metrics (Prometheus text format 0.0.4).
 *
 * Requests are counted by route and status; routes are the registry's
 * templates and the shim's own paths, never raw paths, so the label set
 * stays small.  The table is bounded: past METRICS_MAX_SERIES the route is
 * recorded as "other".
 */
#ifndef ACTLOOM_METRICS_H
#define ACTLOOM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SERIES 512

void metrics_init(void);
void metrics_request(const char *route, int status, uint64_t duration_ns);
void metrics_rate_limited(const char *class_name);

/* Renders everything into a malloc'd string; the caller frees it. */
char *metrics_render(size_t *len);

#endif
