/*
 * Tests of http_out.c without a database: an h2o loop on the main thread
 * drives the module against receivers written here, on loopback only, each
 * an accept thread with a thread a connection (plain sockets, or OpenSSL
 * with a self-signed certificate made at start).  A receiver's behaviour is
 * chosen by the request path:
 *
 *   /ok        200, the body "received:" and the request body
 *   /503       503 with Retry-After: 7
 *   /503date   503 with Retry-After an HTTP-date an hour ahead
 *   /302       302 to another receiver, which must see no connection
 *   /big       200 announcing 64 MiB and sending until the client hangs up
 *   /bighead   200 with 100 kB of headers
 *   /trickle   200 announcing 100 bytes and sending one every 300 ms
 *   /hang      reads the request and never answers
 *
 * Every positive case reaches loopback only because the allow list names it;
 * with the allow list empty every spelling of loopback is refused and the
 * receivers count no connection at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_out.h"
#include "unit.h"

#define MAX_CONNS 64

/* --- the receivers ----------------------------------------------------- */

struct srv {
    int lfd;
    int port;
    SSL_CTX *ssl; /* NULL: plain HTTP */
    int redirect_port;
    pthread_t thread;
    atomic_int accepted;
    atomic_int saw_close;   /* /big: a send failed because the client went away */
    atomic_int hang_closed; /* /hang: the client closed the connection */
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_t conns[MAX_CONNS];
    int nconns;
    char last_request[16384]; /* head and body of the last request read */
};

struct conn {
    struct srv *s;
    int fd;
    SSL *ssl;
};

static ssize_t
conn_read(struct conn *c, char *buf, size_t len)
{
    return c->ssl != NULL ? SSL_read(c->ssl, buf, (int)len) : recv(c->fd, buf, len, 0);
}

static int
conn_write(struct conn *c, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = c->ssl != NULL ? SSL_write(c->ssl, buf, (int)len) : send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one request, head and body; the whole of it is left in buf (NUL-terminated), its length in *total. */
static int
read_request(struct conn *c, char *buf, size_t cap, size_t *total)
{
    size_t len = 0, want = 0;
    char *end;

    for (;;) {
        ssize_t n;
        if (len == cap - 1)
            return -1;
        if ((n = conn_read(c, buf + len, cap - 1 - len)) <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (want == 0 && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            want = (size_t)(end + 4 - buf) + (cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (want != 0 && len >= want) {
            *total = len;
            return 0;
        }
    }
}

static void
respond(struct conn *c, const char *req, size_t req_len)
{
    struct srv *s = c->s;
    char head[512], *pad;
    const char *path = strchr(req, ' ') != NULL ? strchr(req, ' ') + 1 : "";
    const char *body = strstr(req, "\r\n\r\n") + 4;
    size_t body_len = req_len - (size_t)(body - req);

    if (strncmp(path, "/ok ", 4) == 0) {
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\nreceived:", 9 + body_len);
        if (conn_write(c, head, strlen(head)) == 0)
            conn_write(c, body, body_len);
    } else if (strncmp(path, "/503 ", 5) == 0) {
        snprintf(head, sizeof(head),
                 "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
                 "busy");
        conn_write(c, head, strlen(head));
    } else if (strncmp(path, "/503date ", 9) == 0) {
        char date[64];
        time_t later = time(NULL) + 3600;
        struct tm tm;
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&later, &tm));
        snprintf(
            head, sizeof(head),
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            date);
        conn_write(c, head, strlen(head));
    } else if (strncmp(path, "/302 ", 5) == 0) {
        snprintf(
            head, sizeof(head),
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/ok\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            s->redirect_port);
        conn_write(c, head, strlen(head));
    } else if (strncmp(path, "/big ", 5) == 0) {
        static char chunk[65536];
        memset(chunk, 'x', sizeof(chunk));
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", 64 << 20);
        if (conn_write(c, head, strlen(head)) == 0)
            for (int i = 0; i < 1024; i++)
                if (conn_write(c, chunk, sizeof(chunk)) != 0) {
                    atomic_store(&s->saw_close, 1);
                    break;
                }
    } else if (strncmp(path, "/bighead ", 9) == 0) {
        size_t n = 100000;
        if ((pad = malloc(n + 64)) != NULL) {
            memcpy(pad, "HTTP/1.1 200 OK\r\nX-Pad: ", 24);
            memset(pad + 24, 'p', n);
            memcpy(pad + 24 + n, "\r\nContent-Length: 0\r\n\r\n", 24);
            conn_write(c, pad, 24 + n + 23);
            free(pad);
        }
    } else if (strncmp(path, "/trickle ", 9) == 0) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n");
        if (conn_write(c, head, strlen(head)) == 0)
            for (int i = 0; i < 100 && conn_write(c, "t", 1) == 0; i++)
                usleep(300000);
    } else if (strncmp(path, "/hang ", 6) == 0) {
        char b[256];
        while (conn_read(c, b, sizeof(b)) > 0)
            ;
        atomic_store(&s->hang_closed, 1);
    }
}

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    char *req = malloc(sizeof(c->s->last_request));
    size_t len;

    if (c->s->ssl != NULL) {
        c->ssl = SSL_new(c->s->ssl);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_accept(c->ssl) != 1)
            goto done;
    }
    if (req != NULL && read_request(c, req, sizeof(c->s->last_request), &len) == 0) {
        pthread_mutex_lock(&c->s->lock);
        memcpy(c->s->last_request, req, sizeof(c->s->last_request));
        pthread_mutex_unlock(&c->s->lock);
        respond(c, req, len);
    }
done:
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
    free(req);
    free(c);
    return NULL;
}

static void *
accept_main(void *arg)
{
    struct srv *s = arg;

    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        struct conn *c;
        if (fd < 0) {
            if (atomic_load(&s->stop))
                return NULL;
            continue;
        }
        atomic_fetch_add(&s->accepted, 1);
        pthread_mutex_lock(&s->lock);
        if (s->nconns == MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        pthread_create(&s->conns[s->nconns++], NULL, conn_main, c);
        pthread_mutex_unlock(&s->lock);
    }
}

/* Starts a receiver on addr (an IPv4 or IPv6 literal) and port (0: any). */
static int
srv_start(struct srv *s, const char *addr, int port, SSL_CTX *ssl)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    memset(s, 0, sizeof(*s));
    memset(&ss, 0, sizeof(ss));
    pthread_mutex_init(&s->lock, NULL);
    s->ssl = ssl;
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        len = sizeof(struct sockaddr_in6);
    } else
        return -1;
    if ((s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s->lfd, (struct sockaddr *)&ss, len) != 0 || listen(s->lfd, 64) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&ss, &len) != 0) {
        close(s->lfd);
        return -1;
    }
    s->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return pthread_create(&s->thread, NULL, accept_main, s) == 0 ? 0 : -1;
}

/* Stops a receiver once its clients are gone; every thread is joined. */
static void
srv_stop(struct srv *s)
{
    atomic_store(&s->stop, 1);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    for (int i = 0; i < s->nconns; i++)
        pthread_join(s->conns[i], NULL);
}

/* A self-signed certificate for 127.0.0.1 and localhost, written to cert_path; the server's context. */
static SSL_CTX *
make_tls(const char *cert_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    SSL_CTX *ctx = NULL;
    FILE *fp;

    if (key == NULL || x == NULL)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"actloom test receiver", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost")) == NULL)
        goto out;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE")) == NULL)
        goto out;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (X509_sign(x, key, EVP_sha256()) == 0 || (fp = fopen(cert_path, "w")) == NULL)
        goto out;
    PEM_write_X509(fp, x);
    fclose(fp);
    if ((ctx = SSL_CTX_new(TLS_server_method())) != NULL &&
        (SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)) {
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

/* --- the client side --------------------------------------------------- */

static h2o_evloop_t *loop;
static int finished; /* callbacks so far, to order them */

struct done {
    int calls;
    int seq;
    enum http_out_outcome outcome;
    long status;
    char body[65536 + 1];
    size_t body_len;
    long retry_after_s;
    uint64_t duration_ms;
    char detail[256];
};

static void
on_done(void *owner, const struct http_out_result *r)
{
    struct done *d = owner;

    d->calls++;
    d->seq = ++finished;
    d->outcome = r->outcome;
    d->status = r->status;
    d->body_len = r->body_len < sizeof(d->body) - 1 ? r->body_len : sizeof(d->body) - 1;
    memcpy(d->body, r->body, d->body_len);
    d->body[d->body_len] = '\0';
    d->retry_after_s = r->retry_after_s;
    d->duration_ms = r->duration_ms;
    snprintf(d->detail, sizeof(d->detail), "%s", r->detail);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until d has been called (or the deadline passes). */
static void
run_until_done(struct done *d, unsigned max_ms)
{
    uint64_t end = now_ms() + max_ms;

    while (d->calls == 0 && now_ms() < end)
        h2o_evloop_run(loop, 20);
}

static void
run_for(unsigned ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end)
        h2o_evloop_run(loop, 10);
}

/* Waits up to max_ms for a receiver thread to set *flag. */
static int
wait_flag(atomic_int *flag, unsigned max_ms)
{
    uint64_t end = now_ms() + max_ms;

    while (!atomic_load(flag) && now_ms() < end)
        usleep(5000);
    return atomic_load(flag);
}

/* One request to url with http_out h, the loop run until it is answered; d reset first. */
static struct done *
fetch(struct http_out *h, const char *method, const char *url, const char *const *headers, const char *body,
      struct done *d)
{
    struct http_out_request r = {method, url, headers, body, body != NULL ? strlen(body) : 0};

    memset(d, 0, sizeof(*d));
    if (http_out_start(h, &r, on_done, d) != NULL)
        run_until_done(d, 5000);
    return d;
}

static struct config_cidr
cidr(const char *text)
{
    struct config_cidr c;

    config_parse_cidr(text, &c);
    return c;
}

int
main(void)
{
    char dir[] = "/tmp/actloom-http-out-XXXXXX", cert_path[256], url[256], name[1024];
    struct srv plain, target, tls, v4, v6, proxy;
    struct config_cidr loopback[2] = {cidr("127.0.0.0/8"), cidr("::1")};
    struct http_out_settings settings = {
        .connect_timeout_ms = 1000,
        .total_timeout_ms = 1500,
        .max_response_bytes = 65536,
        .user_agent = "actloom-webhooks/test",
        .allow = loopback,
        .nallow = 2,
    };
    struct http_out *h, *h_ca, *h_strict;
    struct http_out_xfer *x;
    static struct done d, d2;
    const char *const json[] = {"Content-Type: application/json", "webhook-id: msg_test", NULL};
    int closed_port;
    uint64_t started;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    loop = h2o_evloop_create();
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(cert_path, sizeof(cert_path), "%s/ca.pem", dir);
    SSL_CTX *server_tls = make_tls(cert_path);
    CHECK(server_tls != NULL, "a self-signed certificate is made");
    CHECK(srv_start(&target, "127.0.0.1", 0, NULL) == 0 && srv_start(&plain, "127.0.0.1", 0, NULL) == 0 &&
              srv_start(&tls, "127.0.0.1", 0, server_tls) == 0 && srv_start(&proxy, "127.0.0.1", 0, NULL) == 0,
          "the receivers listen");
    plain.redirect_port = target.port;
    /* One port on both loopbacks, so that "localhost" names both. */
    CHECK(srv_start(&v4, "127.0.0.1", 0, NULL) == 0 && srv_start(&v6, "::1", v4.port, NULL) == 0,
          "a receiver on 127.0.0.1 and ::1 at one port");
    {
        struct srv gone;
        srv_start(&gone, "127.0.0.1", 0, NULL);
        closed_port = gone.port;
        srv_stop(&gone);
    }
    /* Proxies from the environment must not be used. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", proxy.port);
    setenv("http_proxy", url, 1);
    setenv("HTTPS_PROXY", url, 1);
    setenv("ALL_PROXY", url, 1);

    CHECK((h = http_out_create(loop, &settings)) != NULL, "an outbound module is made");

    /* 200: the body is captured, the request is what was asked for and nothing more. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", plain.port);
    fetch(h, "POST", url, json, "{\"test\": 2432232314}", &d);
    CHECK(d.calls == 1 && d.outcome == HTTP_OUT_RESPONSE && d.status == 200 && d.retry_after_s == -1 &&
              strcmp(d.body, "received:{\"test\": 2432232314}") == 0 && d.detail[0] == '\0',
          "200: a response, its body captured");
    pthread_mutex_lock(&plain.lock);
    CHECK(strncmp(plain.last_request, "POST /ok HTTP/1.1\r\n", 19) == 0, "the method and path are sent");
    CHECK(strstr(plain.last_request, "\r\nUser-Agent: actloom-webhooks/test\r\n") != NULL, "the User-Agent is sent");
    CHECK(strstr(plain.last_request, "\r\nContent-Type: application/json\r\n") != NULL &&
              strstr(plain.last_request, "\r\nwebhook-id: msg_test\r\n") != NULL,
          "the request's headers are sent");
    CHECK(strstr(plain.last_request, "\r\nContent-Length: 20\r\n") != NULL &&
              strcmp(strstr(plain.last_request, "\r\n\r\n") + 4, "{\"test\": 2432232314}") == 0,
          "the body is sent byte for byte");
    CHECK(strcasestr(plain.last_request, "accept-encoding") == NULL, "no compressed response is requested");
    CHECK(strcasestr(plain.last_request, "\r\nexpect:") == NULL, "no Expect: 100-continue");
    pthread_mutex_unlock(&plain.lock);
    CHECK(http_out_in_flight(h) == 0, "nothing in flight after the callback");
    CHECK(atomic_load(&proxy.accepted) == 0, "http_proxy, HTTPS_PROXY and ALL_PROXY are ignored");

    /* Bodies with NUL bytes and methods other than POST. */
    {
        struct http_out_request r = {"PUT", url, NULL, "a\0b", 3};
        memset(&d, 0, sizeof(d));
        CHECK(http_out_start(h, &r, on_done, &d) != NULL, "a PUT starts");
        run_until_done(&d, 5000);
        CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 200 && d.body_len == 12 &&
                  memcmp(d.body, "received:a\0b", 12) == 0,
              "a body is sent by its length, not up to a NUL");
        pthread_mutex_lock(&plain.lock);
        CHECK(strncmp(plain.last_request, "PUT /ok HTTP/1.1\r\n", 18) == 0 &&
                  strstr(plain.last_request, "\r\nContent-Length: 3\r\n") != NULL,
              "PUT with a body of three bytes");
        pthread_mutex_unlock(&plain.lock);
    }
    fetch(h, "GET", url, NULL, NULL, &d);
    CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 200 && strcmp(d.body, "received:") == 0, "GET");
    {
        struct http_out_request r = {"post me", url, NULL, NULL, 0};
        CHECK(http_out_start(h, &r, on_done, &d) == NULL, "a method that is not a token is refused");
    }

    /* 503 and Retry-After, in seconds and as a date. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/503", plain.port);
    fetch(h, "POST", url, json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 503 && d.retry_after_s == 7 && strcmp(d.body, "busy") == 0,
          "503 with Retry-After: 7");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/503date", plain.port);
    fetch(h, "POST", url, json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 503 && d.retry_after_s >= 3590 && d.retry_after_s <= 3600,
          "503 with Retry-After an HTTP-date an hour ahead");

    /* 302: a response like any other, not followed. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/302", plain.port);
    fetch(h, "POST", url, json, "{}", &d);
    run_for(100);
    CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 302, "302 is a response");
    CHECK(atomic_load(&target.accepted) == 0, "the redirect target sees no connection");

    /* Too large: cut off at the cap, the status still reported, the receiver sees the connection go. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", plain.port);
    fetch(h, "POST", url, json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_TOO_LARGE && d.status == 200 && d.body_len == 65536 && d.body[65535] == 'x',
          "an oversized body is cut off at the cap: response_too_large, status 200, the first 64 KiB");
    CHECK(wait_flag(&plain.saw_close, 3000), "the receiver notices the close");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/bighead", plain.port);
    fetch(h, "POST", url, json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_TOO_LARGE, "oversized headers are cut off too");

    /* A receiver that never answers times out, while another is served meanwhile. */
    {
        struct http_out_request hang = {"POST", NULL, json, "{}", 2}, ok = {"POST", NULL, json, "{}", 2};
        char hang_url[128], ok_url[128];
        snprintf(hang_url, sizeof(hang_url), "http://127.0.0.1:%d/hang", plain.port);
        snprintf(ok_url, sizeof(ok_url), "http://127.0.0.1:%d/ok", plain.port);
        hang.url = hang_url;
        ok.url = ok_url;
        memset(&d, 0, sizeof(d));
        memset(&d2, 0, sizeof(d2));
        started = now_ms();
        CHECK(http_out_start(h, &hang, on_done, &d) != NULL && http_out_start(h, &ok, on_done, &d2) != NULL &&
                  http_out_in_flight(h) == 2,
              "two transfers in flight");
        run_until_done(&d2, 5000);
        CHECK(d2.outcome == HTTP_OUT_RESPONSE && d2.status == 200 && d.calls == 0 && now_ms() - started < 1000,
              "the healthy receiver is answered while the other hangs");
        run_until_done(&d, 5000);
        CHECK(d.outcome == HTTP_OUT_TIMEOUT && d.status == 0 && d.duration_ms >= 1400 && d.duration_ms < 3000 &&
                  d2.seq < d.seq,
              "the hanging receiver times out after the total timeout");
        CHECK(wait_flag(&plain.hang_closed, 2000), "the hanging receiver's connection is closed");
        snprintf(name, sizeof(name), "timeout detail: %s", d.detail);
        CHECK(strstr(d.detail, "imed out") != NULL, name);
    }

    /* The low-speed cutoff stops a trickle long before the total timeout. */
    {
        struct http_out *h_slow;
        settings.total_timeout_ms = 5000;
        settings.low_speed_bytes = 1000;
        settings.low_speed_time_s = 1;
        CHECK((h_slow = http_out_create(loop, &settings)) != NULL, "an outbound module with a low-speed cutoff");
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/trickle", plain.port);
        fetch(h_slow, "POST", url, json, "{}", &d);
        snprintf(name, sizeof(name), "a trickle is cut off by the low-speed limit (%s, %llu ms)", d.detail,
                 (unsigned long long)d.duration_ms);
        CHECK(d.outcome == HTTP_OUT_TIMEOUT && d.duration_ms >= 900 && d.duration_ms < 4000 &&
                  strstr(d.detail, "too slow") != NULL,
              name);
        http_out_destroy(h_slow);
        settings.total_timeout_ms = 1500;
        settings.low_speed_bytes = 0;
        settings.low_speed_time_s = 0;
    }

    /* Connection refused, a name that does not resolve. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", closed_port);
    fetch(h, "POST", url, json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_CONNECT && d.status == 0, "a refused connection: connect");
    fetch(h, "POST", "http://actloom-test.invalid/ok", json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_DNS && d.status == 0, "a name that does not resolve: dns");
    fetch(h, "POST", "ftp://127.0.0.1/ok", json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_ERROR && d.status == 0, "a protocol other than http(s): error");

    /* TLS: a self-signed receiver is refused until its CA is configured, which adds to the system's. */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", tls.port);
    fetch(h, "POST", url, json, "{}", &d);
    snprintf(name, sizeof(name), "an untrusted certificate: tls (%s)", d.detail);
    CHECK(d.outcome == HTTP_OUT_TLS && d.status == 0, name);
    settings.ca_file = cert_path;
    CHECK((h_ca = http_out_create(loop, &settings)) != NULL, "an outbound module with webhooks.ca_file");
    fetch(h_ca, "POST", url, json, "{\"tls\": 1}", &d);
    CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 200 && strcmp(d.body, "received:{\"tls\": 1}") == 0,
          "trusted through ca_file: a response");
    fetch(h_ca, "POST", url, json, "{\"tls\": 2}", &d);
    CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 200, "and again, on curl's cached certificate store");
    snprintf(url, sizeof(url), "https://localhost:%d/ok", tls.port);
    fetch(h_ca, "POST", url, json, "{}", &d);
    CHECK(d.outcome == HTTP_OUT_RESPONSE && d.status == 200, "the host name localhost is verified");
    snprintf(url, sizeof(url), "https://127.0.0.2:%d/ok", tls.port);
    {
        struct srv tls2;
        CHECK(srv_start(&tls2, "127.0.0.2", 0, server_tls) == 0, "the same certificate on 127.0.0.2");
        snprintf(url, sizeof(url), "https://127.0.0.2:%d/ok", tls2.port);
        fetch(h_ca, "POST", url, json, "{}", &d);
        CHECK(d.outcome == HTTP_OUT_TLS, "a certificate for another address: tls");
        http_out_destroy(h_ca);
        srv_stop(&tls2);
    }
    settings.ca_file = "/nonexistent/ca.pem";
    CHECK(http_out_create(loop, &settings) == NULL, "a ca_file that cannot be read is refused");
    settings.ca_file = NULL;

    /* The allow list empty: every spelling of loopback refused, nothing connected. */
    settings.nallow = 0;
    CHECK((h_strict = http_out_create(loop, &settings)) != NULL, "an outbound module that allows no network");
    {
        static const char *const hosts[] = {"127.0.0.1",  "[::1]",      "localhost",
                                            "2130706433", "0x7f000001", "[::ffff:127.0.0.1]"};
        for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
            snprintf(url, sizeof(url), "http://%s:%d/ok", hosts[i], v4.port);
            fetch(h_strict, "POST", url, json, "{}", &d);
            snprintf(name, sizeof(name), "%s: refused_address (%s)", hosts[i], d.detail);
            CHECK(d.calls == 1 && d.outcome == HTTP_OUT_REFUSED_ADDRESS && d.status == 0 &&
                      strstr(d.detail, "loopback (") != NULL,
                  name);
        }
        snprintf(url, sizeof(url), "https://localhost:%d/ok", tls.port);
        fetch(h_strict, "POST", url, json, "{}", &d);
        CHECK(d.outcome == HTTP_OUT_REFUSED_ADDRESS, "https to localhost: refused_address");
    }
    run_for(100);
    CHECK(atomic_load(&v4.accepted) == 0 && atomic_load(&v6.accepted) == 0,
          "the receivers on 127.0.0.1 and ::1 counted zero connections");
    http_out_destroy(h_strict);

    /* Cancelling: the callback never comes, the connection goes. */
    atomic_store(&plain.hang_closed, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", plain.port);
    {
        struct http_out_request r = {"POST", url, json, "{}", 2};
        int accepted = atomic_load(&plain.accepted);
        memset(&d, 0, sizeof(d));
        CHECK((x = http_out_start(h, &r, on_done, &d)) != NULL, "a transfer to cancel starts");
        if (x == NULL)
            return unit_done();
        for (uint64_t end = now_ms() + 2000; atomic_load(&plain.accepted) == accepted && now_ms() < end;)
            h2o_evloop_run(loop, 10);
        run_for(50);
        http_out_cancel(x);
        CHECK(http_out_in_flight(h) == 0, "a cancelled transfer is no longer in flight");
        run_for(1700);
        CHECK(d.calls == 0, "its callback is never called, not even when it would have timed out");
        CHECK(wait_flag(&plain.hang_closed, 2000), "its connection is closed");
    }

    /* Destroying with transfers in flight: no callback. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", plain.port);
    {
        struct http_out_request r = {"POST", url, json, "{}", 2};
        memset(&d, 0, sizeof(d));
        CHECK(http_out_start(h, &r, on_done, &d) != NULL, "a transfer starts before destruction");
        run_for(100);
        http_out_destroy(h);
        run_for(100);
        CHECK(d.calls == 0, "destroying cancels it without a callback");
    }

    CHECK(strcmp(http_out_outcome_name(HTTP_OUT_RESPONSE), "http_status") == 0 &&
              strcmp(http_out_outcome_name(HTTP_OUT_TIMEOUT), "timeout") == 0 &&
              strcmp(http_out_outcome_name(HTTP_OUT_CONNECT), "connect") == 0 &&
              strcmp(http_out_outcome_name(HTTP_OUT_DNS), "dns") == 0 &&
              strcmp(http_out_outcome_name(HTTP_OUT_TLS), "tls") == 0 &&
              strcmp(http_out_outcome_name(HTTP_OUT_REFUSED_ADDRESS), "refused_address") == 0 &&
              strcmp(http_out_outcome_name(HTTP_OUT_TOO_LARGE), "response_too_large") == 0 &&
              strcmp(http_out_outcome_name(HTTP_OUT_ERROR), "error") == 0,
          "outcome names are the database's");

    srv_stop(&plain);
    srv_stop(&target);
    srv_stop(&tls);
    srv_stop(&v4);
    srv_stop(&v6);
    srv_stop(&proxy);
    SSL_CTX_free(server_tls);
    unlink(cert_path);
    rmdir(dir);
    h2o_evloop_destroy(loop);
    curl_global_cleanup();
    return unit_done();
}
