/*
 * db.h: a per-thread pool of non-blocking libpq connections on the thread's
 * h2o event loop.
 *
 * A job is a short list of statements sent in pipeline mode and closed by one
 * Sync, so they run as one implicit transaction in one round trip: if one
 * fails, the rest are skipped and nothing is committed.  A statement marked
 * end_txn is followed by a Sync of its own, so that the statements after it
 * are another transaction, still in the same round trip; it commits whatever
 * they do, and they run whatever it did.  Its callback runs
 * exactly once, on the loop's thread, with every result or the reason there
 * are none.  A caller that goes away (the client hung up) detaches the job;
 * the statements still finish on their connection, and the callback is not
 * called.
 */
#ifndef ACTLOOM_DB_H
#define ACTLOOM_DB_H

#include <h2o.h>
#include <stdatomic.h>
#include <libpq-fe.h>

#include "config.h"

#define DB_MAX_STMTS 6
#define DB_MAX_PARAMS 8

struct db_pool;
struct db_job;

enum db_outcome {
    DB_OK,          /* every statement succeeded; results in res[] */
    DB_ERROR,       /* a statement failed: sqlstate and failed_stmt say which (the first, if several) */
    DB_UNAVAILABLE, /* no connection to the database: retry later */
    DB_TIMEOUT,     /* the statements took longer than the query timeout */
};

struct db_result {
    enum db_outcome outcome;
    int failed_stmt;
    char sqlstate[6];
    char message[512]; /* DB_ERROR: the primary message and its detail, for handlers that may show them */
    /* Results of the statements before the first failure; owned by the pool, valid during the callback. */
    PGresult *res[DB_MAX_STMTS];
    int nres;
    unsigned retry_after; /* DB_UNAVAILABLE: seconds until the next attempt */
};

/*
 * One statement: SQL text and text-format parameters (NULL for SQL NULL);
 * end_txn commits it, and those before it, on its own.
 */
struct db_stmt {
    const char *sql;
    int nparams;
    const char *params[DB_MAX_PARAMS];
    int end_txn;
};

typedef void (*db_callback)(void *owner, const struct db_result *result);

/* Creates the pool for a loop and starts connecting. */
/*
 * Event counters the pool adds to as things happen; owned by the caller and
 * read by /metrics on any thread, so they outlive the pool and are atomic.
 */
struct db_counters {
    _Atomic unsigned long long reconnects, timeouts;
};

struct db_pool *db_pool_create(h2o_evloop_t *loop, const struct config *cfg, struct db_counters *counters);

/* Closes every connection; jobs still queued are failed as unavailable. */
void db_pool_destroy(struct db_pool *pool);

/*
 * Queues statements (copied) for the next free connection.  Returns the job,
 * or NULL after having called cb with DB_UNAVAILABLE (database down, queue
 * full).
 */
struct db_job *db_submit(struct db_pool *pool, const struct db_stmt *stmts, int nstmts, db_callback cb, void *owner);

/*
 * db_submit for jobs that take long by design (a sign-in hashes a password):
 * they run on database.hash_pool_size connections the pool opens for them
 * alone, so other requests do not queue behind them, and no more of them
 * run at once.
 */
struct db_job *db_submit_slow(struct db_pool *pool, const struct db_stmt *stmts, int nstmts, db_callback cb,
                              void *owner);

/* The owner no longer wants the result. */
void db_detach(struct db_job *job);

/* Pool state for /readyz and /metrics: a snapshot of its connections. */
struct db_pool_stats {
    unsigned up, busy, connecting, down, queued;
};
void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out);

/* Called every tick (tens of milliseconds) by the loop's owner. */
void db_pool_tick(struct db_pool *pool, uint64_t now_ms);

#endif
