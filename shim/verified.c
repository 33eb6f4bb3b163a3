/*
 * verified.c: the table of keys the database accepted (verified.h).
 *
 * The same layout as the rate-limit table (ratelimit.c): a key's first hash
 * picks its bucket of VERIFIED_WAYS slots, buckets are spread over
 * VERIFIED_STRIPES mutexes, and a lookup holds one of them for a scan of
 * one bucket.  Only keys the database accepted are ever added, so a client
 * without a key cannot push the genuine ones out.
 */
#include "verified.h"

#include <pthread.h>
#include <stdlib.h>

#include "ratelimit.h"

#define VERIFIED_WAYS 8
#define VERIFIED_STRIPES 64
/* Two salts for the two halves of an entry's hash. */
#define VERIFIED_SALT_1 0x7665726966696564ULL
#define VERIFIED_SALT_2 0x6b65797365656e21ULL

struct verified_entry {
    uint64_t h1, h2;
    uint64_t at_ms; /* when the database accepted the key; 0: empty */
};

struct verified_table {
    pthread_mutex_t locks[VERIFIED_STRIPES];
    size_t nbuckets;
    struct verified_entry *slots; /* nbuckets * VERIFIED_WAYS */
};

struct verified_table *
verified_create(size_t max_entries)
{
    struct verified_table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->nbuckets = (max_entries + VERIFIED_WAYS - 1) / VERIFIED_WAYS;
    if (t->nbuckets < VERIFIED_STRIPES)
        t->nbuckets = VERIFIED_STRIPES;
    t->slots = calloc(t->nbuckets * VERIFIED_WAYS, sizeof(struct verified_entry));
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    for (int i = 0; i < VERIFIED_STRIPES; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    return t;
}

void
verified_destroy(struct verified_table *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < VERIFIED_STRIPES; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t->slots);
    free(t);
}

void
verified_key_of(const char *key, size_t len, struct verified_key *out)
{
    out->h1 = rl_hash(key, len, VERIFIED_SALT_1);
    out->h2 = rl_hash(key, len, VERIFIED_SALT_2);
}

/* Locks the key's bucket into *lock and returns its entry, or NULL; *bucket is the bucket's first slot. */
static struct verified_entry *
find_lock(struct verified_table *t, const struct verified_key *k, struct verified_entry **bucket,
          pthread_mutex_t **lock)
{
    size_t b = (size_t)(k->h1 % t->nbuckets);

    *bucket = &t->slots[b * VERIFIED_WAYS];
    *lock = &t->locks[b % VERIFIED_STRIPES];
    pthread_mutex_lock(*lock);
    for (int i = 0; i < VERIFIED_WAYS; i++) {
        struct verified_entry *e = &(*bucket)[i];
        if (e->at_ms != 0 && e->h1 == k->h1 && e->h2 == k->h2)
            return e;
    }
    return NULL;
}

int
verified_recent(struct verified_table *t, const struct verified_key *k, uint64_t now_ms, uint64_t ttl_ms,
                uint64_t *age_ms)
{
    struct verified_entry *bucket, *e;
    pthread_mutex_t *lock;
    int recent;

    e = find_lock(t, k, &bucket, &lock);
    recent = e != NULL && now_ms - e->at_ms < ttl_ms;
    if (recent)
        *age_ms = now_ms - e->at_ms;
    pthread_mutex_unlock(lock);
    return recent;
}

void
verified_add(struct verified_table *t, const struct verified_key *k, uint64_t now_ms)
{
    struct verified_entry *bucket, *e;
    pthread_mutex_t *lock;

    e = find_lock(t, k, &bucket, &lock);
    if (e == NULL) {
        /* An empty slot, or the one accepted longest ago. */
        e = &bucket[0];
        for (int i = 1; i < VERIFIED_WAYS && e->at_ms != 0; i++)
            if (bucket[i].at_ms < e->at_ms)
                e = &bucket[i];
        e->h1 = k->h1;
        e->h2 = k->h2;
    }
    e->at_ms = now_ms;
    pthread_mutex_unlock(lock);
}

void
verified_forget(struct verified_table *t, const struct verified_key *k)
{
    struct verified_entry *bucket, *e;
    pthread_mutex_t *lock;

    e = find_lock(t, k, &bucket, &lock);
    if (e != NULL)
        e->at_ms = 0;
    pthread_mutex_unlock(lock);
}
