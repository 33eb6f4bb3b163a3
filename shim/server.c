/*
 * server.c: the state all threads share (shim.h): the policy snapshot and
 * the clock.  Kept apart from main.c so that the unit test programs link.
 */
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

struct shim_policy *
shim_policy_acquire(void)
{
    struct shim_policy *p;

    pthread_mutex_lock(&shim.lock);
    p = shim.policy;
    p->refs++;
    pthread_mutex_unlock(&shim.lock);
    return p;
}

void
shim_policy_release(struct shim_policy *p)
{
    int last;

    pthread_mutex_lock(&shim.lock);
    last = --p->refs == 0;
    pthread_mutex_unlock(&shim.lock);
    if (last) {
        config_free(&p->cfg);
        free(p);
    }
}

void
shim_policy_replace(struct shim_policy *p)
{
    struct shim_policy *old;

    p->refs = 1;
    pthread_mutex_lock(&shim.lock);
    old = shim.policy;
    shim.policy = p;
    pthread_mutex_unlock(&shim.lock);
    if (old != NULL)
        shim_policy_release(old);
}

