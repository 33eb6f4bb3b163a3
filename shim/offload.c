/*
 * offload.c: the offload threads (offload.h).
 *
 * One queue under one mutex, and a condition variable the threads wait on.
 * A job is owned by its loop's thread except while an offload thread runs
 * its work: detached is only read and written on the loop's thread, and the
 * job is freed there, after done, when its message arrives.
 */
#include "offload.h"

#include <stdlib.h>

#include "log.h"

struct offload_job {
    h2o_multithread_message_t super; /* to the loop, once the work is done */
    h2o_linklist_t queued;           /* in the queue until an offload thread takes it */
    struct shim_thread *thread;
    offload_work_fn work;
    offload_done_fn done;
    void *arg;
    int detached;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    h2o_linklist_t queue;
    int stopping;
    pthread_t *threads;
    unsigned nthreads;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void *
offload_main(void *unused)
{
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        struct offload_job *job;
        while (!pool.stopping && h2o_linklist_is_empty(&pool.queue))
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stopping)
            break;
        job = H2O_STRUCT_FROM_MEMBER(struct offload_job, queued, pool.queue.next);
        h2o_linklist_unlink(&job->queued);
        pthread_mutex_unlock(&pool.lock);
        job->work(job->arg);
        h2o_multithread_send_message(&job->thread->offloaded, &job->super);
        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

int
offload_start(unsigned nthreads)
{
    h2o_linklist_init_anchor(&pool.queue);
    if ((pool.threads = calloc(nthreads, sizeof(pthread_t))) == NULL)
        return -1;
    for (; pool.nthreads < nthreads; pool.nthreads++)
        if (pthread_create(&pool.threads[pool.nthreads], NULL, offload_main, NULL) != 0)
            return -1;
    return 0;
}

void
offload_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = 1;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (unsigned i = 0; i < pool.nthreads; i++)
        pthread_join(pool.threads[i], NULL);
    /* Only a loop that gave up waiting for its requests leaves jobs behind. */
    while (!h2o_linklist_is_empty(&pool.queue)) {
        struct offload_job *job = H2O_STRUCT_FROM_MEMBER(struct offload_job, queued, pool.queue.next);
        h2o_linklist_unlink(&job->queued);
        job->done(job->arg, 1);
        free(job);
    }
    free(pool.threads);
    pool.threads = NULL;
    pool.nthreads = 0;
}

/* Finished jobs: each goes back to its owner, or is only freed. */
static void
on_offloaded(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        struct offload_job *job = H2O_STRUCT_FROM_MEMBER(struct offload_job, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        job->thread->inflight--;
        job->done(job->arg, job->detached);
        free(job);
    }
}

void
offload_attach(struct shim_thread *t)
{
    h2o_multithread_register_receiver(t->queue, &t->offloaded, on_offloaded);
}

struct offload_job *
offload_submit(struct shim_thread *t, offload_work_fn work, offload_done_fn done, void *arg)
{
    struct offload_job *job = calloc(1, sizeof(*job));

    if (job == NULL)
        return NULL;
    *job = (struct offload_job){.thread = t, .work = work, .done = done, .arg = arg};
    t->inflight++;
    pthread_mutex_lock(&pool.lock);
    h2o_linklist_insert(&pool.queue, &job->queued);
    pthread_cond_signal(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    return job;
}

void
offload_detach(struct offload_job *job)
{
    job->detached = 1;
}
