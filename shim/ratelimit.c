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

void
rl_take(struct rl_table *t, const struct config_rate_class *rc, const char *key, size_t keylen, uint64_t now_ms,
        struct rl_verdict *out)
{
    uint64_t now = now_ms * 1000;
    /* At least a microsecond apart, or tau would be 0 and every burst refused. */
    uint64_t interval = (uint64_t)rc->period * 1000000 / rc->limit ? (uint64_t)rc->period * 1000000 / rc->limit : 1;
    uint64_t tau = interval * (rc->burst - 1);
    uint64_t hash = rl_hash(key, keylen, rl_hash(rc->name, strlen(rc->name), 0)) | 1;
    size_t bucket = (size_t)(hash >> 1) % t->nbuckets;
    pthread_mutex_t *lock = &t->locks[bucket % RL_STRIPES];
    struct rl_entry *slots = &t->slots[bucket * RL_WAYS], *e = NULL, *victim = NULL;
    uint64_t tat;

    pthread_mutex_lock(lock);
    for (int i = 0; i < RL_WAYS; i++) {
        struct rl_entry *s = &slots[i];
        int s_free = s->hash == 0 || s->tat_us <= now;
        if (s->hash == hash) {
            e = s;
            break;
        }
        /* A free (empty or expired) slot beats any live one; among live ones the nearest to expiry. */
        if (victim == NULL || (s_free && victim->tat_us > now) ||
            (!s_free && victim->tat_us > now && s->tat_us < victim->tat_us))
            victim = s;
    }
    if (e == NULL) {
        if (victim->hash != 0 && victim->tat_us > now)
            __atomic_fetch_add(&t->evictions, 1, __ATOMIC_RELAXED);
        e = victim;
        e->hash = hash;
        e->tat_us = now;
    }
    tat = e->tat_us > now ? e->tat_us : now;
    out->limit = rc->limit;
    out->period = rc->period;
    if (tat - now > tau) {
        out->allowed = 0;
        out->remaining = 0;
        out->retry_after = ceil_seconds(tat - now - tau);
        out->reset = ceil_seconds(tat - now);
    } else {
        uint64_t new_tat = tat + interval;
        e->tat_us = new_tat;
        out->allowed = 1;
        out->remaining = (uint32_t)((tau + interval - (new_tat - now)) / interval);
        out->retry_after = 0;
        out->reset = ceil_seconds(new_tat - now);
    }
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
