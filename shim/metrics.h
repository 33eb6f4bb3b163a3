/*
 * metrics.h: counters for /metrics (Prometheus text format 0.0.4).
 *
 * Each worker thread counts into its own struct metrics, under its own mutex
 * that only a scrape contends for; /metrics adds the threads up.  Requests
 * are counted by route and status; routes are the registry's templates and
 * the shim's own paths, never raw paths, so the label set stays small.  The
 * table is bounded: past METRICS_MAX_SERIES the route is recorded as "other".
 */
#ifndef ACTLOOM_METRICS_H
#define ACTLOOM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SERIES 512

struct metrics;

struct metrics *metrics_create(void);
void metrics_destroy(struct metrics *m);
void metrics_request(struct metrics *m, const char *route, int status, uint64_t duration_ns);
void metrics_rate_limited(struct metrics *m, const char *class_name);

/* One webhook delivery attempt, by the outcome the database records (deliver.c). */
void metrics_webhook_attempt(struct metrics *m, const char *outcome, uint64_t duration_ms);
/* The thread's webhook transfers in flight now. */
void metrics_webhook_in_flight(struct metrics *m, unsigned n);
/* Deliveries due now that no deliverer has claimed yet, as the database last said (any thread's). */
void metrics_webhook_due(struct metrics *m, long long n);

/* Renders the sum of n threads' metrics into a malloc'd string. */
char *metrics_render(struct metrics *const *all, size_t n, size_t *len);

#endif
