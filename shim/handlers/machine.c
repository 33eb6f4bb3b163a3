/*
 * handlers/machine.c: the versioned machine endpoints, /v{version}/{path}.
 *
 * The checks run in this order, each refusing before any later work is done
 * (and before anything is written):
 *
 *   1. Authorization: Bearer <key>, format and checksum     401
 *   2. the per-key rate limit (class "api")                 429
 *   3. the endpoint: registry loaded, path, method          503, 404, 405
 *   4. content type and size of the body                    415, 413
 *   5. JSON parsing                                         400
 *   6. the body and query schemas                           422
 *   7. the endpoint's rate class                            429
 *   8. one transaction, one round trip: authenticate_api_key(key, scope)
 *      then the function, under that actor                  200 or mapped
 *
 * With the database store (rate_limits.store: database) the takes of 2 and
 * 7 are made in 8's round trip, in a transaction of their own before 8's
 * (handler_submit): a request refused at 3 to 6 is then not counted.
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
#include "registry.h"
#include "reply.h"
#include "routes.h"
#include "validate.h"

#define H(s) s, sizeof(s) - 1
#define AUTH_SQL "SELECT FROM actloom.authenticate_api_key($1::text, $2::text)"

static void
unauthorized(struct shim_req *r, const char *detail)
{
    reply_header(r, "WWW-Authenticate", "Bearer realm=\"actloom\"");
    reply_problem(r, 401, "unauthorized", "Unauthorized", detail, NULL);
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
    struct shim_req *r = owner;

    r->job = NULL;
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

void
handle_machine(struct shim_req *r)
{
    h2o_req_t *req = r->req;
    const struct config *cfg = shim.cfg;
    const struct config *policy = &r->policy->cfg;
    h2o_iovec_t token = bearer_token(req), path;
    char key_id[APIKEY_ID_LEN + 1], allow[128], err[256], *key, *body_text, *query_text;
    const struct config_rate_class *api = config_class(policy, "api"), *rc;
    const struct endpoint *e;
    json_t *body = NULL, *query, *issues;
    const json_t *qs;
    int version;
    size_t rest_at = 0;
    struct db_stmt stmts[2];

    /* 1. the key, without the database */
    if (token.base == NULL) {
        unauthorized(r, "An API key is required: Authorization: Bearer <key>.");
        return;
    }
    if (!apikey_check(token.base, token.len, key_id)) {
        unauthorized(r, NULL);
        return;
    }
    r->actor_kind = "api_key";
    snprintf(r->actor_id, sizeof(r->actor_id), "%s", key_id);

    /* 2. per key */
    if (api != NULL && limit_class(r, api, key_id) != 0)
        return;

    /* 3. the endpoint */
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

    /* 4. the body's type and size */
    if (req->entity.base != NULL && req->entity.len > 0 && !handler_is_json(req)) {
        reply_problem(r, 415, "unsupported-media-type", "Unsupported media type", "The body must be application/json.",
                      NULL);
        return;
    }
    if (req->entity.len > cfg->body_bytes) {
        reply_problem(r, 413, "payload-too-large", "Payload too large", NULL, NULL);
        return;
    }

    /* 5. parsing */
    if (req->entity.base != NULL && req->entity.len > 0 &&
        (body = validate_parse(req->entity.base, req->entity.len, cfg->json_depth, err, sizeof(err))) == NULL) {
        reply_problem(r, 400, "malformed-json", "Malformed JSON", err, NULL);
        return;
    }

    /* 6. the schemas */
    issues = json_array();
    if (e->body_schema != NULL && body == NULL)
        validate_issue(issues, "", "required", "a JSON body is required");
    else if (e->body_schema == NULL && body != NULL)
        validate_issue(issues, "", "body", "this endpoint takes no body");
    else if (body != NULL)
        validate(e->body_schema, body, issues);
    qs = e->query_schema != NULL ? e->query_schema : validate_no_params_schema();
    query = validate_query(qs, req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "",
                           req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0, issues);
    validate(qs, query, issues);
    if (json_array_size(issues) > 0) {
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, issues);
        json_decref(issues);
        json_decref(body);
        json_decref(query);
        return;
    }
    json_decref(issues);

    /* 7. the endpoint's class, unless it is the per-key class already applied */
    rc = config_class(policy, e->rate_class);
    if (rc != NULL && rc != api && limit_class(r, rc, key_id) != 0) {
        json_decref(body);
        json_decref(query);
        return;
    }

    /* 8. the database */
    /*
     * The body goes to PostgreSQL as the client sent it, now known to be
     * strict JSON, so that numbers keep their exact decimal text.
     */
    if (body != NULL) {
        body_text = malloc(req->entity.len + 1);
        if (body_text != NULL) {
            memcpy(body_text, req->entity.base, req->entity.len);
            body_text[req->entity.len] = '\0';
        }
    } else
        body_text = strdup("{}");
    query_text = validate_query_text(query);
    if (body_text == NULL || query_text == NULL) {
        reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
        goto done;
    }
    key = h2o_mem_alloc_pool(&req->pool, token.len + 1);
    memcpy(key, token.base, token.len);
    key[token.len] = '\0';
    stmts[0] = (struct db_stmt){AUTH_SQL, 2, {key, e->scope}};
    stmts[1] = (struct db_stmt){e->call_sql, 2, {body_text, query_text}};
    r->job = handler_submit(r, stmts, 2, on_result, r, 0);
done:
    free(body_text);
    free(query_text);
    json_decref(body);
    json_decref(query);
}
