/*
 * wake.c: waking the webhook deliverers at commit, at most once every
 * WAKE_INTERVAL_MS across the cluster.
 *
 * A NOTIFY serializes the commits of the transactions that send one: each
 * holds a database-wide lock from the queueing of its notifications until
 * its commit record is flushed, so a transaction per emitted event would
 * lose group commit and every emitting transaction would wait for the
 * others' WAL flushes in turn.  So _webhook_wake() only marks the
 * transaction, and its pre-commit callback sends the notification unless
 * another committing transaction sent one less than WAKE_INTERVAL_MS ago
 * (a timestamp in shared memory, swapped atomically, so that exactly one
 * of several transactions committing at once sends it).  A transaction
 * that skips commits at most WAKE_INTERVAL_MS plus its WAL flush after one
 * that sent; the deliverers claim again a little later after every wake
 * (shim/deliver.c), which finds it.  Should the one that sent roll back
 * after its pre-commit callback, which only a failure at commit can do,
 * the deliverers' poll finds the others.
 *
 * Without shared memory (the library not in shared_preload_libraries)
 * every marked transaction sends its notification.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "actloom.h"

#define WAKE_CHANNEL		"actloom_webhooks"
#define WAKE_INTERVAL_MS	10

typedef struct WakeShared
{
	pg_atomic_uint64 last_us;	/* when a transaction last sent the notification */
} WakeShared;

static WakeShared *wake_shared = NULL;
static bool wake_at_commit = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
wake_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WakeShared)));
}

static void
wake_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wake_shared = ShmemInitStruct("actloom webhook wake", sizeof(WakeShared), &found);
	if (!found)
		pg_atomic_init_u64(&wake_shared->last_us, 0);
	LWLockRelease(AddinShmemInitLock);
}

/* Sends the notification of a marked transaction, unless one went out moments ago. */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	uint64		now,
				last;

	if (event != XACT_EVENT_PRE_COMMIT)
	{
		if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
			wake_at_commit = false;
		return;
	}
	if (!wake_at_commit)
		return;
	wake_at_commit = false;
	if (wake_shared != NULL)
	{
		now = (uint64) GetCurrentTimestamp();
		last = pg_atomic_read_u64(&wake_shared->last_us);
		if (now < last + WAKE_INTERVAL_MS * 1000 ||
			!pg_atomic_compare_exchange_u64(&wake_shared->last_us, &last, now))
			return;
	}
	Async_Notify(WAKE_CHANNEL, "");
}

/*
 * WakeInit installs the shared memory hooks when the library is preloaded,
 * and the transaction callback.
 */
void
WakeInit(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = wake_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = wake_shmem_startup;
	}
	RegisterXactCallback(wake_xact_callback, NULL);
}

/*
 * _webhook_wake() marks the transaction: at its commit the webhook
 * deliverers are woken (see the top of the file).
 */
PG_FUNCTION_INFO_V1(webhook_wake);
Datum
webhook_wake(PG_FUNCTION_ARGS)
{
	wake_at_commit = true;
	PG_RETURN_VOID();
}
