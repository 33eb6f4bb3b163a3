/*
 * metrics.c: request counters, a latency histogram and rate-limit refusals
 * (metrics.h).
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

/* Attempt outcomes, as the database names them (actloom.webhook_record). */
static const char *const webhook_outcomes[] = {
    "delivered", "http_status", "timeout", "connect", "dns", "tls", "refused_address", "response_too_large", "error"};
#define NOUTCOMES (sizeof(webhook_outcomes) / sizeof(webhook_outcomes[0]))
static const double attempt_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15};
#define NATTEMPT_BUCKETS (sizeof(attempt_bounds) / sizeof(attempt_bounds[0]))

struct series {
    char route[ROUTE_MAX];
    int status;
    unsigned long long count;
};

struct limited {
    char name[32];
    unsigned long long count;
};

struct metrics {
    pthread_mutex_t lock;
    struct series series[METRICS_MAX_SERIES];
    size_t nseries;
    struct limited limited[CLASSES_MAX];
    size_t nlimited;
    unsigned long long buckets[NBUCKETS + 1];
    unsigned long long duration_sum_us;
    unsigned long long attempts[NOUTCOMES];
    unsigned long long attempt_buckets[NATTEMPT_BUCKETS + 1];
    unsigned long long attempt_sum_ms;
    unsigned webhook_in_flight;
    long long webhook_due; /* -1: not known */
};

struct metrics *
metrics_create(void)
{
    struct metrics *m = calloc(1, sizeof(*m));

    if (m != NULL) {
        pthread_mutex_init(&m->lock, NULL);
        m->webhook_due = -1;
    }
    return m;
}

void
metrics_destroy(struct metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* The series of (route, status) in a table, added when new; NULL when full. */
static struct series *
find_series(struct series *table, size_t *n, size_t cap, const char *route, int status)
{
    for (size_t i = 0; i < *n; i++)
        if (table[i].status == status && strcmp(table[i].route, route) == 0)
            return &table[i];
    if (*n == cap)
        return NULL;
    snprintf(table[*n].route, ROUTE_MAX, "%s", route);
    table[*n].status = status;
    table[*n].count = 0;
    return &table[(*n)++];
}

void
metrics_request(struct metrics *m, const char *route, int status, uint64_t duration_ns)
{
    double seconds = (double)duration_ns / 1e9;
    size_t b = 0;
    struct series *s;

    while (b < NBUCKETS && seconds > bucket_bounds[b])
        b++;
    pthread_mutex_lock(&m->lock);
    m->buckets[b]++;
    m->duration_sum_us += duration_ns / 1000;
    /* The last slot is kept for "other". */
    s = find_series(m->series, &m->nseries, METRICS_MAX_SERIES - 1, route, status);
    if (s == NULL)
        s = find_series(m->series, &m->nseries, METRICS_MAX_SERIES, "other", status);
    if (s != NULL)
        s->count++;
    pthread_mutex_unlock(&m->lock);
}

void
metrics_rate_limited(struct metrics *m, const char *class_name)
{
    size_t i;

    pthread_mutex_lock(&m->lock);
    for (i = 0; i < m->nlimited; i++)
        if (strcmp(m->limited[i].name, class_name) == 0)
            break;
    if (i == m->nlimited && m->nlimited < CLASSES_MAX) {
        snprintf(m->limited[i].name, sizeof(m->limited[i].name), "%s", class_name);
        m->limited[i].count = 0;
        m->nlimited++;
    }
    if (i < m->nlimited)
        m->limited[i].count++;
    pthread_mutex_unlock(&m->lock);
}

/* The slot of an outcome; one the table does not know counts as "error", the last. */
static size_t
outcome_slot(const char *outcome)
{
    size_t o = 0;

    while (o < NOUTCOMES - 1 && strcmp(webhook_outcomes[o], outcome) != 0)
        o++;
    return o;
}

void
metrics_webhook_attempt(struct metrics *m, const char *outcome, uint64_t duration_ms)
{
    size_t o = outcome_slot(outcome), b = 0;

    while (b < NATTEMPT_BUCKETS && (double)duration_ms / 1000 > attempt_bounds[b])
        b++;
    pthread_mutex_lock(&m->lock);
    m->attempts[o]++;
    m->attempt_buckets[b]++;
    m->attempt_sum_ms += duration_ms;
    pthread_mutex_unlock(&m->lock);
}

void
metrics_webhook_in_flight(struct metrics *m, unsigned n)
{
    pthread_mutex_lock(&m->lock);
    m->webhook_in_flight = n;
    pthread_mutex_unlock(&m->lock);
}

void
metrics_webhook_due(struct metrics *m, long long n)
{
    pthread_mutex_lock(&m->lock);
    m->webhook_due = n;
    pthread_mutex_unlock(&m->lock);
}

/* Appends to a growing buffer; on allocation failure the text is cut short. */
struct buf {
    char *data;
    size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) bprintf(struct buf *b, const char *fmt, ...)
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
metrics_render(struct metrics *const *all, size_t n, size_t *len)
{
    struct buf b = {malloc(4096), 0, 4096};
    struct metrics *sum = metrics_create();
    unsigned long long cumulative = 0;

    if (b.data == NULL || sum == NULL) {
        free(b.data);
        metrics_destroy(sum);
        return NULL;
    }
    b.data[0] = '\0';
    for (size_t t = 0; t < n; t++) {
        struct metrics *m = all[t];
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->nseries; i++) {
            struct series *s =
                find_series(sum->series, &sum->nseries, METRICS_MAX_SERIES, m->series[i].route, m->series[i].status);
            if (s != NULL)
                s->count += m->series[i].count;
        }
        for (size_t i = 0; i < m->nlimited; i++) {
            size_t j;
            for (j = 0; j < sum->nlimited && strcmp(sum->limited[j].name, m->limited[i].name) != 0; j++)
                ;
            if (j == sum->nlimited && j < CLASSES_MAX)
                sum->limited[sum->nlimited++] = (struct limited){.count = 0};
            if (j < sum->nlimited) {
                memcpy(sum->limited[j].name, m->limited[i].name, sizeof(sum->limited[j].name));
                sum->limited[j].count += m->limited[i].count;
            }
        }
        for (size_t i = 0; i <= NBUCKETS; i++)
            sum->buckets[i] += m->buckets[i];
        sum->duration_sum_us += m->duration_sum_us;
        for (size_t i = 0; i < NOUTCOMES; i++)
            sum->attempts[i] += m->attempts[i];
        for (size_t i = 0; i <= NATTEMPT_BUCKETS; i++)
            sum->attempt_buckets[i] += m->attempt_buckets[i];
        sum->attempt_sum_ms += m->attempt_sum_ms;
        sum->webhook_in_flight += m->webhook_in_flight;
        /* Every deliverer asks about its own shard. */
        if (m->webhook_due >= 0)
            sum->webhook_due = (sum->webhook_due < 0 ? 0 : sum->webhook_due) + m->webhook_due;
        pthread_mutex_unlock(&m->lock);
    }

    bprintf(&b, "# HELP actloom_http_requests_total Requests answered, by route and status.\n"
                "# TYPE actloom_http_requests_total counter\n");
    for (size_t i = 0; i < sum->nseries; i++)
        bprintf(&b, "actloom_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", sum->series[i].route,
                sum->series[i].status, sum->series[i].count);
    bprintf(&b, "# HELP actloom_rate_limited_total Requests refused by a rate limit, by class.\n"
                "# TYPE actloom_rate_limited_total counter\n");
    for (size_t i = 0; i < sum->nlimited; i++)
        bprintf(&b, "actloom_rate_limited_total{class=\"%s\"} %llu\n", sum->limited[i].name, sum->limited[i].count);
    bprintf(&b, "# HELP actloom_http_request_duration_seconds Time from request to response.\n"
                "# TYPE actloom_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= NBUCKETS; i++) {
        cumulative += sum->buckets[i];
        if (i < NBUCKETS)
            bprintf(&b, "actloom_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_bounds[i], cumulative);
        else
            bprintf(&b, "actloom_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
    }
    bprintf(&b, "actloom_http_request_duration_seconds_sum %.6f\n", (double)sum->duration_sum_us / 1e6);
    bprintf(&b, "actloom_http_request_duration_seconds_count %llu\n", cumulative);
    bprintf(&b, "# HELP actloom_webhook_attempts_total Webhook delivery attempts, by outcome.\n"
                "# TYPE actloom_webhook_attempts_total counter\n");
    for (size_t i = 0; i < NOUTCOMES; i++)
        bprintf(&b, "actloom_webhook_attempts_total{outcome=\"%s\"} %llu\n", webhook_outcomes[i], sum->attempts[i]);
    bprintf(&b,
            "# HELP actloom_webhook_refused_addresses_total Webhook connections refused by the address check.\n"
            "# TYPE actloom_webhook_refused_addresses_total counter\n"
            "actloom_webhook_refused_addresses_total %llu\n",
            sum->attempts[outcome_slot("refused_address")]);
    bprintf(&b, "# HELP actloom_webhook_attempt_duration_seconds Time from the start of an attempt to its outcome.\n"
                "# TYPE actloom_webhook_attempt_duration_seconds histogram\n");
    cumulative = 0;
    for (size_t i = 0; i <= NATTEMPT_BUCKETS; i++) {
        cumulative += sum->attempt_buckets[i];
        if (i < NATTEMPT_BUCKETS)
            bprintf(&b, "actloom_webhook_attempt_duration_seconds_bucket{le=\"%g\"} %llu\n", attempt_bounds[i],
                    cumulative);
        else
            bprintf(&b, "actloom_webhook_attempt_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
    }
    bprintf(&b, "actloom_webhook_attempt_duration_seconds_sum %.3f\n", (double)sum->attempt_sum_ms / 1e3);
    bprintf(&b, "actloom_webhook_attempt_duration_seconds_count %llu\n", cumulative);
    bprintf(&b,
            "# HELP actloom_webhook_in_flight Webhook transfers in flight.\n"
            "# TYPE actloom_webhook_in_flight gauge\n"
            "actloom_webhook_in_flight %u\n",
            sum->webhook_in_flight);
    if (sum->webhook_due >= 0)
        bprintf(&b,
                "# HELP actloom_webhook_due Deliveries due now and not yet claimed, as of the last claim.\n"
                "# TYPE actloom_webhook_due gauge\n"
                "actloom_webhook_due %lld\n",
                sum->webhook_due);
    metrics_destroy(sum);
    *len = b.len;
    return b.data;
}
