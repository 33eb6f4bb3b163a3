/*
 * http_out.c: outbound HTTP requests on a worker's h2o loop (http_out.h).
 *
 * libcurl's multi_socket interface, driven by the loop:
 *
 *   sockets  curl names the sockets it wants watched (on_curl_socket).  Each
 *            is watched through a dup() registered with the loop (flag
 *            DONT_READ: h2o only reports readiness, curl does the reading),
 *            as db.c does for libpq.  The dup must live exactly as long as
 *            curl's descriptor: epoll forgets a registration only when every
 *            descriptor of the open file is closed, and h2o 2.2 relies on
 *            close() for that, so a dup closed while curl keeps the
 *            connection open for reuse would leave epoll reporting events
 *            for a socket h2o has freed.  So the connections curl opens
 *            (on_open_socket) get their watch at once, keep it while curl
 *            merely stops asking (CURL_POLL_REMOVE of an idle connection:
 *            reading stops), and lose it in CURLOPT_CLOSESOCKETFUNCTION,
 *            just before the socket itself is closed.  Other sockets (the
 *            resolver's socket pair) are watched from curl's first word to
 *            CURL_POLL_REMOVE, which curl says right before closing them.
 *            h2o's write notification is one-shot and cannot be withdrawn:
 *            a stale one that arrives after curl stopped asking is ignored.
 *   timer    h2o 2.2 timeouts have one duration per h2o_timeout_t.  Ours is
 *            0 ms and holds at most one entry, whose registered_at is set to
 *            the time curl asked to be called at: the loop wakes at
 *            registered_at + 0.
 *   names    libcurl resolves them on threads of its own (the threaded
 *            resolver, CURL_VERSION_ASYNCHDNS, which http_out_create
 *            insists on), and reports through a socket pair it asks us to
 *            watch like any other socket.
 *
 * The address check: CURLOPT_OPENSOCKETFUNCTION sees every address curl is
 * about to connect, after resolution and for each address it tries (happy
 * eyeballs included); an address netcheck refuses gets no socket at all, and
 * the refusal is remembered so that the transfer's failure is reported as
 * HTTP_OUT_REFUSED_ADDRESS rather than as a connection failure.  Nothing
 * else opens connections: no proxy, no CURLOPT_CONNECT_TO or
 * CURLOPT_RESOLVE, no unix socket, no alt-svc or HSTS redirection (none is
 * configured), and a reused connection is one that passed the check.
 *
 * The extra CA (webhooks.ca_file) is read once, at creation, and added to
 * every TLS context curl makes (CURLOPT_SSL_CTX_FUNCTION), next to the
 * system bundle curl loads itself: both are trusted.  curl (7.87 and later)
 * keeps one certificate store per multi handle for reuse; it is built from
 * the first context, which already holds the extra CA, and every later
 * context adds the same certificates again, which OpenSSL ignores.
 *
 * Callbacks run from collect_done, after curl_multi_socket_action returned,
 * never from inside libcurl: a callback may start and cancel transfers.
 */
#include "http_out.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "netcheck.h"

struct http_out {
    h2o_evloop_t *loop;
    CURLM *multi;
    h2o_timeout_t timeout;     /* 0 ms: see the top of the file */
    h2o_timeout_entry_t timer; /* registered_at: when curl wants to be called */
    h2o_linklist_t xfers;      /* struct http_out_xfer, every transfer in flight */
    h2o_linklist_t socks;      /* struct http_out_sock, every socket watched */
    unsigned in_flight;
    unsigned connect_timeout_ms, total_timeout_ms, low_speed_bytes, low_speed_time_s;
    size_t max_response_bytes;
    char *user_agent;
    struct config_cidr *allow;
    unsigned nallow;
    STACK_OF(X509) * extra_cas; /* webhooks.ca_file; NULL: the system's CAs only */
};

/* A socket curl asked to have watched. */
struct http_out_sock {
    h2o_linklist_t link; /* in h->socks */
    struct http_out *h;
    h2o_socket_t *sock; /* on a dup() of fd */
    curl_socket_t fd;
    int ours;        /* opened by on_open_socket: the watch ends in on_close_socket */
    int want_write;  /* curl's last word: CURL_POLL_OUT or INOUT */
    int write_armed; /* an h2o write notification is pending */
};

struct http_out_xfer {
    h2o_linklist_t link; /* in h->xfers */
    struct http_out *h;
    CURL *easy;
    struct curl_slist *headers;
    http_out_cb cb;
    void *owner;
    char *body; /* the response body so far, at most max_response_bytes */
    size_t body_len, body_cap;
    size_t header_bytes;
    int too_large;
    int refused; /* an address was refused: detail says which */
    long retry_after_s;
    uint64_t started_ms;
    char detail[CURL_ERROR_SIZE];
    char errbuf[CURL_ERROR_SIZE];
};

static const char *const outcome_names[] = {
    [HTTP_OUT_RESPONSE] = "http_status",
    [HTTP_OUT_TIMEOUT] = "timeout",
    [HTTP_OUT_CONNECT] = "connect",
    [HTTP_OUT_DNS] = "dns",
    [HTTP_OUT_TLS] = "tls",
    [HTTP_OUT_REFUSED_ADDRESS] = "refused_address",
    [HTTP_OUT_TOO_LARGE] = "response_too_large",
    [HTTP_OUT_ERROR] = "error",
};

static void on_readable(h2o_socket_t *sock, const char *err);
static void on_writable(h2o_socket_t *sock, const char *err);

static uint64_t
monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- driving curl from the loop ---------------------------------------- */

/* Frees a transfer's curl state and memory; its callback is not called. */
static void
xfer_free(struct http_out_xfer *x)
{
    curl_multi_remove_handle(x->h->multi, x->easy);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    h2o_linklist_unlink(&x->link);
    x->h->in_flight--;
    free(x->body);
    free(x);
}

static int
is_tls_error(CURLcode code)
{
    switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

static enum http_out_outcome
outcome_of(const struct http_out_xfer *x, CURLcode code)
{
    if (code == CURLE_OK)
        return HTTP_OUT_RESPONSE;
    /* The cap stops a transfer by failing a write callback: CURLE_WRITE_ERROR. */
    if (x->too_large)
        return HTTP_OUT_TOO_LARGE;
    /* A refused address gets no socket, which curl reports as a failed connect. */
    if (code == CURLE_COULDNT_CONNECT)
        return x->refused ? HTTP_OUT_REFUSED_ADDRESS : HTTP_OUT_CONNECT;
    if (code == CURLE_COULDNT_RESOLVE_HOST)
        return HTTP_OUT_DNS;
    if (code == CURLE_OPERATION_TIMEDOUT)
        return HTTP_OUT_TIMEOUT;
    if (is_tls_error(code))
        return HTTP_OUT_TLS;
    return HTTP_OUT_ERROR;
}

/* Reports a finished transfer to its owner, then frees it. */
static void
xfer_finish(struct http_out_xfer *x, CURLcode code)
{
    struct http_out_result res;
    long status = 0;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    res.outcome = outcome_of(x, code);
    res.status = status;
    res.body = x->body != NULL ? x->body : "";
    res.body_len = x->body_len;
    res.retry_after_s = x->retry_after_s;
    res.duration_ms = monotonic_ms() - x->started_ms;
    if (res.outcome == HTTP_OUT_RESPONSE)
        x->detail[0] = '\0';
    else if (res.outcome == HTTP_OUT_TOO_LARGE)
        snprintf(x->detail, sizeof(x->detail), "the response exceeded %zu bytes", x->h->max_response_bytes);
    else if (res.outcome != HTTP_OUT_REFUSED_ADDRESS)
        snprintf(x->detail, sizeof(x->detail), "%s", x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(code));
    res.detail = x->detail;
    /* Out of the multi handle first: the callback may start transfers, and this one is done. */
    curl_multi_remove_handle(x->h->multi, x->easy);
    x->cb(x->owner, &res);
    xfer_free(x);
}

/* Hands every finished transfer to its owner. */
static void
collect_done(struct http_out *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct http_out_xfer *x = NULL;
        CURLcode code = msg->data.result;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        xfer_finish(x, code);
    }
}

static void
socket_action(struct http_out *h, curl_socket_t fd, int events)
{
    int running;

    curl_multi_socket_action(h->multi, fd, events, &running);
    collect_done(h);
}

static void
on_readable(h2o_socket_t *sock, const char *err)
{
    struct http_out_sock *s = sock->data;

    /* s may be gone once curl has acted: fd and h are read first. */
    socket_action(s->h, s->fd, CURL_CSELECT_IN);
}

static void
on_writable(h2o_socket_t *sock, const char *err)
{
    struct http_out_sock *s = sock->data;

    s->write_armed = 0;
    if (s->want_write)
        socket_action(s->h, s->fd, CURL_CSELECT_OUT | (err != NULL ? CURL_CSELECT_ERR : 0));
}

static void
sock_close(struct http_out_sock *s)
{
    h2o_socket_read_stop(s->sock);
    h2o_socket_close(s->sock);
    h2o_linklist_unlink(&s->link);
    free(s);
}

/* The watch of fd, or NULL. */
static struct http_out_sock *
sock_find(struct http_out *h, curl_socket_t fd)
{
    for (h2o_linklist_t *n = h->socks.next; n != &h->socks; n = n->next) {
        struct http_out_sock *s = H2O_STRUCT_FROM_MEMBER(struct http_out_sock, link, n);
        if (s->fd == fd)
            return s;
    }
    return NULL;
}

/* A new watch of fd, idle (not reading, no write notification); NULL, logged, on failure. */
static struct http_out_sock *
sock_watch(struct http_out *h, curl_socket_t fd, int ours)
{
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    struct http_out_sock *s;

    if (copy < 0 || (s = calloc(1, sizeof(*s))) == NULL) {
        if (copy >= 0)
            close(copy);
        LOG_WARN("could not watch an outbound connection: out of descriptors or memory");
        return NULL;
    }
    s->h = h;
    s->fd = fd;
    s->ours = ours;
    s->sock = h2o_evloop_socket_create(h->loop, copy, H2O_SOCKET_FLAG_DONT_READ);
    s->sock->data = s;
    h2o_linklist_insert(&h->socks, &s->link);
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd as curl says. */
static int
on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_out *h = userp;
    struct http_out_sock *s = socketp;

    if (s == NULL)
        s = sock_find(h, fd);
    if (what == CURL_POLL_REMOVE) {
        if (s == NULL)
            return 0;
        if (!s->ours) {
            sock_close(s);
            return 0;
        }
        /* An idle connection curl keeps: watched again if it is reused, closed in on_close_socket. */
        if (h2o_socket_is_reading(s->sock))
            h2o_socket_read_stop(s->sock);
        s->want_write = 0;
        return 0;
    }
    if (s == NULL && (s = sock_watch(h, fd, 0)) == NULL)
        return -1;
    curl_multi_assign(h->multi, fd, s);
    if ((what & CURL_POLL_IN) != 0) {
        if (!h2o_socket_is_reading(s->sock))
            h2o_socket_read_start(s->sock, on_readable);
    } else if (h2o_socket_is_reading(s->sock))
        h2o_socket_read_stop(s->sock);
    s->want_write = (what & CURL_POLL_OUT) != 0;
    if (s->want_write && !s->write_armed) {
        s->write_armed = 1;
        h2o_socket_notify_write(s->sock, on_writable);
    }
    return 0;
}

static void
on_timer(h2o_timeout_entry_t *entry)
{
    struct http_out *h = H2O_STRUCT_FROM_MEMBER(struct http_out, timer, entry);

    socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: one timer, due timeout_ms from now; -1 removes it. */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_out *h = userp;

    h2o_timeout_unlink(&h->timer);
    if (timeout_ms >= 0) {
        h2o_timeout_link(h->loop, &h->timeout, &h->timer);
        h->timer.registered_at += (uint64_t)timeout_ms;
    }
    return 0;
}

/* --- one transfer's callbacks ------------------------------------------ */

/* CURLOPT_OPENSOCKETFUNCTION: the address check, on the address about to be connected. */
static curl_socket_t
on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct http_out_xfer *x = clientp;
    const struct sockaddr *sa = &a->addr;
    const char *range = "not an Internet address";
    char text[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    curl_socket_t fd;

    if (purpose == CURLSOCKTYPE_IPCXN && a->family == sa->sa_family &&
        ((a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) ||
         (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6))) &&
        netcheck_allowed(sa, x->h->allow, x->h->nallow, &range)) {
        if ((fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol)) < 0) {
            LOG_WARN("could not make a socket for an outbound request: %s", strerror(errno));
            return CURL_SOCKET_BAD;
        }
        /* A watch of the same number is of a descriptor closed since: it must not see this one. */
        struct http_out_sock *stale = sock_find(x->h, fd);
        if (stale != NULL)
            sock_close(stale);
        if (sock_watch(x->h, fd, 1) == NULL) {
            close(fd);
            return CURL_SOCKET_BAD;
        }
        return fd;
    }
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof(text));
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof(text));
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    x->refused = 1;
    snprintf(x->detail, sizeof(x->detail), "refused to connect to %s port %d: %s", text, port, range);
    return CURL_SOCKET_BAD;
}

/*
 * CURLOPT_CLOSESOCKETFUNCTION, for the sockets on_open_socket made: their
 * watch goes first, then the socket (see the top of the file).  clientp is
 * the struct http_out, which outlives every connection (http_out_destroy).
 */
static int
on_close_socket(void *clientp, curl_socket_t fd)
{
    struct http_out_sock *s = sock_find(clientp, fd);

    if (s != NULL)
        sock_close(s);
    return close(fd);
}

/* Retry-After: delta-seconds, or an HTTP-date (curl_getdate reads all three forms); -1 when unreadable. */
static long
parse_retry_after(const char *v, size_t n)
{
    char buf[64];
    size_t i;
    long long secs;

    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        ;
    if (i == n) {
        /* Leading zeros and absurd values alike: only the number matters, capped. */
        secs = 0;
        for (i = 0; i < n; i++) {
            secs = secs * 10 + (buf[i] - '0');
            if (secs > INT_MAX)
                return INT_MAX;
        }
        return (long)secs;
    }
    time_t when = curl_getdate(buf, NULL);
    if (when == (time_t)-1)
        return -1;
    secs = (long long)when - (long long)time(NULL);
    return secs < 0 ? 0 : secs > INT_MAX ? INT_MAX : (long)secs;
}

/* CURLOPT_HEADERFUNCTION: counts the headers against the cap, remembers the final response's Retry-After. */
static size_t
on_header(char *data, size_t size, size_t n, void *userp)
{
    struct http_out_xfer *x = userp;
    size_t len = size * n;
    static const char retry_after[] = "retry-after:";

    x->header_bytes += len;
    if (x->header_bytes > x->h->max_response_bytes) {
        x->too_large = 1;
        return 0;
    }
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        x->retry_after_s = -1; /* a new response begins (after a 1xx): only the last one counts */
    else if (len >= sizeof(retry_after) - 1 && strncasecmp(data, retry_after, sizeof(retry_after) - 1) == 0)
        x->retry_after_s = parse_retry_after(data + sizeof(retry_after) - 1, len - (sizeof(retry_after) - 1));
    return len;
}

/* CURLOPT_WRITEFUNCTION: the body, up to the cap; beyond it the transfer stops. */
static size_t
on_body(char *data, size_t size, size_t n, void *userp)
{
    struct http_out_xfer *x = userp;
    size_t len = size * n, max = x->h->max_response_bytes, room = max - x->body_len, keep = len < room ? len : room;

    if (x->body_len + keep > x->body_cap) {
        size_t cap = x->body_cap < 4096 ? 4096 : x->body_cap * 2;
        char *p;
        if (cap < x->body_len + keep)
            cap = x->body_len + keep;
        if (cap > max)
            cap = max;
        if ((p = realloc(x->body, cap)) == NULL)
            return 0;
        x->body = p;
        x->body_cap = cap;
    }
    memcpy(x->body + x->body_len, data, keep);
    x->body_len += keep;
    if (keep < len) {
        x->too_large = 1;
        return 0;
    }
    return len;
}

/* CURLOPT_SSL_CTX_FUNCTION: the extra CAs next to the system's. */
static CURLcode
on_ssl_ctx(CURL *easy, void *ssl_ctx, void *userp)
{
    struct http_out *h = userp;
    X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);

    for (int i = 0; i < sk_X509_num(h->extra_cas); i++)
        if (!X509_STORE_add_cert(store, sk_X509_value(h->extra_cas, i))) {
            ERR_clear_error();
            return CURLE_SSL_CACERT_BADFILE;
        }
    return CURLE_OK;
}

/* --- the interface ------------------------------------------------------ */

/* The certificates of a PEM file; NULL (logged) when it holds none or cannot be read. */
static STACK_OF(X509) * load_cas(const char *path)
{
    STACK_OF(X509) *cas = sk_X509_new_null();
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert;

    if (cas == NULL || bio == NULL) {
        LOG_ERROR("webhooks.ca_file \"%s\": could not open", path);
        BIO_free(bio);
        sk_X509_free(cas);
        ERR_clear_error();
        return NULL;
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(cas, cert)) {
            X509_free(cert);
            break;
        }
    /* The loop ends on the end of the file, which OpenSSL reports as an error. */
    ERR_clear_error();
    BIO_free(bio);
    if (sk_X509_num(cas) == 0) {
        LOG_ERROR("webhooks.ca_file \"%s\": no PEM certificate in it", path);
        sk_X509_free(cas);
        return NULL;
    }
    return cas;
}

struct http_out *
http_out_create(h2o_evloop_t *loop, const struct http_out_settings *s)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    struct http_out *h;

    /* 7.85 brought CURLOPT_PROTOCOLS_STR; a resolver that is not asynchronous would block the loop. */
    if (v->version_num < 0x075500 || (v->features & CURL_VERSION_ASYNCHDNS) == 0) {
        LOG_ERROR("libcurl %s cannot serve outbound requests: version 7.85 or later with an asynchronous resolver "
                  "is needed",
                  v->version);
        return NULL;
    }
    /* The extra CAs go into OpenSSL's certificate store, which only libcurl's OpenSSL backend has. */
    if (s->ca_file != NULL && (v->ssl_version == NULL || strncmp(v->ssl_version, "OpenSSL/", 8) != 0)) {
        LOG_ERROR("webhooks.ca_file needs libcurl built with OpenSSL, not %s",
                  v->ssl_version ? v->ssl_version : "none");
        return NULL;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    h->loop = loop;
    h->connect_timeout_ms = s->connect_timeout_ms;
    h->total_timeout_ms = s->total_timeout_ms;
    h->low_speed_bytes = s->low_speed_bytes;
    h->low_speed_time_s = s->low_speed_time_s;
    h->max_response_bytes = s->max_response_bytes;
    h2o_linklist_init_anchor(&h->xfers);
    h2o_linklist_init_anchor(&h->socks);
    h2o_timeout_init(loop, &h->timeout, 0);
    h->timer.cb = on_timer;
    if ((h->user_agent = strdup(s->user_agent != NULL ? s->user_agent : "")) == NULL ||
        (s->nallow > 0 && (h->allow = malloc(s->nallow * sizeof(*h->allow))) == NULL) ||
        (s->ca_file != NULL && (h->extra_cas = load_cas(s->ca_file)) == NULL) || (h->multi = curl_multi_init()) == NULL)
        goto fail;
    if (s->nallow > 0)
        memcpy(h->allow, s->allow, s->nallow * sizeof(*h->allow));
    h->nallow = s->nallow;
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK)
        goto fail;
    return h;

fail:
    LOG_ERROR("could not set up the outbound HTTP module");
    http_out_destroy(h);
    return NULL;
}

/* An HTTP method is a token; ours are upper-case words. */
static int
method_valid(const char *m)
{
    size_t n = m != NULL ? strlen(m) : 0;

    return n > 0 && n <= 16 && strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

struct http_out_xfer *
http_out_start(struct http_out *h, const struct http_out_request *r, http_out_cb cb, void *owner)
{
    struct http_out_xfer *x;
    CURLcode rc = CURLE_OK;
    CURL *e;
    int post = method_valid(r->method) && strcmp(r->method, "POST") == 0;

    if (!method_valid(r->method) || (x = calloc(1, sizeof(*x))) == NULL)
        return NULL;
    if ((e = x->easy = curl_easy_init()) == NULL) {
        free(x);
        return NULL;
    }
    x->h = h;
    x->cb = cb;
    x->owner = owner;
    x->retry_after_s = -1;
    /* "Expect:" removes the Expect: 100-continue curl would add to large bodies, a wasted round trip. */
    for (const char *const *hd = r->headers; hd != NULL && *hd != NULL && rc == CURLE_OK; hd++)
        rc = (x->headers = curl_slist_append(x->headers, *hd)) == NULL ? CURLE_OUT_OF_MEMORY : CURLE_OK;
    if (rc == CURLE_OK && (x->headers = curl_slist_append(x->headers, "Expect:")) == NULL)
        rc = CURLE_OUT_OF_MEMORY;

#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt(e, opt, val);                                                                        \
    } while (0)
    SET(CURLOPT_PRIVATE, x);
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* No proxy, whatever http_proxy, HTTPS_PROXY, ALL_PROXY or NO_PROXY say. */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOPROXY, "*");
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->extra_cas != NULL) {
        SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        SET(CURLOPT_SSL_CTX_DATA, h);
    }
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)h->total_timeout_ms);
    if (h->low_speed_bytes > 0 && h->low_speed_time_s > 0) {
        SET(CURLOPT_LOW_SPEED_LIMIT, (long)h->low_speed_bytes);
        SET(CURLOPT_LOW_SPEED_TIME, (long)h->low_speed_time_s);
    }
    /* No Accept-Encoding is sent (CURLOPT_ACCEPT_ENCODING unset); what arrives compressed anyway stays so. */
    SET(CURLOPT_HTTP_CONTENT_DECODING, 0L);
    SET(CURLOPT_USERAGENT, h->user_agent);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTPHEADER, x->headers);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, x);
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, x->h);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    if (r->body != NULL || post) {
        /* The size first, so that the copy takes body_len bytes, not up to a NUL. */
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(r->body != NULL ? r->body_len : 0));
        SET(CURLOPT_COPYPOSTFIELDS, r->body != NULL ? r->body : "");
        if (!post)
            SET(CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "HEAD") == 0)
        SET(CURLOPT_NOBODY, 1L);
    else if (strcmp(r->method, "GET") != 0)
        SET(CURLOPT_CUSTOMREQUEST, r->method);
#undef SET

    if (rc != CURLE_OK || curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        LOG_WARN("could not set up an outbound request: %s", curl_easy_strerror(rc));
        curl_easy_cleanup(e);
        curl_slist_free_all(x->headers);
        free(x);
        return NULL;
    }
    x->started_ms = monotonic_ms();
    h2o_linklist_insert(&h->xfers, &x->link);
    h->in_flight++;
    return x;
}

void
http_out_cancel(struct http_out_xfer *x)
{
    xfer_free(x);
}

void
http_out_destroy(struct http_out *h)
{
    if (h == NULL)
        return;
    while (!h2o_linklist_is_empty(&h->xfers))
        xfer_free(H2O_STRUCT_FROM_MEMBER(struct http_out_xfer, link, h->xfers.next));
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    /* Connections curl kept for reuse are closed by now; their watches go too. */
    while (!h2o_linklist_is_empty(&h->socks))
        sock_close(H2O_STRUCT_FROM_MEMBER(struct http_out_sock, link, h->socks.next));
    h2o_timeout_unlink(&h->timer);
    h2o_timeout_dispose(h->loop, &h->timeout);
    if (h->extra_cas != NULL)
        sk_X509_pop_free(h->extra_cas, X509_free);
    free(h->allow);
    free(h->user_agent);
    free(h);
}

const char *
http_out_outcome_name(enum http_out_outcome o)
{
    return (unsigned)o < sizeof(outcome_names) / sizeof(outcome_names[0]) ? outcome_names[o] : "error";
}

unsigned
http_out_in_flight(const struct http_out *h)
{
    return h->in_flight;
}
