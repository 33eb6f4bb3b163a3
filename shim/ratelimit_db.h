/*
 * ratelimit_db.h: the database store of the rate limiter
 * (rate_limits.store: database), which several shims share.
 *
 * A request's takes ride in its own job, ahead of its statements, in one
 * round trip but two transactions (extension/sql/90_ratelimit.sql):
 *
 *   1. actloom.rate_limit_admit(admission, ...) takes, in order, stopping
 *      at the first refusal, and commits whatever follows: an allowed
 *      request counts even when its work then fails, as in the memory store.
 *      When every take is allowed it records the admission, a random id
 *      chosen here for this request.
 *   2. actloom.rate_limit_admitted(admission), then the request's own
 *      statements: it raises unless the first transaction admitted the
 *      request, so a refused request changes nothing else.
 */
#ifndef ACTLOOM_RATELIMIT_DB_H
#define ACTLOOM_RATELIMIT_DB_H

#include "db.h"
#include "ratelimit.h"

/* The statements a request's own follow. */
#define RL_DB_STMTS 2

/*
 * Fills out with the two statements for the takes limits[0..n-1] (n is 1 to
 * 16), their text allocated from pool.  Returns -1 when no random admission
 * id could be had.
 */
int rl_db_statements(h2o_mem_pool_t *pool, const struct rl_pending *limits, unsigned n,
                     struct db_stmt out[RL_DB_STMTS]);

/*
 * The verdict of take i of class rc from the first statement's result: 0,
 * or -1 when there is no such row (an earlier take was refused) or it is of
 * another class.
 */
int rl_db_verdict(const PGresult *res, unsigned i, const struct config_rate_class *rc, struct rl_verdict *out);

/* Deletes expired states (actloom.rate_limit_purge()); nothing waits for it. */
void rl_db_purge(struct db_pool *pool);

#endif
