/*
 * metrics.c: request counters, a latency histogram and rate-limit refusals
 * (metrics.h).  One mutex guards the series tables; it is held for a short
 * scan, never across I/O.  Histogram buckets are atomics.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_MAX 96
#define CLASSES_MAX 64

static const double bucket_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define NBUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct series {
    char route[ROUTE_MAX];
    int status;
    unsigned long long count;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series series[METRICS_MAX_SERIES];
static size_t nseries;
static struct {
    char name[32];
    unsigned long long count;
} limited[CLASSES_MAX];
static size_t nlimited;
static unsigned long long buckets[NBUCKETS + 1];
static unsigned long long duration_sum_us;

void
metrics_init(void)
{
    pthread_mutex_lock(&lock);
    nseries = 0;
    nlimited = 0;
    pthread_mutex_unlock(&lock);
}

void
metrics_request(const char *route, int status, uint64_t duration_ns)
{
    double seconds = (double)duration_ns / 1e9;
    size_t b = 0, i;

    while (b < NBUCKETS && seconds > bucket_bounds[b])
        b++;
    __atomic_fetch_add(&buckets[b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&duration_sum_us, duration_ns / 1000, __ATOMIC_RELAXED);

    pthread_mutex_lock(&lock);
    for (i = 0; i < nseries; i++)
        if (series[i].status == status && strcmp(series[i].route, route) == 0)
            break;
    if (i == nseries) {
        if (nseries == METRICS_MAX_SERIES - 1)
            route = "other";
        for (i = 0; i < nseries; i++)
            if (series[i].status == status && strcmp(series[i].route, route) == 0)
                break;
        if (i == nseries) {
            snprintf(series[i].route, ROUTE_MAX, "%s", route);
            series[i].status = status;
            nseries++;
        }
    }
    series[i].count++;
    pthread_mutex_unlock(&lock);
}

void
metrics_rate_limited(const char *class_name)
{
    size_t i;

    pthread_mutex_lock(&lock);
    for (i = 0; i < nlimited; i++)
        if (strcmp(limited[i].name, class_name) == 0)
            break;
    if (i == nlimited && nlimited < CLASSES_MAX) {
        snprintf(limited[i].name, sizeof(limited[i].name), "%s", class_name);
        nlimited++;
    }
    if (i < nlimited)
        limited[i].count++;
    pthread_mutex_unlock(&lock);
}

/* Appends to a growing buffer; on allocation failure the text is cut short. */
struct buf {
    char *data;
    size_t len, cap;
};

static void __attribute__((format(printf, 2, 3)))
bprintf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        char *grown = realloc(b->data, b->cap * 2 + (size_t)n);
        if (grown == NULL)
            return;
        b->data = grown;
        b->cap = b->cap * 2 + (size_t)n;
    }
}

char *
metrics_render(size_t *len)
{
    struct buf b = {malloc(4096), 0, 4096};
    unsigned long long cumulative = 0;

    if (b.data == NULL)
        return NULL;
    b.data[0] = '\0';
    bprintf(&b, "# HELP actloom_http_requests_total Requests answered, by route and status.\n"
                "# TYPE actloom_http_requests_total counter\n");
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nseries; i++)
        bprintf(&b, "actloom_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", series[i].route,
                series[i].status, series[i].count);
    bprintf(&b, "# HELP actloom_rate_limited_total Requests refused by a rate limit, by class.\n"
                "# TYPE actloom_rate_limited_total counter\n");
    for (size_t i = 0; i < nlimited; i++)
        bprintf(&b, "actloom_rate_limited_total{class=\"%s\"} %llu\n", limited[i].name, limited[i].count);
    pthread_mutex_unlock(&lock);
    bprintf(&b, "# HELP actloom_http_request_duration_seconds Time from request to response.\n"
                "# TYPE actloom_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= NBUCKETS; i++) {
        cumulative += __atomic_load_n(&buckets[i], __ATOMIC_RELAXED);
        if (i < NBUCKETS)
            bprintf(&b, "actloom_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_bounds[i],
                    cumulative);
        else
            bprintf(&b, "actloom_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
    }
    bprintf(&b, "actloom_http_request_duration_seconds_sum %.6f\n",
            (double)__atomic_load_n(&duration_sum_us, __ATOMIC_RELAXED) / 1e6);
    bprintf(&b, "actloom_http_request_duration_seconds_count %llu\n", cumulative);
    *len = b.len;
    return b.data;
}
