/*
 * handlers/machine.c: the versioned machine endpoints, /v{version}/{path}.
 *
 * A client that has not proved an API key learns nothing but 401 (or 429,
 * by its address): not which endpoints exist, what they take, nor anything
 * of the key it names.  Nor does it spend any budget but its address's: key
 * ids are public (listings, logs, audit entries), so a class keyed on one
 * before the secret is checked lets anyone spend that key's budget.  The
 * checks run in this order, each refusing before any later work is done
 * (and before anything is written):
 *
 *   1. the client address, class "api_address"                 429
 *   2. Authorization: Bearer <key>, format and checksum        401
 *   3. unless the database accepted this very key, secret and
 *      all, in the last api_keys.verified_ttl_s (verified.h):
 *      a. the address's failed authentications, class
 *         "api_auth_failed" (handler_guard)                    429
 *      b. one round trip: authenticate_api_key(key); only a
 *         refusal counts in "api_auth_failed"                  401
 *   -- the key is proved: its own classes, and answers that tell --
 *   4. the key's class "api"                                   429
 *   5. the endpoint: registry loaded, path, method             503, 404, 405
 *   6. content type and size of the body                       415, 413
 *   7. JSON parsing                                            400
 *   8. the body and query schemas                              422
 *   9. the endpoint's rate class                               429
 *  10. one transaction, one round trip: authenticate_api_key(key,
 *      scope) then the function, under that actor              200 or mapped
 *
 * A key in use skips step 3: the requests the database authenticates at
 * step 10 renew its entry, so one round trip serves it.  Step 3 costs a key
 * that is new to this shim, or idle for longer than the TTL, one more round
 * trip; and it spares the database the guesses: a client trying keys gets
 * "api_auth_failed" of them checked per address, however many it sends.  A
 * body is not even parsed before the key is proved, and a large one is
 * parsed and validated on an offload thread (offload.h), while the loop
 * goes on serving.
 *
 * The entry grants nothing: step 10 authenticates every request in its own
 * transaction, and a refusal there (the key was revoked or expired since)
 * forgets it.  What it lets the shim do without asking is charge the key's
 * classes (the request carries the very key the database accepted) and give
 * the answers of steps 4 to 9 (none holds data): a revoked key's holder can
 * get those for up to the TTL after its last request the database accepted.
 *
 * With the database store (rate_limits.store: database) the takes are made
 * in the next round trip, in a transaction of their own before its work
 * (handler_submit), with 3a's check and charge around 3b's statement: a
 * request answered without the database (401 at step 2; steps 4 to 9 with
 * a recent key) is then not counted.
 *
 * The key goes to the database as a parameter and nowhere else: it is
 * never logged, and the access log names the key by its public id.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "handlers/common.h"
#include "metrics.h"
#include "offload.h"
#include "registry.h"
#include "reply.h"
#include "routes.h"
#include "validate.h"
#include "verified.h"

#define VERIFY_SQL "SELECT FROM actloom.authenticate_api_key($1::text)"
#define AUTH_SQL "SELECT FROM actloom.authenticate_api_key($1::text, $2::text)"

/* The request's hold on a body checked off the loop: a request that goes away detaches it. */
struct body_hold {
    struct offload_job *job; /* NULL once the job came back */
};

/* A request while the database, or an offload thread, works on it. */
struct machine_req {
    struct shim_req *r;
    char *key; /* as the client sent it, NUL-terminated */
    char key_id[APIKEY_ID_LEN + 1];
    struct verified_key verified;
    int renew; /* the database's acceptance is worth recording again */
    struct body_hold *hold;
};

/* The one answer to a request that did not prove a key, whatever it lacked. */
static void
unauthorized(struct shim_req *r)
{
    reply_header(r, "WWW-Authenticate", "Bearer realm=\"actloom\"");
    reply_problem(r, 401, "unauthorized", "Unauthorized", "A valid API key is required: Authorization: Bearer <key>.",
                  NULL);
}

static uint64_t
now_ms(void)
{
    return shim_now_ns() / 1000000;
}

/* Applies a class by each key it names that is known before the database. */
static int
limit_class(struct shim_req *r, const struct config_rate_class *rc, const char *key_id)
{
    char key[64];
    int n;

    if (rc->keys & RL_KEY_API_KEY) {
        n = snprintf(key, sizeof(key), "k:%s", key_id);
        if (handler_limit(r, rc, key, (size_t)n) != 0)
            return -1;
    }
    if (rc->keys & RL_KEY_ADDRESS) {
        n = snprintf(key, sizeof(key), "a:%s", r->client);
        if (handler_limit(r, rc, key, (size_t)n) != 0)
            return -1;
    }
    return 0;
}

/* The Bearer token of the one Authorization header, or {NULL, 0}. */
static h2o_iovec_t
bearer_token(h2o_req_t *req)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t v;

    if (at == -1 || h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, at) != -1)
        return h2o_iovec_init(NULL, 0);
    v = req->headers.entries[at].value;
    if (v.len < 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
        return h2o_iovec_init(NULL, 0);
    return h2o_iovec_init(v.base + 7, v.len - 7);
}

static void
on_result(void *owner, const struct db_result *res)
{
    struct machine_req *m = owner;
    struct shim_req *r = m->r;

    r->job = NULL;
    if (res->outcome == DB_ERROR && res->failed_stmt == 0 && strncmp(res->sqlstate, "28", 2) == 0) {
        verified_forget(shim.verified, &m->verified);
        unauthorized(r);
        return;
    }
    if (m->renew && (res->outcome == DB_OK || (res->outcome == DB_ERROR && res->failed_stmt > 0)))
        verified_add(shim.verified, &m->verified, now_ms());
    switch (res->outcome) {
    case DB_OK: {
        PGresult *out = res->nres > 1 ? res->res[1] : NULL;
        if (out == NULL || PQntuples(out) != 1 || PQgetisnull(out, 0, 0)) {
            reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
            return;
        }
        /* The text is the function's jsonb, which PostgreSQL has already checked. */
        reply_send(r, 200, "application/json", PQgetvalue(out, 0, 0), (size_t)PQgetlength(out, 0, 0));
        return;
    }
    default:
        handler_db_failure(r, res, HANDLER_BEARER);
        return;
    }
}

/* Parses "/v<1-999>/<rest>"; returns the version or -1. */
static int
parse_versioned(h2o_iovec_t path, size_t *rest_at)
{
    int version = 0;
    size_t i = 2;

    while (i < path.len && i < 5 && isdigit((unsigned char)path.base[i]))
        version = version * 10 + (path.base[i++] - '0');
    if (i == 2 || path.base[2] == '0' || i >= path.len || path.base[i] != '/')
        return -1;
    *rest_at = i + 1;
    return version;
}

/* A body at least this large is parsed and validated off the loop (offload.h). */
#define OFFLOAD_BYTES (64 * 1024)

/* Steps 7 and 8 for the body: what parsing and the body schema found. */
struct body_check {
    struct machine_req *m;
    const struct endpoint *e;
    struct registry *registry; /* offloaded: the job's own reference to e's snapshot */
    char *text;                /* offloaded: a copy of the body, which the request may outlive */
    size_t len;
    unsigned depth;
    json_t *body;  /* NULL: no body, or malformed (err) */
    char err[256]; /* parsing's message; empty when it parsed */
    struct validate_issues issues;
};

static void
check_body(void *arg)
{
    struct body_check *c = arg;

    if (c->len == 0)
        return;
    if ((c->body = validate_parse(c->text, c->len, c->depth, c->err, sizeof(c->err))) == NULL)
        return;
    if (c->e->body_schema != NULL)
        validate(c->e->body_schema, c->body, &c->issues);
}

/* Steps 7 to 10, once the body is checked; releases nothing of c. */
static void
serve_checked(struct machine_req *m, struct body_check *c)
{
    struct shim_req *r = m->r;
    h2o_req_t *req = r->req;
    const struct endpoint *e = c->e;
    const struct config_rate_class *api = config_class(&r->policy->cfg, "api"), *rc;
    const json_t *qs;
    json_t *query;
    char *body_text, *query_text;
    struct db_stmt stmts[2];

    /* 7. parsing */
    if (c->len > 0 && c->body == NULL) {
        reply_problem(r, 400, "malformed-json", "Malformed JSON", c->err, NULL);
        return;
    }

    /* 8. the schemas: the body's issues came first */
    if (e->body_schema != NULL && c->body == NULL)
        validate_issue(&c->issues, "", "required", "a JSON body is required");
    else if (e->body_schema == NULL && c->body != NULL)
        validate_issue(&c->issues, "", "body", "this endpoint takes no body");
    qs = e->query_schema != NULL ? e->query_schema : validate_no_params_schema();
    query = validate_query(qs, req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "",
                           req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0, &c->issues);
    validate(qs, query, &c->issues);
    if (c->issues.count > 0) {
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, &c->issues);
        json_decref(query);
        return;
    }

    /* 9. the endpoint's class, unless it is the per-key class already applied */
    rc = config_class(&r->policy->cfg, e->rate_class);
    if (rc != NULL && rc != api && limit_class(r, rc, m->key_id) != 0) {
        json_decref(query);
        return;
    }

    /* 10. the database */
    /*
     * The body goes to PostgreSQL as the client sent it, now known to be
     * strict JSON, so that numbers keep their exact decimal text.
     */
    if (c->body != NULL) {
        body_text = malloc(req->entity.len + 1);
        if (body_text != NULL) {
            memcpy(body_text, req->entity.base, req->entity.len);
            body_text[req->entity.len] = '\0';
        }
    } else
        body_text = strdup("{}");
    query_text = validate_query_text(query);
    json_decref(query);
    if (body_text == NULL || query_text == NULL) {
        reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
    } else {
        stmts[0] = (struct db_stmt){AUTH_SQL, 2, {m->key, e->scope}};
        stmts[1] = (struct db_stmt){e->call_sql, 2, {body_text, query_text}};
        r->job = handler_submit(r, stmts, 2, on_result, m, 0);
    }
    free(body_text);
    free(query_text);
}

static void
on_hold_dispose(void *p)
{
    struct body_hold *hold = p;

    if (hold->job != NULL)
        offload_detach(hold->job);
}

/* An offloaded check came back: the request goes on, unless it went away. */
static void
on_body_checked(void *arg, int detached)
{
    struct body_check *c = arg;

    if (!detached) {
        c->m->hold->job = NULL;
        serve_checked(c->m, c);
    }
    json_decref(c->body);
    validate_issues_free(&c->issues);
    registry_release(c->registry);
    free(c->text);
    free(c);
}

/* Steps 4 to 10, for a proved key. */
static void
serve(struct machine_req *m)
{
    struct shim_req *r = m->r;
    h2o_req_t *req = r->req;
    const struct config *cfg = shim.cfg;
    const struct config_rate_class *api = config_class(&r->policy->cfg, "api");
    const struct endpoint *e;
    h2o_iovec_t path;
    char allow[128];
    int version;
    size_t rest_at = 0;
    struct body_check *c, inline_check;
    struct body_hold *hold;

    /* 4. per key */
    if (api != NULL && limit_class(r, api, m->key_id) != 0)
        return;

    /* 5. the endpoint */
    r->registry = registry_acquire();
    if (!r->registry->loaded) {
        reply_header(r, "Retry-After", "1");
        reply_problem(r, 503, "unavailable", "Service unavailable", "The endpoint registry is not loaded yet.", NULL);
        return;
    }
    path = h2o_iovec_init(req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
    version = parse_versioned(path, &rest_at);
    e = version < 0 ? NULL
                    : registry_find(r->registry, version, path.base + rest_at, path.len - rest_at, req->method.base,
                                    req->method.len, allow, sizeof(allow));
    if (e == NULL) {
        if (version >= 0 && allow[0] != '\0') {
            reply_header(r, "Allow", allow);
            reply_problem(r, 405, "method-not-allowed", "Method not allowed", NULL, NULL);
        } else
            reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
        return;
    }
    r->route = e->route;

    /* 6. the body's type and size */
    if (req->entity.base != NULL && req->entity.len > 0 && !handler_is_json(req)) {
        reply_problem(r, 415, "unsupported-media-type", "Unsupported media type", "The body must be application/json.",
                      NULL);
        return;
    }
    if (req->entity.len > cfg->body_bytes) {
        reply_problem(r, 413, "payload-too-large", "Payload too large", NULL, NULL);
        return;
    }

    /* 7 and 8 for the body: here when small, off the loop when large */
    if (req->entity.len < OFFLOAD_BYTES) {
        inline_check =
            (struct body_check){m, e, NULL, req->entity.base, req->entity.base ? req->entity.len : 0, cfg->json_depth};
        validate_issues_init(&inline_check.issues);
        check_body(&inline_check);
        serve_checked(m, &inline_check);
        json_decref(inline_check.body);
        validate_issues_free(&inline_check.issues);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->text = malloc(req->entity.len)) == NULL) {
        free(c);
        reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
        return;
    }
    memcpy(c->text, req->entity.base, req->entity.len);
    c->m = m;
    c->e = e;
    c->registry = registry_retain(r->registry);
    c->len = req->entity.len;
    c->depth = cfg->json_depth;
    validate_issues_init(&c->issues);
    hold = h2o_mem_alloc_shared(&req->pool, sizeof(*hold), on_hold_dispose);
    m->hold = hold;
    if ((hold->job = offload_submit(r->thread, check_body, on_body_checked, c)) == NULL) {
        on_body_checked(c, 1);
        reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
    }
}

/* Step 3b's answer: the key is proved, or the failure is charged to its address. */
static void
on_verified(void *owner, const struct db_result *res)
{
    struct machine_req *m = owner;
    struct shim_req *r = m->r;

    r->job = NULL;
    if (res->outcome == DB_ERROR && strncmp(res->sqlstate, "28", 2) == 0) {
        handler_guard_settle(r, 1);
        unauthorized(r);
        return;
    }
    handler_guard_settle(r, 0);
    if (res->outcome != DB_OK) {
        handler_db_failure(r, res, HANDLER_BEARER);
        return;
    }
    verified_add(shim.verified, &m->verified, now_ms());
    m->renew = 0;
    serve(m);
}

void
handle_machine(struct shim_req *r)
{
    const struct config *policy = &r->policy->cfg;
    const struct config_rate_class *address = config_class(policy, "api_address"), *failed;
    h2o_iovec_t token;
    struct machine_req *m;
    char key[64];
    int n = snprintf(key, sizeof(key), "a:%s", r->client);
    uint64_t ttl = (uint64_t)shim.cfg->verified_ttl_s * 1000, age;
    struct db_stmt stmt;

    /* 1. per address, before anything else */
    if (address != NULL && handler_limit(r, address, key, (size_t)n) != 0)
        return;

    /* 2. the key's shape, without the database */
    m = h2o_mem_alloc_pool(&r->req->pool, sizeof(*m));
    memset(m, 0, sizeof(*m));
    m->r = r;
    token = bearer_token(r->req);
    if (token.base == NULL || !apikey_check(token.base, token.len, m->key_id)) {
        unauthorized(r);
        return;
    }
    m->key = h2o_mem_alloc_pool(&r->req->pool, token.len + 1);
    memcpy(m->key, token.base, token.len);
    m->key[token.len] = '\0';
    r->actor_kind = "api_key";
    snprintf(r->actor_id, sizeof(r->actor_id), "%s", m->key_id);

    /*
     * 3. the secret, unless the database accepted this key lately.  The
     * entry is renewed by step 10 once half the TTL has passed, which keeps
     * a key in use proved at one lock a request.
     */
    verified_key_of(m->key, token.len, &m->verified);
    if (verified_recent(shim.verified, &m->verified, now_ms(), ttl, &age)) {
        m->renew = age >= ttl / 2;
        serve(m);
        return;
    }
    failed = config_class(policy, "api_auth_failed");
    if (failed != NULL && handler_guard(r, failed, key, (size_t)n) != 0)
        return;
    stmt = (struct db_stmt){VERIFY_SQL, 1, {m->key}};
    r->job = handler_submit(r, &stmt, 1, on_verified, m, 0);
}
