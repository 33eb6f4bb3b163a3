/*
 * registry.h: the endpoint registry, a snapshot of actloom.endpoints.
 *
 * A background thread keeps one connection that LISTENs on the channel
 * "actloom_endpoints"; expose and unexpose NOTIFY it, and SIGHUP asks for a
 * reload too.  Each load builds a new immutable snapshot and swaps it in;
 * requests hold a reference to the snapshot they started with.
 */
#ifndef ACTLOOM_REGISTRY_H
#define ACTLOOM_REGISTRY_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"

struct endpoint {
    int version;
    char method[8];
    char *path;     /* "reports", no leading slash */
    char *route;    /* "POST /v1/reports", for logs and metrics */
    char *call_sql; /* SELECT schema.fn($1::jsonb, $2::jsonb)::text */
    char *scope;
    char *rate_class;
    json_t *body_schema;  /* NULL: no body allowed */
    json_t *query_schema; /* NULL: no query parameters allowed */
};

struct registry {
    int refs;
    int loaded; /* 0 until the first load succeeded */
    size_t n;
    struct endpoint *eps;
};

/* Starts the loader thread; the first snapshot is empty and not loaded. */
int registry_start(const struct config *cfg);
void registry_stop(void);
void registry_request_reload(void);

struct registry *registry_acquire(void);
/* Another reference to a snapshot the caller holds (for work that may outlive its request). */
struct registry *registry_retain(struct registry *reg);
void registry_release(struct registry *reg);

/*
 * The endpoint for (version, path, method).  When the path exists under
 * other methods only, returns NULL and writes them to allow ("GET, POST").
 */
const struct endpoint *registry_find(const struct registry *reg, int version, const char *path, size_t path_len,
                                     const char *method, size_t method_len, char *allow, size_t allow_len);

#endif
