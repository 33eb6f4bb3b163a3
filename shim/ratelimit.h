/*
 * ratelimit.h: GCRA rate limiting in bounded memory, shared by all threads.
 *
 * A class allows "limit" requests per "period" seconds with at most "burst"
 * at once.  Each (class, key) pair has one theoretical arrival time (TAT);
 * an entry whose TAT has passed carries no information and may be reused,
 * which is how idle states expire.  The table has a fixed number of slots;
 * when a bucket of slots is full of live entries, the entry nearest to expiry
 * is evicted (counted in rl_evictions).
 */
#ifndef ACTLOOM_RATELIMIT_H
#define ACTLOOM_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct rl_table;

/* What one take decided, with everything the response headers need. */
struct rl_verdict {
    int allowed;
    uint32_t limit;       /* the policy's quota */
    uint32_t period;      /* its window, seconds */
    uint32_t remaining;   /* requests still allowed now */
    uint32_t reset;       /* seconds until the quota is whole again */
    uint32_t retry_after; /* when refused: seconds until one is allowed */
};

/*
 * A take decided later, by the database store (ratelimit_db.h): the class
 * and the key, which lives as long as the request.
 */
struct rl_pending {
    const struct config_rate_class *rc;
    const char *key;
    int delayed; /* a refusal is answered late (handler_limit_delayed) */
};

/* A table of at least max_entries slots; NULL when out of memory. */
struct rl_table *rl_create(size_t max_entries);
void rl_destroy(struct rl_table *t);

/*
 * Takes one request for (class, key) at now_ms (a monotonic clock).  The key
 * is hashed with a per-process secret, so clients cannot aim at one bucket.
 */
void rl_take(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms,
             struct rl_verdict *out);

/*
 * What a take for (class, key) at now_ms would be told, taking nothing: for
 * a class that is charged after the fact (rl_charge), checked before.
 */
void rl_peek(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms,
             struct rl_verdict *out);

/*
 * Takes one request for (class, key) whatever the state: past the limit it
 * leaves a debt that later takes wait out, so that attempts which all
 * passed rl_peek at once are all paid for.  rl_refund gives one back: for
 * an attempt charged before it was made, that turned out not to count.
 */
void rl_charge(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms);
void rl_refund(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms);

/*
 * Makes (class, key) refuse every take for the next seconds at least: the
 * database store remembers here a refusal the database decided, until the
 * Retry-After it gave, so that the requests refused meanwhile cost it
 * nothing.
 */
void rl_hold(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms,
             uint32_t seconds);

/* Slots in use with a TAT in the future, and evictions so far. */
size_t rl_live(struct rl_table *t, uint64_t now_ms);
uint64_t rl_evictions(struct rl_table *t);

/* "RateLimit-Policy" and "RateLimit" header values, in buf (>= 128 bytes). */
int rl_policy_header(const struct config_rate_class *rc, char *buf, size_t len);
int rl_state_header(const struct config_rate_class *rc, const struct rl_verdict *v, char *buf, size_t len);

/* 64-bit keyed hash (SipHash-2-4) with the process secret. */
uint64_t rl_hash(const void *data, size_t len, uint64_t salt);

#endif
