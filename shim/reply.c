/*
 * reply.c: responses, security headers, the access log (reply.h).
 *
 * The access log line holds the route template, never the raw path or
 * query, and the actor's public id, never a credential; every value is
 * escaped as a JSON string.  Lines collect in a per-thread buffer written
 * with one write(2) when it fills and at every tick (50 ms), so a line is
 * never split and a burst of requests costs few system calls.
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
    r->policy = shim_policy_current();

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

void
reply_flush_log(struct shim_thread *thread)
{
    size_t done = 0;

    while (done < thread->log_len) {
        ssize_t n = write(STDOUT_FILENO, thread->log_buf + done, thread->log_len - done);
        if (n <= 0)
            break; /* the log is gone: nothing sensible to do but drop it */
        done += (size_t)n;
    }
    thread->log_len = 0;
}

/* Appends s as a JSON string; bytes outside printable ASCII are escaped. */
static size_t
put_json_string(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    out[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[c >> 4];
            out[n + 5] = hex[c & 15];
            n += 6;
        } else
            out[n++] = (char)c;
    }
    out[n++] = '"';
    return n;
}

static void
access_log(struct shim_req *r, int status, uint64_t duration_ns)
{
    struct shim_thread *t = r->thread;
    const char *fields[] = {"request_id", r->request_id, "route",       r->route,   "client",
                            r->client,    "actor_kind",  r->actor_kind, "actor_id", r->actor_id};
    char line[16384];
    struct timespec ts;
    size_t n, method_len = r->req->method.len > 32 ? 32 : r->req->method.len;

    if (!shim.cfg->access_log)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != t->log_second) {
        /* The date and time to the second change once a second: format them then. */
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(t->log_time, sizeof(t->log_time), "%Y-%m-%dT%H:%M:%S", &tm);
        t->log_second = ts.tv_sec;
    }
    n = (size_t)snprintf(line, sizeof(line),
                         "{\"time\":\"%s.%03ldZ\",\"status\":%d,\"duration_ms\":%.3f,\"method\":", t->log_time,
                         ts.tv_nsec / 1000000, status, (double)duration_ns / 1e6);
    n += put_json_string(line + n, r->req->method.base, method_len);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i += 2) {
        size_t vlen = strlen(fields[i + 1]);
        if (vlen > 256)
            vlen = 256; /* at 6 bytes a character, five values and the rest fit the line */
        line[n++] = ',';
        n += put_json_string(line + n, fields[i], strlen(fields[i]));
        line[n++] = ':';
        n += put_json_string(line + n, fields[i + 1], vlen);
    }
    line[n++] = '}';
    line[n++] = '\n';
    if (t->log_len + n > REPLY_LOG_BUFFER)
        reply_flush_log(t);
    memcpy(t->log_buf + t->log_len, line, n);
    t->log_len += n;
}

void
reply_security_headers(h2o_req_t *req)
{
    h2o_mem_pool_t *pool = &req->pool;
    h2o_headers_t *hs = &req->res.headers;

    h2o_add_header(pool, hs, H2O_TOKEN_CACHE_CONTROL, NULL, H("no-store"));
    h2o_add_header_by_str(pool, hs, H("x-content-type-options"), 0, NULL, H("nosniff"));
    h2o_add_header_by_str(pool, hs, H("x-frame-options"), 0, NULL, H("DENY"));
    h2o_add_header_by_str(pool, hs, H("referrer-policy"), 0, NULL, H("no-referrer"));
    h2o_add_header_by_str(pool, hs, H("content-security-policy"), 0, NULL,
                          H("default-src 'none'; frame-ancestors 'none'; sandbox"));
    if (shim.ssl_ctx != NULL && req->scheme == &H2O_URL_SCHEME_HTTPS)
        h2o_add_header(pool, hs, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, NULL, H("max-age=63072000; includeSubDomains"));
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
    reply_security_headers(req);
    h2o_add_header_by_str(pool, hs, H("x-request-id"), 0, NULL, r->request_id, strlen(r->request_id));
    duration = shim_now_ns() - r->start_ns;
    metrics_request(r->thread->metrics, r->route, status, duration);
    access_log(r, status, duration);
    h2o_send_inline(req, body, len);
}

/* The problem document, malloc'd; NULL when out of memory. */
static char *
problem_text(struct shim_req *r, int status, const char *slug, const char *title, const char *detail,
             const struct validate_issues *issues)
{
    char type[96];
    json_t *body;
    char *text;

    snprintf(type, sizeof(type), "urn:actloom:problem:%s", slug);
    body = json_pack("{s:s,s:s,s:i,s:s}", "type", type, "title", title, "status", status, "request_id", r->request_id);
    if (detail != NULL)
        json_object_set_new(body, "detail", json_string(detail));
    if (issues != NULL) {
        json_object_set(body, "issues", issues->list);
        json_object_set_new(body, "issue_count", json_integer((json_int_t)issues->count));
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

void
reply_problem(struct shim_req *r, int status, const char *slug, const char *title, const char *detail,
              const struct validate_issues *issues)
{
    char *text = problem_text(r, status, slug, title, detail, issues);

    if (text == NULL) {
        reply_send(r, 500, "application/problem+json", H("{\"type\":\"urn:actloom:problem:internal\"}"));
        return;
    }
    reply_send(r, status, "application/problem+json", text, strlen(text));
    free(text);
}

/*
 * A problem waiting to be sent.  It lives in the request's pool: when h2o
 * disposes of the request first (the client went away), the entry leaves
 * the timer; when the timer fires first, h2o has already unlinked it.
 */
struct delayed {
    h2o_timeout_entry_t entry;
    struct shim_req *r;
    int status;
    char *body; /* in the request's pool */
    size_t len;
};

static void
on_delayed_dispose(void *p)
{
    struct delayed *d = p;

    if (h2o_timeout_is_linked(&d->entry)) {
        h2o_timeout_unlink(&d->entry);
        d->r->thread->delayed--;
    }
}

static void
on_delayed_due(h2o_timeout_entry_t *entry)
{
    struct delayed *d = H2O_STRUCT_FROM_MEMBER(struct delayed, entry, entry);

    d->r->thread->delayed--;
    /* Sending may dispose of the request, and d with it: nothing of d is used after. */
    reply_send(d->r, d->status, "application/problem+json", d->body, d->len);
}

void
reply_problem_delayed(struct shim_req *r, int status, const char *slug, const char *title, const char *detail)
{
    struct shim_thread *t = r->thread;
    struct delayed *d;
    char *text;

    if (shim.cfg->refusal_delay_ms == 0 || t->delayed >= shim.cfg->refusals_held_max) {
        reply_problem(r, status, slug, title, detail, NULL);
        return;
    }
    if ((text = problem_text(r, status, slug, title, detail, NULL)) == NULL) {
        reply_send(r, 500, "application/problem+json", H("{\"type\":\"urn:actloom:problem:internal\"}"));
        return;
    }
    d = h2o_mem_alloc_shared(&r->req->pool, sizeof(*d), on_delayed_dispose);
    memset(d, 0, sizeof(*d));
    d->r = r;
    d->status = status;
    d->len = strlen(text);
    d->body = h2o_mem_alloc_pool(&r->req->pool, d->len);
    memcpy(d->body, text, d->len);
    free(text);
    d->entry.cb = on_delayed_due;
    h2o_timeout_link(t->loop, &t->refusal_timeout, &d->entry);
    t->delayed++;
}
