/*
 * handlers/auth.c: sign-up, sign-in and sign-out, /auth/...
 *
 *   POST /auth/signup      {email, password, name}  201, session and CSRF cookies
 *   POST /auth/login       {email, password}        200, session and CSRF cookies
 *   POST /auth/logout                               204, cookies deleted
 *   POST /auth/logout-all                           200 {"revoked": n}, cookies deleted
 *   GET  /auth/session                              200 the user, session and companies
 *   GET  /auth/csrf                                 200 {"token"}, CSRF cookie
 *
 * Passwords go to the database as parameters (actloom.sign_in, sign_up)
 * and nowhere else; the shim never sees a hash.  A failed sign-in is one
 * answer whatever the reason (unknown email, wrong password, disabled user,
 * no password), and the database takes about the same time for each; it is
 * audited there, in the system chain, with the client address, and the
 * transaction commits so that the record stays.
 *
 * Sign-in and sign-up are rate limited before their statements run (with
 * the database store, in the same round trip):
 * "login" by client address and by account (the lower-cased email),
 * "signup" by address (and by account when the class says so).  A refusal
 * does no database work, and is answered rate_limits.refusal_delay_ms late
 * (reply_problem_delayed): a client guessing passwords as fast as it can
 * otherwise costs the shim a request per round trip, all of it spent on
 * 429s.  Sign-in and sign-up refuse a foreign Origin, against login CSRF.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csrf.h"
#include "handlers/common.h"
#include "reply.h"
#include "routes.h"
#include "session.h"
#include "validate.h"

#define H(s) s, sizeof(s) - 1

#define CLIENT_SQL "SELECT actloom.set_client_addr($1::inet)"
#define SESSION_SQL "SELECT actloom.set_client_addr($1::inet), actloom.act_as_session($2::uuid)"
#define SIGN_IN_SQL                                                                                                    \
    "SELECT user_id, session, floor(extract(epoch FROM expires_at))::bigint "                                          \
    "FROM actloom.sign_in($1, $2, $3, $4::inet, $5::uuid)"
#define SIGN_UP_SQL                                                                                                    \
    "SELECT user_id, session, floor(extract(epoch FROM expires_at))::bigint "                                          \
    "FROM actloom.sign_up($1, $2, $3, $4, $5::inet)"
#define USER_AGENT_MAX 512

static const char signup_schema_text[] =
    "{\"type\":\"object\",\"required\":[\"email\",\"password\",\"name\"],\"properties\":{"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"password\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200}}}";
static const char login_schema_text[] = "{\"type\":\"object\",\"required\":[\"email\",\"password\"],\"properties\":{"
                                        "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
                                        "\"password\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024}}}";

static json_t *signup_schema, *login_schema;
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

static void
load_schemas(void)
{
    signup_schema = json_loads(signup_schema_text, 0, NULL);
    login_schema = json_loads(login_schema_text, 0, NULL);
}

/* What a request keeps while the database works. */
struct auth_req {
    struct shim_req *r;
    struct jwt_claims claims; /* the caller's session, when it has one */
    char email[256];
};

static struct auth_req *
auth_req_new(struct shim_req *r)
{
    struct auth_req *a = h2o_mem_alloc_pool(&r->req->pool, sizeof(*a));

    memset(a, 0, sizeof(*a));
    a->r = r;
    return a;
}

/* The User-Agent header, cut to what the database keeps, in the request's pool. */
static const char *
user_agent(struct shim_req *r)
{
    ssize_t at = h2o_find_header(&r->req->headers, H2O_TOKEN_USER_AGENT, -1);
    h2o_iovec_t v;
    char *s;

    if (at == -1)
        return NULL;
    v = r->req->headers.entries[at].value;
    if (v.len > USER_AGENT_MAX)
        v.len = USER_AGENT_MAX;
    s = h2o_mem_alloc_pool(&r->req->pool, v.len + 1);
    memcpy(s, v.base, v.len);
    s[v.len] = '\0';
    /* The database keeps printable text only; a NUL would not get there. */
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = ' ';
    return s;
}

/* "2026-11-29T05:00:00Z" for seconds since the epoch. */
static void
iso_time(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Takes one request of class rc for the key prefix + value; a refusal is answered late. */
static int
limit_auth(struct shim_req *r, const struct config_rate_class *rc, const char *prefix, const char *value)
{
    char key[300];
    int n = snprintf(key, sizeof(key), "%s%s", prefix, value);

    return handler_limit_delayed(r, rc, key, (size_t)n);
}

/* Whether sessions are configured; 404 otherwise, as for any unknown path. */
static int
sessions_configured(struct shim_req *r)
{
    if (session_keys(r) != NULL)
        return 1;
    reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
    return 0;
}

/* Lower-cases an email into out (which holds 256 bytes). */
static void
lower_email(const char *in, char *out)
{
    size_t i = 0;

    for (; in[i] != '\0' && i < 255; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

static void
invalid_credentials(struct shim_req *r)
{
    reply_problem(r, 401, "invalid-credentials", "Invalid email or password", NULL, NULL);
}

/*
 * Finishes a sign-in or sign-up whose statement returned (user, session,
 * expiry): cookies, and the user with a CSRF token for the first request.
 */
static void
signed_in(struct auth_req *a, PGresult *row, int status)
{
    struct shim_req *r = a->r;
    struct jwt_claims claims;
    char csrf[CSRF_TOKEN_MAX + 1], expires[32];
    int64_t exp = strtoll(PQgetvalue(row, 0, 2), NULL, 10);
    json_t *body;
    char *text;

    memset(&claims, 0, sizeof(claims));
    snprintf(claims.sub, sizeof(claims.sub), "%s", PQgetvalue(row, 0, 0));
    snprintf(claims.sid, sizeof(claims.sid), "%s", PQgetvalue(row, 0, 1));
    claims.exp = exp;
    if (session_issue(r, claims.sub, claims.sid, exp) != 0 || session_csrf_issue(r, &claims, csrf, sizeof(csrf)) != 0)
        return;
    iso_time(exp, expires, sizeof(expires));
    body = json_pack("{s:{s:s,s:s},s:s,s:s}", "user", "id", claims.sub, "email", a->email, "expires_at", expires,
                     "csrf_token", csrf);
    text = json_dumps(body, JSON_COMPACT);
    reply_send(r, status, "application/json", text, strlen(text));
    free(text);
    json_decref(body);
}

static void
on_login(void *owner, const struct db_result *res)
{
    struct auth_req *a = owner;

    a->r->job = NULL;
    if (res->outcome != DB_OK) {
        /* Nothing the database refuses here depends on whether the account exists. */
        handler_db_failure(a->r, res, 0);
        return;
    }
    if (res->nres < 2 || PQntuples(res->res[1]) != 1) {
        invalid_credentials(a->r);
        return;
    }
    signed_in(a, res->res[1], 200);
}

/*
 * Checks the Origin, the class by client address, the body, then the class
 * by account; NULL after answering.  The address comes first so that a
 * client over its limit costs no parsing.
 */
static json_t *
auth_body(struct shim_req *r, const json_t *schema, const char *class_name, struct auth_req *a)
{
    const struct config_rate_class *rc = config_class(&r->policy->cfg, class_name);
    json_t *body;

    if (session_check_origin(r) != 0)
        return NULL;
    if (rc != NULL && (rc->keys & RL_KEY_ADDRESS) && limit_auth(r, rc, "a:", r->client) != 0)
        return NULL;
    if ((body = handler_body(r, schema)) == NULL)
        return NULL;
    lower_email(json_string_value(json_object_get(body, "email")), a->email);
    if (rc != NULL && (rc->keys & RL_KEY_ACCOUNT) && limit_auth(r, rc, "e:", a->email) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

void
handle_auth_login(struct shim_req *r)
{
    struct auth_req *a;
    json_t *body;
    struct db_stmt stmts[2];
    int have_old;

    if (!sessions_configured(r))
        return;
    pthread_once(&schemas_once, load_schemas);
    a = auth_req_new(r);
    if ((body = auth_body(r, login_schema, "login", a)) == NULL)
        return;
    /* A session the browser still carries ends with this sign-in: the id changes. */
    have_old = session_read(r, &a->claims) == 1;
    r->actor_kind = "anonymous";
    r->actor_id[0] = '\0';
    stmts[0] = (struct db_stmt){CLIENT_SQL, 1, {r->client}};
    stmts[1] = (struct db_stmt){SIGN_IN_SQL,
                                5,
                                {a->email, json_string_value(json_object_get(body, "password")), user_agent(r),
                                 r->client, have_old ? a->claims.sid : NULL}};
    r->job = handler_submit(r, stmts, 2, on_login, a, 1);
    json_decref(body);
}

static void
on_signup(void *owner, const struct db_result *res)
{
    struct auth_req *a = owner;

    a->r->job = NULL;
    if (res->outcome == DB_ERROR && strcmp(res->sqlstate, "23505") == 0) {
        reply_problem(a->r, 409, "account-exists", "An account with this email exists", "Sign in instead.", NULL);
        return;
    }
    if (res->outcome == DB_ERROR && strcmp(res->sqlstate, "22023") == 0) {
        /* The password policy and the address checks speak to the person signing up. */
        reply_problem(a->r, 422, "validation-failed", "The request is not valid", res->message[0] ? res->message : NULL,
                      NULL);
        return;
    }
    if (res->outcome != DB_OK || res->nres < 2 || PQntuples(res->res[1]) != 1) {
        handler_db_failure(a->r, res, 0);
        return;
    }
    signed_in(a, res->res[1], 201);
}

void
handle_auth_signup(struct shim_req *r)
{
    struct auth_req *a;
    json_t *body;
    struct db_stmt stmts[2];

    if (!sessions_configured(r))
        return;
    pthread_once(&schemas_once, load_schemas);
    a = auth_req_new(r);
    if ((body = auth_body(r, signup_schema, "signup", a)) == NULL)
        return;
    stmts[0] = (struct db_stmt){CLIENT_SQL, 1, {r->client}};
    stmts[1] = (struct db_stmt){SIGN_UP_SQL,
                                5,
                                {a->email, json_string_value(json_object_get(body, "password")),
                                 json_string_value(json_object_get(body, "name")), user_agent(r), r->client}};
    r->job = handler_submit(r, stmts, 2, on_signup, a, 1);
    json_decref(body);
}

/* ---- requests of a signed-in browser ------------------------------------ */

enum session_op { OP_LOGOUT, OP_LOGOUT_ALL, OP_SESSION, OP_CSRF };

struct session_req {
    struct shim_req *r;
    struct jwt_claims claims;
    enum session_op op;
};

static void
on_session_op(void *owner, const struct db_result *res)
{
    struct session_req *s = owner;
    struct shim_req *r = s->r;
    char csrf[CSRF_TOKEN_MAX + 1], body[128];
    PGresult *out;

    r->job = NULL;
    if (res->outcome == DB_ERROR && res->failed_stmt == 0 && strncmp(res->sqlstate, "28", 2) == 0) {
        /* Revoked, idle or expired: the cookie is of no further use. */
        session_clear(r);
        reply_problem(r, 401, "unauthorized", "Unauthorized", "Sign in first.", NULL);
        return;
    }
    if (res->outcome != DB_OK) {
        handler_db_failure(r, res, 0);
        return;
    }
    out = res->nres > 1 ? res->res[1] : NULL;
    switch (s->op) {
    case OP_LOGOUT:
        session_clear(r);
        reply_send(r, 204, "application/json", "", 0);
        return;
    case OP_LOGOUT_ALL:
        session_clear(r);
        snprintf(body, sizeof(body), "{\"revoked\":%s}", out ? PQgetvalue(out, 0, 0) : "0");
        reply_send(r, 200, "application/json", body, strlen(body));
        return;
    case OP_SESSION:
        reply_send(r, 200, "application/json", PQgetvalue(out, 0, 0), (size_t)PQgetlength(out, 0, 0));
        return;
    case OP_CSRF:
        if (session_csrf_issue(r, &s->claims, csrf, sizeof(csrf)) != 0)
            return;
        snprintf(body, sizeof(body), "{\"token\":\"%s\"}", csrf);
        reply_send(r, 200, "application/json", body, strlen(body));
        return;
    }
}

/*
 * The session cookie, CSRF for POSTs, the "manage" class per user, then one
 * transaction: the session check and the op.
 */
static void
session_op(struct shim_req *r, enum session_op op)
{
    struct session_req *s;
    const struct config_rate_class *rc;
    struct db_stmt stmts[2];
    int n = 1;

    if (!sessions_configured(r))
        return;
    s = h2o_mem_alloc_pool(&r->req->pool, sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->r = r;
    s->op = op;
    if (session_require(r, &s->claims) != 0 || session_check_csrf(r, &s->claims) != 0)
        return;
    if ((rc = config_class(&r->policy->cfg, "manage")) != NULL) {
        char key[64];
        int len = snprintf(key, sizeof(key), "u:%s", s->claims.sub);
        if (handler_limit(r, rc, key, (size_t)len) != 0)
            return;
    }
    if (r->req->entity.len > 0) {
        reply_problem(r, 422, "validation-failed", "The request is not valid", "This endpoint takes no body.", NULL);
        return;
    }
    stmts[0] = (struct db_stmt){SESSION_SQL, 2, {r->client, s->claims.sid}};
    switch (op) {
    case OP_LOGOUT:
        stmts[n++] = (struct db_stmt){"SELECT actloom.session_revoke(actloom.current_session())", 0, {NULL}};
        break;
    case OP_LOGOUT_ALL:
        stmts[n++] = (struct db_stmt){"SELECT actloom.session_revoke_all()", 0, {NULL}};
        break;
    case OP_SESSION:
        stmts[n++] = (struct db_stmt){"SELECT actloom.session_info()", 0, {NULL}};
        break;
    case OP_CSRF:
        break;
    }
    r->job = handler_submit(r, stmts, n, on_session_op, s, 0);
}

void
handle_auth_logout(struct shim_req *r)
{
    session_op(r, OP_LOGOUT);
}

void
handle_auth_logout_all(struct shim_req *r)
{
    session_op(r, OP_LOGOUT_ALL);
}

void
handle_auth_session(struct shim_req *r)
{
    session_op(r, OP_SESSION);
}

void
handle_auth_csrf(struct shim_req *r)
{
    session_op(r, OP_CSRF);
}
