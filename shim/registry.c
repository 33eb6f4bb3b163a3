/*
 * registry.c: loading and serving the endpoint registry (registry.h).
 *
 * The loader thread never serves requests, so it may wait; still it waits
 * only in poll() with a deadline on a non-blocking connection, and checks
 * for shutdown at least every 200 ms.  A load that fails keeps the previous
 * snapshot in force.
 *
 * Its connection is also the shim's one LISTEN connection for the webhook
 * deliverers: a notification on actloom_webhooks, sent at the commit of
 * whatever made a delivery due, wakes them (deliver_wake_all), and so does
 * every new connection, for what became due while none listened.
 */
#include "registry.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver.h"
#include "log.h"
#include "shim.h"
#include "validate.h"

#define CHANNEL "actloom_endpoints"
/* Something became due for the webhook deliverers (deliver.h). */
#define WEBHOOK_CHANNEL "actloom_webhooks"
#define LOAD_SQL                                                                                                       \
    "SELECT version, method, path, call_sql, required_scope, rate_class, body_schema::text, query_schema::text "       \
    "FROM actloom.endpoint_registry()"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct registry *current;
static pthread_t loader;
static int stop_requested, reload_requested;
static const struct config *config;

static void
free_endpoint(struct endpoint *e)
{
    free(e->path);
    free(e->route);
    free(e->call_sql);
    free(e->scope);
    free(e->rate_class);
    json_decref(e->body_schema);
    json_decref(e->query_schema);
    memset(e, 0, sizeof(*e));
}

static void
free_registry(struct registry *reg)
{
    for (size_t i = 0; i < reg->n; i++)
        free_endpoint(&reg->eps[i]);
    free(reg->eps);
    free(reg);
}

struct registry *
registry_acquire(void)
{
    struct registry *reg;

    pthread_mutex_lock(&lock);
    reg = current;
    reg->refs++;
    pthread_mutex_unlock(&lock);
    return reg;
}

struct registry *
registry_retain(struct registry *reg)
{
    pthread_mutex_lock(&lock);
    reg->refs++;
    pthread_mutex_unlock(&lock);
    return reg;
}

void
registry_release(struct registry *reg)
{
    int last;

    pthread_mutex_lock(&lock);
    last = --reg->refs == 0;
    pthread_mutex_unlock(&lock);
    if (last)
        free_registry(reg);
}

static void
publish(struct registry *reg)
{
    struct registry *old;

    reg->refs = 1;
    pthread_mutex_lock(&lock);
    old = current;
    current = reg;
    pthread_mutex_unlock(&lock);
    if (old != NULL)
        registry_release(old);
}

const struct endpoint *
registry_find(const struct registry *reg, int version, const char *path, size_t path_len, const char *method,
              size_t method_len, char *allow, size_t allow_len)
{
    size_t used = 0;

    allow[0] = '\0';
    for (size_t i = 0; i < reg->n; i++) {
        const struct endpoint *e = &reg->eps[i];
        if (e->version != version || strlen(e->path) != path_len || memcmp(e->path, path, path_len) != 0)
            continue;
        if (strlen(e->method) == method_len && memcmp(e->method, method, method_len) == 0)
            return e;
        used += (size_t)snprintf(allow + used, used < allow_len ? allow_len - used : 0, "%s%s", used ? ", " : "",
                                 e->method);
    }
    return NULL;
}

/* --- the loader --------------------------------------------------------------- */

static uint64_t
now_ms(void)
{
    return shim_now_ns() / 1000000;
}

/* Waits until the connection's socket is ready or the deadline passes. */
static int
wait_socket(PGconn *pg, int for_write, uint64_t deadline)
{
    struct pollfd pfd = {.fd = PQsocket(pg), .events = for_write ? POLLOUT : POLLIN};
    uint64_t now;

    while (!__atomic_load_n(&stop_requested, __ATOMIC_RELAXED) && (now = now_ms()) < deadline) {
        int ms = deadline - now > 200 ? 200 : (int)(deadline - now);
        int n = poll(&pfd, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
    return -1;
}

static PGconn *
connect_db(void)
{
    const char *keys[] = {"application_name", "dbname", NULL};
    const char *vals[] = {"actloom-shim registry", config->db_conninfo, NULL};
    uint64_t deadline = now_ms() + config->db_connect_timeout_ms;
    PGconn *pg = PQconnectStartParams(keys, vals, 1);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    if (pg == NULL || PQstatus(pg) == CONNECTION_BAD)
        goto fail;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED || wait_socket(pg, st == PGRES_POLLING_WRITING, deadline) != 0)
            goto fail;
        st = PQconnectPoll(pg);
    }
    if (PQsetnonblocking(pg, 1) != 0)
        goto fail;
    return pg;
fail:
    if (pg != NULL)
        PQfinish(pg);
    return NULL;
}

/* Runs one statement; the result, or NULL on failure or timeout. */
static PGresult *
run(PGconn *pg, const char *sql)
{
    uint64_t deadline = now_ms() + config->db_query_timeout_ms;
    PGresult *r, *last = NULL;
    int flushed;

    if (!PQsendQuery(pg, sql))
        return NULL;
    while ((flushed = PQflush(pg)) == 1)
        if (wait_socket(pg, 1, deadline) != 0)
            return NULL;
    if (flushed < 0)
        return NULL;
    for (;;) {
        while (PQisBusy(pg)) {
            if (wait_socket(pg, 0, deadline) != 0 || !PQconsumeInput(pg)) {
                PQclear(last);
                return NULL;
            }
        }
        if ((r = PQgetResult(pg)) == NULL)
            break;
        PQclear(last);
        last = r;
    }
    if (last != NULL && PQresultStatus(last) != PGRES_TUPLES_OK && PQresultStatus(last) != PGRES_COMMAND_OK) {
        LOG_WARN("registry: %s", PQresultErrorMessage(last));
        PQclear(last);
        return NULL;
    }
    return last;
}

static char *
dup_value(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static json_t *
schema_value(PGresult *r, int row, int col, int for_query, const char *route)
{
    char err[256];
    json_t *s;

    if (PQgetisnull(r, row, col))
        return NULL;
    s = json_loads(PQgetvalue(r, row, col), JSON_REJECT_DUPLICATES, NULL);
    if (s == NULL || validate_schema_check(s, for_query, err, sizeof(err)) != 0) {
        LOG_WARN("registry: %s: ignoring an invalid schema: %s", route, s ? err : "not JSON");
        json_decref(s);
        return json_null();
    }
    return s;
}

static int
load(PGconn *pg)
{
    PGresult *r = run(pg, LOAD_SQL);
    struct registry *reg;
    int rows, kept = 0;

    if (r == NULL)
        return -1;
    rows = PQntuples(r);
    reg = calloc(1, sizeof(*reg));
    reg->eps = calloc(rows ? (size_t)rows : 1, sizeof(struct endpoint));
    reg->loaded = 1;
    for (int i = 0; i < rows; i++) {
        struct endpoint *e = &reg->eps[kept];
        char route[512];
        e->version = atoi(PQgetvalue(r, i, 0));
        snprintf(e->method, sizeof(e->method), "%s", PQgetvalue(r, i, 1));
        e->path = dup_value(r, i, 2);
        snprintf(route, sizeof(route), "%s /v%d/%s", e->method, e->version, e->path);
        e->route = strdup(route);
        e->call_sql = dup_value(r, i, 3);
        e->scope = dup_value(r, i, 4);
        e->rate_class = dup_value(r, i, 5);
        e->body_schema = schema_value(r, i, 6, 0, route);
        e->query_schema = schema_value(r, i, 7, 1, route);
        reg->n = (size_t)kept + 1;
        if (json_is_null(e->body_schema) || json_is_null(e->query_schema) || e->call_sql == NULL) {
            /* Served as 404 rather than with a guard that is not understood. */
            free_endpoint(e);
            reg->n = (size_t)kept;
            continue;
        }
        if (config_class(config, e->rate_class) == NULL)
            LOG_WARN("registry: %s: rate class \"%s\" is not configured; \"api\" applies", route, e->rate_class);
        kept++;
    }
    PQclear(r);
    publish(reg);
    LOG_INFO("registry: %d endpoint(s) loaded", kept);
    return 0;
}

static void *
loader_main(void *arg)
{
    unsigned backoff = 0;

    while (!__atomic_load_n(&stop_requested, __ATOMIC_RELAXED)) {
        PGconn *pg = connect_db();
        PGresult *r;

        if (pg != NULL && (r = run(pg, config->webhooks_deliver ? "LISTEN " CHANNEL "; LISTEN " WEBHOOK_CHANNEL
                                                                : "LISTEN " CHANNEL)) != NULL) {
            PQclear(r);
            __atomic_store_n(&reload_requested, 1, __ATOMIC_RELAXED);
            /* Whatever became due while nobody listened is claimed now. */
            deliver_wake_all();
            backoff = 0;
            while (!__atomic_load_n(&stop_requested, __ATOMIC_RELAXED)) {
                PGnotify *n;
                if (__atomic_exchange_n(&reload_requested, 0, __ATOMIC_RELAXED) && load(pg) != 0)
                    break;
                if (wait_socket(pg, 0, now_ms() + 200) == 0 && !PQconsumeInput(pg))
                    break;
                /* Notifications may also have arrived while a load ran. */
                while ((n = PQnotifies(pg)) != NULL) {
                    if (strcmp(n->relname, WEBHOOK_CHANNEL) == 0)
                        deliver_wake_all();
                    else
                        __atomic_store_n(&reload_requested, 1, __ATOMIC_RELAXED);
                    PQfreemem(n);
                }
                if (PQstatus(pg) == CONNECTION_BAD)
                    break;
            }
        }
        if (pg != NULL)
            PQfinish(pg);
        if (__atomic_load_n(&stop_requested, __ATOMIC_RELAXED))
            break;
        backoff = backoff ? backoff * 2 : config->db_reconnect_min_ms;
        if (backoff > config->db_reconnect_max_ms)
            backoff = config->db_reconnect_max_ms;
        for (uint64_t until = now_ms() + backoff;
             now_ms() < until && !__atomic_load_n(&stop_requested, __ATOMIC_RELAXED);) {
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int
registry_start(const struct config *cfg)
{
    struct registry *empty = calloc(1, sizeof(*empty));

    config = cfg;
    publish(empty);
    return pthread_create(&loader, NULL, loader_main, NULL);
}

void
registry_stop(void)
{
    __atomic_store_n(&stop_requested, 1, __ATOMIC_RELAXED);
    pthread_join(loader, NULL);
    pthread_mutex_lock(&lock);
    struct registry *reg = current;
    current = NULL;
    pthread_mutex_unlock(&lock);
    if (reg != NULL)
        registry_release(reg);
}

void
registry_request_reload(void)
{
    __atomic_store_n(&reload_requested, 1, __ATOMIC_RELAXED);
}
