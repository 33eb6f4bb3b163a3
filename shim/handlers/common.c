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
    {"54000", 409, "conflict", "Conflict"}, /* a limit reached: at most so many of a company's things */
    {"55000", 409, "conflict", "Conflict"}, /* not in a state that allows it: disabled, not finished */
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

/* A copy of key, NUL-terminated, that lives as long as the request. */
static const char *
pool_key(struct shim_req *r, const char *key, size_t keylen)
{
    char *copy = h2o_mem_alloc_pool(&r->req->pool, keylen + 1);

    memcpy(copy, key, keylen);
    copy[keylen] = '\0';
    return copy;
}

/* handler_limit and handler_limit_delayed: delayed says how a refusal is answered. */
static int
take(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen, int delayed)
{
    struct rl_verdict v;
    uint64_t now = shim_now_ns() / 1000000;

    if (shim.rl_database) {
        /* A refusal the database decided holds until its Retry-After: answered here meanwhile. */
        rl_peek(shim.rl, rc, key, keylen, now, &v);
        if (!v.allowed)
            return limit_reply(r, rc, &v, delayed);
        if (r->nlimits == SHIM_MAX_LIMITS) {
            LOG_ERROR("request %s: more than %d rate-limit takes", r->request_id, SHIM_MAX_LIMITS);
            reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
            return -1;
        }
        r->limits[r->nlimits++] = (struct rl_pending){rc, pool_key(r, key, keylen), delayed};
        return 0;
    }
    rl_take(shim.rl, rc, key, keylen, now, &v);
    return limit_reply(r, rc, &v, delayed);
}

/* A job that begins with the request's takes, and the handler's callback it ends in. */
struct limited_job {
    struct shim_req *r;
    db_callback cb;
    void *owner;
    int nlead;  /* statements before the handler's */
    int nstmts; /* the handler's */
};

/* The database decided a refusal: remembered until its Retry-After (rl_hold), then answered. */
static int
db_refusal(struct shim_req *r, const struct rl_pending *p, const struct rl_verdict *v)
{
    rl_hold(shim.rl, p->rc, p->key, strlen(p->key), shim_now_ns() / 1000000, v->retry_after);
    return limit_reply(r, p->rc, v, p->delayed);
}

/*
 * The takes' verdicts first: their headers, or the 429 of the first refused,
 * then the guard's.  Then a failure of the takes themselves is answered
 * here, and anything else goes to the handler with its own statements'
 * results only.  The takes and the guard are spent: the request's next job
 * begins with those noted after this one.
 */
static void
on_limited(void *owner, const struct db_result *res)
{
    struct limited_job *l = owner;
    struct shim_req *r = l->r;
    struct db_result own = *res;
    struct rl_pending guard = r->guard;
    unsigned nlimits = r->nlimits;
    struct rl_verdict v;

    r->job = NULL;
    r->nlimits = 0;
    r->guard.rc = NULL;
    for (unsigned i = 0; res->nres > 0 && i < nlimits; i++) {
        if (rl_db_verdict(res->res[0], i, r->limits[i].rc, &v) != 0)
            break;
        if (!v.allowed) {
            db_refusal(r, &r->limits[i], &v);
            return;
        }
        limit_reply(r, r->limits[i].rc, &v, r->limits[i].delayed);
    }
    if (guard.rc != NULL && res->nres > 1 && rl_db_verdict(res->res[1], 0, guard.rc, &v) == 0 && !v.allowed) {
        db_refusal(r, &guard, &v);
        return;
    }
    if (res->outcome == DB_ERROR && res->failed_stmt < l->nlead) {
        handler_db_failure(r, res, 0);
        return;
    }
    if (res->outcome == DB_ERROR && res->failed_stmt >= l->nlead + l->nstmts) {
        /* The request's own work committed; only the guard's charge after it failed. */
        LOG_WARN("request %s: could not charge rate-limit class \"%s\": SQLSTATE %s", r->request_id, guard.rc->name,
                 res->sqlstate);
        own.outcome = DB_OK;
    }
    own.nres = res->nres > l->nlead ? res->nres - l->nlead : 0;
    if (own.nres > l->nstmts)
        own.nres = l->nstmts;
    memset(own.res, 0, sizeof(own.res));
    for (int i = 0; i < own.nres; i++)
        own.res[i] = res->res[l->nlead + i];
    if (own.outcome == DB_ERROR)
        own.failed_stmt = res->failed_stmt - l->nlead;
    l->cb(l->owner, &own);
}

struct db_job *
handler_submit(struct shim_req *r, const struct db_stmt *stmts, int nstmts, db_callback cb, void *owner, int slow)
{
    struct db_stmt all[DB_MAX_STMTS], trail[RL_DB_TRAIL_MAX];
    const struct rl_pending *guard = shim.rl_database && r->guard.rc != NULL ? &r->guard : NULL;
    struct limited_job *l;
    int nlead, n;

    if (!shim.rl_database || (r->nlimits == 0 && guard == NULL))
        return slow ? db_submit_slow(r->thread->db, stmts, nstmts, cb, owner)
                    : db_submit(r->thread->db, stmts, nstmts, cb, owner);
    /* A guard rides with the takes' admission: a request with a guard always has a take before it. */
    if (r->nlimits == 0 || nstmts > DB_MAX_STMTS - RL_DB_LEAD_MAX - RL_DB_TRAIL_MAX ||
        (nlead = rl_db_statements(&r->req->pool, r->limits, r->nlimits, guard, all, trail)) < 0) {
        LOG_ERROR("request %s: could not prepare the rate-limit takes", r->request_id);
        reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
        return NULL;
    }
    memcpy(all + nlead, stmts, sizeof(*stmts) * (size_t)nstmts);
    n = nlead + nstmts;
    if (guard != NULL) {
        /* The charge is a transaction of its own, after the request's. */
        all[n - 1].end_txn = 1;
        all[n++] = trail[0];
    }
    l = h2o_mem_alloc_pool(&r->req->pool, sizeof(*l));
    *l = (struct limited_job){r, cb, owner, nlead, nstmts};
    return slow ? db_submit_slow(r->thread->db, all, n, on_limited, l)
                : db_submit(r->thread->db, all, n, on_limited, l);
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
handler_guard(struct shim_req *r, const struct config_rate_class *rc, const char *key, size_t keylen)
{
    struct rl_verdict v;
    uint64_t now = shim_now_ns() / 1000000;

    /* The memory store's state, or a refusal the database decided. */
    rl_peek(shim.rl, rc, key, keylen, now, &v);
    if (!v.allowed)
        return limit_reply(r, rc, &v, 1);
    r->guard = (struct rl_pending){rc, pool_key(r, key, keylen), 1};
    /* Charged now and given back on success: a client that hangs up before the answer pays too. */
    if (!shim.rl_database)
        rl_charge(shim.rl, rc, key, keylen, now);
    return 0;
}

void
handler_guard_settle(struct shim_req *r, int failed)
{
    if (!failed && r->guard.rc != NULL && !shim.rl_database)
        rl_refund(shim.rl, r->guard.rc, r->guard.key, strlen(r->guard.key), shim_now_ns() / 1000000);
    r->guard.rc = NULL;
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
    json_t *body;
    struct validate_issues issues;

    if (req->entity.base == NULL || req->entity.len == 0) {
        validate_issues_init(&issues);
        validate_issue(&issues, "", "required", "a JSON body is required");
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, &issues);
        validate_issues_free(&issues);
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
    validate_issues_init(&issues);
    if (validate(schema, body, &issues) > 0) {
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, &issues);
        validate_issues_free(&issues);
        json_decref(body);
        return NULL;
    }
    validate_issues_free(&issues);
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
