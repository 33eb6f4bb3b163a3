/*
 * verified.h: the API keys this shim has seen the database accept, in
 * bounded memory shared by all threads.
 *
 * An entry says that a request carrying exactly this key, its secret
 * included, was authenticated by the database at a given time.  It grants
 * nothing: every request that reaches an endpoint's function is
 * authenticated again by the database, in that request's own transaction.
 * It decides only what the shim may do before the database has answered
 * (handlers/machine.c says what and why).
 *
 * Keys are not stored: an entry is a 128-bit keyed hash of the whole key
 * (SipHash-2-4 under the process's random key, with two salts), so a forged
 * secret under a genuine key id matches nothing.  Entries are grouped in
 * buckets of a fixed number of slots; a full bucket gives up its oldest.
 */
#ifndef ACTLOOM_VERIFIED_H
#define ACTLOOM_VERIFIED_H

#include <stddef.h>
#include <stdint.h>

struct verified_table;

/* The shim's table: 65536 keys at 24 bytes each, used or not. */
#define VERIFIED_ENTRIES 65536

/* What the table knows of a key: its hash, computed once a request. */
struct verified_key {
    uint64_t h1, h2;
};

void verified_key_of(const char *key, size_t len, struct verified_key *out);

/* A table of at least max_entries slots; NULL when out of memory. */
struct verified_table *verified_create(size_t max_entries);
void verified_destroy(struct verified_table *t);

/*
 * Whether the database accepted the key less than ttl_ms before now_ms (a
 * monotonic clock, > 0); if so, *age_ms says how long ago that was recorded.
 */
int verified_recent(struct verified_table *t, const struct verified_key *k, uint64_t now_ms, uint64_t ttl_ms,
                    uint64_t *age_ms);

/* Records that the database accepted the key at now_ms. */
void verified_add(struct verified_table *t, const struct verified_key *k, uint64_t now_ms);

/* Forgets the key: the database refused it (revoked or expired since). */
void verified_forget(struct verified_table *t, const struct verified_key *k);

#endif
