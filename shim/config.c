/*
 * config.c: the YAML configuration file.
 *
 * The file is loaded as a libyaml document and walked by hand: a mapping of
 * sections, each a mapping of scalars.  Unknown settings are errors, not
 * warnings, so that a misspelt limit cannot silently fall back to a default.
 * Numbers are checked for range here, once, so the rest of the shim can trust
 * them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <yaml.h>

#include "cookie.h"

/* The classes every deployment has; a file may override or add to them. */
static const struct config_rate_class default_classes[] = {
    {"login", 10, 60, 5, RL_KEY_ADDRESS | RL_KEY_ACCOUNT},
    {"signup", 20, 3600, 5, RL_KEY_ADDRESS},
    {"sso", 30, 60, 10, RL_KEY_ADDRESS},
    {"report", 60, 60, 10, RL_KEY_API_KEY},
    {"classify", 120, 60, 20, RL_KEY_API_KEY},
    {"api_key", 10, 60, 5, RL_KEY_USER},
    {"manage", 600, 60, 100, RL_KEY_USER},
    {"webhooks", 120, 60, 30, RL_KEY_USER},
    {"api", 600, 60, 100, RL_KEY_API_KEY},
    {"api_address", 6000, 60, 1000, RL_KEY_ADDRESS},
    {"api_auth_failed", 10, 60, 5, RL_KEY_ADDRESS},
};

/*
 * Classes applied before anyone has proved a key (handlers/machine.c): keyed
 * on the client address only, since anything else a client sends before
 * then (a key id) names someone else's budget.
 */
static const char *const address_only_classes[] = {"api_address", "api_auth_failed"};

static const struct {
    const char *name;
    unsigned kind;
} key_kinds[] = {
    {"address", RL_KEY_ADDRESS}, {"api_key", RL_KEY_API_KEY}, {"user", RL_KEY_USER},
    {"account", RL_KEY_ACCOUNT}, {"company", RL_KEY_COMPANY},
};

/* The walk's state: the document and where to write an error. */
struct walk {
    yaml_document_t *doc;
    struct config *cfg;
    char *err;
    size_t errlen;
    struct config_rate_class *current_class; /* the class on_class_field fills in */
};

/* Records an error at a node's line; always returns -1. */
__attribute__((format(printf, 3, 4))) static int
fail(struct walk *w, yaml_node_t *node, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(w->err, w->errlen, "%s:%lu: %s", w->cfg->path, node ? (unsigned long)node->start_mark.line + 1 : 0UL, msg);
    return -1;
}

static const char *
scalar(yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static int
get_string(struct walk *w, yaml_node_t *node, const char *name, char **out)
{
    const char *s = scalar(node);

    if (s == NULL)
        return fail(w, node, "\"%s\" must be a string", name);
    free(*out);
    *out = (*s == '\0' && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) ? NULL : strdup(s);
    return 0;
}

static int
get_uint(struct walk *w, yaml_node_t *node, const char *name, unsigned long long min, unsigned long long max,
         unsigned long long *out)
{
    const char *s = scalar(node);
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return fail(w, node, "\"%s\" must be a whole number", name);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return fail(w, node, "\"%s\" must be a whole number from %llu to %llu", name, min, max);
    *out = v;
    return 0;
}

#define GET_UINT(w, node, name, min, max, lvalue)                                                                      \
    do {                                                                                                               \
        unsigned long long v_;                                                                                         \
        if (get_uint(w, node, name, min, max, &v_) != 0)                                                               \
            return -1;                                                                                                 \
        (lvalue) = v_;                                                                                                 \
    } while (0)

static int
get_bool(struct walk *w, yaml_node_t *node, const char *name, int *out)
{
    const char *s = scalar(node);

    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        *out = s[0] == 't';
        return 0;
    }
    return fail(w, node, "\"%s\" must be true or false", name);
}

/* Calls fn for each key/value pair of a mapping; the first failure stops. */
static int
each_pair(struct walk *w, yaml_node_t *map, const char *what,
          int (*fn)(struct walk *, const char *section, const char *key, yaml_node_t *value))
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(w, map, "\"%s\" must be a mapping", what);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        const char *key = k ? scalar(k) : NULL;
        if (key == NULL || v == NULL)
            return fail(w, k, "keys of \"%s\" must be strings", what);
        if (fn(w, what, key, v) != 0)
            return -1;
    }
    return 0;
}

static int
on_listen(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;

    if (strcmp(key, "address") == 0)
        return get_string(w, v, "listen.address", &c->listen_address);
    if (strcmp(key, "port") == 0) {
        GET_UINT(w, v, "listen.port", 0, 65535, c->listen_port);
        return 0;
    }
    return fail(w, v, "unknown setting \"%s.%s\"", section, key);
}

static int
on_tls(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    if (strcmp(key, "certificate") == 0)
        return get_string(w, v, "tls.certificate", &w->cfg->tls_certificate);
    if (strcmp(key, "key") == 0)
        return get_string(w, v, "tls.key", &w->cfg->tls_key);
    return fail(w, v, "unknown setting \"%s.%s\"", section, key);
}

/* An origin as browsers send it: scheme, host and optional port, nothing else. */
static int
origin_valid(const char *s)
{
    const char *host = strncmp(s, "https://", 8) == 0 ? s + 8 : strncmp(s, "http://", 7) == 0 ? s + 7 : NULL;

    if (host == NULL || *host == '\0' || strlen(s) > 255)
        return 0;
    for (; *host != '\0'; host++)
        if (!((*host >= 'a' && *host <= 'z') || (*host >= '0' && *host <= '9') || strchr(".-:[]", *host) != NULL))
            return 0;
    return 1;
}

static int
on_session(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;

    if (strcmp(key, "key_file") == 0)
        return get_string(w, v, "session.key_file", &c->session_key_file);
    if (strcmp(key, "cookie") == 0) {
        const char *s = scalar(v);
        if (s == NULL || (c->session_cookie = cookie_mode_parse(s)) < 0)
            return fail(w, v, "\"session.cookie\" is \"secure\" or \"insecure-dev\"");
        return 0;
    }
    if (strcmp(key, "max_lifetime_s") == 0) {
        GET_UINT(w, v, "session.max_lifetime_s", 60, 365 * 24 * 3600, c->session_max_lifetime);
        return 0;
    }
    if (strcmp(key, "origins") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(w, v, "\"session.origins\" must be a list");
        for (unsigned i = 0; i < c->nsession_origins; i++)
            free(c->session_origins[i]);
        c->nsession_origins = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(w->doc, *it);
            const char *o = item ? scalar(item) : NULL;
            if (c->nsession_origins == CONFIG_MAX_ORIGINS)
                return fail(w, v, "at most %d origins", CONFIG_MAX_ORIGINS);
            if (o == NULL || !origin_valid(o))
                return fail(w, item ? item : v,
                            "\"session.origins\": \"%s\" is not an origin like https://app.example.com", o ? o : "");
            c->session_origins[c->nsession_origins++] = strdup(o);
        }
        return 0;
    }
    return fail(w, v, "unknown setting \"%s.%s\"", section, key);
}

static int
on_database(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;

    if (strcmp(key, "conninfo") == 0)
        return get_string(w, v, "database.conninfo", &c->db_conninfo);
    if (strcmp(key, "pool_size") == 0)
        GET_UINT(w, v, "database.pool_size", 1, 256, c->db_pool_size);
    else if (strcmp(key, "hash_pool_size") == 0)
        GET_UINT(w, v, "database.hash_pool_size", 1, 64, c->db_hash_pool_size);
    else if (strcmp(key, "query_timeout_ms") == 0)
        GET_UINT(w, v, "database.query_timeout_ms", 10, 600000, c->db_query_timeout_ms);
    else if (strcmp(key, "connect_timeout_ms") == 0)
        GET_UINT(w, v, "database.connect_timeout_ms", 10, 600000, c->db_connect_timeout_ms);
    else if (strcmp(key, "reconnect_min_ms") == 0)
        GET_UINT(w, v, "database.reconnect_min_ms", 1, 600000, c->db_reconnect_min_ms);
    else if (strcmp(key, "reconnect_max_ms") == 0)
        GET_UINT(w, v, "database.reconnect_max_ms", 1, 600000, c->db_reconnect_max_ms);
    else if (strcmp(key, "queue_max") == 0)
        GET_UINT(w, v, "database.queue_max", 0, 1000000, c->db_queue_max);
    else
        return fail(w, v, "unknown setting \"%s.%s\"", section, key);
    return 0;
}

static int
on_limits(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;

    if (strcmp(key, "body_bytes") == 0)
        GET_UINT(w, v, "limits.body_bytes", 0, 64 * 1024 * 1024, c->body_bytes);
    else if (strcmp(key, "header_bytes") == 0)
        /* h2o buffers heads far larger before the shim sees them (README: Limits and memory). */
        GET_UINT(w, v, "limits.header_bytes", 256, 8192, c->header_bytes);
    else if (strcmp(key, "connections") == 0)
        GET_UINT(w, v, "limits.connections", 1, 1000000, c->connections);
    else if (strcmp(key, "json_depth") == 0)
        GET_UINT(w, v, "limits.json_depth", 1, 512, c->json_depth);
    else if (strcmp(key, "request_timeout_ms") == 0)
        GET_UINT(w, v, "limits.request_timeout_ms", 100, 600000, c->request_timeout_ms);
    else
        return fail(w, v, "unknown setting \"%s.%s\"", section, key);
    return 0;
}

static int
on_metrics(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    if (strcmp(key, "address") == 0)
        return get_string(w, v, "metrics.address", &w->cfg->metrics_address);
    if (strcmp(key, "port") == 0) {
        GET_UINT(w, v, "metrics.port", 0, 65535, w->cfg->metrics_port);
        return 0;
    }
    return fail(w, v, "unknown setting \"%s.%s\"", section, key);
}

static int
on_class_field(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config_rate_class *rc = w->current_class;

    if (strcmp(key, "limit") == 0)
        GET_UINT(w, v, "limit", 1, 1000000000, rc->limit);
    else if (strcmp(key, "period") == 0)
        GET_UINT(w, v, "period", 1, 86400 * 366, rc->period);
    else if (strcmp(key, "burst") == 0)
        GET_UINT(w, v, "burst", 1, 1000000000, rc->burst);
    else if (strcmp(key, "key") == 0) {
        yaml_node_item_t *start, *top;
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(w, v, "\"%s.key\" must be a list", section);
        rc->keys = 0;
        start = v->data.sequence.items.start;
        top = v->data.sequence.items.top;
        for (yaml_node_item_t *it = start; it < top; it++) {
            yaml_node_t *item = yaml_document_get_node(w->doc, *it);
            const char *s = item ? scalar(item) : NULL;
            unsigned found = 0;
            for (size_t i = 0; s != NULL && i < sizeof(key_kinds) / sizeof(key_kinds[0]); i++)
                if (strcmp(s, key_kinds[i].name) == 0)
                    found = key_kinds[i].kind;
            if (found == 0)
                return fail(w, item ? item : v, "\"%s.key\": keys are address, api_key, user, account, company",
                            section);
            rc->keys |= found;
        }
        if (rc->keys == 0)
            return fail(w, v, "\"%s.key\" must name at least one key", section);
    } else
        return fail(w, v, "unknown setting \"%s.%s\"", section, key);
    return 0;
}

static int
on_class(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;
    struct config_rate_class *rc = (struct config_rate_class *)config_class(c, key);
    char where[64];

    if (rc == NULL) {
        size_t len = strlen(key);
        if (len == 0 || len >= CONFIG_NAME_MAX || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
            return fail(w, v, "a rate-limit class name is 1 to %d characters a-z, 0-9, _", CONFIG_NAME_MAX - 1);
        if (c->nclasses == CONFIG_MAX_CLASSES)
            return fail(w, v, "at most %d rate-limit classes", CONFIG_MAX_CLASSES);
        rc = &c->classes[c->nclasses++];
        memset(rc, 0, sizeof(*rc));
        memcpy(rc->name, key, len + 1);
        rc->limit = 60;
        rc->period = 60;
        rc->burst = 10;
        rc->keys = RL_KEY_ADDRESS;
    }
    w->current_class = rc;
    snprintf(where, sizeof(where), "rate_limits.classes.%s", key);
    return each_pair(w, v, where, on_class_field);
}

static int
on_rate_limits(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;

    if (strcmp(key, "store") == 0) {
        const char *s = scalar(v);
        if (s == NULL || (strcmp(s, "memory") != 0 && strcmp(s, "database") != 0))
            return fail(w, v, "\"rate_limits.store\" is memory or database");
        return get_string(w, v, "rate_limits.store", &c->rl_store);
    }
    if (strcmp(key, "max_entries") == 0) {
        GET_UINT(w, v, "rate_limits.max_entries", 1024, 100000000, c->rl_max_entries);
        return 0;
    }
    if (strcmp(key, "refusal_delay_ms") == 0) {
        GET_UINT(w, v, "rate_limits.refusal_delay_ms", 0, 10000, c->refusal_delay_ms);
        return 0;
    }
    if (strcmp(key, "refusals_held_max") == 0) {
        GET_UINT(w, v, "rate_limits.refusals_held_max", 0, 1000000, c->refusals_held_max);
        return 0;
    }
    if (strcmp(key, "classes") == 0)
        return each_pair(w, v, "rate_limits.classes", on_class);
    return fail(w, v, "unknown setting \"%s.%s\"", section, key);
}

static int
on_api_keys(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    if (strcmp(key, "verified_ttl_s") == 0) {
        GET_UINT(w, v, "api_keys.verified_ttl_s", 0, 3600, w->cfg->verified_ttl_s);
        return 0;
    }
    return fail(w, v, "unknown setting \"%s.%s\"", section, key);
}

static int
on_webhooks(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;

    if (strcmp(key, "deliver") == 0)
        return get_bool(w, v, "webhooks.deliver", &c->webhooks_deliver);
    if (strcmp(key, "max_in_flight") == 0)
        GET_UINT(w, v, "webhooks.max_in_flight", 1, 10000, c->webhooks_max_in_flight);
    else if (strcmp(key, "max_in_flight_per_endpoint") == 0)
        GET_UINT(w, v, "webhooks.max_in_flight_per_endpoint", 1, 1000, c->webhooks_max_in_flight_per_endpoint);
    else if (strcmp(key, "batch") == 0)
        GET_UINT(w, v, "webhooks.batch", 1, 1000, c->webhooks_batch);
    else if (strcmp(key, "lease_s") == 0)
        GET_UINT(w, v, "webhooks.lease_s", 1, 86400, c->webhooks_lease_s);
    else if (strcmp(key, "poll_ms") == 0)
        GET_UINT(w, v, "webhooks.poll_ms", 10, 600000, c->webhooks_poll_ms);
    else if (strcmp(key, "connect_timeout_ms") == 0)
        GET_UINT(w, v, "webhooks.connect_timeout_ms", 100, 60000, c->webhooks_connect_timeout_ms);
    else if (strcmp(key, "timeout_ms") == 0)
        GET_UINT(w, v, "webhooks.timeout_ms", 100, 300000, c->webhooks_timeout_ms);
    else if (strcmp(key, "ca_file") == 0) {
        FILE *fp;
        if (get_string(w, v, "webhooks.ca_file", &c->webhooks_ca_file) != 0)
            return -1;
        /* Read by each worker's http_out_create; an unreadable file is better refused here, with its line. */
        if (c->webhooks_ca_file != NULL) {
            if ((fp = fopen(c->webhooks_ca_file, "r")) == NULL)
                return fail(w, v, "\"webhooks.ca_file\": could not open \"%s\": %s", c->webhooks_ca_file,
                            strerror(errno));
            fclose(fp);
        }
    } else if (strcmp(key, "allow_networks") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(w, v, "\"webhooks.allow_networks\" must be a list");
        c->nwebhooks_allow = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(w->doc, *it);
            const char *s = item ? scalar(item) : NULL;
            if (c->nwebhooks_allow == CONFIG_MAX_ALLOW_NETWORKS)
                return fail(w, v, "at most %d networks in \"webhooks.allow_networks\"", CONFIG_MAX_ALLOW_NETWORKS);
            if (s == NULL || config_parse_cidr(s, &c->webhooks_allow[c->nwebhooks_allow]) != 0)
                return fail(w, item ? item : v, "\"webhooks.allow_networks\": \"%s\" is not an address or CIDR",
                            s ? s : "");
            c->nwebhooks_allow++;
        }
    } else
        return fail(w, v, "unknown setting \"%s.%s\"", section, key);
    return 0;
}

static int
on_top(struct walk *w, const char *section, const char *key, yaml_node_t *v)
{
    struct config *c = w->cfg;

    if (strcmp(key, "listen") == 0)
        return each_pair(w, v, "listen", on_listen);
    if (strcmp(key, "tls") == 0)
        return each_pair(w, v, "tls", on_tls);
    if (strcmp(key, "database") == 0)
        return each_pair(w, v, "database", on_database);
    if (strcmp(key, "session") == 0)
        return each_pair(w, v, "session", on_session);
    if (strcmp(key, "limits") == 0)
        return each_pair(w, v, "limits", on_limits);
    if (strcmp(key, "metrics") == 0)
        return each_pair(w, v, "metrics", on_metrics);
    if (strcmp(key, "rate_limits") == 0)
        return each_pair(w, v, "rate_limits", on_rate_limits);
    if (strcmp(key, "api_keys") == 0)
        return each_pair(w, v, "api_keys", on_api_keys);
    if (strcmp(key, "webhooks") == 0)
        return each_pair(w, v, "webhooks", on_webhooks);
    if (strcmp(key, "threads") == 0) {
        GET_UINT(w, v, "threads", 0, 256, c->threads);
        return 0;
    }
    if (strcmp(key, "access_log") == 0)
        return get_bool(w, v, "access_log", &c->access_log);
    if (strcmp(key, "trusted_proxies") == 0) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(w, v, "\"trusted_proxies\" must be a list");
        c->nproxies = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(w->doc, *it);
            const char *s = item ? scalar(item) : NULL;
            if (c->nproxies == CONFIG_MAX_PROXIES)
                return fail(w, v, "at most %d trusted proxies", CONFIG_MAX_PROXIES);
            if (s == NULL || config_parse_cidr(s, &c->proxies[c->nproxies]) != 0)
                return fail(w, item ? item : v, "\"trusted_proxies\": \"%s\" is not an address or CIDR", s ? s : "");
            c->nproxies++;
        }
        return 0;
    }
    return fail(w, v, "unknown setting \"%s\"", key);
}

void
config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_address = strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->db_conninfo = strdup("dbname=actloom");
    cfg->db_pool_size = 4;
    cfg->db_hash_pool_size = 1;
    cfg->db_query_timeout_ms = 5000;
    cfg->db_connect_timeout_ms = 5000;
    cfg->db_reconnect_min_ms = 100;
    cfg->db_reconnect_max_ms = 5000;
    cfg->db_queue_max = 1024;
    cfg->body_bytes = 1024 * 1024;
    cfg->header_bytes = 8192;
    cfg->connections = 1024;
    cfg->json_depth = 32;
    cfg->request_timeout_ms = 10000;
    cfg->rl_store = strdup("memory");
    cfg->rl_max_entries = 100000;
    cfg->refusal_delay_ms = 1000;
    cfg->refusals_held_max = 1024;
    cfg->access_log = 1;
    cfg->session_cookie = COOKIE_SECURE;
    cfg->session_max_lifetime = 12 * 3600;
    cfg->verified_ttl_s = 60;
    cfg->webhooks_max_in_flight = 64;
    cfg->webhooks_max_in_flight_per_endpoint = 4;
    cfg->webhooks_batch = 32;
    cfg->webhooks_lease_s = 60;
    cfg->webhooks_poll_ms = 5000;
    cfg->webhooks_connect_timeout_ms = 5000;
    cfg->webhooks_timeout_ms = 15000;
    cfg->nclasses = sizeof(default_classes) / sizeof(default_classes[0]);
    memcpy(cfg->classes, default_classes, sizeof(default_classes));
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    struct walk w = {&doc, cfg, err, errlen, NULL};
    FILE *fp;
    int rc = 0;

    free(cfg->path);
    cfg->path = strdup(path);
    if ((fp = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: could not open: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        fclose(fp);
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root != NULL && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        rc = each_pair(&w, root, "the configuration", on_top);
    if (rc == 0 && (cfg->tls_certificate == NULL) != (cfg->tls_key == NULL))
        rc = fail(&w, NULL, "\"tls.certificate\" and \"tls.key\" go together");
    if (rc == 0 && cfg->db_reconnect_min_ms > cfg->db_reconnect_max_ms)
        rc = fail(&w, NULL, "\"database.reconnect_min_ms\" exceeds \"database.reconnect_max_ms\"");
    if (rc == 0 && cfg->refusal_delay_ms >= cfg->request_timeout_ms)
        rc = fail(&w, NULL, "\"rate_limits.refusal_delay_ms\" must be less than \"limits.request_timeout_ms\"");
    if (rc == 0 && cfg->listen_address == NULL)
        rc = fail(&w, NULL, "\"listen.address\" must not be empty");
    if (rc == 0 && cfg->db_conninfo == NULL)
        rc = fail(&w, NULL, "\"database.conninfo\" must not be empty");
    if (rc == 0 && cfg->webhooks_max_in_flight_per_endpoint > cfg->webhooks_max_in_flight)
        rc = fail(&w, NULL, "\"webhooks.max_in_flight_per_endpoint\" exceeds \"webhooks.max_in_flight\"");
    if (rc == 0 && cfg->webhooks_connect_timeout_ms > cfg->webhooks_timeout_ms)
        rc = fail(&w, NULL, "\"webhooks.connect_timeout_ms\" exceeds \"webhooks.timeout_ms\"");
    /* A lease that ends before the attempt would let another shim deliver the same message at once. */
    if (rc == 0 && (unsigned long long)cfg->webhooks_lease_s * 1000 <= cfg->webhooks_timeout_ms)
        rc = fail(&w, NULL, "\"webhooks.lease_s\" must be longer than \"webhooks.timeout_ms\"");
    for (unsigned i = 0; rc == 0 && i < cfg->nclasses; i++)
        if (cfg->classes[i].burst > cfg->classes[i].limit)
            rc = fail(&w, NULL, "rate-limit class \"%s\": burst exceeds limit", cfg->classes[i].name);
    for (size_t i = 0; rc == 0 && i < sizeof(address_only_classes) / sizeof(address_only_classes[0]); i++)
        if (config_class(cfg, address_only_classes[i])->keys != RL_KEY_ADDRESS)
            rc = fail(&w, NULL, "rate-limit class \"%s\" is keyed on address only", address_only_classes[i]);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

void
config_free(struct config *cfg)
{
    free(cfg->path);
    free(cfg->listen_address);
    free(cfg->tls_certificate);
    free(cfg->tls_key);
    free(cfg->db_conninfo);
    free(cfg->metrics_address);
    free(cfg->rl_store);
    free(cfg->session_key_file);
    free(cfg->webhooks_ca_file);
    for (unsigned i = 0; i < cfg->nsession_origins; i++)
        free(cfg->session_origins[i]);
    memset(cfg, 0, sizeof(*cfg));
}

const struct config_rate_class *
config_class(const struct config *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->nclasses; i++)
        if (strcmp(cfg->classes[i].name, name) == 0)
            return &cfg->classes[i];
    return NULL;
}

int
config_parse_cidr(const char *text, struct config_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    char *slash, *end;
    unsigned long prefix;

    if (strlen(text) >= sizeof(buf))
        return -1;
    strcpy(buf, text);
    memset(out, 0, sizeof(*out));
    if ((slash = strchr(buf, '/')) != NULL)
        *slash++ = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else
        return -1;
    if (slash != NULL) {
        if (*slash < '0' || *slash > '9')
            return -1;
        errno = 0;
        prefix = strtoul(slash, &end, 10);
        if (errno != 0 || *end != '\0' || prefix > out->prefix)
            return -1;
        out->prefix = (unsigned)prefix;
    }
    return 0;
}

/* Whether the first prefix bits of a and b agree. */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

int
config_cidr_match(const struct config_cidr *list, unsigned n, const struct sockaddr *sa)
{
    const unsigned char *addr;
    unsigned char mapped[4];
    int family = sa->sa_family;

    if (family == AF_INET) {
        addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        addr = a6->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            /* An IPv4 client on a dual-stack socket matches IPv4 entries. */
            memcpy(mapped, a6->s6_addr + 12, 4);
            addr = mapped;
            family = AF_INET;
        }
    } else
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (list[i].family == family && prefix_equal(list[i].addr, addr, list[i].prefix))
            return 1;
    return 0;
}
