/*
 * ratelimit.c: the GCRA table (ratelimit.h).
 *
 * GCRA in integer microseconds: T = period / limit is the emission interval
 * and tau = T * (burst - 1) the tolerance.  A request at "now" is allowed
 * when max(TAT, now) - now <= tau; it then moves TAT to max(TAT, now) + T.
 * Nothing else is stored per key, so an entry is 16 bytes.
 *
 * Slots are grouped in buckets of RL_WAYS; a key maps to one bucket, found by
 * its keyed hash; buckets are spread over RL_STRIPES mutexes.  A take holds
 * one mutex for a scan of RL_WAYS slots: no thread waits for long, and none
 * waits on I/O while holding it.
 */
#include "ratelimit.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_WAYS 8
#define RL_STRIPES 64

struct rl_entry {
    uint64_t hash; /* 0: empty */
    uint64_t tat_us;
};

struct rl_table {
    pthread_mutex_t locks[RL_STRIPES];
    size_t nbuckets;
    uint64_t evictions;
    struct rl_entry *slots; /* nbuckets * RL_WAYS */
};

static uint64_t sip_key[2];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void
sip_init(void)
{
    if (RAND_bytes((unsigned char *)sip_key, sizeof(sip_key)) != 1) {
        fprintf(stderr, "actloom-shim: no randomness for the rate-limit hash key\n");
        abort();
    }
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                       \
    do {                                                                                                               \
        v0 += v1;                                                                                                      \
        v1 = ROTL(v1, 13);                                                                                             \
        v1 ^= v0;                                                                                                      \
        v0 = ROTL(v0, 32);                                                                                             \
        v2 += v3;                                                                                                      \
        v3 = ROTL(v3, 16);                                                                                             \
        v3 ^= v2;                                                                                                      \
        v0 += v3;                                                                                                      \
        v3 = ROTL(v3, 21);                                                                                             \
        v3 ^= v0;                                                                                                      \
        v2 += v1;                                                                                                      \
        v1 = ROTL(v1, 17);                                                                                             \
        v1 ^= v2;                                                                                                      \
        v2 = ROTL(v2, 32);                                                                                             \
    } while (0)

uint64_t
rl_hash(const void *data, size_t len, uint64_t salt)
{
    const unsigned char *in = data;
    uint64_t k0, k1, v0, v1, v2, v3, b = (uint64_t)len << 56, m;
    size_t i, tail = len & 7;

    pthread_once(&sip_once, sip_init);
    k0 = sip_key[0] ^ salt;
    k1 = sip_key[1];
    v0 = 0x736f6d6570736575ULL ^ k0;
    v1 = 0x646f72616e646f6dULL ^ k1;
    v2 = 0x6c7967656e657261ULL ^ k0;
    v3 = 0x7465646279746573ULL ^ k1;
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&m, in + i, 8);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; j < tail; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

struct rl_table *
rl_create(size_t max_entries)
{
    struct rl_table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->nbuckets = (max_entries + RL_WAYS - 1) / RL_WAYS;
    if (t->nbuckets < RL_STRIPES)
        t->nbuckets = RL_STRIPES;
    t->slots = calloc(t->nbuckets * RL_WAYS, sizeof(struct rl_entry));
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    for (int i = 0; i < RL_STRIPES; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    return t;
}

void
rl_destroy(struct rl_table *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < RL_STRIPES; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t->slots);
    free(t);
}

/* Seconds, rounded up, for a positive number of microseconds. */
static uint32_t
ceil_seconds(uint64_t us)
{
    uint64_t s = (us + 999999) / 1000000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* A class in microseconds: the emission interval T and the tolerance tau. */
struct gcra {
    uint64_t interval, tau;
};

static struct gcra
gcra_of(const struct config_rate_class *rc)
{
    /* At least a microsecond apart, or tau would be 0 and every burst refused. */
    uint64_t interval = (uint64_t)rc->period * 1000000 / rc->limit ? (uint64_t)rc->period * 1000000 / rc->limit : 1;

    return (struct gcra){interval, interval * (rc->burst - 1)};
}

/*
 * Locks the bucket of (class, key) into *lock and returns its entry.  When
 * there is none: with claim, a free slot (or the live one nearest to
 * expiry, evicted) made the key's, with its TAT at now; without, NULL.
 */
static struct rl_entry *
entry_lock(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now,
           int claim, pthread_mutex_t **lock)
{
    uint64_t hash = rl_hash(key, keylen, rl_hash(rc->name, strlen(rc->name), 0)) | 1;
    size_t bucket = (size_t)(hash >> 1) % t->nbuckets;
    struct rl_entry *slots = &t->slots[bucket * RL_WAYS], *victim = NULL;

    *lock = &t->locks[bucket % RL_STRIPES];
    pthread_mutex_lock(*lock);
    for (int i = 0; i < RL_WAYS; i++) {
        struct rl_entry *s = &slots[i];
        int s_free = s->hash == 0 || s->tat_us <= now;
        if (s->hash == hash)
            return s;
        /* A free (empty or expired) slot beats any live one; among live ones the nearest to expiry. */
        if (victim == NULL || (s_free && victim->tat_us > now) ||
            (!s_free && victim->tat_us > now && s->tat_us < victim->tat_us))
            victim = s;
    }
    if (!claim)
        return NULL;
    if (victim->hash != 0 && victim->tat_us > now)
        __atomic_fetch_add(&t->evictions, 1, __ATOMIC_RELAXED);
    victim->hash = hash;
    victim->tat_us = now;
    return victim;
}

/*
 * The verdict for a key whose TAT is tat: what one more take would be told
 * (allowed, or refused with when to retry), and the headers' numbers.
 */
static void
state_verdict(const struct config_rate_class *rc, struct gcra g, uint64_t tat, uint64_t now, struct rl_verdict *out)
{
    uint64_t ahead = tat > now ? tat - now : 0, slack = g.tau + g.interval;

    out->limit = rc->limit;
    out->period = rc->period;
    out->allowed = ahead <= g.tau;
    out->remaining = ahead < slack ? (uint32_t)((slack - ahead) / g.interval) : 0;
    out->retry_after = out->allowed ? 0 : ceil_seconds(ahead - g.tau);
    out->reset = ceil_seconds(ahead);
}

void
rl_take(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms,
        struct rl_verdict *out)
{
    uint64_t now = now_ms * 1000;
    struct gcra g = gcra_of(rc);
    pthread_mutex_t *lock;
    struct rl_entry *e = entry_lock(t, rc, key, keylen, now, 1, &lock);
    uint64_t tat = e->tat_us > now ? e->tat_us : now;

    state_verdict(rc, g, tat, now, out);
    if (out->allowed) {
        e->tat_us = tat + g.interval;
        state_verdict(rc, g, e->tat_us, now, out);
        out->allowed = 1;
        out->retry_after = 0;
    }
    pthread_mutex_unlock(lock);
}

void
rl_peek(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms,
        struct rl_verdict *out)
{
    uint64_t now = now_ms * 1000;
    pthread_mutex_t *lock;
    struct rl_entry *e = entry_lock(t, rc, key, keylen, now, 0, &lock);

    state_verdict(rc, gcra_of(rc), e != NULL ? e->tat_us : now, now, out);
    pthread_mutex_unlock(lock);
}

void
rl_charge(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms)
{
    uint64_t now = now_ms * 1000;
    pthread_mutex_t *lock;
    struct rl_entry *e = entry_lock(t, rc, key, keylen, now, 1, &lock);

    e->tat_us = (e->tat_us > now ? e->tat_us : now) + gcra_of(rc).interval;
    pthread_mutex_unlock(lock);
}

void
rl_refund(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms)
{
    uint64_t interval = gcra_of(rc).interval;
    pthread_mutex_t *lock;
    struct rl_entry *e = entry_lock(t, rc, key, keylen, now_ms * 1000, 0, &lock);

    if (e != NULL)
        e->tat_us = e->tat_us > interval ? e->tat_us - interval : 0;
    pthread_mutex_unlock(lock);
}

void
rl_hold(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms,
        uint32_t seconds)
{
    uint64_t now = now_ms * 1000, until = now + (uint64_t)seconds * 1000000 + gcra_of(rc).tau;
    pthread_mutex_t *lock;
    struct rl_entry *e = entry_lock(t, rc, key, keylen, now, 1, &lock);

    if (e->tat_us < until)
        e->tat_us = until;
    pthread_mutex_unlock(lock);
}

size_t
rl_live(struct rl_table *t, uint64_t now_ms)
{
    size_t n = 0;

    for (size_t b = 0; b < t->nbuckets; b++) {
        pthread_mutex_lock(&t->locks[b % RL_STRIPES]);
        for (int i = 0; i < RL_WAYS; i++)
            if (t->slots[b * RL_WAYS + i].hash != 0 && t->slots[b * RL_WAYS + i].tat_us > now_ms * 1000)
                n++;
        pthread_mutex_unlock(&t->locks[b % RL_STRIPES]);
    }
    return n;
}

uint64_t
rl_evictions(struct rl_table *t)
{
    return __atomic_load_n(&t->evictions, __ATOMIC_RELAXED);
}

int
rl_policy_header(const struct config_rate_class *rc, char *buf, size_t len)
{
    return snprintf(buf, len, "\"%s\";q=%u;w=%u", rc->name, rc->limit, rc->period);
}

int
rl_state_header(const struct config_rate_class *rc, const struct rl_verdict *v, char *buf, size_t len)
{
    return snprintf(buf, len, "\"%s\";r=%u;t=%u", rc->name, v->remaining, v->reset);
}
