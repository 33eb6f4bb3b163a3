/*
 * offload.h: work too long for an event loop, done on threads of its own.
 *
 * A loop must not spend long on one request: everything else it serves
 * (/healthz, the other requests) waits meanwhile.  Parsing a large JSON
 * body is such work (about 0.1 s for a MiB of small values), so it runs on
 * one of a few offload threads, and the request goes on on its loop when it
 * is done.  A job is submitted from a loop's thread and finished there
 * (done), through a message to the loop (h2o_multithread); it counts as a
 * request in flight of that loop until then, so that a loop stopping waits
 * for its jobs.  A request has at most one job at a time, so the queue is
 * bounded as the requests in flight are.
 */
#ifndef ACTLOOM_OFFLOAD_H
#define ACTLOOM_OFFLOAD_H

#include "shim.h"

struct offload_job;

/*
 * work runs on an offload thread; done runs afterwards on the submitting
 * loop's thread, with detached set when the job's owner went away
 * (offload_detach) and only arg is left to free.
 */
typedef void (*offload_work_fn)(void *arg);
typedef void (*offload_done_fn)(void *arg, int detached);

/* Starts nthreads offload threads; -1 when they could not be. */
int offload_start(unsigned nthreads);

/*
 * Stops the threads, once every loop has stopped; jobs still queued are
 * finished as detached, on the calling thread.
 */
void offload_stop(void);

/* Makes a worker's loop receive its finished jobs (on the main thread, before it runs). */
void offload_attach(struct shim_thread *t);

/* Queues work(arg) for thread t's loop; NULL when out of memory. */
struct offload_job *offload_submit(struct shim_thread *t, offload_work_fn work, offload_done_fn done, void *arg);

/* The owner no longer wants the result: done will be called with detached set. */
void offload_detach(struct offload_job *job);

#endif
