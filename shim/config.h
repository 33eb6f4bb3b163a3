/*
 * config.h: the shim's configuration, read once from one YAML file.
 *
 * Every setting has a default (config_defaults), so an empty file is a valid
 * configuration for a local development server.  README.md lists them all.
 */
#ifndef ACTLOOM_CONFIG_H
#define ACTLOOM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONFIG_MAX_CLASSES 32
#define CONFIG_MAX_PROXIES 64
#define CONFIG_NAME_MAX 32
#define CONFIG_MAX_ORIGINS 16
#define CONFIG_MAX_ALLOW_NETWORKS 64

/* What a rate-limit class counts requests by; a class may use several. */
enum rl_key_kind {
    RL_KEY_ADDRESS = 1 << 0,
    RL_KEY_API_KEY = 1 << 1,
    RL_KEY_USER = 1 << 2,
    RL_KEY_ACCOUNT = 1 << 3,
    RL_KEY_COMPANY = 1 << 4,
};

/* One rate-limit class: "limit" requests per "period" seconds, "burst" at once. */
struct config_rate_class {
    char name[CONFIG_NAME_MAX];
    uint32_t limit;
    uint32_t period;
    uint32_t burst;
    unsigned keys; /* bitmask of enum rl_key_kind */
};

/* A trusted proxy: an address and a prefix length (CIDR). */
struct config_cidr {
    int family;
    unsigned char addr[16];
    unsigned prefix;
};

struct config {
    char *path; /* the file read, for SIGHUP */
    char *listen_address;
    uint16_t listen_port;
    char *tls_certificate;
    char *tls_key;
    unsigned threads; /* 0: one per core */
    char *db_conninfo;
    unsigned db_pool_size;
    unsigned db_hash_pool_size; /* more connections, for password hashing only */
    unsigned db_query_timeout_ms;
    unsigned db_connect_timeout_ms;
    unsigned db_reconnect_min_ms;
    unsigned db_reconnect_max_ms;
    unsigned db_queue_max; /* requests waiting for a connection, per thread */
    size_t body_bytes;
    size_t header_bytes;
    unsigned connections; /* open client connections a worker thread holds at most */
    unsigned json_depth;
    unsigned request_timeout_ms;
    char *metrics_address; /* NULL: /metrics on the main listener */
    uint16_t metrics_port;
    char *rl_store;             /* "memory" or "database" */
    size_t rl_max_entries;      /* bound on the memory store */
    unsigned refusal_delay_ms;  /* refused sign-ins and sign-ups are answered this late */
    unsigned refusals_held_max; /* at most this many at once per worker; the rest at once */
    struct config_rate_class classes[CONFIG_MAX_CLASSES];
    unsigned nclasses;
    struct config_cidr proxies[CONFIG_MAX_PROXIES];
    unsigned nproxies;
    int access_log;                            /* 1: one JSON line a request on stdout */
    char *session_key_file;                    /* NULL: no sessions, /auth and /api are not served */
    int session_cookie;                        /* enum cookie_mode: secure (0) or insecure-dev */
    unsigned session_max_lifetime;             /* seconds a session token may live, at most */
    char *session_origins[CONFIG_MAX_ORIGINS]; /* the shim's own origins; none: derived from Host */
    unsigned nsession_origins;
    unsigned verified_ttl_s; /* a key the database accepted counts as proved this long (handlers/machine.c) */
    /* webhooks.*: the deliverer (deliver.c) and its outbound requests (http_out.c) */
    int webhooks_deliver;                         /* 1: this shim claims and delivers webhooks */
    unsigned webhooks_max_in_flight;              /* deliveries in flight at once, per shim */
    unsigned webhooks_max_in_flight_per_endpoint; /* of which to one endpoint, at most */
    unsigned webhooks_batch;                      /* deliveries claimed at most per claim */
    unsigned webhooks_lease_s;                    /* a claim is another shim's to take after this; > timeout */
    unsigned webhooks_poll_ms;                    /* the backstop poll, should a notification be missed */
    unsigned webhooks_connect_timeout_ms;         /* <= webhooks_timeout_ms */
    unsigned webhooks_timeout_ms;                 /* a whole attempt, connection included */
    char *webhooks_ca_file;                       /* NULL: the system's CAs only; else trusted as well */
    struct config_cidr webhooks_allow[CONFIG_MAX_ALLOW_NETWORKS]; /* reachable despite netranges.h: dangerous */
    unsigned nwebhooks_allow;
};

/* Fills in every default. */
void config_defaults(struct config *cfg);

/*
 * Reads the YAML file at path over the defaults in cfg.  On failure returns -1
 * with a message naming the file, line and setting in err; cfg is then in an
 * unspecified state and must be freed.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Frees what config_defaults and config_load allocated. */
void config_free(struct config *cfg);

/* The class of that name, or NULL. */
const struct config_rate_class *config_class(const struct config *cfg, const char *name);

/* Parses "10.0.0.0/8", "::1" or "127.0.0.1" into out; 0 on success. */
int config_parse_cidr(const char *text, struct config_cidr *out);

/* Whether the socket address lies in one of the CIDRs. */
int config_cidr_match(const struct config_cidr *list, unsigned n, const struct sockaddr *sa);

#endif
