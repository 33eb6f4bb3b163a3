/*
 * handlers/common.h: what the handlers share: rate limits, JSON request
 * bodies, and the answer to a database job that did not succeed.
 */
#ifndef ACTLOOM_HANDLERS_COMMON_H
#define ACTLOOM_HANDLERS_COMMON_H

#include "shim.h"

/*
 * Takes one request of class rc for key, adds the RateLimit-Policy and
 * RateLimit headers, and on refusal answers 429 (Retry-After, a problem
 * naming the policy) and returns -1.
 *
 * With the database store the take is only noted, and returns 0: it is
 * made by the request's job (handler_submit), which answers the 429 in the
 * same way.  A request answered without a job is then not counted.
 */
int handler_limit(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen);

/*
 * Submits the request's statements (at most DB_MAX_STMTS - RL_DB_LEAD_MAX -
 * RL_DB_TRAIL_MAX; db_submit, or db_submit_slow when slow) and returns the
 * job for r->job.  Takes noted by handler_limit, and the guard of
 * handler_guard, go with them in the same round trip (ratelimit_db.h): cb
 * then sees only the request's own results (res[0] is stmts[0]'s), and is
 * not called when a take or the guard refused, or they failed, which is
 * answered here.  The takes are then spent: a later job of the request
 * begins with the takes noted after this one.
 */
struct db_job *handler_submit(struct shim_req *r, const struct db_stmt *stmts, int nstmts, db_callback cb, void *owner,
                              int slow);

/*
 * handler_limit for credential guessing (sign-in, sign-up): the 429 is sent
 * after rate_limits.refusal_delay_ms (reply_problem_delayed).
 *
 * With the database store, a refusal the database decided is remembered by
 * the shim until its Retry-After (rl_hold): handler_limit and
 * handler_limit_delayed answer the 429 themselves meanwhile, at no cost to
 * the database.
 */
int handler_limit_delayed(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen);

/*
 * A guard: class rc is checked for key before the request's next job, and
 * counts only when that job's work fails (handler_guard_settle): for failed
 * API-key authentications, which must not cost genuine keys anything.
 * Refuses as handler_limit_delayed does, and returns -1 then.  The count is
 * made whatever the state, past the limit if need be, so that attempts
 * which all passed the check at once are all paid for.  The memory store
 * charges it here and gives it back on success, so that a client that
 * hangs up before the answer pays too; the database store checks it, and
 * charges it when the work did not commit, in the job's own round trip
 * (ratelimit_db.h), and the job must take at least one class as well
 * (handler_limit).
 */
int handler_guard(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen);

/* Ends the guard once its job answered; failed: the work failed, and the guard counts. */
void handler_guard_settle(struct shim_req *r, int failed);

/* Whether the body is declared as JSON (UTF-8 is the only charset allowed). */
int handler_is_json(h2o_req_t *req);

/*
 * The request's body, which must be present, JSON, within the size and
 * depth limits and valid against schema.  Answers 415, 413, 400 or 422 (with
 * every failing field) and returns NULL otherwise.  The caller owns the
 * result.
 */
json_t *handler_body(struct shim_req *r, const json_t *schema);

/* Flags of handler_db_failure. */
#define HANDLER_BEARER 0x1       /* a 401 names the Bearer scheme (API keys) */
#define HANDLER_SHOW_MESSAGE 0x2 /* 403, 404, 409 and 422 carry the database's message */

/*
 * Answers a job that did not succeed: 503 with Retry-After when the
 * database is unreachable, 504 on timeout, and for an error the status its
 * SQLSTATE maps to (28 401, 42501 403, P0002 and 02 404, 23 409, 22 422, 40
 * 53 57P 08 503, 57014 504), anything else 500 with the request id and no
 * SQL text.  HANDLER_SHOW_MESSAGE is for statements that call only
 * actloom's own functions, whose messages are written for people.
 */
void handler_db_failure(struct shim_req *r, const struct db_result *res, unsigned flags);

#endif
