/*
 * db.c: the per-thread pool of non-blocking libpq connections (db.h).
 *
 * Each connection is in one of four states:
 *
 *   DOWN        no connection; deadline is the next attempt (backoff)
 *   CONNECTING  PQconnectPoll in progress; deadline is the connect timeout
 *   IDLE        connected, in pipeline mode, waiting for a job
 *   BUSY        a job's statements and its Sync are sent; deadline is the
 *               query timeout plus a grace second (the server's own
 *               statement_timeout, set at connect, normally fires first)
 *
 * The socket libpq owns is watched through a dup() of it registered with the
 * h2o loop (flag DONT_READ: h2o only reports readiness, libpq does the
 * reading).  PQfinish closes libpq's descriptor before h2o closes the dup, so
 * the epoll registration dies with the last descriptor and no event can name
 * a freed socket.
 *
 * Password hashing has connections of its own.  The pool opens
 * database.pool_size connections for jobs, and database.hash_pool_size more
 * for slow jobs only (db_submit_slow: an argon2id hash, tens of milliseconds
 * of a database core); each kind waits in the one queue for its own.  Every
 * other request finds the same pool_size connections whether sign-ins storm
 * or not, and a worker never keeps more than hash_pool_size of the database's
 * cores busy hashing.
 *
 * Nothing here waits: cancelling a running query would need the blocking
 * PQcancel, so a query past its deadline costs its connection instead, which
 * is reopened at once.  Backoff doubles from reconnect_min_ms to
 * reconnect_max_ms with up to a quarter of jitter, and resets on success.
 */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

enum conn_state { C_DOWN, C_CONNECTING, C_IDLE, C_BUSY };

struct db_conn {
    struct db_pool *pool;
    PGconn *pg;
    h2o_socket_t *sock; /* on a dup() of fd */
    int fd;             /* PQsocket as last seen */
    enum conn_state state;
    uint64_t deadline_ms;
    unsigned backoff_ms;
    int write_wanted;
    int ever_connected;
    struct db_job *job;
};

struct db_job {
    h2o_linklist_t link; /* in pool->queue while waiting */
    struct db_pool *pool;
    db_callback cb;
    void *owner; /* NULL once detached */
    uint64_t queued_at_ms;
    int slow; /* db_submit_slow: may not take the pool's last connection */
    int nstmts;
    int seen;   /* statements whose result has arrived */
    int nsyncs; /* Syncs sent: one a transaction */
    int synced; /* of which the results have arrived */
    struct db_stmt stmts[DB_MAX_STMTS];
    struct db_result result;
    char *strings; /* copies of SQL and parameters */
};

struct db_pool {
    h2o_evloop_t *loop;
    const struct config *cfg;
    struct db_conn *conns;
    unsigned nconns;
    h2o_linklist_t queue;
    unsigned queued;
    struct db_counters *counters;
    char statement_timeout[64];
};

static void conn_start(struct db_conn *c);
static void conn_fail(struct db_conn *c, enum db_outcome why);
static void on_readable(h2o_socket_t *sock, const char *err);
static void on_writable(h2o_socket_t *sock, const char *err);
static void pool_dispatch(struct db_pool *pool);

static uint64_t
now_ms(struct db_pool *pool)
{
    return h2o_now(pool->loop);
}

/* --- jobs --------------------------------------------------------------- */

static void
job_finish(struct db_job *job)
{
    if (job->owner != NULL)
        job->cb(job->owner, &job->result);
    for (int i = 0; i < job->result.nres; i++)
        PQclear(job->result.res[i]);
    free(job->strings);
    free(job);
}

/* Seconds until a DOWN connection tries again, for Retry-After. */
static unsigned
pool_retry_after(struct db_pool *pool)
{
    uint64_t now = now_ms(pool), soonest = UINT64_MAX;

    for (unsigned i = 0; i < pool->nconns; i++)
        if (pool->conns[i].state == C_DOWN && pool->conns[i].deadline_ms < soonest)
            soonest = pool->conns[i].deadline_ms;
    if (soonest == UINT64_MAX || soonest <= now)
        return 1;
    return (unsigned)((soonest - now + 999) / 1000);
}

static void
job_fail(struct db_job *job, enum db_outcome why)
{
    job->result.outcome = why;
    job->result.retry_after = why == DB_UNAVAILABLE ? pool_retry_after(job->pool) : 1;
    job_finish(job);
}

/* Whether any connection is up or on its way up. */
static int
pool_alive(struct db_pool *pool)
{
    for (unsigned i = 0; i < pool->nconns; i++)
        if (pool->conns[i].state != C_DOWN)
            return 1;
    return 0;
}

static void
fail_queue(struct db_pool *pool, enum db_outcome why)
{
    while (!h2o_linklist_is_empty(&pool->queue)) {
        struct db_job *job = H2O_STRUCT_FROM_MEMBER(struct db_job, link, pool->queue.next);
        h2o_linklist_unlink(&job->link);
        pool->queued--;
        job_fail(job, why);
    }
}

static struct db_job *
submit(struct db_pool *pool, const struct db_stmt *stmts, int nstmts, db_callback cb, void *owner, int slow)
{
    struct db_job *job = calloc(1, sizeof(*job));
    size_t total = 0;
    char *p;

    if (job == NULL || nstmts < 1 || nstmts > DB_MAX_STMTS) {
        free(job);
        struct db_result r = {.outcome = DB_UNAVAILABLE, .retry_after = 1};
        cb(owner, &r);
        return NULL;
    }
    job->pool = pool;
    job->cb = cb;
    job->owner = owner;
    job->nstmts = nstmts;
    for (int i = 0; i < nstmts; i++) {
        total += strlen(stmts[i].sql) + 1;
        for (int j = 0; j < stmts[i].nparams; j++)
            total += stmts[i].params[j] ? strlen(stmts[i].params[j]) + 1 : 0;
    }
    p = job->strings = malloc(total);
    if (p == NULL) {
        job_fail(job, DB_UNAVAILABLE);
        return NULL;
    }
    for (int i = 0; i < nstmts; i++) {
        size_t n = strlen(stmts[i].sql) + 1;
        job->stmts[i].sql = memcpy(p, stmts[i].sql, n);
        p += n;
        job->stmts[i].nparams = stmts[i].nparams;
        job->stmts[i].end_txn = stmts[i].end_txn;
        for (int j = 0; j < stmts[i].nparams; j++) {
            if (stmts[i].params[j] == NULL)
                continue;
            n = strlen(stmts[i].params[j]) + 1;
            job->stmts[i].params[j] = memcpy(p, stmts[i].params[j], n);
            p += n;
        }
    }
    if (!pool_alive(pool) || pool->queued >= pool->cfg->db_queue_max) {
        job_fail(job, DB_UNAVAILABLE);
        return NULL;
    }
    job->queued_at_ms = now_ms(pool);
    job->slow = slow;
    h2o_linklist_insert(&pool->queue, &job->link);
    pool->queued++;
    pool_dispatch(pool);
    return job;
}

struct db_job *
db_submit(struct db_pool *pool, const struct db_stmt *stmts, int nstmts, db_callback cb, void *owner)
{
    return submit(pool, stmts, nstmts, cb, owner, 0);
}

struct db_job *
db_submit_slow(struct db_pool *pool, const struct db_stmt *stmts, int nstmts, db_callback cb, void *owner)
{
    return submit(pool, stmts, nstmts, cb, owner, 1);
}

void
db_detach(struct db_job *job)
{
    job->owner = NULL;
}

/* --- sockets ------------------------------------------------------------- */

static void
conn_unwatch(struct db_conn *c)
{
    if (c->sock != NULL) {
        h2o_socket_read_stop(c->sock);
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->write_wanted = 0;
    c->fd = -1;
}

/* Watches libpq's current socket, registering it anew if libpq changed it. */
static int
conn_watch(struct db_conn *c, int want_write)
{
    int fd = PQsocket(c->pg);

    if (fd < 0)
        return -1;
    if (fd != c->fd || c->sock == NULL) {
        int copy;
        /* libpq has already closed the old descriptor; the dup goes now. */
        conn_unwatch(c);
        if ((copy = dup(fd)) < 0)
            return -1;
        c->sock = h2o_evloop_socket_create(c->pool->loop, copy, H2O_SOCKET_FLAG_DONT_READ);
        c->sock->data = c;
        c->fd = fd;
        h2o_socket_read_start(c->sock, on_readable);
    }
    if (want_write && !c->write_wanted) {
        c->write_wanted = 1;
        h2o_socket_notify_write(c->sock, on_writable);
    }
    return 0;
}

/* --- connecting ----------------------------------------------------------- */

/* Advances PQconnectPoll; status is what the previous step asked for. */
static void
conn_continue(struct db_conn *c, PostgresPollingStatusType status)
{
    for (;;) {
        if (status == PGRES_POLLING_READING || status == PGRES_POLLING_WRITING) {
            if (conn_watch(c, status == PGRES_POLLING_WRITING) != 0)
                break;
            return;
        }
        if (status != PGRES_POLLING_OK)
            break;
        if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1 || conn_watch(c, 0) != 0)
            break;
        if (c->ever_connected)
            atomic_fetch_add_explicit(&c->pool->counters->reconnects, 1, memory_order_relaxed);
        c->ever_connected = 1;
        c->backoff_ms = 0;
        c->state = C_IDLE;
        pool_dispatch(c->pool);
        return;
    }
    LOG_WARN("could not connect to the database: %s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
    conn_fail(c, DB_UNAVAILABLE);
}

static void
conn_start(struct db_conn *c)
{
    const struct config *cfg = c->pool->cfg;
    /* Later keywords win: the timeout cannot be lifted from the conninfo. */
    const char *keys[] = {"application_name", "dbname", "options", NULL};
    const char *vals[] = {"actloom-shim", cfg->db_conninfo, c->pool->statement_timeout, NULL};

    c->pg = PQconnectStartParams(keys, vals, 1);
    c->state = C_CONNECTING;
    c->deadline_ms = now_ms(c->pool) + cfg->db_connect_timeout_ms;
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_continue(c, PGRES_POLLING_FAILED);
        return;
    }
    conn_continue(c, PGRES_POLLING_WRITING);
}

/* Closes the connection, fails its job with why and schedules a retry. */
static void
conn_fail(struct db_conn *c, enum db_outcome why)
{
    const struct config *cfg = c->pool->cfg;
    struct db_job *job = c->job;
    unsigned jitter;

    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    conn_unwatch(c);
    c->job = NULL;
    c->state = C_DOWN;
    if (why == DB_TIMEOUT) {
        /* The database answered before; only this query was slow. */
        c->backoff_ms = 0;
        c->deadline_ms = now_ms(c->pool);
    } else {
        c->backoff_ms = c->backoff_ms == 0 ? cfg->db_reconnect_min_ms : c->backoff_ms * 2;
        if (c->backoff_ms > cfg->db_reconnect_max_ms)
            c->backoff_ms = cfg->db_reconnect_max_ms;
        jitter = c->backoff_ms / 4 ? (unsigned)rand() % (c->backoff_ms / 4) : 0;
        c->deadline_ms = now_ms(c->pool) + c->backoff_ms + jitter;
    }
    if (job != NULL)
        job_fail(job, why);
    if (!pool_alive(c->pool))
        fail_queue(c->pool, DB_UNAVAILABLE);
}

/* --- running jobs ---------------------------------------------------------- */

static void
conn_flush(struct db_conn *c)
{
    int r = PQflush(c->pg);

    if (r < 0)
        conn_fail(c, DB_UNAVAILABLE);
    else if (r == 1 && conn_watch(c, 1) != 0)
        conn_fail(c, DB_UNAVAILABLE);
}

static void
conn_send(struct db_conn *c, struct db_job *job)
{
    c->job = job;
    c->state = C_BUSY;
    c->deadline_ms = now_ms(c->pool) + c->pool->cfg->db_query_timeout_ms + 1000;
    job->nsyncs = 0;
    for (int i = 0; i < job->nstmts; i++) {
        const struct db_stmt *s = &job->stmts[i];
        int last = i == job->nstmts - 1;
        if (!PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->params, NULL, NULL, 0) ||
            ((s->end_txn || last) && !PQpipelineSync(c->pg))) {
            conn_fail(c, DB_UNAVAILABLE);
            return;
        }
        job->nsyncs += s->end_txn || last;
    }
    conn_flush(c);
}

/*
 * Hands queued jobs to idle connections, oldest first: slow jobs to the
 * hashing connections (those after the first pool_size), the others to the
 * rest.
 */
static void
pool_dispatch(struct db_pool *pool)
{
    for (unsigned i = 0; i < pool->nconns && !h2o_linklist_is_empty(&pool->queue); i++) {
        struct db_conn *c = &pool->conns[i];
        int hashing = i >= pool->cfg->db_pool_size;
        struct db_job *job = NULL;
        if (c->state != C_IDLE)
            continue;
        for (h2o_linklist_t *l = pool->queue.next; l != &pool->queue; l = l->next) {
            struct db_job *j = H2O_STRUCT_FROM_MEMBER(struct db_job, link, l);
            if (j->slow == hashing) {
                job = j;
                break;
            }
        }
        if (job == NULL)
            continue;
        h2o_linklist_unlink(&job->link);
        pool->queued--;
        conn_send(c, job);
    }
}

/*
 * Reads every result that has arrived; finishes the job at its last Sync.
 * After a failure the rest of that transaction is skipped by the server
 * (PIPELINE_ABORTED); a later transaction of the job still runs, but its
 * results are not kept, so that res[i] is always statement i's.
 */
static void
conn_collect(struct db_conn *c)
{
    struct db_job *job = c->job;

    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL)
            continue; /* the end of one statement's results */
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(r);
            if (++job->synced < job->nsyncs)
                continue;
            c->job = NULL;
            c->state = C_IDLE;
            job_finish(job);
            pool_dispatch(c->pool);
            return;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (job->result.nres < DB_MAX_STMTS && job->result.outcome == DB_OK)
                job->result.res[job->result.nres++] = r;
            else
                PQclear(r);
            break;
        case PGRES_PIPELINE_ABORTED:
            PQclear(r);
            break;
        default: {
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                PQclear(r);
                conn_fail(c, DB_UNAVAILABLE);
                return;
            }
            if (job->result.outcome == DB_OK) {
                job->result.outcome = DB_ERROR;
                job->result.failed_stmt = job->seen;
                snprintf(job->result.sqlstate, sizeof(job->result.sqlstate), "%s", state ? state : "XX000");
                const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY),
                           *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
                /* The detail, when there is one, says why: "invalid webhook URL. The host is ...". */
                snprintf(job->result.message, sizeof(job->result.message), "%s%s%s", primary ? primary : "",
                         primary && detail ? ". " : "", primary && detail ? detail : "");
            }
            PQclear(r);
            break;
        }
        }
        job->seen++;
    }
}

static void
on_readable(h2o_socket_t *sock, const char *err)
{
    struct db_conn *c = sock->data;

    if (c->state == C_CONNECTING) {
        conn_continue(c, PQconnectPoll(c->pg));
        return;
    }
    if (!PQconsumeInput(c->pg)) {
        if (c->state == C_BUSY)
            LOG_WARN("lost the database connection: %s", PQerrorMessage(c->pg));
        conn_fail(c, DB_UNAVAILABLE);
        return;
    }
    if (c->state == C_BUSY)
        conn_collect(c);
    else {
        /* Nothing is expected while idle: notices are dropped, a closed connection shows here. */
        PGresult *r;
        while (!PQisBusy(c->pg) && (r = PQgetResult(c->pg)) != NULL)
            PQclear(r);
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_fail(c, DB_UNAVAILABLE);
    }
}

static void
on_writable(h2o_socket_t *sock, const char *err)
{
    struct db_conn *c = sock->data;

    c->write_wanted = 0;
    if (c->state == C_CONNECTING)
        conn_continue(c, PQconnectPoll(c->pg));
    else if (c->state == C_BUSY)
        conn_flush(c);
}

/* --- the pool --------------------------------------------------------------- */

struct db_pool *
db_pool_create(h2o_evloop_t *loop, const struct config *cfg, struct db_counters *counters)
{
    unsigned nconns = cfg->db_pool_size + cfg->db_hash_pool_size;
    struct db_pool *pool = calloc(1, sizeof(*pool));

    if (pool == NULL || (pool->conns = calloc(nconns, sizeof(struct db_conn))) == NULL) {
        free(pool);
        return NULL;
    }
    pool->loop = loop;
    pool->cfg = cfg;
    pool->counters = counters;
    pool->nconns = nconns;
    h2o_linklist_init_anchor(&pool->queue);
    snprintf(pool->statement_timeout, sizeof(pool->statement_timeout), "-c statement_timeout=%u",
             cfg->db_query_timeout_ms);
    for (unsigned i = 0; i < pool->nconns; i++) {
        pool->conns[i].pool = pool;
        pool->conns[i].fd = -1;
        conn_start(&pool->conns[i]);
    }
    return pool;
}

void
db_pool_destroy(struct db_pool *pool)
{
    for (unsigned i = 0; i < pool->nconns; i++) {
        struct db_conn *c = &pool->conns[i];
        if (c->job != NULL)
            db_detach(c->job);
        conn_fail(c, DB_UNAVAILABLE);
    }
    fail_queue(pool, DB_UNAVAILABLE);
    free(pool->conns);
    free(pool);
}

void
db_pool_tick(struct db_pool *pool, uint64_t now)
{
    for (unsigned i = 0; i < pool->nconns; i++) {
        struct db_conn *c = &pool->conns[i];
        if (now < c->deadline_ms)
            continue;
        if (c->state == C_DOWN) {
            conn_start(c);
        } else if (c->state == C_CONNECTING) {
            LOG_WARN("could not connect to the database within %u ms", pool->cfg->db_connect_timeout_ms);
            conn_fail(c, DB_UNAVAILABLE);
        } else if (c->state == C_BUSY) {
            atomic_fetch_add_explicit(&pool->counters->timeouts, 1, memory_order_relaxed);
            conn_fail(c, DB_TIMEOUT);
        }
    }
    /* A job that waited a whole query timeout for a connection gives up. */
    while (!h2o_linklist_is_empty(&pool->queue)) {
        struct db_job *job = H2O_STRUCT_FROM_MEMBER(struct db_job, link, pool->queue.next);
        if (now - job->queued_at_ms < pool->cfg->db_query_timeout_ms)
            break;
        h2o_linklist_unlink(&job->link);
        pool->queued--;
        atomic_fetch_add_explicit(&pool->counters->timeouts, 1, memory_order_relaxed);
        job_fail(job, DB_TIMEOUT);
    }
}

void
db_pool_stats(struct db_pool *pool, struct db_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < pool->nconns; i++) {
        switch (pool->conns[i].state) {
        case C_DOWN:
            out->down++;
            break;
        case C_CONNECTING:
            out->connecting++;
            break;
        case C_IDLE:
            out->up++;
            break;
        case C_BUSY:
            out->up++;
            out->busy++;
            break;
        }
    }
    out->queued = pool->queued;
}
