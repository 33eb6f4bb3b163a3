/*
 * handlers/common.c: rate limits, JSON bodies and database failures, the
 * same for every handler (handlers/common.h).
 */
#include "handlers/common.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "ratelimit_db.h"
#include "reply.h"
#include "validate.h"

/* What a database error becomes; the first matching prefix wins. */
static const struct {
    const char *sqlstate_prefix;
    int status;
    const char *slug;
    const char *title;
} db_errors[] = {
    {"28", 401, "unauthorized", "Unauthorized"},
    {"42501", 403, "forbidden", "Forbidden"},
    {"P0002", 404, "not-found", "Not found"},
    {"02", 404, "not-found", "Not found"},
    {"23", 409, "conflict", "Conflict"},
    {"22", 422, "unprocessable", "Unprocessable request"},
    {"57014", 504, "timeout", "The request took too long"},
    {"40", 503, "unavailable", "Service unavailable"},
    {"53", 503, "unavailable", "Service unavailable"},
    {"57P", 503, "unavailable", "Service unavailable"},
    {"08", 503, "unavailable", "Service unavailable"},
};

/*
 * The headers of one take, whichever store made it, and the 429 of a
 * refusal, sent late when delayed; returns -1 after a 429.
 */
static int
limit_reply(struct shim_req *r, const struct config_rate_class *rc, const struct rl_verdict *v, int delayed)
{
    char policy[128], state[128], retry[16], detail[160];

    rl_policy_header(rc, policy, sizeof(policy));
    rl_state_header(rc, v, state, sizeof(state));
    reply_header(r, "RateLimit-Policy", policy);
    reply_header(r, "RateLimit", state);
    if (v->allowed)
        return 0;
    snprintf(retry, sizeof(retry), "%u", v->retry_after);
    reply_header(r, "Retry-After", retry);
    metrics_rate_limited(r->thread->metrics, rc->name);
    snprintf(detail, sizeof(detail), "Rate limit \"%s\" exceeded: %u requests per %u seconds. Retry in %u seconds.",
             rc->name, rc->limit, rc->period, v->retry_after);
    if (delayed)
        reply_problem_delayed(r, 429, "rate-limited", "Too many requests", detail);
    else
        reply_problem(r, 429, "rate-limited", "Too many requests", detail, NULL);
    return -1;
}

/* handler_limit and handler_limit_delayed: delayed says how a refusal is answered. */
static int
take(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen, int delayed)
{
    struct rl_verdict v;
    char *copy;

    if (shim.rl_database) {
        if (r->nlimits == SHIM_MAX_LIMITS) {
            LOG_ERROR("request %s: more than %d rate-limit takes", r->request_id, SHIM_MAX_LIMITS);
            reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
            return -1;
        }
        copy = h2o_mem_alloc_pool(&r->req->pool, keylen + 1);
        memcpy(copy, key, keylen);
        copy[keylen] = '\0';
        r->limits[r->nlimits++] = (struct rl_pending){rc, copy, delayed};
        return 0;
    }
    rl_take(shim.rl, rc, key, keylen, shim_now_ns() / 1000000, &v);
    return limit_reply(r, rc, &v, delayed);
}

/* A job that begins with the request's takes, and the handler's callback it ends in. */
struct limited_job {
    struct shim_req *r;
    db_callback cb;
    void *owner;
};

/*
 * The takes' verdicts first: their headers, or the 429 of the first refused.
 * Then a failure of the takes themselves is answered here, and anything else
 * goes to the handler without the two leading statements.
 */
static void
on_limited(void *owner, const struct db_result *res)
{
    struct limited_job *l = owner;
    struct shim_req *r = l->r;
    struct db_result own = *res;

    r->job = NULL;
    for (unsigned i = 0; res->nres > 0 && i < r->nlimits; i++) {
        struct rl_verdict v;
        if (rl_db_verdict(res->res[0], i, r->limits[i].rc, &v) != 0)
            break;
        if (limit_reply(r, r->limits[i].rc, &v, r->limits[i].delayed) != 0)
            return;
    }
    if (res->outcome == DB_ERROR && res->failed_stmt < RL_DB_STMTS) {
        handler_db_failure(r, res, 0);
        return;
    }
    own.nres = res->nres > RL_DB_STMTS ? res->nres - RL_DB_STMTS : 0;
    memset(own.res, 0, sizeof(own.res));
    for (int i = RL_DB_STMTS; i < res->nres && i < DB_MAX_STMTS; i++)
        own.res[i - RL_DB_STMTS] = res->res[i];
    if (res->outcome == DB_ERROR)
        own.failed_stmt = res->failed_stmt - RL_DB_STMTS;
    l->cb(l->owner, &own);
}

struct db_job *
handler_submit(struct shim_req *r, const struct db_stmt *stmts, int nstmts, db_callback cb, void *owner, int slow)
{
    struct db_stmt all[DB_MAX_STMTS];
    struct limited_job *l;

    if (r->nlimits == 0)
        return slow ? db_submit_slow(r->thread->db, stmts, nstmts, cb, owner)
                    : db_submit(r->thread->db, stmts, nstmts, cb, owner);
    if (nstmts > DB_MAX_STMTS - RL_DB_STMTS || rl_db_statements(&r->req->pool, r->limits, r->nlimits, all) != 0) {
        LOG_ERROR("request %s: could not prepare the rate-limit takes", r->request_id);
        reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
        return NULL;
    }
    memcpy(all + RL_DB_STMTS, stmts, sizeof(*stmts) * (size_t)nstmts);
    l = h2o_mem_alloc_pool(&r->req->pool, sizeof(*l));
    *l = (struct limited_job){r, cb, owner};
    return slow ? db_submit_slow(r->thread->db, all, nstmts + RL_DB_STMTS, on_limited, l)
                : db_submit(r->thread->db, all, nstmts + RL_DB_STMTS, on_limited, l);
}

int
handler_limit(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen)
{
    return take(r, rc, key, keylen, 0);
}

int
handler_limit_delayed(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen)
{
    return take(r, rc, key, keylen, 1);
}

int
handler_is_json(h2o_req_t *req)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h2o_iovec_t v;
    size_t i = 16;

    if (at == -1)
        return 0;
    v = req->headers.entries[at].value;
    if (v.len < 16 || strncasecmp(v.base, "application/json", 16) != 0)
        return 0;
    while (i < v.len && v.base[i] == ' ')
        i++;
    if (i == v.len)
        return 1;
    if (v.base[i++] != ';')
        return 0;
    while (i < v.len && v.base[i] == ' ')
        i++;
    return v.len - i == 13 && strncasecmp(v.base + i, "charset=utf-8", 13) == 0;
}

json_t *
handler_body(struct shim_req *r, const json_t *schema)
{
    h2o_req_t *req = r->req;
    char err[256];
    json_t *body, *issues;

    if (req->entity.base == NULL || req->entity.len == 0) {
        issues = json_array();
        validate_issue(issues, "", "required", "a JSON body is required");
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, issues);
        json_decref(issues);
        return NULL;
    }
    if (!handler_is_json(req)) {
        reply_problem(r, 415, "unsupported-media-type", "Unsupported media type", "The body must be application/json.",
                      NULL);
        return NULL;
    }
    if (req->entity.len > shim.cfg->body_bytes) {
        reply_problem(r, 413, "payload-too-large", "Payload too large", NULL, NULL);
        return NULL;
    }
    if ((body = validate_parse(req->entity.base, req->entity.len, shim.cfg->json_depth, err, sizeof(err))) == NULL) {
        reply_problem(r, 400, "malformed-json", "Malformed JSON", err, NULL);
        return NULL;
    }
    issues = json_array();
    if (validate(schema, body, issues) > 0) {
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, issues);
        json_decref(issues);
        json_decref(body);
        return NULL;
    }
    json_decref(issues);
    return body;
}

void
handler_db_failure(struct shim_req *r, const struct db_result *res, unsigned flags)
{
    char retry[16];

    switch (res->outcome) {
    case DB_OK:
        break;
    case DB_UNAVAILABLE:
        snprintf(retry, sizeof(retry), "%u", res->retry_after);
        reply_header(r, "Retry-After", retry);
        reply_problem(r, 503, "unavailable", "Service unavailable", "The database is not reachable.", NULL);
        return;
    case DB_TIMEOUT:
        reply_problem(r, 504, "timeout", "The request took too long", NULL, NULL);
        return;
    case DB_ERROR:
        for (size_t i = 0; i < sizeof(db_errors) / sizeof(db_errors[0]); i++) {
            int status = db_errors[i].status;
            int show = (flags & HANDLER_SHOW_MESSAGE) && res->message[0] != '\0' &&
                       (status == 403 || status == 404 || status == 409 || status == 422);
            if (strncmp(res->sqlstate, db_errors[i].sqlstate_prefix, strlen(db_errors[i].sqlstate_prefix)) != 0)
                continue;
            if (status == 401 && (flags & HANDLER_BEARER))
                reply_header(r, "WWW-Authenticate", "Bearer realm=\"actloom\"");
            if (status == 503)
                reply_header(r, "Retry-After", "1");
            reply_problem(r, status, db_errors[i].slug, db_errors[i].title, show ? res->message : NULL, NULL);
            return;
        }
        break;
    }
    reply_problem(r, 500, "internal", "Internal server error",
                  "The request id identifies this failure in the server's logs.", NULL);
    fprintf(stderr, "actloom-shim: request %s: database error %s in statement %d\n", r->request_id, res->sqlstate,
            res->failed_stmt);
}
