/*
 * reply.c: responses, security headers, the access log (reply.h).
 *
 * The access log line is built with jansson, so that every value is escaped
 * as JSON; it holds the route template, never the raw path or query, and
 * the actor's public id, never a credential.
 */
#include "reply.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "registry.h"

#define H(s) s, sizeof(s) - 1

static void
on_dispose(void *p)
{
    struct shim_req *r = p;

    if (r->job != NULL)
        db_detach(r->job);
    if (r->policy != NULL)
        shim_policy_release(r->policy);
    if (r->registry != NULL)
        registry_release(r->registry);
    r->thread->inflight--;
}

struct shim_req *
reply_begin(h2o_req_t *req, struct shim_thread *thread, int on_metrics_listener)
{
    struct shim_req *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_dispose);
    struct sockaddr_storage peer;
    ssize_t cursor;
    h2o_iovec_t xff = {NULL, 0};
    size_t xff_cap = 0;

    memset(r, 0, sizeof(*r));
    r->req = req;
    r->thread = thread;
    r->start_ns = shim_now_ns();
    r->route = "unmatched";
    r->actor_kind = "anonymous";
    r->on_metrics_listener = on_metrics_listener;
    thread->inflight++;
    snprintf(r->request_id, sizeof(r->request_id), "%08x%012llx", thread->request_prefix,
             (unsigned long long)++thread->request_counter);
    r->policy = shim_policy_acquire();

    /* Several X-Forwarded-For headers count as one list, in order. */
    for (cursor = -1; (cursor = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, cursor)) != -1;)
        xff_cap += req->headers.entries[cursor].value.len + 1;
    if (xff_cap > 0) {
        xff.base = h2o_mem_alloc_pool(&req->pool, xff_cap);
        for (cursor = -1; (cursor = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, cursor)) != -1;) {
            h2o_iovec_t v = req->headers.entries[cursor].value;
            if (xff.len > 0)
                xff.base[xff.len++] = ',';
            memcpy(xff.base + xff.len, v.base, v.len);
            xff.len += v.len;
        }
    }
    memset(&peer, 0, sizeof(peer));
    if (req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&peer) == 0)
        peer.ss_family = AF_UNSPEC;
    clientaddr_resolve((struct sockaddr *)&peer, xff.base, xff.len, r->policy->cfg.proxies, r->policy->cfg.nproxies,
                       r->client);
    return r;
}

void
reply_header(struct shim_req *r, const char *name, const char *value)
{
    h2o_req_t *req = r->req;
    size_t nlen = strlen(name), vlen = strlen(value);
    char *n = h2o_mem_alloc_pool(&req->pool, nlen), *v = h2o_mem_alloc_pool(&req->pool, vlen);

    /* h2o keeps pointers; the header names are lower-cased as HTTP/2 requires. */
    for (size_t i = 0; i < nlen; i++)
        n[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    memcpy(v, value, vlen);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n, nlen, 1, NULL, v, vlen);
}

static void
access_log(struct shim_req *r, int status, uint64_t duration_ns)
{
    char when[80];
    struct timespec ts;
    struct tm tm;
    json_t *line;
    char *text;

    if (!shim.cfg->access_log)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    line = json_pack("{s:s,s:s,s:s%,s:s,s:i,s:f,s:s,s:s,s:s}", "time", when, "request_id", r->request_id, "method",
                     r->req->method.base, r->req->method.len, "route", r->route, "status", status, "duration_ms",
                     (double)duration_ns / 1e6, "client", r->client, "actor_kind", r->actor_kind, "actor_id",
                     r->actor_id);
    if (line == NULL)
        return; /* the method was not UTF-8: h2o accepts any token */
    text = json_dumps(line, JSON_COMPACT);
    if (text != NULL) {
        size_t len = strlen(text);
        text[len] = '\n';
        /* One write a line: lines of concurrent threads do not interleave. */
        if (write(STDOUT_FILENO, text, len + 1) < 0) {
            /* Nothing sensible to do: the log is gone. */
        }
        free(text);
    }
    json_decref(line);
}

void
reply_send(struct shim_req *r, int status, const char *content_type, const char *body, size_t len)
{
    h2o_req_t *req = r->req;
    h2o_mem_pool_t *pool = &req->pool;
    h2o_headers_t *hs = &req->res.headers;
    uint64_t duration;

    if (r->responded)
        return;
    r->responded = 1;
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "";
    req->res.content_length = len;
    h2o_add_header(pool, hs, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header(pool, hs, H2O_TOKEN_CACHE_CONTROL, NULL, H("no-store"));
    h2o_add_header_by_str(pool, hs, H("x-content-type-options"), 0, NULL, H("nosniff"));
    h2o_add_header_by_str(pool, hs, H("x-frame-options"), 0, NULL, H("DENY"));
    h2o_add_header_by_str(pool, hs, H("referrer-policy"), 0, NULL, H("no-referrer"));
    h2o_add_header_by_str(pool, hs, H("content-security-policy"), 0, NULL,
                          H("default-src 'none'; frame-ancestors 'none'; sandbox"));
    if (shim.ssl_ctx != NULL && req->scheme == &H2O_URL_SCHEME_HTTPS)
        h2o_add_header(pool, hs, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, NULL, H("max-age=63072000; includeSubDomains"));
    h2o_add_header_by_str(pool, hs, H("x-request-id"), 0, NULL, r->request_id, strlen(r->request_id));
    duration = shim_now_ns() - r->start_ns;
    metrics_request(r->route, status, duration);
    access_log(r, status, duration);
    h2o_send_inline(req, body, len);
}

void
reply_problem(struct shim_req *r, int status, const char *slug, const char *title, const char *detail, json_t *issues)
{
    char type[96];
    json_t *body;
    char *text;

    snprintf(type, sizeof(type), "urn:actloom:problem:%s", slug);
    body = json_pack("{s:s,s:s,s:i,s:s}", "type", type, "title", title, "status", status, "request_id",
                     r->request_id);
    if (detail != NULL)
        json_object_set_new(body, "detail", json_string(detail));
    if (issues != NULL)
        json_object_set(body, "issues", issues);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        reply_send(r, 500, "application/problem+json", H("{\"type\":\"urn:actloom:problem:internal\"}"));
        return;
    }
    reply_send(r, status, "application/problem+json", text, strlen(text));
    free(text);
}
