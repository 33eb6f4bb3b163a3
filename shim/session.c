/*
 * session.c: sign-in sessions at the shim (session.h).
 *
 * What the shim checks by itself, before any database work, in this order:
 *
 *   1. exactly one session cookie of the configured mode's name   401
 *   2. its JWT, strictly (jwt_verify): key, algorithm, signature,
 *      claims, times                                              401
 *   3. for state-changing methods: a present Origin is ours        403
 *   4. for state-changing methods: X-CSRF-Token equals the CSRF
 *      cookie, and its MAC is valid for the token's session       403
 *
 * Then the caller's one transaction starts with act_as_session(sid, ...),
 * which refuses a revoked, idle or expired session on this very request.
 *
 * Reasons for refusals are logged with the request id (never the token);
 * clients get one answer per status.
 */
#include "session.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cookie.h"
#include "csrf.h"
#include "log.h"
#include "reply.h"

#define H(s) s, sizeof(s) - 1

const struct jwt_keyring *
session_keys(struct shim_req *r)
{
    return r->policy->has_session_keys ? &r->policy->session_keys : NULL;
}

static enum cookie_mode
mode_of(struct shim_req *r)
{
    return (enum cookie_mode)r->policy->cfg.session_cookie;
}

/* Finds cookie name across every Cookie header; returns how many there were. */
static int
find_cookie(h2o_req_t *req, const char *name, h2o_iovec_t *value)
{
    int count = 0;
    const char *v = NULL;
    size_t vlen = 0;

    for (ssize_t at = -1; (at = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, at)) != -1;)
        cookie_scan(req->headers.entries[at].value.base, req->headers.entries[at].value.len, name, &v, &vlen, &count);
    *value = h2o_iovec_init(v, vlen);
    return count;
}

int
session_read(struct shim_req *r, struct jwt_claims *claims)
{
    const struct jwt_keyring *keys = session_keys(r);
    h2o_iovec_t token;
    enum jwt_status status;
    int n = find_cookie(r->req, cookie_session_name(mode_of(r)), &token);

    if (n == 0 || keys == NULL)
        return 0;
    if (n > 1) {
        LOG_WARN("request %s: the session cookie was sent %d times", r->request_id, n);
        return -1;
    }
    status = jwt_verify(keys, token.base, token.len, (int64_t)time(NULL), r->policy->cfg.session_max_lifetime, claims);
    if (status != JWT_OK) {
        LOG_WARN("request %s: session token refused: %s", r->request_id, jwt_strerror(status));
        return -1;
    }
    r->actor_kind = "session";
    snprintf(r->actor_id, sizeof(r->actor_id), "%s", claims->sub);
    return 1;
}

int
session_require(struct shim_req *r, struct jwt_claims *claims)
{
    int found = session_read(r, claims);

    if (found == 1)
        return 0;
    if (found < 0)
        session_clear(r);
    reply_problem(r, 401, "unauthorized", "Unauthorized", "Sign in first.", NULL);
    return -1;
}

int
session_unsafe_method(struct shim_req *r)
{
    h2o_iovec_t m = r->req->method;

    return !(h2o_memis(m.base, m.len, H("GET")) || h2o_memis(m.base, m.len, H("HEAD")) ||
             h2o_memis(m.base, m.len, H("OPTIONS")));
}

static void
forbidden(struct shim_req *r, const char *slug, const char *title, const char *detail)
{
    reply_problem(r, 403, slug, title, detail, NULL);
}

/*
 * The shim's own origins: those configured, or else the scheme the cookie
 * mode implies (secure cookies exist only over https) and the Host header,
 * which is the target the browser itself wrote.
 */
static int
origin_is_ours(struct shim_req *r, h2o_iovec_t origin)
{
    const struct config *cfg = &r->policy->cfg;
    h2o_iovec_t host = r->req->authority;
    const char *scheme = cfg->session_cookie == COOKIE_SECURE ? "https://" : "http://";
    size_t slen = strlen(scheme);

    if (cfg->nsession_origins > 0) {
        for (unsigned i = 0; i < cfg->nsession_origins; i++)
            if (h2o_memis(origin.base, origin.len, cfg->session_origins[i], strlen(cfg->session_origins[i])))
                return 1;
        return 0;
    }
    return host.len > 0 && origin.len == slen + host.len && memcmp(origin.base, scheme, slen) == 0 &&
           strncasecmp(origin.base + slen, host.base, host.len) == 0;
}

int
session_check_origin(struct shim_req *r)
{
    ssize_t at = h2o_find_header_by_str(&r->req->headers, H("origin"), -1);

    if (at == -1)
        return 0;
    if (h2o_find_header_by_str(&r->req->headers, H("origin"), at) == -1 &&
        origin_is_ours(r, r->req->headers.entries[at].value))
        return 0;
    LOG_WARN("request %s: foreign Origin refused", r->request_id);
    forbidden(r, "foreign-origin", "Cross-origin request refused", "The Origin header names another site.");
    return -1;
}

int
session_check_csrf(struct shim_req *r, const struct jwt_claims *claims)
{
    h2o_req_t *req = r->req;
    h2o_iovec_t cookie, header;
    ssize_t at;

    if (!session_unsafe_method(r))
        return 0;
    if (session_check_origin(r) != 0)
        return -1;
    at = h2o_find_header_by_str(&req->headers, H("x-csrf-token"), -1);
    if (at == -1 || h2o_find_header_by_str(&req->headers, H("x-csrf-token"), at) != -1) {
        forbidden(r, "csrf-token-missing", "CSRF token missing",
                  "Send the token from GET /auth/csrf in the X-CSRF-Token header.");
        return -1;
    }
    header = req->headers.entries[at].value;
    if (find_cookie(req, cookie_csrf_name(mode_of(r)), &cookie) != 1 ||
        !csrf_same(header.base, header.len, cookie.base, cookie.len) ||
        !csrf_check(session_keys(r), claims->sid, header.base, header.len)) {
        LOG_WARN("request %s: CSRF token refused", r->request_id);
        forbidden(r, "csrf-token-invalid", "CSRF token invalid", "Get a new token from GET /auth/csrf.");
        return -1;
    }
    return 0;
}

/* Seconds the cookie of a session lives: until its expiry, at most the configured lifetime. */
static long
cookie_age(struct shim_req *r, int64_t now, int64_t expires_at)
{
    int64_t age = expires_at - now, max = r->policy->cfg.session_max_lifetime;

    return (long)(age > max ? max : age < 0 ? 0 : age);
}

static void
add_set_cookie(struct shim_req *r, const char *value, long len)
{
    char *v = h2o_mem_alloc_pool(&r->req->pool, (size_t)len);

    memcpy(v, value, (size_t)len);
    h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, v, (size_t)len);
}

int
session_issue(struct shim_req *r, const char *user_id, const char *session_id, int64_t expires_at)
{
    const struct jwt_keyring *keys = session_keys(r);
    int64_t now = (int64_t)time(NULL);
    struct jwt_claims claims;
    char token[JWT_MAX_LEN], header[COOKIE_SET_MAX];
    long len, age = cookie_age(r, now, expires_at);

    memset(&claims, 0, sizeof(claims));
    snprintf(claims.sub, sizeof(claims.sub), "%s", user_id);
    snprintf(claims.sid, sizeof(claims.sid), "%s", session_id);
    claims.iat = claims.nbf = now;
    claims.exp = now + age;
    if (keys == NULL || age <= 0 || jwt_sign(keys, &claims, token, sizeof(token)) < 0 ||
        (len = cookie_session_set(mode_of(r), token, age, header, sizeof(header))) < 0) {
        LOG_ERROR("request %s: could not sign a session token", r->request_id);
        reply_problem(r, 500, "internal", "Internal server error",
                      "The request id identifies this failure in the server's logs.", NULL);
        return -1;
    }
    add_set_cookie(r, header, len);
    r->actor_kind = "session";
    snprintf(r->actor_id, sizeof(r->actor_id), "%s", user_id);
    return 0;
}

int
session_csrf_issue(struct shim_req *r, const struct jwt_claims *claims, char *out, size_t cap)
{
    char header[COOKIE_SET_MAX];
    long len;

    if (csrf_make(session_keys(r), claims->sid, out, cap) < 0 ||
        (len = cookie_csrf_set(mode_of(r), out, cookie_age(r, (int64_t)time(NULL), claims->exp), header,
                               sizeof(header))) < 0) {
        LOG_ERROR("request %s: could not make a CSRF token", r->request_id);
        reply_problem(r, 500, "internal", "Internal server error",
                      "The request id identifies this failure in the server's logs.", NULL);
        return -1;
    }
    add_set_cookie(r, header, len);
    return 0;
}

void
session_clear(struct shim_req *r)
{
    char header[COOKIE_SET_MAX];
    long len;

    if ((len = cookie_session_set(mode_of(r), "", 0, header, sizeof(header))) > 0)
        add_set_cookie(r, header, len);
    if ((len = cookie_csrf_set(mode_of(r), "", 0, header, sizeof(header))) > 0)
        add_set_cookie(r, header, len);
}
