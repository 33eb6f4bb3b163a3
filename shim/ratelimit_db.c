/*
 * ratelimit_db.c: the statements and results of the database store
 * (ratelimit_db.h).
 *
 * The takes go as five parallel arrays (classes, keys, quotas, periods,
 * bursts): one statement whatever their number, within the six parameters
 * a statement may have.  Class names are a-z, 0-9 and _ (config.c); keys
 * hold whatever a client sent (an email), so each is quoted as an array
 * element.
 */
#include "ratelimit_db.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ADMIT_SQL                                                                                                      \
    "SELECT class, allowed, remaining, reset_after, retry_after "                                                      \
    "FROM actloom.rate_limit_admit($1::uuid, $2::text[], $3::text[], $4::int[], $5::int[], $6::int[])"
#define ADMITTED_SQL "SELECT actloom.rate_limit_admitted($1::uuid)"
#define GUARD_SQL                                                                                                      \
    "SELECT $2::text, allowed, remaining, reset_after, retry_after "                                                   \
    "FROM actloom.rate_limit_guard($1::uuid, $2::text, $3::text, $4::int, $5::int, $6::int)"
#define FAIL_SQL "SELECT actloom.rate_limit_fail($1::uuid, $2::text, $3::text, $4::int, $5::int, $6::int)"
#define PURGE_SQL "SELECT actloom.rate_limit_purge()"

/* A random (version 4) uuid in out (37 bytes); -1 without randomness. */
static int
random_uuid(char *out)
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

/* An array literal of the keys, each quoted: {"a:10.0.0.1","e:x\"y@z"}. */
static char *
keys_literal(h2o_mem_pool_t *pool, const struct rl_pending *limits, unsigned n)
{
    size_t cap = 3, o = 0;
    char *s;

    for (unsigned i = 0; i < n; i++)
        cap += 2 * strlen(limits[i].key) + 3;
    s = h2o_mem_alloc_pool(pool, cap);
    s[o++] = '{';
    for (unsigned i = 0; i < n; i++) {
        if (i > 0)
            s[o++] = ',';
        s[o++] = '"';
        for (const char *k = limits[i].key; *k != '\0'; k++) {
            if (*k == '"' || *k == '\\')
                s[o++] = '\\';
            s[o++] = *k;
        }
        s[o++] = '"';
    }
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* An array literal of one field of each take's class: which 0 names, 1 limits, 2 periods, 3 bursts. */
static char *
class_literal(h2o_mem_pool_t *pool, const struct rl_pending *limits, unsigned n, int which)
{
    size_t cap = 2 + n * (CONFIG_NAME_MAX + 1), o = 0;
    char *s = h2o_mem_alloc_pool(pool, cap);

    s[o++] = '{';
    for (unsigned i = 0; i < n; i++) {
        const struct config_rate_class *rc = limits[i].rc;
        if (which == 0)
            o += (size_t)snprintf(s + o, cap - o, "%s%s", i > 0 ? "," : "", rc->name);
        else
            o += (size_t)snprintf(s + o, cap - o, "%s%u", i > 0 ? "," : "",
                                  which == 1   ? rc->limit
                                  : which == 2 ? rc->period
                                               : rc->burst);
    }
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* A statement about one class and key: the guard's check or its charge. */
static struct db_stmt
guard_stmt(h2o_mem_pool_t *pool, const char *sql, const char *admission, const struct rl_pending *guard)
{
    char *numbers = h2o_mem_alloc_pool(pool, 3 * 12);
    const struct config_rate_class *rc = guard->rc;

    snprintf(numbers, 12, "%u", rc->limit);
    snprintf(numbers + 12, 12, "%u", rc->period);
    snprintf(numbers + 24, 12, "%u", rc->burst);
    return (struct db_stmt){sql, 6, {admission, rc->name, guard->key, numbers, numbers + 12, numbers + 24}, 1};
}

int
rl_db_statements(h2o_mem_pool_t *pool, const struct rl_pending *limits, unsigned n, const struct rl_pending *guard,
                 struct db_stmt lead[RL_DB_LEAD_MAX], struct db_stmt trail[RL_DB_TRAIL_MAX])
{
    char *admission = h2o_mem_alloc_pool(pool, 37);
    int nlead = 0;

    if (random_uuid(admission) != 0)
        return -1;
    lead[nlead++] = (struct db_stmt){ADMIT_SQL,
                                     6,
                                     {admission, class_literal(pool, limits, n, 0), keys_literal(pool, limits, n),
                                      class_literal(pool, limits, n, 1), class_literal(pool, limits, n, 2),
                                      class_literal(pool, limits, n, 3)},
                                     guard == NULL};
    if (guard != NULL) {
        lead[nlead++] = guard_stmt(pool, GUARD_SQL, admission, guard);
        trail[0] = guard_stmt(pool, FAIL_SQL, admission, guard);
    }
    lead[nlead++] = (struct db_stmt){ADMITTED_SQL, 1, {admission}, 0};
    return nlead;
}

int
rl_db_verdict(const PGresult *res, unsigned i, const struct config_rate_class *rc, struct rl_verdict *out)
{
    if (res == NULL || PQnfields(res) != 5 || (int)i >= PQntuples(res) ||
        strcmp(PQgetvalue(res, (int)i, 0), rc->name) != 0)
        return -1;
    out->allowed = strcmp(PQgetvalue(res, (int)i, 1), "t") == 0;
    out->limit = rc->limit;
    out->period = rc->period;
    out->remaining = (uint32_t)strtoul(PQgetvalue(res, (int)i, 2), NULL, 10);
    out->reset = (uint32_t)strtoul(PQgetvalue(res, (int)i, 3), NULL, 10);
    out->retry_after = (uint32_t)strtoul(PQgetvalue(res, (int)i, 4), NULL, 10);
    return 0;
}

static void
on_purged(void *owner, const struct db_result *res)
{
    if (res->outcome == DB_ERROR)
        LOG_WARN("could not purge expired rate-limit states: SQLSTATE %s: %s", res->sqlstate, res->message);
}

void
rl_db_purge(struct db_pool *pool)
{
    struct db_stmt stmt = {PURGE_SQL, 0, {NULL}, 0};

    db_submit(pool, &stmt, 1, on_purged, pool);
}
