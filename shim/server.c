/*
 * server.c: the state all threads share (shim.h): the policy snapshot and
 * the clock.  Kept apart from main.c so that the unit test programs link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "shim.h"

struct shim_server shim;

uint64_t
shim_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* --- policy snapshots ------------------------------------------------------------ */

/*
 * The policy is read by every request and replaced only by SIGHUP, so a
 * request reads the current pointer without a lock or a reference, and a
 * replaced policy is retired, not freed: it stays valid for requests that
 * started under it.  Each SIGHUP keeps one configuration (a few KiB) until
 * exit; shim_policy_free_all releases them.
 */
struct shim_policy *
shim_policy_current(void)
{
    return __atomic_load_n(&shim.policy, __ATOMIC_ACQUIRE);
}

void
shim_policy_replace(struct shim_policy *p)
{
    pthread_mutex_lock(&shim.lock);
    p->retired = shim.policy;
    __atomic_store_n(&shim.policy, p, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&shim.lock);
}

void
shim_policy_free_all(void)
{
    struct shim_policy *p = shim.policy;

    shim.policy = NULL;
    while (p != NULL) {
        struct shim_policy *next = p->retired;
        shim_policy_free(p);
        p = next;
    }
}

struct shim_policy *
shim_policy_load(const char *path, char *err, size_t errlen)
{
    struct shim_policy *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    config_defaults(&p->cfg);
    if (config_load(&p->cfg, path, err, errlen) != 0)
        goto fail;
    if (p->cfg.session_key_file != NULL) {
        if (jwt_keyring_load(p->cfg.session_key_file, &p->session_keys, err, errlen) != 0)
            goto fail;
        p->has_session_keys = 1;
    }
    return p;
fail:
    shim_policy_free(p);
    return NULL;
}

void
shim_policy_free(struct shim_policy *p)
{
    if (p == NULL)
        return;
    config_free(&p->cfg);
    jwt_keyring_wipe(&p->session_keys);
    free(p);
}
