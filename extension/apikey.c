/*
 * apikey.c
 *	  API keys: their format, their generation, and their verification.
 *
 * Format (66 characters, alphabet 0-9A-Za-z plus "_", so a double click
 * selects the whole key):
 *
 *		alk_<key id: 12><"_"><secret: 43><checksum: 6>
 *
 * The key id is public and random (71 bits); it finds the key's row.  The
 * secret is 43 base62 characters (256.03 bits) drawn from RAND_bytes by
 * rejection sampling, so every character is uniform.  The checksum is the
 * CRC-32 (the polynomial of zlib and PNG, reflected 0xEDB88320, initial and
 * final XOR 0xFFFFFFFF) of the 60 characters before it, written in base62,
 * most significant digit first, left-padded with "0" to 6 digits.  It lets
 * secret scanners and the HTTP shim reject a mistyped or made-up key without
 * a database round trip; it adds nothing to security.
 *
 * Storage.  Only SHA-256 of the whole 66-character key is stored, in a row
 * that also has a uuid (what audit entries record as the acting key).  The key
 * has 256 bits of entropy, so a fast hash is enough (a slow password hash
 * would only make authentication a denial-of-service target).
 *
 * Verification.  authenticate_api_key() checks the format, hashes the key,
 * reads the row by key id, and compares the hashes with CRYPTO_memcmp.  An
 * unknown key id is compared against a fixed hash, so it costs the same
 * work as a wrong secret.  Every failure (malformed, bad checksum, unknown
 * id, wrong secret, revoked, expired) raises the same SQLSTATE 28000 and
 * the same message; only the server log learns the reason, through
 * errdetail_log, and never the key or its secret.
 *
 * last_used_at is written at most once a minute per key, and only from a
 * READ COMMITTED read-write transaction, with SKIP LOCKED: authenticating
 * never waits for, or fails because of, this bookkeeping.
 *
 * authenticate_api_key() runs on every machine request, so it is not
 * SECURITY DEFINER (a SET search_path clause would cost a configuration save
 * and restore per call): it reads the key's row through the unique index on
 * key_id directly, and runs its rare queries (last_used_at, the required
 * scope's existence) as the extension's owner through ActloomBecomeOwner(),
 * qualifying every name and operator.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "actloom.h"

#define APIKEY_PREFIX			"alk_"
#define APIKEY_PREFIX_LEN		4
#define APIKEY_SECRET_LEN		43
#define APIKEY_CHECKSUM_LEN		6
#define APIKEY_BODY_LEN			(APIKEY_PREFIX_LEN + APIKEY_ID_LEN + 1 + APIKEY_SECRET_LEN)
#define APIKEY_LEN				(APIKEY_BODY_LEN + APIKEY_CHECKSUM_LEN)

static const char Base62[] =
"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static uint32 Crc32Table[256];
static bool Crc32Ready = false;

static SPIPlanPtr TouchPlan = NULL;

/*
 * ApiKeyCrc32 is the CRC-32 of zlib's crc32() over len bytes.
 */
static uint32
ApiKeyCrc32(const char *data, size_t len)
{
	uint32		crc = 0xFFFFFFFF;
	size_t		i;

	if (!Crc32Ready)
	{
		uint32		n;

		for (n = 0; n < 256; n++)
		{
			uint32		c = n;
			int			k;

			for (k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320 ^ (c >> 1) : c >> 1;
			Crc32Table[n] = c;
		}
		Crc32Ready = true;
	}
	for (i = 0; i < len; i++)
		crc = Crc32Table[(crc ^ (uint8) data[i]) & 0xFF] ^ (crc >> 8);
	return crc ^ 0xFFFFFFFF;
}

/* Write the 6-digit base62 checksum of body to out. */
static void
ApiKeyChecksum(const char *body, char *out)
{
	uint32		v = ApiKeyCrc32(body, APIKEY_BODY_LEN);
	int			i;

	for (i = APIKEY_CHECKSUM_LEN - 1; i >= 0; i--)
	{
		out[i] = Base62[v % 62];
		v /= 62;
	}
}

/*
 * Fill out with n uniformly random base62 characters.  A random byte is
 * used only when it is below 248 = 4 * 62, so "byte % 62" has no bias.
 * webhook.c draws its message ids with it too.
 */
void
ApiKeyRandomBase62(char *out, int n)
{
	uint8		buf[64];
	int			have = 0;
	int			used = 0;

	while (have < n)
	{
		if (used == 0 || used == (int) sizeof(buf))
		{
			CryptoRandom(buf, sizeof(buf));
			used = 0;
		}
		if (buf[used] < 248)
			out[have++] = Base62[buf[used] % 62];
		used++;
	}
	CryptoWipe(buf, sizeof(buf));
}

static bool
ApiKeyIsBase62(const char *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') ||
			  (s[i] >= 'a' && s[i] <= 'z')))
			return false;
	return true;
}

/*
 * ApiKeyCheckFormat returns NULL when the len bytes at key are a well-formed
 * key with a correct checksum, and otherwise why not (for the server log).
 */
static const char *
ApiKeyCheckFormat(const char *key, size_t len)
{
	char		checksum[APIKEY_CHECKSUM_LEN];

	if (len != APIKEY_LEN)
		return "malformed key: wrong length";
	if (memcmp(key, APIKEY_PREFIX, APIKEY_PREFIX_LEN) != 0)
		return "malformed key: wrong prefix";
	if (key[APIKEY_PREFIX_LEN + APIKEY_ID_LEN] != '_' ||
		!ApiKeyIsBase62(key + APIKEY_PREFIX_LEN, APIKEY_ID_LEN) ||
		!ApiKeyIsBase62(key + APIKEY_PREFIX_LEN + APIKEY_ID_LEN + 1,
						APIKEY_SECRET_LEN + APIKEY_CHECKSUM_LEN))
		return "malformed key: character outside the key alphabet";
	ApiKeyChecksum(key, checksum);
	if (memcmp(checksum, key + APIKEY_BODY_LEN, APIKEY_CHECKSUM_LEN) != 0)
		return "malformed key: bad checksum";
	return NULL;
}

PG_FUNCTION_INFO_V1(api_key_generate);

/*
 * _api_key_generate() returns a new key: (key_id text, key text, key_hash
 * bytea).  Internal, for api_key_create(); nothing is stored here.
 */
Datum
api_key_generate(PG_FUNCTION_ARGS)
{
	char		key[APIKEY_LEN + 1];
	char		key_id[APIKEY_ID_LEN + 1];
	uint8		hash[CRYPTO_SHA256_LEN];
	bytea	   *hashval;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	memcpy(key, APIKEY_PREFIX, APIKEY_PREFIX_LEN);
	ApiKeyRandomBase62(key + APIKEY_PREFIX_LEN, APIKEY_ID_LEN);
	key[APIKEY_PREFIX_LEN + APIKEY_ID_LEN] = '_';
	ApiKeyRandomBase62(key + APIKEY_PREFIX_LEN + APIKEY_ID_LEN + 1, APIKEY_SECRET_LEN);
	ApiKeyChecksum(key, key + APIKEY_BODY_LEN);
	key[APIKEY_LEN] = '\0';
	memcpy(key_id, key + APIKEY_PREFIX_LEN, APIKEY_ID_LEN);
	key_id[APIKEY_ID_LEN] = '\0';

	CryptoSha256(key, APIKEY_LEN, hash);
	hashval = palloc(VARHDRSZ + CRYPTO_SHA256_LEN);
	SET_VARSIZE(hashval, VARHDRSZ + CRYPTO_SHA256_LEN);
	memcpy(VARDATA(hashval), hash, CRYPTO_SHA256_LEN);

	values[0] = CStringGetTextDatum(key_id);
	values[1] = CStringGetTextDatum(key);
	values[2] = PointerGetDatum(hashval);
	CryptoWipe(key, sizeof(key));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Raise the one error of every failed authentication; the reason goes to the log only. */
static void
pg_attribute_noreturn()
ApiKeyRefuse(const char *key_id, const char *reason)
{
	if (key_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("invalid API key"),
				 errdetail_log("API key %s: %s.", key_id, reason)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid API key"),
			 errdetail_log("API key: %s.", reason)));
	pg_unreachable();
}

/* A row read by key id, copied out of the table. */
typedef struct ApiKeyRow
{
	bool		found;
	pg_uuid_t	id;
	pg_uuid_t	company;
	uint8		hash[CRYPTO_SHA256_LEN];
	bool		revoked;
	bool		expired;
	bool		stale;			/* last_used_at is older than a minute */
	Datum		scopes;			/* text[] */
} ApiKeyRow;

/*
 * Where actloom.api_keys is: its OID, its key id index, and its column
 * numbers, looked up once and forgotten whenever the table's relcache entry
 * is invalidated (ALTER, DROP EXTENSION, ...).
 */
typedef struct ApiKeyTable
{
	Oid			relid;			/* InvalidOid: look it up */
	Oid			indexid;
	AttrNumber	id;
	AttrNumber	key_id;
	AttrNumber	company_id;
	AttrNumber	key_hash;
	AttrNumber	scopes;
	AttrNumber	expires_at;
	AttrNumber	revoked_at;
	AttrNumber	last_used_at;
} ApiKeyTable;

static ApiKeyTable Table = {InvalidOid};
static bool TableCallbackRegistered = false;

static void
ApiKeyRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == Table.relid || relid == Table.indexid)
		Table.relid = InvalidOid;
}

static AttrNumber
ApiKeyAttnum(Oid relid, const char *name)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" of actloom.api_keys is missing", name);
	return attnum;
}

/* Fill Table, unless it is current. */
static void
ApiKeyFindTable(void)
{
	Oid			nsp;
	Oid			relid;
	Oid			indexid;

	if (OidIsValid(Table.relid))
		return;
	if (!TableCallbackRegistered)
	{
		CacheRegisterRelcacheCallback(ApiKeyRelcacheCallback, (Datum) 0);
		TableCallbackRegistered = true;
	}
	nsp = get_namespace_oid("actloom", false);
	relid = get_relname_relid("api_keys", nsp);
	indexid = get_relname_relid("api_keys_key_id_key", nsp);
	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "table actloom.api_keys or its index api_keys_key_id_key is missing");
	Table.indexid = indexid;
	Table.id = ApiKeyAttnum(relid, "id");
	Table.key_id = ApiKeyAttnum(relid, "key_id");
	Table.company_id = ApiKeyAttnum(relid, "company_id");
	Table.key_hash = ApiKeyAttnum(relid, "key_hash");
	Table.scopes = ApiKeyAttnum(relid, "scopes");
	Table.expires_at = ApiKeyAttnum(relid, "expires_at");
	Table.revoked_at = ApiKeyAttnum(relid, "revoked_at");
	Table.last_used_at = ApiKeyAttnum(relid, "last_used_at");
	Table.relid = relid;
}

/*
 * Read the key's row by key id through the unique index, with the snapshot
 * of the statement that calls us, and copy what is needed into the current
 * memory context.  This is the hot path of every machine
 * request, so it reads the index directly instead of running a query; it
 * bypasses no check a query would make, since it is the extension reading
 * its own table.
 */
static ApiKeyRow
ApiKeyLookup(const char *key_id)
{
	ApiKeyRow	row = {false};
	Relation	rel;
	TupleDesc	desc;
	ScanKeyData skey;
	SysScanDesc scan;
	Snapshot	snapshot;
	HeapTuple	tuple;
	bool		isnull;
	Datum		d;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	/*
	 * Taking the lock processes invalidations, which may forget what
	 * ApiKeyFindTable found (the table was altered meanwhile): look again.
	 */
	for (;;)
	{
		Oid			relid;

		ApiKeyFindTable();
		relid = Table.relid;
		rel = table_open(relid, AccessShareLock);
		if (Table.relid == relid)
			break;
		table_close(rel, AccessShareLock);
	}
	desc = RelationGetDescr(rel);
	/* The column is COLLATE "C", as ScanKeyInit assumes; systable scans take heap column numbers. */
	ScanKeyInit(&skey, Table.key_id, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(key_id));
	snapshot = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	scan = systable_beginscan(rel, Table.indexid, true, snapshot, 1, &skey);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bytea	   *hash;

		row.found = true;
		memcpy(&row.id, DatumGetUUIDP(heap_getattr(tuple, Table.id, desc, &isnull)), sizeof(pg_uuid_t));
		memcpy(&row.company, DatumGetUUIDP(heap_getattr(tuple, Table.company_id, desc, &isnull)),
			   sizeof(pg_uuid_t));
		hash = DatumGetByteaPP(heap_getattr(tuple, Table.key_hash, desc, &isnull));
		if (isnull || VARSIZE_ANY_EXHDR(hash) != CRYPTO_SHA256_LEN)
			elog(ERROR, "stored API key hash has the wrong length");
		memcpy(row.hash, VARDATA_ANY(hash), CRYPTO_SHA256_LEN);
		row.scopes = PointerGetDatum(PG_DETOAST_DATUM_COPY(heap_getattr(tuple, Table.scopes, desc, &isnull)));
		heap_getattr(tuple, Table.revoked_at, desc, &isnull);
		row.revoked = !isnull;
		d = heap_getattr(tuple, Table.expires_at, desc, &isnull);
		row.expired = !isnull && DatumGetTimestampTz(d) <= now;
		d = heap_getattr(tuple, Table.last_used_at, desc, &isnull);
		row.stale = isnull || DatumGetTimestampTz(d) < now - 60 * USECS_PER_SEC;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	/* Keep the lock to the end of the transaction, as a query would. */
	table_close(rel, NoLock);
	return row;
}

/* Record that the key was used, if that can be done without waiting or failing. */
static void
ApiKeyTouch(const char *key_id)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	ActloomSavedUser saved;
	int			ret;

	if (XactReadOnly || XactIsoLevel != XACT_READ_COMMITTED)
		return;
	ActloomBecomeOwner(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ActloomPrepare(&TouchPlan,
				   "UPDATE actloom.api_keys k SET last_used_at = pg_catalog.now() "
				   "WHERE k.id OPERATOR(pg_catalog.=) (SELECT l.id FROM actloom.api_keys l "
				   "WHERE l.key_id OPERATOR(pg_catalog.=) $1 AND (l.last_used_at IS NULL "
				   "OR l.last_used_at OPERATOR(pg_catalog.<) "
				   "(pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 minute')) "
				   "FOR UPDATE SKIP LOCKED)",
				   1, argtypes);
	values[0] = CStringGetTextDatum(key_id);
	ret = SPI_execute_plan(TouchPlan, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "API key update failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	ActloomRestoreUser(&saved);
}

/* Deconstruct a text[] into C strings. */
static int
ApiKeyScopes(Datum array, char ***scopes)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	*scopes = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		(*scopes)[i] = nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
	return n;
}

PG_FUNCTION_INFO_V1(authenticate_api_key);

/*
 * authenticate_api_key(key text, required_scope text DEFAULT NULL) verifies
 * an API key and makes it the actor of the transaction, in its company with
 * its scopes; returns (company_id, key_id, scopes).  Raises 28000 "invalid
 * API key" for every kind of bad key, 42501 when required_scope is given and
 * no scope of the key covers it, 22023 when required_scope is not an action.
 */
Datum
authenticate_api_key(PG_FUNCTION_ARGS)
{
	static const uint8 NoHash[CRYPTO_SHA256_LEN] = {0};
	text	   *keytext;
	const char *key;
	size_t		len;
	const char *bad;
	char		key_id[APIKEY_ID_LEN + 1];
	uint8		hash[CRYPTO_SHA256_LEN];
	char	   *required = NULL;
	ApiKeyRow	row;
	bool		match;
	char	  **scopes;
	int			nscopes;
	int			i;
	TupleDesc	tupdesc;
	ActloomSavedUser saved;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	ACTLOOM_REQUIRE_ARG(0, "key");
	keytext = PG_GETARG_TEXT_PP(0);
	key = VARDATA_ANY(keytext);
	len = VARSIZE_ANY_EXHDR(keytext);
	if (!PG_ARGISNULL(1))
		required = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tupdesc = (TupleDesc) fcinfo->flinfo->fn_extra;
	if (tupdesc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
		fcinfo->flinfo->fn_extra = tupdesc;
		MemoryContextSwitchTo(old);
	}

	if ((bad = ApiKeyCheckFormat(key, len)) != NULL)
		ApiKeyRefuse(NULL, bad);
	memcpy(key_id, key + APIKEY_PREFIX_LEN, APIKEY_ID_LEN);
	key_id[APIKEY_ID_LEN] = '\0';
	CryptoSha256(key, len, hash);

	row = ApiKeyLookup(key_id);
	/* An unknown id is compared too, so that it costs what a wrong secret costs. */
	match = CryptoEqual(hash, row.found ? row.hash : NoHash, CRYPTO_SHA256_LEN);
	CryptoWipe(hash, sizeof(hash));
	if (!row.found)
		ApiKeyRefuse(key_id, "unknown key id");
	if (!match)
		ApiKeyRefuse(key_id, "wrong secret");
	if (row.revoked)
		ApiKeyRefuse(key_id, "revoked");
	if (row.expired)
		ApiKeyRefuse(key_id, "expired");

	nscopes = ApiKeyScopes(row.scopes, &scopes);
	if (row.stale)
		ApiKeyTouch(key_id);

	if (required)
	{
		bool		covered = false;

		ActloomBecomeOwner(&saved);
		RolesRequireAction(required);
		ActloomRestoreUser(&saved);
		for (i = 0; i < nscopes && !covered; i++)
			covered = RolesScopeCovers(scopes[i], required);
		if (!covered)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("API key lacks scope \"%s\"",
							ActloomQuotable(required, strlen(required))),
					 errdetail("No scope of the key covers action \"%s\".",
							   ActloomQuotable(required, strlen(required)))));
	}

	ContextSetApiKey(&row.id, key_id, &row.company, nscopes, scopes);

	values[0] = UUIDPGetDatum(&row.company);
	values[1] = CStringGetTextDatum(key_id);
	values[2] = row.scopes;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
