/*
 * routes.c: every route the shim serves, in one table read top to bottom.
 *
 * The first entry whose path matches wins.  A route's method list is checked
 * here (405 with Allow); the machine endpoints check their own methods
 * against the registry, after authentication, so that unauthenticated
 * clients learn nothing about which endpoints exist.
 */
#include "routes.h"

#include <string.h>

#include "framing.h"
#include "log.h"
#include "reply.h"
#include "validate.h"

#define ROUTE_PREFIX 0x1     /* path is a prefix, not the whole path */
#define ROUTE_METRICS 0x2    /* served on the metrics listener (also on the main one when it has none) */
#define ROUTE_MAIN 0x4       /* served on the main listener */
#define ROUTE_ANY_METHOD 0x8 /* the handler checks the method */
#define ROUTE_OWN_BODY 0x10  /* the handler validates the body against its own schema */

struct route {
    const char *name;   /* the label in logs and metrics */
    const char *method; /* the one method allowed, unless ROUTE_ANY_METHOD */
    const char *path;   /* exact path, or prefix with ROUTE_PREFIX */
    unsigned flags;
    void (*handler)(struct shim_req *r);
};

static const struct route routes[] = {
    /* liveness: the process answers */
    {"GET /healthz", "GET", "/healthz", ROUTE_MAIN | ROUTE_METRICS, handle_healthz},
    /* readiness: this thread reaches the database and the registry is loaded */
    {"GET /readyz", "GET", "/readyz", ROUTE_MAIN | ROUTE_METRICS, handle_readyz},
    /* Prometheus text */
    {"GET /metrics", "GET", "/metrics", ROUTE_METRICS, handle_metrics},
    /* people: sign-up, sign-in, sign-out, the session and its CSRF token (session cookie) */
    {"POST /auth/signup", "POST", "/auth/signup", ROUTE_MAIN | ROUTE_OWN_BODY, handle_auth_signup},
    {"POST /auth/login", "POST", "/auth/login", ROUTE_MAIN | ROUTE_OWN_BODY, handle_auth_login},
    {"POST /auth/logout", "POST", "/auth/logout", ROUTE_MAIN, handle_auth_logout},
    {"POST /auth/logout-all", "POST", "/auth/logout-all", ROUTE_MAIN, handle_auth_logout_all},
    {"GET /auth/session", "GET", "/auth/session", ROUTE_MAIN, handle_auth_session},
    {"GET /auth/csrf", "GET", "/auth/csrf", ROUTE_MAIN, handle_auth_csrf},
    /* the management API of signed-in people; its own table is in handlers/manage.c */
    {"unmatched", NULL, "/api/", ROUTE_MAIN | ROUTE_PREFIX | ROUTE_ANY_METHOD, handle_manage},
    /* the versioned machine endpoints of the registry */
    {"unmatched", NULL, "/v", ROUTE_MAIN | ROUTE_PREFIX | ROUTE_ANY_METHOD, handle_machine},
};

/*
 * Total bytes of request line and headers of an HTTP/2 request, as the header
 * limit counts them (an HTTP/1.x request's head is counted as it came).
 */
static size_t
header_bytes(const h2o_req_t *req)
{
    size_t n = req->method.len + req->path.len + req->authority.len + 12;

    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

/*
 * The shim's own routes take no query parameters, and no body unless their
 * handler validates one; the same validator as the endpoints' says so (422).
 * Returns whether to go on.
 */
static int
takes_nothing(struct shim_req *r, int body_too)
{
    h2o_req_t *req = r->req;
    const json_t *none = validate_no_params_schema();
    struct validate_issues issues;
    json_t *query;
    int ok;

    validate_issues_init(&issues);
    if (body_too && req->entity.len > 0)
        validate_issue(&issues, "", "body", "this route takes no body");
    query = validate_query(none, req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "",
                           req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0, &issues);
    validate(none, query, &issues);
    json_decref(query);
    ok = issues.count == 0;
    if (!ok)
        reply_problem(r, 422, "validation-failed", "The request is not valid", NULL, &issues);
    validate_issues_free(&issues);
    return ok;
}

void
routes_dispatch(h2o_req_t *req, struct shim_thread *thread, int on_metrics_listener)
{
    struct shim_req *r = reply_begin(req, thread, on_metrics_listener);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    unsigned listener = on_metrics_listener ? ROUTE_METRICS : ROUTE_MAIN;
    size_t head_len;

    /* Without a metrics listener of its own, the main one serves /metrics. */
    if (!on_metrics_listener && shim.cfg->metrics_port == 0)
        listener |= ROUTE_METRICS;
    if (req->version < 0x200) {
        enum framing_verdict verdict = framing_check(req, &head_len);
        if (verdict != FRAMING_OK) {
            /* Nothing more is read from this connection: h2o closes it once the answer is sent. */
            req->http1_is_persistent = 0;
            if (verdict == FRAMING_UNREADABLE) {
                LOG_ERROR("request %s: the connection's buffer does not hold the request's head; refused",
                          r->request_id);
                reply_problem(r, 500, "internal", "Internal server error", NULL, NULL);
            } else
                reply_problem(r, 400, "ambiguous-framing", "The request's framing is ambiguous",
                              framing_detail(verdict), NULL);
            return;
        }
    } else
        head_len = header_bytes(req);
    if (head_len > shim.cfg->header_bytes) {
        reply_problem(r, 431, "headers-too-large", "Request header fields too large", NULL, NULL);
        return;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *rt = &routes[i];
        size_t len = strlen(rt->path);
        if ((rt->flags & listener) == 0)
            continue;
        if ((rt->flags & ROUTE_PREFIX) ? path_len < len || memcmp(req->path.base, rt->path, len) != 0
                                       : path_len != len || memcmp(req->path.base, rt->path, len) != 0)
            continue;
        r->route = rt->name;
        if (!(rt->flags & ROUTE_ANY_METHOD) &&
            !h2o_memis(req->method.base, req->method.len, rt->method, strlen(rt->method))) {
            reply_header(r, "Allow", rt->method);
            reply_problem(r, 405, "method-not-allowed", "Method not allowed", NULL, NULL);
            return;
        }
        if (!(rt->flags & ROUTE_ANY_METHOD) && !takes_nothing(r, !(rt->flags & ROUTE_OWN_BODY)))
            return;
        rt->handler(r);
        return;
    }
    reply_problem(r, 404, "not-found", "Not found", NULL, NULL);
}
