/*
 * main.c: actloom-shim, the HTTP shim.
 *
 * The main thread reads the configuration, binds every listener (so that a
 * port in use is an error at start, not in a thread), starts the registry
 * loader and one worker thread per event loop, then waits for signals:
 *
 *   SIGHUP           reload rate-limit classes, trusted proxies, session
 *                    settings and the session key file, and the endpoint
 *                    registry from the database
 *   SIGTERM, SIGINT  stop accepting, let requests in flight finish (at most
 *                    the request timeout), exit 0
 *
 * Workers receive those decisions as h2o_multithread messages, so that all
 * of a thread's state is touched by that thread only.  Each worker has its
 * own SO_REUSEPORT listening socket: the kernel spreads connections across
 * them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "ratelimit_db.h"
#include "registry.h"
#include "reply.h"
#include "routes.h"
#include "shim.h"

#define TICK_MS 50
/* How often the first worker deletes expired rate-limit states, with the database store. */
#define RL_PURGE_MS 60000

enum control_kind { CONTROL_SHUTDOWN = 1 };

struct control_message {
    h2o_multithread_message_t super;
    enum control_kind kind;
};

/* --- requests ------------------------------------------------------------------- */

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct shim_thread *t = H2O_STRUCT_FROM_MEMBER(struct shim_thread, ctx, req->conn->ctx);

    routes_dispatch(req, t, 0);
    return 0;
}

static int
on_metrics_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct shim_thread *t = H2O_STRUCT_FROM_MEMBER(struct shim_thread, metrics_ctx, req->conn->ctx);

    routes_dispatch(req, t, 1);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err);

/* A client connection of the main listener is gone: accept again if the limit had stopped it. */
static void
on_connection_closed(void *data)
{
    struct shim_thread *t = data;

    t->connections--;
    if (t->accept_paused && t->listener != NULL) {
        t->accept_paused = 0;
        h2o_socket_read_start(t->listener, on_accept);
    }
}

/*
 * Accepts connections on the main listener while the thread holds fewer than
 * limits.connections; at the limit it stops reading the listener, and new
 * connections wait in the kernel's backlog until one closes.  Each connection
 * may buffer up to H2O_MAX_REQLEN bytes of request head (README: Limits and
 * memory), so this bounds what clients can make a thread hold.
 */
static void
on_accept(h2o_socket_t *listener, const char *err)
{
    struct shim_thread *t = H2O_STRUCT_FROM_MEMBER(struct shim_thread, accept_ctx, (h2o_accept_ctx_t *)listener->data);

    if (err != NULL)
        return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock;
        if (t->connections >= shim.cfg->connections) {
            h2o_socket_read_stop(listener);
            t->accept_paused = 1;
            return;
        }
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
            return;
        t->connections++;
        sock->on_close.cb = on_connection_closed;
        sock->on_close.data = t;
        h2o_accept(&t->accept_ctx, sock);
    }
}

/* The metrics listener (loopback by default, for the operator) is not counted. */
static void
on_accept_metrics(h2o_socket_t *listener, const char *err)
{
    h2o_accept_ctx_t *actx = listener->data;

    if (err != NULL)
        return;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        h2o_accept(actx, sock);
    }
}

/* --- listeners ------------------------------------------------------------------ */

/* Binds a listening socket; -1 with a message on stderr on failure. */
static int
bind_listener(const char *address, uint16_t port, int reuseport)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE}, *ai;
    char portstr[8];
    int fd, on = 1, rc;

    snprintf(portstr, sizeof(portstr), "%u", port);
    if ((rc = getaddrinfo(address, portstr, &hints, &ai)) != 0) {
        LOG_ERROR("cannot listen on \"%s\": %s", address, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        LOG_ERROR("could not listen on %s port %u: %s", address, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static h2o_socket_t *
start_listener(h2o_evloop_t *loop, int fd, h2o_accept_ctx_t *actx, h2o_socket_cb cb)
{
    h2o_socket_t *sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);

    sock->data = actx;
    h2o_socket_read_start(sock, cb);
    return sock;
}

/* --- worker threads ----------------------------------------------------------------- */

static void
begin_shutdown(struct shim_thread *t)
{
    if (t->shutting_down)
        return;
    t->shutting_down = 1;
    t->shutdown_at_ms = h2o_now(t->loop);
    if (t->deliverer != NULL)
        deliver_stop(t->deliverer);
    if (t->listener != NULL) {
        h2o_socket_read_stop(t->listener);
        h2o_socket_close(t->listener);
        t->listener = NULL;
    }
    if (t->metrics_listener != NULL) {
        h2o_socket_read_stop(t->metrics_listener);
        h2o_socket_close(t->metrics_listener);
        t->metrics_listener = NULL;
    }
    h2o_context_request_shutdown(&t->ctx);
    if (t->index == 0 && shim.listen_fd_metrics >= 0)
        h2o_context_request_shutdown(&t->metrics_ctx);
}

static void
on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct shim_thread *t = H2O_STRUCT_FROM_MEMBER(struct shim_thread, control, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        struct control_message *m = H2O_STRUCT_FROM_MEMBER(struct control_message, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (m->kind == CONTROL_SHUTDOWN)
            begin_shutdown(t);
        free(m);
    }
}

static void
on_tick(h2o_timeout_entry_t *entry)
{
    struct shim_thread *t = H2O_STRUCT_FROM_MEMBER(struct shim_thread, tick, entry);
    uint64_t now = h2o_now(t->loop);

    db_pool_tick(t->db, now);
    if (t->deliverer != NULL)
        deliver_tick(t->deliverer, now);
    if (t->index == 0 && shim.rl_database && now >= t->rl_purge_at_ms) {
        if (t->rl_purge_at_ms != 0)
            rl_db_purge(t->db);
        t->rl_purge_at_ms = now + RL_PURGE_MS;
    }
    reply_flush_log(t);
    pthread_mutex_lock(&t->stats_lock);
    db_pool_stats(t->db, &t->stats);
    pthread_mutex_unlock(&t->stats_lock);
    /*
     * A request in flight may still wait for a connection, then run: both
     * timeouts bound it.  Webhook transfers still running then are cancelled
     * (deliver_destroy): their leases expire, and they are delivered again.
     */
    if (t->shutting_down &&
        ((t->inflight == 0 && (t->deliverer == NULL || deliver_busy(t->deliverer) == 0)) ||
         now - t->shutdown_at_ms > shim.cfg->request_timeout_ms + 2 * shim.cfg->db_query_timeout_ms)) {
        t->done = 1;
        return;
    }
    h2o_timeout_link(t->loop, &t->tick_timeout, &t->tick);
}

static int init_worker(struct shim_thread *t, unsigned index);

/* Workers that finished init_worker, and whether one failed (under start_lock). */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static unsigned workers_started, workers_failed;

/*
 * A worker prepares its loop, context, listeners, queue and pool on its own
 * thread: h2o's socket buffers come from a per-thread allocator, so a socket
 * made on the main thread (the message queue's, above all) would share the
 * main thread's with every other worker, unlocked.
 */
static void *
worker_main(void *arg)
{
    struct shim_thread *t = arg;
    int failed = init_worker(t, t->index) != 0;

    /* No loop runs before every worker is ready: /metrics, say, reads them all. */
    pthread_mutex_lock(&start_lock);
    workers_started++;
    workers_failed += failed;
    pthread_cond_broadcast(&start_cond);
    while (workers_started < shim.nthreads)
        pthread_cond_wait(&start_cond, &start_lock);
    failed = workers_failed > 0;
    pthread_mutex_unlock(&start_lock);
    if (failed)
        return NULL;
    while (!t->done)
        h2o_evloop_run(t->loop, INT32_MAX);
    reply_flush_log(t);
    deliver_destroy(t->deliverer);
    t->deliverer = NULL;
    db_pool_destroy(t->db);
    t->db = NULL;
    return NULL;
}

/* Prepares a worker's loop, context, listeners and pool (on the worker's thread). */
static int
init_worker(struct shim_thread *t, unsigned index)
{
    t->index = index;
    t->loop = h2o_evloop_create();
    h2o_context_init(&t->ctx, t->loop, &shim.h2o_config);
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = shim.h2o_config.hosts;
    t->accept_ctx.ssl_ctx = shim.ssl_ctx;
    t->listener = start_listener(t->loop, shim.listen_fd_main[index], &t->accept_ctx, on_accept);
    if (index == 0 && shim.listen_fd_metrics >= 0) {
        h2o_context_init(&t->metrics_ctx, t->loop, &shim.metrics_config);
        t->metrics_accept_ctx.ctx = &t->metrics_ctx;
        t->metrics_accept_ctx.hosts = shim.metrics_config.hosts;
        t->metrics_listener =
            start_listener(t->loop, shim.listen_fd_metrics, &t->metrics_accept_ctx, on_accept_metrics);
    }
    t->queue = h2o_multithread_create_queue(t->loop);
    h2o_multithread_register_receiver(t->queue, &t->control, on_control);
    offload_attach(t);
    pthread_mutex_init(&t->stats_lock, NULL);
    if ((t->metrics = metrics_create()) == NULL || (t->log_buf = malloc(REPLY_LOG_BUFFER)) == NULL)
        return -1;
    if (RAND_bytes((unsigned char *)&t->request_prefix, sizeof(t->request_prefix)) != 1)
        return -1;
    if ((t->db = db_pool_create(t->loop, shim.cfg, &t->db_counters)) == NULL)
        return -1;
    if (shim.cfg->webhooks_deliver && (t->deliverer = deliver_create(t)) == NULL)
        return -1;
    h2o_timeout_init(t->loop, &t->tick_timeout, TICK_MS);
    h2o_timeout_init(t->loop, &t->refusal_timeout, shim.cfg->refusal_delay_ms);
    t->tick.cb = on_tick;
    h2o_timeout_link(t->loop, &t->tick_timeout, &t->tick);
    return 0;
}

/* --- start-up ------------------------------------------------------------------------ */

/*
 * Responses h2o makes itself before a request reaches the handler (a body
 * announced over the limit, say) go through the host's fallback path: this
 * filter gives them the security headers of every other response.
 */
static void
on_setup_fallback(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    reply_security_headers(req);
    h2o_setup_next_ostream(req, slot);
}

static void
setup_h2o(h2o_globalconf_t *gc, int (*handler)(h2o_handler_t *, h2o_req_t *), const struct config *cfg)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    h2o_handler_t *h;

    h2o_config_init(gc);
    /* The Server header names the product, not the library or its version. */
    gc->server_name = h2o_iovec_init(H2O_STRLIT("actloom"));
    gc->max_request_entity_size = cfg->body_bytes;
    gc->http1.req_timeout = cfg->request_timeout_ms;
    /*
     * HTTP/2 only over TLS (ALPN).  "Upgrade: h2c" would let a client behind
     * a front proxy that passes Upgrade on turn its connection into one the
     * proxy no longer reads (h2c smuggling); h2o 2.2 refuses the prior
     * knowledge preface along with it.
     */
    gc->http1.upgrade_to_http2 = 0;
    gc->http2.idle_timeout = cfg->request_timeout_ms;
    host = h2o_config_register_host(gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    h = h2o_create_handler(path, sizeof(*h));
    h->on_req = handler;
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream = on_setup_fallback;
}

static SSL_CTX *
setup_tls(const struct config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        LOG_ERROR("could not load the TLS certificate or key: %s", buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

static unsigned
thread_count(const struct config *cfg)
{
    long n = cfg->threads ? (long)cfg->threads : sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: actloom-shim [--config PATH] [--check-config]\n"
                 "  --config PATH     the YAML configuration (default: /etc/actloom/shim.yaml)\n"
                 "  --check-config    check the configuration, print the result, exit 0 when valid\n");
}

/* Reads the configuration file again for SIGHUP; keeps the old one on error. */
static void
reload_policy(void)
{
    char err[512];
    struct shim_policy *p = shim_policy_load(shim.cfg->path, err, sizeof(err));

    if (p == NULL) {
        LOG_ERROR("SIGHUP: keeping the running configuration: %s", err);
        return;
    }
    shim_policy_replace(p);
    LOG_INFO("SIGHUP: reloaded rate-limit classes, trusted proxies and session keys; reloading the registry");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = "/etc/actloom/shim.yaml";
    int check_only = 0, opt, sig;
    struct config *cfg;
    struct shim_policy *policy = NULL;
    char err[512] = "";
    sigset_t set;

    while ((opt = getopt_long(argc, argv, "c:kh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check_only = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    /* The startup configuration, and the first policy (with the session keys): a copy SIGHUP replaces. */
    cfg = calloc(1, sizeof(*cfg));
    config_defaults(cfg);
    if (config_load(cfg, path, err, sizeof(err)) != 0 || (policy = shim_policy_load(path, err, sizeof(err))) == NULL ||
        check_only) {
        int invalid = err[0] != '\0';
        if (invalid)
            fprintf(stderr, "actloom-shim: invalid configuration: %s\n", err);
        else
            printf("actloom-shim: configuration %s is valid\n", path);
        config_free(cfg);
        free(cfg);
        shim_policy_free(policy);
        return invalid ? 1 : 0;
    }

    shim.cfg = cfg;
    pthread_mutex_init(&shim.lock, NULL);
    shim_policy_replace(policy);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((shim.rl = rl_create(cfg->rl_max_entries)) == NULL) {
        LOG_ERROR("out of memory for %zu rate-limit entries", cfg->rl_max_entries);
        return 1;
    }
    shim.rl_database = strcmp(cfg->rl_store, "database") == 0;
    if ((shim.verified = verified_create(VERIFIED_ENTRIES)) == NULL) {
        LOG_ERROR("out of memory for %d verified API keys", VERIFIED_ENTRIES);
        return 1;
    }
    if (cfg->tls_certificate != NULL && (shim.ssl_ctx = setup_tls(cfg)) == NULL)
        return 1;
    setup_h2o(&shim.h2o_config, on_req, cfg);
    setup_h2o(&shim.metrics_config, on_metrics_req, cfg);

    shim.nthreads = thread_count(cfg);
    for (unsigned i = 0; i < shim.nthreads; i++)
        if ((shim.listen_fd_main[i] = bind_listener(cfg->listen_address, cfg->listen_port, 1)) < 0)
            return 1;
    shim.listen_fd_metrics = -1;
    if (cfg->metrics_port != 0 &&
        (shim.listen_fd_metrics =
             bind_listener(cfg->metrics_address ? cfg->metrics_address : "127.0.0.1", cfg->metrics_port, 0)) < 0)
        return 1;

    /* Signals are taken by sigwait below, never by the workers. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (registry_start(cfg) != 0) {
        LOG_ERROR("could not start the registry loader");
        return 1;
    }
    if (offload_start(shim.nthreads) != 0) {
        LOG_ERROR("could not start the offload threads");
        return 1;
    }
    shim.threads = calloc(shim.nthreads, sizeof(struct shim_thread));
    for (unsigned i = 0; i < shim.nthreads; i++) {
        shim.threads[i].index = i;
        pthread_create(&shim.threads[i].tid, NULL, worker_main, &shim.threads[i]);
    }
    pthread_mutex_lock(&start_lock);
    while (workers_started < shim.nthreads)
        pthread_cond_wait(&start_cond, &start_lock);
    pthread_mutex_unlock(&start_lock);
    if (workers_failed > 0) {
        LOG_ERROR("could not start %u worker(s)", workers_failed);
        return 1;
    }
    /* Notifications that something is due reach the deliverers from now on (registry.c listens). */
    deliver_wakes(1);
    LOG_INFO("listening on %s port %u with %u thread(s)%s", cfg->listen_address, cfg->listen_port, shim.nthreads,
             shim.ssl_ctx ? ", TLS" : "");

    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload_policy();
            registry_request_reload();
            continue;
        }
        break;
    }
    LOG_INFO("shutting down: finishing requests in flight");
    deliver_wakes(0);
    for (unsigned i = 0; i < shim.nthreads; i++) {
        struct control_message *m = calloc(1, sizeof(*m));
        m->kind = CONTROL_SHUTDOWN;
        h2o_multithread_send_message(&shim.threads[i].control, &m->super);
    }
    for (unsigned i = 0; i < shim.nthreads; i++)
        pthread_join(shim.threads[i].tid, NULL);
    offload_stop();
    registry_stop();
    /* The workers' loops and h2o contexts stay (reachable) until exit: h2o
     * cannot dispose of a context whose connections it is still closing. */
    for (unsigned i = 0; i < shim.nthreads; i++) {
        metrics_destroy(shim.threads[i].metrics);
        shim.threads[i].metrics = NULL;
        free(shim.threads[i].log_buf);
        shim.threads[i].log_buf = NULL;
    }
    shim_policy_free_all();
    rl_destroy(shim.rl);
    verified_destroy(shim.verified);
    config_free(cfg);
    free(cfg);
    LOG_INFO("stopped");
    return 0;
}
