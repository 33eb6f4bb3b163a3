/*
 * shim.h: the server's shared state, its threads, and one request's state.
 *
 * Threads share only what is here: the startup configuration (immutable),
 * the policy and the endpoint registry (immutable snapshots swapped under a
 * mutex and reference counted, so a request keeps the snapshot it started
 * with), the rate-limit table and the metrics (both thread-safe).  Each
 * thread owns its h2o context, listeners and database pool.
 */
#ifndef ACTLOOM_SHIM_H
#define ACTLOOM_SHIM_H

#include <h2o.h>
#include <jansson.h>
#include <pthread.h>

#include "clientaddr.h"
#include "config.h"
#include "db.h"
#include "jwt.h"
#include "ratelimit.h"
#include "verified.h"

struct registry;
struct metrics;

/*
 * What SIGHUP can change: rate-limit classes, trusted proxies, and the
 * session settings with the session key ring read from session.key_file.
 */
struct shim_policy {
    struct shim_policy *retired; /* the one this replaced */
    struct config cfg;
    int has_session_keys;
    struct jwt_keyring session_keys;
};

struct shim_thread {
    unsigned index;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_accept_ctx_t metrics_accept_ctx;
    h2o_socket_t *listener;
    h2o_socket_t *metrics_listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t control;
    h2o_multithread_receiver_t offloaded; /* jobs finished by the offload threads (offload.h) */
    struct db_pool *db;
    struct deliverer *deliverer; /* webhooks.deliver: this worker's webhook deliverer (deliver.h) */
    pthread_mutex_t stats_lock; /* guards stats, read by /metrics on any thread */
    struct db_pool_stats stats; /* as of the last tick */
    struct db_counters db_counters;
    struct metrics *metrics;
    char *log_buf; /* access log lines not yet written */
    size_t log_len;
    time_t log_second; /* the second log_time formats */
    char log_time[32];
    h2o_context_t metrics_ctx;
    h2o_timeout_t tick_timeout;
    h2o_timeout_entry_t tick;
    h2o_timeout_t refusal_timeout; /* rate_limits.refusal_delay_ms: refusals answered late (reply_problem_delayed) */
    unsigned delayed;              /* requests waiting on it */
    unsigned inflight;
    unsigned connections; /* open client connections of the main listener */
    int accept_paused;    /* the listener is not read: connections reached limits.connections */
    int shutting_down;
    int done;
    uint64_t shutdown_at_ms;
    uint64_t rl_purge_at_ms; /* the next purge of expired rate-limit states (worker 0, database store) */
    uint64_t request_counter;
    uint32_t request_prefix;
};

struct shim_server {
    const struct config *cfg;
    pthread_mutex_t lock;
    struct shim_policy *policy;
    struct registry *registry;
    struct rl_table *rl;             /* the memory store; with the database store, the refusals it decided (rl_hold) */
    int rl_database;                 /* rate_limits.store is "database": takes go to the database */
    struct verified_table *verified; /* the API keys the database accepted (verified.h) */
    SSL_CTX *ssl_ctx;
    h2o_globalconf_t h2o_config;
    h2o_globalconf_t metrics_config;
    int listen_fd_main[256];
    int listen_fd_metrics;
    struct shim_thread *threads;
    unsigned nthreads;
};

extern struct shim_server shim;

/* The most takes one request makes: api_address, then two classes, each by API key and address. */
#define SHIM_MAX_LIMITS 5

/* One request; allocated from the request's pool, freed with it. */
struct shim_req {
    h2o_req_t *req;
    struct shim_thread *thread;
    uint64_t start_ns;
    char request_id[24];
    const char *route;
    char client[CLIENTADDR_LEN];
    const char *actor_kind;
    char actor_id[40];
    struct shim_policy *policy;
    struct registry *registry;
    struct db_job *job;
    struct rl_pending limits[SHIM_MAX_LIMITS]; /* database store: the takes its next job begins with */
    unsigned nlimits;
    struct rl_pending guard; /* database store: the guard of its next job (handler_guard); rc NULL: none */
    int responded;
    int on_metrics_listener;
};

/* The policy in force; valid until exit (see server.c). */
struct shim_policy *shim_policy_current(void);
/*
 * Reads the configuration file into a new policy, with the session key ring
 * it names.  Returns NULL with a message in err.
 */
struct shim_policy *shim_policy_load(const char *path, char *err, size_t errlen);
/* Frees a policy that was never made current (NULL is fine). */
void shim_policy_free(struct shim_policy *p);
void shim_policy_replace(struct shim_policy *p);
void shim_policy_free_all(void);

/* Monotonic clock. */
uint64_t shim_now_ns(void);

#endif
