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
 *
 * A request may also have a guard: a class checked before its work and
 * charged only when that work fails (failed API-key authentications of an
 * address).  actloom.rate_limit_guard() checks it in the first transaction,
 * taking nothing, and withdraws the admission when it would refuse; a third
 * transaction after the request's own, actloom.rate_limit_fail(), charges
 * it when the admission is still there, that is when the request's own
 * transaction did not commit.
 */
#ifndef ACTLOOM_RATELIMIT_DB_H
#define ACTLOOM_RATELIMIT_DB_H

#include "db.h"
#include "ratelimit.h"

/* The most statements before a request's own, and after them. */
#define RL_DB_LEAD_MAX 3
#define RL_DB_TRAIL_MAX 1

/*
 * Fills lead with the statements for the takes limits[0..n-1] (n is 1 to
 * 16), the guard's check when guard is not NULL, and the admission's
 * consumption, which a request's own statements follow; and trail with the
 * guard's charge, which comes after them.  Their text is allocated from
 * pool.  Returns how many lead statements there are (the admission's
 * consumption is the last of them), or -1 when no random admission id could
 * be had; the trail has one statement with a guard, none without.
 */
int rl_db_statements(h2o_mem_pool_t *pool, const struct rl_pending *limits, unsigned n, const struct rl_pending *guard,
                     struct db_stmt lead[RL_DB_LEAD_MAX], struct db_stmt trail[RL_DB_TRAIL_MAX]);

/*
 * The verdict of take i of class rc from the first statement's result (or
 * of the guard, i 0, from the guard's): 0, or -1 when there is no such row
 * (an earlier take was refused) or it is of another class.
 */
int rl_db_verdict(const PGresult *res, unsigned i, const struct config_rate_class *rc, struct rl_verdict *out);

/* Deletes expired states (actloom.rate_limit_purge()); nothing waits for it. */
void rl_db_purge(struct db_pool *pool);

#endif
