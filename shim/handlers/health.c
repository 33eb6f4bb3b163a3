/*
 * handlers/health.c: /healthz, /readyz and /metrics.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "ratelimit.h"
#include "registry.h"
#include "reply.h"
#include "routes.h"

#define H(s) s, sizeof(s) - 1

void
handle_healthz(struct shim_req *r)
{
    reply_send(r, 200, "application/json", H("{\"status\":\"ok\"}"));
}

void
handle_readyz(struct shim_req *r)
{
    struct db_pool_stats st;
    struct registry *reg = registry_acquire();
    int loaded = reg->loaded;

    registry_release(reg);
    db_pool_stats(r->thread->db, &st);
    if (st.up > 0 && loaded) {
        reply_send(r, 200, "application/json", H("{\"status\":\"ready\"}"));
        return;
    }
    reply_header(r, "Retry-After", "1");
    reply_problem(r, 503, "unavailable", "Service unavailable",
                  st.up == 0 ? "The database is not reachable." : "The endpoint registry is not loaded yet.", NULL);
}

void
handle_metrics(struct shim_req *r)
{
    struct metrics *all[256];
    struct db_pool_stats total = {0};
    unsigned long long reconnects = 0, timeouts = 0;
    size_t len, cap, n;
    char *text, *out;

    for (unsigned i = 0; i < shim.nthreads; i++)
        all[i] = shim.threads[i].metrics;
    text = metrics_render(all, shim.nthreads, &len);
    if (text == NULL) {
        reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
        return;
    }
    for (unsigned i = 0; i < shim.nthreads; i++) {
        struct shim_thread *t = &shim.threads[i];
        pthread_mutex_lock(&t->stats_lock);
        total.up += t->stats.up;
        total.busy += t->stats.busy;
        total.connecting += t->stats.connecting;
        total.down += t->stats.down;
        total.queued += t->stats.queued;
        pthread_mutex_unlock(&t->stats_lock);
        reconnects += atomic_load_explicit(&t->db_counters.reconnects, memory_order_relaxed);
        timeouts += atomic_load_explicit(&t->db_counters.timeouts, memory_order_relaxed);
    }
    cap = len + 2048;
    out = h2o_mem_alloc_pool(&r->req->pool, cap);
    memcpy(out, text, len);
    free(text);
    n = len;
    n += (size_t)snprintf(out + n, cap - n,
                          "# HELP actloom_db_connections Database connections by state.\n"
                          "# TYPE actloom_db_connections gauge\n"
                          "actloom_db_connections{state=\"idle\"} %u\n"
                          "actloom_db_connections{state=\"busy\"} %u\n"
                          "actloom_db_connections{state=\"connecting\"} %u\n"
                          "actloom_db_connections{state=\"down\"} %u\n"
                          "# HELP actloom_db_queued Requests waiting for a database connection.\n"
                          "# TYPE actloom_db_queued gauge\n"
                          "actloom_db_queued %u\n"
                          "# HELP actloom_db_reconnects_total Connections re-established after a failure.\n"
                          "# TYPE actloom_db_reconnects_total counter\n"
                          "actloom_db_reconnects_total %llu\n"
                          "# HELP actloom_db_timeouts_total Queries abandoned at the query timeout.\n"
                          "# TYPE actloom_db_timeouts_total counter\n"
                          "actloom_db_timeouts_total %llu\n"
                          "# HELP actloom_rate_limit_evictions_total Live rate-limit states evicted for room.\n"
                          "# TYPE actloom_rate_limit_evictions_total counter\n"
                          "actloom_rate_limit_evictions_total %llu\n",
                          total.up - total.busy, total.busy, total.connecting, total.down, total.queued,
                          reconnects, timeouts, (unsigned long long)rl_evictions(shim.rl));
    reply_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", out, n);
}
