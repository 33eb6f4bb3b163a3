/*
 * deliver.h: the webhook deliverer, one per worker thread of a shim with
 * webhooks.deliver on.
 *
 * Each worker delivers the endpoints of its shard (the database hashes the
 * endpoint id over the worker count), so that an endpoint's transfers of
 * this shim are all on one loop and webhooks.max_in_flight_per_endpoint is
 * exact; webhooks.max_in_flight is shared out over the workers.  A worker
 * claims due deliveries with a lease (actloom.webhook_claim, which also
 * signs them), sends them through its outbound HTTP module (http_out.h) and
 * records every attempt (actloom.webhook_record).  It claims when told that
 * something became due (deliver_wake, from the shim's LISTEN connection),
 * when a transfer ends and the last claim left work behind, and otherwise
 * when the database said the next delivery is due, or after webhooks.poll_ms
 * at the latest.  Nothing here blocks: the claims and records are jobs of the
 * worker's database pool, the transfers libcurl's on the worker's loop.
 */
#ifndef ACTLOOM_DELIVER_H
#define ACTLOOM_DELIVER_H

#include <stdint.h>

struct shim_thread;
struct deliverer;

/* Starts the deliverer of a worker (on the main thread, before the worker runs); NULL on failure. */
struct deliverer *deliver_create(struct shim_thread *t);

/* Called by the worker's tick. */
void deliver_tick(struct deliverer *d, uint64_t now_ms);

/* Stops claiming; transfers in flight go on until deliver_destroy. */
void deliver_stop(struct deliverer *d);

/* Whether transfers or their records are still in flight. */
unsigned deliver_busy(const struct deliverer *d);

/* Cancels what is in flight (its leases expire, and it is delivered again) and frees the deliverer. */
void deliver_destroy(struct deliverer *d);

/* From any thread: something became due; every worker's deliverer claims now. */
void deliver_wake_all(void);

/*
 * The main thread allows deliver_wake_all to reach the workers once they all
 * exist (1), and stops it before they end (0): from then on no wake reaches
 * a deliverer.
 */
void deliver_wakes(int on);

#endif
