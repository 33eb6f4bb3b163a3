/*
 * audit.c
 *	  The hash-chained audit trail: appending, verifying, checkpoints.
 *
 * Chains.  Every company has a chain (keyed by its id) and there is one
 * system chain (the nil uuid).  Entry n of a chain carries seq = n, the hash
 * of entry n-1 (32 zero bytes for n = 1), and
 *
 *		hash = SHA-256(prev_hash || canonical bytes of the entry)
 *
 * The canonical bytes are defined in SQL by actloom.audit_canonical() and
 * in the README; AuditCanonical() below produces exactly the same bytes.
 *
 * Appending.  A BEFORE INSERT trigger assigns seq, time, actor, prev_hash
 * and hash, whatever the inserter supplied.  To make chains gap-free and
 * fork-free, the trigger first takes a per-chain lock (see below), then
 * reads the chain's last entry with SnapshotSelf.  The lock is held until
 * our commit record is in the WAL, or until we abort, so the previous
 * holder has finished by the time we read: its entry is either committed
 * (and visible to SnapshotSelf whatever our isolation level or snapshot) or
 * rolled back (and invisible).  So no entry is ever chained to one that did
 * not commit, a rollback leaves no hole, and REPEATABLE READ and
 * SERIALIZABLE writers do not fail on a concurrent update, since no row is
 * ever updated.  Writers of different chains take different locks and
 * never wait for each other.  Entries written earlier by our own
 * transaction are visible to SnapshotSelf as well, including those of the
 * current command.
 *
 * The chain lock.  It is a heavyweight lock of the default lock method on
 * an object tag that nothing else uses: (database, class = the oid of
 * actloom.audit_log, object = the chain folded to 32 bits, subid 0).  Object
 * locks of PostgreSQL itself always name a system catalog as their class,
 * and audit_log, created by CREATE EXTENSION, is none; no SQL function
 * takes or releases an object lock by tag.  So user code can neither hold a
 * chain lock nor drop ours: pg_advisory_unlock_all() releases session locks
 * of the advisory lock method only.  The deadlock detector sees it like any
 * lock, and pg_locks shows it as locktype "object" with that class.  A
 * backend that exits or dies mid-transaction releases it: the abort that
 * exit runs releases every session lock of the default method, and a crash
 * reinitializes the lock table.
 *
 * Committing.  Holding the chain lock until the transaction's locks are
 * released would also hold it while the commit record is flushed, so one
 * chain could commit only once per WAL flush.  Instead the lock is a
 * session lock that the transaction callback releases as soon as the commit
 * record has been inserted, and the transaction commits asynchronously
 * (synchronous_commit is set to off for it, LOCAL); the same callback then
 * flushes the WAL up to that record before the client hears of the commit.
 * The next appender therefore chains to an entry whose commit record
 * precedes its own in the WAL: after a crash, the later commit survives
 * only if the earlier one does.  Their flushes overlap, as in any group
 * commit.  When synchronous replication is configured the commit stays
 * synchronous (the lock is then released after the standbys have
 * confirmed), and a transaction that appended cannot be prepared for
 * two-phase commit (its session lock would not follow it).
 *
 * Verifying.  audit_verify() streams the trail in (chain, seq) order through
 * the primary key, holding one entry of look-ahead, so its memory does not
 * grow with the trail.  For each entry, the first failing check names the
 * problem: "gap" (seq is not the previous seq + 1), "broken link" (prev_hash
 * is not 32 bytes long, so no entry's hash), "reordered" (prev_hash is not
 * the previous entry's hash but the next one's: adjacent entries swapped),
 * "broken link" (prev_hash is otherwise not the previous entry's hash),
 * "hash mismatch" (the entry's content does not hash to its hash).  The
 * plain SQL query in the README applies the same rules, in the same order.
 *
 * Checkpoints.  audit_checkpoint() signs (chain, seq, hash, time) of a
 * chain's head with an Ed25519 key read from the file named by the
 * superuser-only setting actloom.audit_signing_key_file; an auditor who
 * keeps checkpoints detects a chain truncated or rewritten from scratch,
 * which linkage alone cannot reveal.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "access/genam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "actloom.h"

/* Columns of actloom.audit_log, in table order. */
enum
{
	AL_CHAIN = 1,
	AL_SEQ,
	AL_AT,
	AL_ACTOR_USER,
	AL_ACTOR_API_KEY,
	AL_ACTOR_SESSION,
	AL_CLIENT_ADDR,
	AL_ACTION,
	AL_TARGET_TYPE,
	AL_TARGET_ID,
	AL_DETAIL,
	AL_PREV_HASH,
	AL_HASH,
	AL_NATTS = AL_HASH
};

static const char *const AuditColumns[AL_NATTS] = {
	"chain", "seq", "at", "actor_user", "actor_api_key", "actor_session",
	"client_addr", "action", "target_type", "target_id", "detail",
	"prev_hash", "hash"
};

#define AUDIT_HASH_LEN		32
#define AUDIT_MAX_ACTION	100		/* characters */
#define AUDIT_MAX_TYPE		100		/* characters */
#define AUDIT_MAX_ID		200		/* characters */
#define AUDIT_MAX_DETAIL	16384	/* bytes of the detail as text */
#define AUDIT_FORMAT		1

static const uint8 AuditGenesis[AUDIT_HASH_LEN] = {0};

char	   *AuditSigningKeyFile = NULL;

/* Check once per relation that the table has the shape this file expects. */
static void
AuditCheckShape(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (desc->natts != AL_NATTS)
		elog(ERROR, "actloom.audit_log has %d columns, expected %d", desc->natts, AL_NATTS);
	for (i = 0; i < AL_NATTS; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), AuditColumns[i]) != 0)
			elog(ERROR, "actloom.audit_log column %d is \"%s\", expected \"%s\"",
				 i + 1, NameStr(TupleDescAttr(desc, i)->attname), AuditColumns[i]);
}

/*
 * An action is dot-separated words of lower-case letters, digits and
 * underscores, each starting with a letter, at least two words:
 * "reports.generate".
 */
static bool
AuditActionValid(const char *s, int len)
{
	bool		word_start = true;
	int			dots = 0;
	int			i;

	if (len > AUDIT_MAX_ACTION)
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (word_start && !(c >= 'a' && c <= 'z'))
			return false;
		word_start = (c == '.');
		if (c == '.')
			dots++;
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return len > 0 && dots > 0 && !word_start;
}

static void
AuditCheckLength(Datum d, bool isnull, int max)
{
	text	   *t;

	if (isnull)
		return;
	t = DatumGetTextPP(d);
	if (pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) > max)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("audit target too long"),
				 errdetail("A target type has at most %d characters and a target id at most %d.",
						   AUDIT_MAX_TYPE, AUDIT_MAX_ID)));
}

/*
 * AuditValidate refuses an entry a caller could not mean: a malformed
 * action, an over-long target, a detail that is no JSON object.  The size of
 * the detail is checked where its text is made, in AuditCanonical.
 */
static void
AuditValidate(Datum *values, bool *nulls)
{
	text	   *action = DatumGetTextPP(values[AL_ACTION - 1]);

	if (!AuditActionValid(VARDATA_ANY(action), VARSIZE_ANY_EXHDR(action)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid audit action \"%s\"",
						ActloomQuotable(VARDATA_ANY(action), VARSIZE_ANY_EXHDR(action))),
				 errdetail("An action is dot-separated lower-case words, like \"reports.generate\", at most %d characters.",
						   AUDIT_MAX_ACTION)));
	AuditCheckLength(values[AL_TARGET_TYPE - 1], nulls[AL_TARGET_TYPE - 1], AUDIT_MAX_TYPE);
	AuditCheckLength(values[AL_TARGET_ID - 1], nulls[AL_TARGET_ID - 1], AUDIT_MAX_ID);
	if (nulls[AL_DETAIL - 1] || !JB_ROOT_IS_OBJECT(DatumGetJsonbP(values[AL_DETAIL - 1])))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit detail must be a JSON object")));
}

/* Append a length-prefixed field; len < 0 encodes NULL. */
static void
AuditPutField(StringInfo buf, const void *data, int len)
{
	uint32		n = pg_hton32((uint32) len);

	appendBinaryStringInfo(buf, (const char *) &n, sizeof(n));
	if (len > 0)
		appendBinaryStringInfo(buf, data, len);
}

static void
AuditPutUuid(StringInfo buf, Datum d, bool isnull)
{
	AuditPutField(buf, isnull ? NULL : DatumGetUUIDP(d)->data, isnull ? -1 : UUID_LEN);
}

static void
AuditPutInt64(StringInfo buf, int64 v)
{
	uint64		n = pg_hton64((uint64) v);

	AuditPutField(buf, &n, sizeof(n));
}

/* Text in UTF-8, whatever the database encoding, as convert_to() gives it. */
static void
AuditPutString(StringInfo buf, const char *s, int len)
{
	char	   *utf8 = pg_server_to_any(s, len, PG_UTF8);

	AuditPutField(buf, utf8, utf8 == s ? len : (int) strlen(utf8));
	if (utf8 != s)
		pfree(utf8);
}

static void
AuditPutText(StringInfo buf, Datum d, bool isnull)
{
	text	   *t;

	if (isnull)
	{
		AuditPutField(buf, NULL, -1);
		return;
	}
	t = DatumGetTextPP(d);
	AuditPutString(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/*
 * AuditCanonical appends the canonical bytes of an entry (values and nulls
 * indexed by column number - 1) to buf: format version as int2, then every
 * column but the two hashes, length-prefixed, in table order.  With
 * check_size, it refuses a detail larger than AUDIT_MAX_DETAIL as text.
 */
static void
AuditCanonical(StringInfo buf, Datum *values, bool *nulls, bool check_size)
{
	uint16		version = pg_hton16(AUDIT_FORMAT);

	appendBinaryStringInfo(buf, (const char *) &version, sizeof(version));
	AuditPutUuid(buf, values[AL_CHAIN - 1], nulls[AL_CHAIN - 1]);
	AuditPutInt64(buf, DatumGetInt64(values[AL_SEQ - 1]));
	AuditPutInt64(buf, DatumGetTimestampTz(values[AL_AT - 1]));
	AuditPutUuid(buf, values[AL_ACTOR_USER - 1], nulls[AL_ACTOR_USER - 1]);
	AuditPutUuid(buf, values[AL_ACTOR_API_KEY - 1], nulls[AL_ACTOR_API_KEY - 1]);
	AuditPutUuid(buf, values[AL_ACTOR_SESSION - 1], nulls[AL_ACTOR_SESSION - 1]);
	if (nulls[AL_CLIENT_ADDR - 1])
		AuditPutField(buf, NULL, -1);
	else
	{
		bytea	   *b = DatumGetByteaPP(DirectFunctionCall1(inet_send, values[AL_CLIENT_ADDR - 1]));

		AuditPutField(buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	}
	AuditPutText(buf, values[AL_ACTION - 1], nulls[AL_ACTION - 1]);
	AuditPutText(buf, values[AL_TARGET_TYPE - 1], nulls[AL_TARGET_TYPE - 1]);
	AuditPutText(buf, values[AL_TARGET_ID - 1], nulls[AL_TARGET_ID - 1]);
	if (nulls[AL_DETAIL - 1])
		AuditPutField(buf, NULL, -1);
	else
	{
		Jsonb	   *jb = DatumGetJsonbP(values[AL_DETAIL - 1]);
		char	   *s = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
		int			len = strlen(s);

		if (check_size && len > AUDIT_MAX_DETAIL)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("audit detail too large"),
					 errdetail("The detail of an entry has at most %d bytes as text.", AUDIT_MAX_DETAIL)));
		AuditPutString(buf, s, len);
		pfree(s);
	}
}

/* SHA-256 of prev || canonical, with one digest context per backend. */
static void
AuditHash(const uint8 *prev, int prevlen, StringInfo canonical, uint8 *out)
{
	static EVP_MD_CTX *ctx = NULL;
	static EVP_MD *sha256 = NULL;
	unsigned int len;

	if (ctx == NULL)
	{
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
		ctx = EVP_MD_CTX_new();
		if (sha256 == NULL || ctx == NULL)
			elog(ERROR, "could not initialize SHA-256");
	}
	if (EVP_DigestInit_ex(ctx, sha256, NULL) != 1 ||
		EVP_DigestUpdate(ctx, prev, prevlen) != 1 ||
		EVP_DigestUpdate(ctx, canonical->data, canonical->len) != 1 ||
		EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != AUDIT_HASH_LEN)
		elog(ERROR, "SHA-256 failed");
}

/*
 * The chain locks this transaction holds, as session locks that
 * AuditXactCallback releases; the array lives in TopMemoryContext.
 */
static LOCKTAG *AuditHeld = NULL;
static int	AuditNHeld = 0;
static int	AuditMaxHeld = 0;

/*
 * Take the chain's append lock until the commit record is written; rel is
 * actloom.audit_log, whose oid is the class of the lock's tag.
 */
static void
AuditLockChain(Relation rel, const pg_uuid_t *chain)
{
	LOCKTAG		tag;
	uint32		k = 0;
	int			i;

	/*
	 * Fold the uuid into 32 bits, the XOR of its four big-endian words (0
	 * for the system chain); a collision only serializes two chains.
	 */
	for (i = 0; i < UUID_LEN; i++)
		k ^= (uint32) chain->data[i] << (8 * (3 - i % 4));
	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, RelationGetRelid(rel), k, 0);
	for (i = 0; i < AuditNHeld; i++)
		if (memcmp(&AuditHeld[i], &tag, sizeof(tag)) == 0)
			return;
	if (AuditNHeld == AuditMaxHeld)
	{
		int			n = AuditMaxHeld == 0 ? 4 : AuditMaxHeld * 2;

		AuditHeld = AuditHeld == NULL
			? MemoryContextAlloc(TopMemoryContext, n * sizeof(LOCKTAG))
			: repalloc(AuditHeld, n * sizeof(LOCKTAG));
		AuditMaxHeld = n;
	}

	/*
	 * The first chain of the transaction: commit asynchronously, unless the
	 * commit must wait for synchronous standbys, which only the commit
	 * itself does (AuditXactCallback flushes locally).
	 */
	if (AuditNHeld == 0 && synchronous_commit > SYNCHRONOUS_COMMIT_OFF &&
		(synchronous_commit <= SYNCHRONOUS_COMMIT_LOCAL_FLUSH ||
		 SyncRepStandbyNames == NULL || SyncRepStandbyNames[0] == '\0'))
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);

	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	AuditHeld[AuditNHeld++] = tag;
}

static void
AuditReleaseChains(void)
{
	while (AuditNHeld > 0)
	{
		AuditNHeld--;
		(void) LockRelease(&AuditHeld[AuditNHeld], ExclusiveLock, true);
	}
}

/*
 * At commit, the commit record is in the WAL (not necessarily on disk) and
 * the transaction is visible: let the next appender in, then make the
 * commit durable before the client hears of it.  At abort, just let go.
 */
static void
AuditXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (AuditNHeld > 0)
			{
				AuditReleaseChains();
				if (!XLogRecPtrIsInvalid(XactLastCommitEnd))
					XLogFlush(XactLastCommitEnd);
			}
			break;
		case XACT_EVENT_ABORT:
			AuditReleaseChains();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (AuditNHeld > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has appended to the audit trail")));
			break;
		default:
			break;
	}
}

/*
 * AuditInit registers the transaction callback; called once from _PG_init.
 */
void
AuditInit(void)
{
	RegisterXactCallback(AuditXactCallback, NULL);
}

/*
 * AuditChainHead finds the last entry of a chain as the snapshot sees it:
 * its seq and hash, or seq 0 and the genesis hash for an empty chain.
 */
static void
AuditChainHead(Relation rel, Snapshot snapshot, const pg_uuid_t *chain,
			   int64 *seq, uint8 *hash)
{
	Relation	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData key;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(chain));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	*seq = 0;
	memcpy(hash, AuditGenesis, AUDIT_HASH_LEN);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;
		bytea	   *h;

		*seq = DatumGetInt64(slot_getattr(slot, AL_SEQ, &isnull));
		h = DatumGetByteaPP(slot_getattr(slot, AL_HASH, &isnull));
		if (VARSIZE_ANY_EXHDR(h) != AUDIT_HASH_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("audit chain head has a malformed hash"),
					 errdetail("Entry %lld of the chain does not hold a 32-byte hash.",
							   (long long) *seq)));
		memcpy(hash, VARDATA_ANY(h), AUDIT_HASH_LEN);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
}

static bytea *
AuditBytea(const uint8 *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

PG_FUNCTION_INFO_V1(audit_append);

/*
 * audit_append() is the BEFORE INSERT row trigger of actloom.audit_log.  It
 * keeps the inserted chain, action, target and detail, and sets everything
 * else: seq, time, the actor from the actor context, the client address,
 * prev_hash and hash.
 */
Datum
audit_append(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	bool		replace[AL_NATTS] = {0};
	const ActorContext *actor = ContextGet();
	const inet *client_addr = ContextGetClientAddr();
	pg_uuid_t	chain;
	int64		last_seq;
	uint8		prev[AUDIT_HASH_LEN];
	uint8		hash[AUDIT_HASH_LEN];
	StringInfoData canonical;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_append() must be a BEFORE INSERT row trigger")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	AuditCheckShape(rel);
	heap_deform_tuple(trigdata->tg_trigtuple, desc, values, nulls);
	if (nulls[AL_CHAIN - 1] || nulls[AL_ACTION - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("an audit entry needs a chain and an action")));
	memcpy(&chain, DatumGetUUIDP(values[AL_CHAIN - 1]), sizeof(chain));
	AuditValidate(values, nulls);

	AuditLockChain(rel, &chain);
	AuditChainHead(rel, SnapshotSelf, &chain, &last_seq, prev);

	values[AL_SEQ - 1] = Int64GetDatum(last_seq + 1);
	values[AL_AT - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[AL_ACTOR_USER - 1] = actor->kind != ACTOR_USER;
	if (actor->kind == ACTOR_USER)
		values[AL_ACTOR_USER - 1] = UUIDPGetDatum(&actor->user_id);
	nulls[AL_ACTOR_API_KEY - 1] = actor->kind != ACTOR_API_KEY;
	if (actor->kind == ACTOR_API_KEY)
		values[AL_ACTOR_API_KEY - 1] = UUIDPGetDatum(&actor->api_key);
	nulls[AL_ACTOR_SESSION - 1] = !(actor->kind == ACTOR_USER && actor->has_session);
	if (!nulls[AL_ACTOR_SESSION - 1])
		values[AL_ACTOR_SESSION - 1] = UUIDPGetDatum(&actor->session_id);
	nulls[AL_CLIENT_ADDR - 1] = client_addr == NULL;
	if (client_addr)
		values[AL_CLIENT_ADDR - 1] = InetPGetDatum(client_addr);

	initStringInfo(&canonical);
	AuditCanonical(&canonical, values, nulls, true);
	AuditHash(prev, AUDIT_HASH_LEN, &canonical, hash);

	values[AL_PREV_HASH - 1] = PointerGetDatum(AuditBytea(prev, AUDIT_HASH_LEN));
	values[AL_HASH - 1] = PointerGetDatum(AuditBytea(hash, AUDIT_HASH_LEN));
	nulls[AL_PREV_HASH - 1] = nulls[AL_HASH - 1] = false;
	for (i = 0; i < AL_NATTS; i++)
		replace[i] = (i + 1 != AL_CHAIN && i + 1 != AL_ACTION && i + 1 != AL_TARGET_TYPE &&
					  i + 1 != AL_TARGET_ID && i + 1 != AL_DETAIL);

	return PointerGetDatum(heap_modify_tuple(trigdata->tg_trigtuple, desc, values, nulls, replace));
}

PG_FUNCTION_INFO_V1(audit_to);

/*
 * audit_to(chain, action, target_type, target_id, detail) appends an entry
 * to a chain through the trigger above and returns its sequence number.  A
 * NULL detail is an empty object.
 */
Datum
audit_to(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[5] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		args[5];
	char		argnulls[5];
	bool		isnull;
	int64		seq;
	int			i;

	ACTLOOM_REQUIRE_ARG(0, "chain");
	ACTLOOM_REQUIRE_ARG(1, "action");
	for (i = 0; i < 5; i++)
	{
		args[i] = PG_GETARG_DATUM(i);
		argnulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		/* The trigger sets seq, at, the actor and both hashes. */
		SPIPlanPtr	p = SPI_prepare("INSERT INTO actloom.audit_log "
									"(chain, seq, at, action, target_type, target_id, detail, prev_hash, hash) "
									"VALUES ($1, 0, pg_catalog.now(), $2, $3, $4, "
									"COALESCE($5, '{}'::pg_catalog.jsonb), '', '') "
									"RETURNING seq",
									5, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the audit insert");
		plan = p;
	}
	if (SPI_execute_plan(plan, args, argnulls, false, 1) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "audit insert failed");
	seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(seq);
}

PG_FUNCTION_INFO_V1(audit_refuse_change);

/*
 * audit_refuse_change() refuses UPDATE, DELETE and TRUNCATE of the tables it
 * guards, for every role.
 */
Datum
audit_refuse_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_refuse_change() must be called as a trigger")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table \"%s\" is append-only", RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("Audit entries and checkpoints are never updated, deleted or truncated.")));
	PG_RETURN_NULL();
}

/* Verification state of one chain; see the file header for the rules. */
typedef struct ChainVerdict
{
	pg_uuid_t	chain;
	int64		entries;
	int64		last_seq;
	uint8		last_hash[AUDIT_HASH_LEN];
	int			last_hash_len;
	const char *reason;			/* first problem, or NULL */
	int64		bad_seq;
	bool		link_pending;	/* prev_hash mismatch awaiting the next entry */
	int64		pending_seq;
	uint8		pending_prev[AUDIT_HASH_LEN];
} ChainVerdict;

static bool
AuditBytesEqual(const uint8 *a, int alen, const uint8 *b, int blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static void
AuditVerdictEmit(Tuplestorestate *store, TupleDesc desc, ChainVerdict *v)
{
	Datum		values[5];
	bool		nulls[5] = {0};

	if (v->link_pending)
	{
		v->reason = "broken link";
		v->bad_seq = v->pending_seq;
		v->link_pending = false;
	}
	values[0] = UUIDPGetDatum(&v->chain);
	values[1] = Int64GetDatum(v->entries);
	values[2] = BoolGetDatum(v->reason == NULL);
	values[3] = Int64GetDatum(v->bad_seq);
	nulls[3] = v->reason == NULL;
	values[4] = v->reason ? CStringGetTextDatum(v->reason) : (Datum) 0;
	nulls[4] = v->reason == NULL;
	tuplestore_putvalues(store, desc, values, nulls);
}

/* Check one entry of the chain v is verifying. */
static void
AuditVerifyEntry(ChainVerdict *v, TupleTableSlot *slot, StringInfo canonical)
{
	Datum		values[AL_NATTS];
	bool		nulls[AL_NATTS];
	bytea	   *prev;
	bytea	   *hash;
	int64		seq;
	int			i;

	slot_getallattrs(slot);
	for (i = 0; i < AL_NATTS; i++)
	{
		values[i] = slot->tts_values[i];
		nulls[i] = slot->tts_isnull[i];
	}
	seq = DatumGetInt64(values[AL_SEQ - 1]);
	prev = DatumGetByteaPP(values[AL_PREV_HASH - 1]);
	hash = DatumGetByteaPP(values[AL_HASH - 1]);
	v->entries++;

	if (v->link_pending)
	{
		/* The previous entry linked to this entry's hash: the two swapped. */
		v->reason = AuditBytesEqual(v->pending_prev, AUDIT_HASH_LEN,
									(uint8 *) VARDATA_ANY(hash), VARSIZE_ANY_EXHDR(hash))
			? "reordered" : "broken link";
		v->bad_seq = v->pending_seq;
		v->link_pending = false;
	}

	if (v->reason == NULL)
	{
		const uint8 *expect = v->entries == 1 ? AuditGenesis : v->last_hash;
		int			expect_len = v->entries == 1 ? AUDIT_HASH_LEN : v->last_hash_len;

		if (seq != v->last_seq + 1)
		{
			v->reason = "gap";
			v->bad_seq = seq;
		}
		else if (VARSIZE_ANY_EXHDR(prev) != AUDIT_HASH_LEN)
		{
			/* No entry's hash: it cannot even be the next one's. */
			v->reason = "broken link";
			v->bad_seq = seq;
		}
		else if (!AuditBytesEqual((uint8 *) VARDATA_ANY(prev), AUDIT_HASH_LEN,
								  expect, expect_len))
		{
			v->link_pending = true;
			v->pending_seq = seq;
			memcpy(v->pending_prev, VARDATA_ANY(prev), AUDIT_HASH_LEN);
		}
		else
		{
			uint8		computed[AUDIT_HASH_LEN];

			resetStringInfo(canonical);
			AuditCanonical(canonical, values, nulls, false);
			AuditHash((uint8 *) VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev), canonical, computed);
			if (!AuditBytesEqual(computed, AUDIT_HASH_LEN,
								 (uint8 *) VARDATA_ANY(hash), VARSIZE_ANY_EXHDR(hash)))
			{
				v->reason = "hash mismatch";
				v->bad_seq = seq;
			}
		}
	}

	v->last_seq = seq;
	v->last_hash_len = Min(VARSIZE_ANY_EXHDR(hash), AUDIT_HASH_LEN);
	memcpy(v->last_hash, VARDATA_ANY(hash), v->last_hash_len);
	if (VARSIZE_ANY_EXHDR(hash) != AUDIT_HASH_LEN)
		v->last_hash_len = -1;	/* no prev_hash can match it */
}

static Relation
AuditOpenLog(void)
{
	Oid			nsp = get_namespace_oid("actloom", false);
	Oid			relid = get_relname_relid("audit_log", nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "table actloom.audit_log does not exist");
	return table_open(relid, AccessShareLock);
}

PG_FUNCTION_INFO_V1(audit_verify);

/*
 * audit_verify(chain uuid DEFAULT NULL) verifies one chain, or every chain,
 * and returns per chain: entries checked, ok, the first bad sequence number
 * and the reason.  It streams in primary key order; its memory does not
 * depend on the size of the trail.
 */
Datum
audit_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	Relation	index;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	ScanKeyData key;
	ChainVerdict v;
	bool		have_chain = false;
	StringInfoData canonical;
	MemoryContext rowcxt;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);

	rel = AuditOpenLog();
	AuditCheckShape(rel);
	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, index, GetActiveSnapshot(), PG_ARGISNULL(0) ? 0 : 1, 0);
	if (!PG_ARGISNULL(0))
	{
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, PG_GETARG_DATUM(0));
		index_rescan(scan, &key, 1, NULL, 0);
	}
	else
		index_rescan(scan, NULL, 0, NULL, 0);

	initStringInfo(&canonical);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "audit_verify row",
								   ALLOCSET_DEFAULT_SIZES);
	memset(&v, 0, sizeof(v));

	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		pg_uuid_t  *chain = DatumGetUUIDP(slot_getattr(slot, AL_CHAIN, &isnull));

		CHECK_FOR_INTERRUPTS();
		if (!have_chain || memcmp(chain, &v.chain, sizeof(pg_uuid_t)) != 0)
		{
			if (have_chain)
				AuditVerdictEmit(rsinfo->setResult, rsinfo->setDesc, &v);
			memset(&v, 0, sizeof(v));
			memcpy(&v.chain, chain, sizeof(pg_uuid_t));
			have_chain = true;
		}
		old = MemoryContextSwitchTo(rowcxt);
		AuditVerifyEntry(&v, slot, &canonical);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	if (have_chain)
		AuditVerdictEmit(rsinfo->setResult, rsinfo->setDesc, &v);

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return (Datum) 0;
}

/*
 * AuditSigningKey reads the Ed25519 private key named by
 * actloom.audit_signing_key_file.  Like PostgreSQL's TLS key, the file must
 * be a regular file, owned by the server's user with no group or other
 * access, or owned by root with at most group read.
 */
static EVP_PKEY *
AuditSigningKey(void)
{
	struct stat st;
	FILE	   *f;
	EVP_PKEY   *pkey;

	if (AuditSigningKeyFile == NULL || AuditSigningKeyFile[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no audit signing key is configured"),
				 errhint("Set actloom.audit_signing_key_file to an Ed25519 private key in PEM format.")));
	if (stat(AuditSigningKeyFile, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not access audit signing key file \"%s\": %m", AuditSigningKeyFile)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("audit signing key file \"%s\" is not a regular file", AuditSigningKeyFile)));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("audit signing key file \"%s\" must be owned by the database user or root",
						AuditSigningKeyFile)));
	if ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO))) ||
		(st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("audit signing key file \"%s\" has group or world access", AuditSigningKeyFile),
				 errdetail("File must have permissions u=rw (0600) or less if owned by the database user, or permissions u=rw,g=r (0640) or less if owned by root.")));

	f = AllocateFile(AuditSigningKeyFile, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open audit signing key file \"%s\": %m", AuditSigningKeyFile)));
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	FreeFile(f);
	if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
	{
		EVP_PKEY_free(pkey);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("audit signing key file \"%s\" does not hold an Ed25519 private key in PEM format",
						AuditSigningKeyFile),
				 errhint("Create one with: openssl genpkey -algorithm ed25519 -out FILE")));
	}
	return pkey;
}

/* The raw 32-byte public key. */
static bytea *
AuditPublicKeyRaw(EVP_PKEY *pkey)
{
	uint8		raw[32];
	size_t		len = sizeof(raw);

	if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof(raw))
		elog(ERROR, "could not extract the audit public key");
	return AuditBytea(raw, (int) len);
}

PG_FUNCTION_INFO_V1(audit_checkpoint);

/*
 * audit_checkpoint(chain uuid) signs the chain's head as this transaction
 * sees it (seq 0 and the genesis hash for an empty chain), records the
 * checkpoint in actloom.audit_checkpoints and returns it.  The signature
 * covers actloom.audit_checkpoint_message(chain, seq, hash, at).
 */
Datum
audit_checkpoint(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pg_uuid_t  *chain;
	Relation	rel;
	int64		seq;
	uint8		hash[AUDIT_HASH_LEN];
	TimestampTz at;
	StringInfoData msg;
	EVP_PKEY   *pkey;
	EVP_MD_CTX *ctx;
	uint8		sig[64];
	size_t		siglen = sizeof(sig);
	bytea	   *volatile pub = NULL;
	bool		signed_ok;
	Oid			argtypes[6] = {UUIDOID, INT8OID, BYTEAOID, TIMESTAMPTZOID, BYTEAOID, BYTEAOID};
	Datum		args[6];
	Datum		values[5];
	bool		nulls[5] = {0};
	int64		be;

	ACTLOOM_REQUIRE_ARG(0, "chain");
	chain = PG_GETARG_UUID_P(0);
	InitMaterializedSRF(fcinfo, 0);

	rel = AuditOpenLog();
	AuditChainHead(rel, GetActiveSnapshot(), chain, &seq, hash);
	table_close(rel, AccessShareLock);
	at = GetCurrentTimestamp();

	/* The message, as actloom.audit_checkpoint_message() builds it. */
	initStringInfo(&msg);
	appendStringInfoString(&msg, "actloom-audit-checkpoint-v1");
	appendBinaryStringInfo(&msg, (const char *) chain->data, UUID_LEN);
	be = (int64) pg_hton64((uint64) seq);
	appendBinaryStringInfo(&msg, (const char *) &be, sizeof(be));
	appendBinaryStringInfo(&msg, (const char *) hash, AUDIT_HASH_LEN);
	be = (int64) pg_hton64((uint64) at);
	appendBinaryStringInfo(&msg, (const char *) &be, sizeof(be));

	pkey = AuditSigningKey();
	ctx = EVP_MD_CTX_new();
	signed_ok = ctx != NULL &&
		EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		EVP_DigestSign(ctx, sig, &siglen, (const uint8 *) msg.data, msg.len) == 1 &&
		siglen == sizeof(sig);
	EVP_MD_CTX_free(ctx);
	if (!signed_ok)
	{
		EVP_PKEY_free(pkey);
		elog(ERROR, "Ed25519 signing failed");
	}
	PG_TRY();
	{
		pub = AuditPublicKeyRaw(pkey);
	}
	PG_FINALLY();
	{
		EVP_PKEY_free(pkey);
	}
	PG_END_TRY();

	args[0] = UUIDPGetDatum(chain);
	args[1] = Int64GetDatum(seq);
	args[2] = PointerGetDatum(AuditBytea(hash, AUDIT_HASH_LEN));
	args[3] = TimestampTzGetDatum(at);
	args[4] = PointerGetDatum(AuditBytea(sig, (int) siglen));
	args[5] = PointerGetDatum(pub);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("INSERT INTO actloom.audit_checkpoints "
							  "(chain, seq, hash, at, signature, public_key) "
							  "VALUES ($1, $2, $3, $4, $5, $6)",
							  6, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the audit checkpoint");
	SPI_finish();

	memcpy(values, args, sizeof(values));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(audit_public_key);

/*
 * audit_public_key() returns the public half of the audit signing key as a
 * PEM SubjectPublicKeyInfo, for "openssl pkeyutl -verify".
 */
Datum
audit_public_key(PG_FUNCTION_ARGS)
{
	EVP_PKEY   *pkey = AuditSigningKey();
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *data;
	long		len;
	text	   *result = NULL;

	if (bio != NULL && PEM_write_bio_PUBKEY(bio, pkey) == 1)
	{
		len = BIO_get_mem_data(bio, &data);
		result = cstring_to_text_with_len(data, (int) len);
	}
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	if (result == NULL)
		elog(ERROR, "could not encode the audit public key");
	PG_RETURN_TEXT_P(result);
}
