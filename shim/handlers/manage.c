/*
 * handlers/manage.c: the management API of signed-in people, /api/...
 *
 * One table below lists every endpoint.  Each request, in order:
 *
 *   1. the session cookie and its token (session.c)                  401
 *   2. state-changing methods: Origin and CSRF token (session.c)     403
 *   3. the route: path and method                               404, 405
 *   4. body: content type, size, JSON, schema; query: schema    415, 413, 400, 422
 *   5. the route's rate class, keyed by the user                     429
 *   6. one transaction, one round trip: act_as_session(session,
 *      company of the path) then the route's statement           as mapped
 *
 * Authorization is the database's: act_as_session verifies the session and
 * the membership in the path's company; the kernel's functions check the
 * permission table and the role rules.  A company the user is not a member
 * of, and a resource of another company, answer 404 exactly as a company or
 * resource that does not exist: the membership refusal of step 6 (42501 of
 * its first statement) becomes 404, and the kernel's functions report
 * another company's resources as unknown (P0002).  Refusals inside one's own
 * company are 403.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/common.h"
#include "reply.h"
#include "routes.h"
#include "session.h"
#include "validate.h"

#define H(s) s, sizeof(s) - 1
#define MAX_SEGMENTS 8
#define MAX_BINDS DB_MAX_PARAMS

#define SESSION_SQL "SELECT actloom.set_client_addr($1::inet), actloom.act_as_session($2::uuid, $3::uuid)"

/* Placeholders of a path pattern and what a segment must look like to match. */
enum seg_kind { SEG_UUID, SEG_KEY_ID, SEG_SECRET };

/*
 * One endpoint.
 *   method, pattern  "{company}" binds the company the session acts in;
 *                    "{id}" a uuid, "{key}" an API key id, "{name}" a
 *                    secret name: each a parameter of the statement
 *   body, query      JSON Schema texts (NULL: no body / no parameters)
 *   rate_class       configured class applied per user
 *   status           on success; 204 sends no body
 *   sql              one statement returning one jsonb value (or nothing for 204)
 *   binds            its parameters, in order: "company", "path" (the
 *                    placeholder), "body.<field>", "body" (the body as JSON),
 *                    "query.<field>"
 */
struct api_route {
    const char *method;
    const char *pattern;
    const char *body;
    const char *query;
    const char *rate_class;
    int status;
    const char *sql;
    const char *binds[MAX_BINDS];
};

#define ROLE_ENUM "{\"enum\":[\"member\",\"admin\",\"executive\",\"owner\"]}"
/* The writable fields of a webhook endpoint; the database checks the URL and the event types in full. */
#define WEBHOOK_FIELDS(extra)                                                                                          \
    "{\"type\":\"object\"," extra "\"properties\":{\"url\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":2048},"  \
    "\"description\":{\"type\":\"string\",\"maxLength\":500},\"event_types\":{\"type\":\"array\",\"maxItems\":100,"    \
    "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100}},\"enabled\":{\"type\":\"boolean\"}}}"

/* One endpoint a few lines, read top to bottom. */
/* clang-format off */
static const struct api_route api_routes[] = {
    /* companies: those of the user, and a new one with the user as owner */
    {"GET", "/api/companies", NULL, NULL, "manage", 200,
     "SELECT coalesce(actloom.session_info() -> 'companies', '[]')", {NULL}},
    {"POST", "/api/companies",
     "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,"
     "\"maxLength\":200}}}",
     NULL, "manage", 201,
     "SELECT jsonb_build_object('id', c, 'name', pg_catalog.btrim($1)) FROM actloom.create_company($1) c",
     {"body.name"}},

    /* members */
    {"GET", "/api/companies/{company}/members", NULL, NULL, "manage", 200,
     "SELECT coalesce(jsonb_agg(jsonb_build_object('user_id', m.user_id, 'email', m.email, 'role', m.role, "
     "'joined_at', m.joined_at)), '[]') FROM actloom.members($1) m",
     {"company"}},
    {"POST", "/api/companies/{company}/members",
     "{\"type\":\"object\",\"required\":[\"email\",\"role\"],\"properties\":{\"email\":{\"type\":\"string\","
     "\"format\":\"email\",\"maxLength\":254},\"role\":" ROLE_ENUM "}}",
     NULL, "manage", 201,
     "SELECT jsonb_build_object('user_id', actloom.add_member_by_email($1, $2, $3::actloom.company_role), "
     "'role', $3)",
     {"company", "body.email", "body.role"}},
    {"PUT", "/api/companies/{company}/members/{id}",
     "{\"type\":\"object\",\"required\":[\"role\"],\"properties\":{\"role\":" ROLE_ENUM "}}", NULL, "manage", 200,
     "SELECT jsonb_build_object('user_id', $2::uuid, 'role', $3) "
     "FROM actloom.set_role($1, $2::uuid, $3::actloom.company_role)",
     {"company", "path", "body.role"}},
    {"DELETE", "/api/companies/{company}/members/{id}", NULL, NULL, "manage", 204,
     "SELECT actloom.remove_member($1, $2::uuid)", {"company", "path"}},

    /* API keys: listed without secrets; a new key is shown once */
    {"GET", "/api/companies/{company}/api-keys", NULL, NULL, "manage", 200,
     "SELECT coalesce(jsonb_agg(to_jsonb(k)), '[]') FROM actloom.api_keys($1) k", {"company"}},
    {"POST", "/api/companies/{company}/api-keys",
     "{\"type\":\"object\",\"required\":[\"name\",\"scopes\"],\"properties\":{\"name\":{\"type\":\"string\","
     "\"minLength\":1,\"maxLength\":200},\"scopes\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":100,"
     "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100}},\"expires_at\":{\"type\":\"string\","
     "\"format\":\"date-time\"}}}",
     NULL, "api_key", 201,
     "SELECT jsonb_build_object('key', k, 'key_id', pg_catalog.substr(k, 5, 12)) "
     "FROM actloom.api_key_create($1, $2, ARRAY(SELECT pg_catalog.jsonb_array_elements_text($3::jsonb)), "
     "$4::timestamptz) k",
     {"company", "body.name", "body.scopes", "body.expires_at"}},
    {"DELETE", "/api/companies/{company}/api-keys/{key}", NULL, NULL, "api_key", 204,
     "SELECT actloom.api_key_revoke($1)", {"path"}},

    /* integration secrets: names only, values go in and never come out */
    {"GET", "/api/companies/{company}/secrets", NULL, NULL, "manage", 200,
     "SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM actloom.secret_names($1) s", {"company"}},
    {"PUT", "/api/companies/{company}/secrets/{name}",
     "{\"type\":\"object\",\"required\":[\"value\"],\"properties\":{\"value\":{\"type\":\"string\",\"minLength\":1,"
     "\"maxLength\":65536}}}",
     NULL, "manage", 204, "SELECT actloom.secret_put($1, $2, $3)", {"company", "path", "body.value"}},
    {"DELETE", "/api/companies/{company}/secrets/{name}", NULL, NULL, "manage", 204,
     "SELECT actloom.secret_delete($1, $2)", {"company", "path"}},

    /* webhook endpoints: the secret shown once at creation and rotation, fingerprints otherwise */
    {"GET", "/api/companies/{company}/webhooks", NULL, NULL, "webhooks", 200,
     "SELECT actloom.webhook_endpoints($1)", {"company"}},
    {"POST", "/api/companies/{company}/webhooks", WEBHOOK_FIELDS("\"required\":[\"url\"],"), NULL, "webhooks", 201,
     "SELECT actloom.webhook_endpoint_create($1, $2, coalesce($3, ''), "
     "ARRAY(SELECT pg_catalog.jsonb_array_elements_text(coalesce($4::jsonb, '[]'))))",
     {"company", "body.url", "body.description", "body.event_types"}},
    {"GET", "/api/companies/{company}/webhooks/{id}", NULL, NULL, "webhooks", 200,
     "SELECT actloom.webhook_endpoint($1, $2::uuid)", {"company", "path"}},
    {"PATCH", "/api/companies/{company}/webhooks/{id}", WEBHOOK_FIELDS(""), NULL, "webhooks", 200,
     "SELECT actloom.webhook_endpoint_update($1, $2::uuid, $3::jsonb)", {"company", "path", "body"}},
    {"DELETE", "/api/companies/{company}/webhooks/{id}", NULL, NULL, "webhooks", 204,
     "SELECT actloom.webhook_endpoint_delete($1, $2::uuid)", {"company", "path"}},
    {"POST", "/api/companies/{company}/webhooks/{id}/rotate-secret",
     "{\"type\":\"object\",\"properties\":{\"grace_seconds\":{\"type\":\"integer\",\"minimum\":0,"
     "\"maximum\":604800}}}",
     NULL, "webhooks", 200,
     "SELECT actloom.webhook_rotate_secret($1, $2::uuid, "
     "coalesce($3::integer, 86400) * interval '1 second')",
     {"company", "path", "body.grace_seconds"}},
    {"POST", "/api/companies/{company}/webhooks/{id}/test", NULL, NULL, "webhooks", 202,
     "SELECT actloom.webhook_send_test($1, $2::uuid)", {"company", "path"}},
    {"GET", "/api/companies/{company}/webhooks/{id}/deliveries", NULL,
     "{\"type\":\"object\",\"properties\":{\"after\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100}}}",
     "webhooks", 200,
     "SELECT actloom.webhook_deliveries($1, $2::uuid, $3, coalesce($4::integer, 20))",
     {"company", "path", "query.after", "query.limit"}},
    {"POST", "/api/companies/{company}/webhooks/{id}/redeliver",
     "{\"type\":\"object\",\"required\":[\"since\"],\"properties\":{\"since\":{\"type\":\"string\","
     "\"format\":\"date-time\"}}}",
     NULL, "webhooks", 202,
     "SELECT actloom.webhook_redeliver_failed($1, $2::uuid, $3::timestamptz)", {"company", "path", "body.since"}},
    {"POST", "/api/companies/{company}/webhook-deliveries/{id}/redeliver", NULL, NULL, "webhooks", 202,
     "SELECT actloom.webhook_redeliver($1, $2::uuid)", {"company", "path"}},

    /* the company's audit chain: pages, verification, signed checkpoints with the key that checks them */
    {"GET", "/api/companies/{company}/audit", NULL,
     "{\"type\":\"object\",\"properties\":{\"after\":{\"type\":\"integer\",\"minimum\":0},"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000}}}",
     "manage", 200,
     "SELECT jsonb_build_object('entries', coalesce(jsonb_agg(jsonb_build_object('seq', a.seq, 'at', a.at, "
     "'actor_user', a.actor_user, 'actor_api_key', a.actor_api_key, 'actor_session', a.actor_session, "
     "'client_addr', a.client_addr, 'action', a.action, 'target_type', a.target_type, 'target_id', a.target_id, "
     "'detail', a.detail, 'prev_hash', encode(a.prev_hash, 'hex'), 'hash', encode(a.hash, 'hex')) "
     "ORDER BY a.seq), '[]'), 'next_after', max(a.seq)) "
     "FROM actloom.company_audit($1, coalesce($2::bigint, 0), coalesce($3::integer, 100)) a",
     {"company", "query.after", "query.limit"}},
    {"GET", "/api/companies/{company}/audit/verify", NULL, NULL, "manage", 200,
     "SELECT to_jsonb(v) FROM actloom.company_audit_verify($1) v", {"company"}},
    {"POST", "/api/companies/{company}/audit/checkpoint", NULL, NULL, "manage", 201,
     "SELECT jsonb_build_object('chain', c.chain, 'seq', c.seq, 'hash', encode(c.hash, 'hex'), 'at', c.at, "
     "'signature', encode(c.signature, 'hex'), 'message', "
     "encode(actloom.audit_checkpoint_message(c.chain, c.seq, c.hash, c.at), 'hex'), "
     "'public_key', actloom.audit_public_key()) "
     "FROM actloom.company_audit_checkpoint($1) c",
     {"company"}},

    /* the user's own sessions */
    {"GET", "/api/sessions", NULL, NULL, "manage", 200,
     "SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.session, 'created_at', s.created_at, "
     "'last_seen_at', s.last_seen_at, 'expires_at', s.expires_at, 'user_agent', s.user_agent, "
     "'client_addr', s.client_addr, 'current', s.is_current)), '[]') FROM actloom.my_sessions() s",
     {NULL}},
    {"DELETE", "/api/sessions/{id}", NULL, NULL, "manage", 204, "SELECT actloom.session_revoke($1::uuid)",
     {"path"}},
};
/* clang-format on */

#define NROUTES (sizeof(api_routes) / sizeof(api_routes[0]))

/* The schemas of the table, parsed once. */
static json_t *body_schemas[NROUTES], *query_schemas[NROUTES], *no_query;
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

static void
load_schemas(void)
{
    for (size_t i = 0; i < NROUTES; i++) {
        body_schemas[i] = api_routes[i].body ? json_loads(api_routes[i].body, 0, NULL) : NULL;
        query_schemas[i] = api_routes[i].query ? json_loads(api_routes[i].query, 0, NULL) : NULL;
    }
    no_query = json_pack("{s:s}", "type", "object");
}

/* What a request keeps while the database works. */
struct api_req {
    struct shim_req *r;
    const struct api_route *route;
    struct jwt_claims claims;
    int has_company;
    char placeholder[130];
};

static int
is_uuid_segment(const char *s, size_t n)
{
    return jwt_uuid_valid(s, n);
}

static int
is_key_id_segment(const char *s, size_t n)
{
    if (n != 12)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
            return 0;
    return 1;
}

/* Secret names as the database allows them: ^[a-z0-9][a-z0-9_.:-]{0,127}$ */
static int
is_secret_segment(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && strchr("_.:-", c) != NULL);
        if (!ok)
            return 0;
    }
    return 1;
}

/*
 * Whether path matches pattern; fills the company and the placeholder (both
 * NUL-terminated, in the request's state) when it does.
 */
static int
match(const char *pattern, const char *path, size_t len, struct api_req *a, char *company)
{
    const char *p = pattern, *s = path, *end = path + len;

    company[0] = a->placeholder[0] = '\0';
    while (*p != '\0' && s < end) {
        const char *pe = strchr(p + 1, '/'), *se = memchr(s + 1, '/', (size_t)(end - s - 1));
        size_t pn, sn;

        if (*p != '/' || *s != '/')
            return 0;
        p++;
        s++;
        pe = pe ? pe : p + strlen(p);
        se = se ? se : end;
        pn = (size_t)(pe - p);
        sn = (size_t)(se - s);
        if (pn == 9 && memcmp(p, "{company}", 9) == 0) {
            if (!is_uuid_segment(s, sn))
                return 0;
            memcpy(company, s, sn);
            company[sn] = '\0';
        } else if (*p == '{') {
            int ok = (pn == 4 && memcmp(p, "{id}", 4) == 0 && is_uuid_segment(s, sn)) ||
                     (pn == 5 && memcmp(p, "{key}", 5) == 0 && is_key_id_segment(s, sn)) ||
                     (pn == 6 && memcmp(p, "{name}", 6) == 0 && is_secret_segment(s, sn));
            if (!ok)
                return 0;
            memcpy(a->placeholder, s, sn);
            a->placeholder[sn] = '\0';
        } else if (pn != sn || memcmp(p, s, sn) != 0)
            return 0;
        p = pe;
        s = se;
    }
    return *p == '\0' && s == end;
}

/* A parameter's text from the body or query: strings as they are, other values as JSON; NULL when absent. */
static const char *
value_text(struct shim_req *r, json_t *v)
{
    char *text, *copy;

    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    copy = h2o_mem_alloc_pool(&r->req->pool, strlen(text) + 1);
    memcpy(copy, text, strlen(text) + 1);
    free(text);
    return copy;
}

static void
on_result(void *owner, const struct db_result *res)
{
    struct api_req *a = owner;
    struct shim_req *r = a->r;
    PGresult *out;

    r->job = NULL;
    if (res->outcome == DB_ERROR && res->failed_stmt == 0) {
        if (strncmp(res->sqlstate, "28", 2) == 0) {
            session_clear(r);
            reply_problem(r, 401, "unauthorized", "Unauthorized", "Sign in first.", NULL);
            return;
        }
        if (strcmp(res->sqlstate, "42501") == 0) {
            /* Not a member: the company does not exist for this user. */
            reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
            return;
        }
    }
    if (res->outcome != DB_OK) {
        handler_db_failure(r, res, HANDLER_SHOW_MESSAGE);
        return;
    }
    if (a->route->status == 204) {
        /* Revoking one's own current session signs out. */
        if (strcmp(a->route->pattern, "/api/sessions/{id}") == 0 && strcmp(a->placeholder, a->claims.sid) == 0)
            session_clear(r);
        reply_send(r, 204, "application/json", "", 0);
        return;
    }
    out = res->nres > 1 ? res->res[1] : NULL;
    if (out == NULL || PQntuples(out) != 1 || PQgetisnull(out, 0, 0)) {
        reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
        return;
    }
    reply_send(r, a->route->status, "application/json", PQgetvalue(out, 0, 0), (size_t)PQgetlength(out, 0, 0));
}

void
handle_manage(struct shim_req *r)
{
    h2o_req_t *req = r->req;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    struct api_req *a;
    const struct config_rate_class *rc;
    char company[JWT_UUID_LEN + 1], allow[64] = "", key[64];
    const struct api_route *route = NULL;
    size_t index = 0;
    json_t *body = NULL, *query;
    struct validate_issues issues;
    struct db_stmt stmts[2];
    const char *params[MAX_BINDS];
    int nparams = 0, n;

    if (session_keys(r) == NULL) {
        reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
        return;
    }
    pthread_once(&schemas_once, load_schemas);
    a = h2o_mem_alloc_pool(&req->pool, sizeof(*a));
    memset(a, 0, sizeof(*a));
    a->r = r;

    /* 1, 2: who, and whether the browser meant it */
    if (session_require(r, &a->claims) != 0 || session_check_csrf(r, &a->claims) != 0)
        return;

    /* 3: the route */
    for (size_t i = 0; i < NROUTES; i++) {
        char c[JWT_UUID_LEN + 1];
        if (!match(api_routes[i].pattern, req->path.base, path_len, a, c))
            continue;
        if (h2o_memis(req->method.base, req->method.len, api_routes[i].method, strlen(api_routes[i].method))) {
            route = &api_routes[i];
            index = i;
            memcpy(company, c, sizeof(c));
            break;
        }
        if (strlen(allow) + strlen(api_routes[i].method) + 3 < sizeof(allow))
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? ", " : "",
                     api_routes[i].method);
    }
    if (route == NULL) {
        if (allow[0] != '\0') {
            reply_header(r, "Allow", allow);
            reply_problem(r, 405, "method-not-allowed", "Method not allowed", NULL, NULL);
        } else
            reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
        return;
    }
    a->route = route;
    a->has_company = company[0] != '\0';
    r->route = route->pattern;

    /* 4: body and query */
    if (body_schemas[index] != NULL) {
        if ((body = handler_body(r, body_schemas[index])) == NULL)
            return;
    } else if (req->entity.len > 0) {
        reply_problem(r, 422, "validation-failed", "The request is not valid", "This endpoint takes no body.", NULL);
        return;
    }
    validate_issues_init(&issues);
    query = validate_query(query_schemas[index] ? query_schemas[index] : no_query,
                           req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "",
                           req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0, &issues);
    validate(query_schemas[index] ? query_schemas[index] : no_query, query, &issues);
    if (issues.count > 0) {
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, &issues);
        validate_issues_free(&issues);
        json_decref(query);
        json_decref(body);
        return;
    }
    validate_issues_free(&issues);

    /* 5: the rate class, per user */
    rc = config_class(&r->policy->cfg, route->rate_class);
    if (rc != NULL) {
        n = snprintf(key, sizeof(key), "u:%s", a->claims.sub);
        if (handler_limit(r, rc, key, (size_t)n) != 0) {
            json_decref(query);
            json_decref(body);
            return;
        }
    }

    /* 6: the database */
    for (int i = 0; i < MAX_BINDS && route->binds[i] != NULL; i++) {
        const char *b = route->binds[i];
        if (strcmp(b, "company") == 0)
            params[nparams++] = a->has_company ? company : NULL;
        else if (strcmp(b, "path") == 0)
            params[nparams++] = a->placeholder;
        else if (strcmp(b, "body") == 0)
            params[nparams++] = value_text(r, body);
        else if (strncmp(b, "body.", 5) == 0)
            params[nparams++] = value_text(r, json_object_get(body, b + 5));
        else if (strncmp(b, "query.", 6) == 0)
            params[nparams++] = value_text(r, json_object_get(query, b + 6));
    }
    stmts[0] = (struct db_stmt){SESSION_SQL, 3, {r->client, a->claims.sid, a->has_company ? company : NULL}};
    stmts[1] = (struct db_stmt){route->sql, nparams, {NULL}};
    memcpy(stmts[1].params, params, sizeof(params[0]) * (size_t)nparams);
    r->job = handler_submit(r, stmts, 2, on_result, a, 0);
    json_decref(query);
    json_decref(body);
}
