/*
 * reply.h: every response the shim's handlers send goes through here, so
 * that each carries the security headers and a request id, is counted in the
 * metrics and is written to the access log, exactly once.
 *
 * Problem types (application/problem+json, RFC 9457) are stable URNs,
 * "urn:actloom:problem:<slug>"; README.md lists them.
 */
#ifndef ACTLOOM_REPLY_H
#define ACTLOOM_REPLY_H

#include "shim.h"
#include "validate.h"

/* Access log lines are written when this much is pending, and every tick. */
#define REPLY_LOG_BUFFER 65536

/* Writes the thread's pending access log lines. */
void reply_flush_log(struct shim_thread *thread);

/* Starts a request: its state, request id and client address. */
struct shim_req *reply_begin(h2o_req_t *req, struct shim_thread *thread, int on_metrics_listener);

/* Adds a response header (name and value are copied). */
void reply_header(struct shim_req *r, const char *name, const char *value);

/* Sends a body with a content type. */
void reply_send(struct shim_req *r, int status, const char *content_type, const char *body, size_t len);

/*
 * The security headers every response carries (no-store, nosniff, framing,
 * referrer, CSP, and HSTS under TLS); reply_send adds them, and so does the
 * filter on the responses h2o makes itself.
 */
void reply_security_headers(h2o_req_t *req);

/*
 * Sends a problem: slug names the type, title is fixed per type, detail is
 * a sentence for this occurrence (may be NULL), issues the validation issues
 * (may be NULL): "issues" lists the first of them, "issue_count" says how
 * many there were.
 */
void reply_problem(struct shim_req *r, int status, const char *slug, const char *title, const char *detail,
                   const struct validate_issues *issues);

/*
 * reply_problem without issues, sent rate_limits.refusal_delay_ms from now
 * rather than at once: for refused sign-ins, so that a client guessing
 * passwords as fast as it can gets one answer per delay and connection, and
 * costs the shim as little.  The request waits on a timer of its thread's
 * loop, which goes on serving; a request whose client goes away stops
 * waiting.  When the delay is 0, or the thread already holds
 * rate_limits.refusals_held_max requests, the answer goes at once.
 */
void reply_problem_delayed(struct shim_req *r, int status, const char *slug, const char *title, const char *detail);

#endif
