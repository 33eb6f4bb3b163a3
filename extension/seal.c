/*
 * seal.c
 *	  Envelope encryption: per-company data keys wrapped by a master key, and
 *	  values sealed under them with AES-256-GCM.
 *
 * Data keys.  Each company gets one random 256-bit data key the first time
 * something is sealed for it.  Table actloom.company_keys keeps it wrapped:
 *
 *		wrapped = version (1 byte, 1) || master key id (4, big-endian)
 *				  || nonce (12) || AES-256-GCM(master key, data key) (32)
 *				  || tag (16)
 *
 * with associated data "actloom/datakey/v1" || company id || data key id ||
 * version || master key id, so a wrapped key copied to another company's row
 * does not unwrap.  Rotating the master key re-wraps these rows only.
 * Shredding sets the wrapped key to NULL: nothing sealed for the company can
 * be opened again.
 *
 * Sealed values.
 *
 *		sealed = version (1 byte, 1) || data key id (4, big-endian)
 *				 || nonce (12, random) || ciphertext || tag (16)
 *
 * with associated data "actloom/seal/v1" || company id || the 5 header bytes
 * || kind ('G' generic, 'N' named secret, 'W' webhook signing secret) ||
 * length-prefixed purpose || length-prefixed name (empty for generic
 * values; the endpoint id, as text, for webhook secrets).  A sealed value copied to
 * another company, purpose or name, or changed in any bit, does not open;
 * each way it can fail has its own message (truncated, unknown version,
 * another data key, does not authenticate, shredded).
 *
 * Cache.  Unwrapping costs a table lookup, so unwrapped data keys are kept in
 * a backend-local hash table.  It is flushed (and wiped) when the key ring
 * was reloaded or replaced (every use checks; see keyring.c), so a ring that
 * lost a key or went bad stops the cached keys too; and when any backend
 * changes actloom.company_keys: a statement trigger sends a relcache
 * invalidation for the table, which every backend processes before its next
 * transaction sees the change, so a shredded key is forgotten everywhere.
 * Keys this backend created are also forgotten when the creating
 * (sub)transaction aborts, since their row is gone.
 *
 * Privileges.  seal() and unseal() are not SECURITY DEFINER, since a SET
 * search_path clause would cost more than the cipher: EXECUTE is granted to
 * the gateway only, they check that the actor acts in the company, and they
 * read and create data keys as the extension's owner (ActloomBecomeOwner)
 * with queries that qualify every name and operator.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "actloom.h"

#define SEAL_VERSION		1
#define SEAL_HEADER_LEN		(1 + 4 + CRYPTO_NONCE_LEN)
#define SEAL_OVERHEAD		(SEAL_HEADER_LEN + CRYPTO_TAG_LEN)
#define WRAP_VERSION		1
#define WRAP_LEN			(1 + 4 + CRYPTO_NONCE_LEN + CRYPTO_KEY_LEN + CRYPTO_TAG_LEN)
#define SEAL_PURPOSE_MAX	1024
#define SEAL_CACHE_MAX		10000

typedef enum SealKind
{
	SEAL_GENERIC = 'G',
	SEAL_NAMED = 'N',
	SEAL_WEBHOOK = 'W'
} SealKind;

typedef struct DataKey
{
	pg_uuid_t	company;		/* hash key */
	int32		key_id;
	uint8		key[CRYPTO_KEY_LEN];
} DataKey;

static HTAB *DataKeys = NULL;
static uint64 DataKeysRingGeneration = 0;
static Oid	CompanyKeysRelid = InvalidOid;
static bool CreatedInXact = false;

static SPIPlanPtr SelectPlan = NULL;
static SPIPlanPtr NextIdPlan = NULL;
static SPIPlanPtr InsertPlan = NULL;

/* Wipe and drop every cached data key. */
static void
SealCacheFlush(void)
{
	HASH_SEQ_STATUS status;
	DataKey    *entry;

	CryptoForgetKeys();
	if (DataKeys == NULL)
		return;
	hash_seq_init(&status, DataKeys);
	while ((entry = hash_seq_search(&status)) != NULL)
		CryptoWipe(entry->key, CRYPTO_KEY_LEN);
	hash_destroy(DataKeys);
	DataKeys = NULL;
}

static void
SealRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == CompanyKeysRelid)
		SealCacheFlush();
}

static void
SealXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (CreatedInXact)
				SealCacheFlush();
			CreatedInXact = false;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			CreatedInXact = false;
			break;
		default:
			break;
	}
}

static void
SealSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && CreatedInXact)
		SealCacheFlush();
}

/*
 * SealInit registers the cache invalidation callbacks; called once from
 * _PG_init.
 */
void
SealInit(void)
{
	CacheRegisterRelcacheCallback(SealRelcacheCallback, (Datum) 0);
	RegisterXactCallback(SealXactCallback, NULL);
	RegisterSubXactCallback(SealSubXactCallback, NULL);
}

static DataKey *
SealCacheLookup(const pg_uuid_t *company)
{
	if (DataKeys == NULL)
		return NULL;
	return hash_search(DataKeys, company, HASH_FIND, NULL);
}

static DataKey *
SealCacheStore(const pg_uuid_t *company, int32 key_id, const uint8 *key)
{
	DataKey    *entry;
	bool		found;

	if (DataKeys != NULL && hash_get_num_entries(DataKeys) >= SEAL_CACHE_MAX)
		SealCacheFlush();
	if (DataKeys == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(DataKey);
		ctl.hcxt = TopMemoryContext;
		DataKeys = hash_create("actloom data keys", 256, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(DataKeys, company, HASH_ENTER, &found);
	entry->key_id = key_id;
	memcpy(entry->key, key, CRYPTO_KEY_LEN);
	return entry;
}

static void
SealPutUint32(uint8 *p, uint32 v)
{
	p[0] = (uint8) (v >> 24);
	p[1] = (uint8) (v >> 16);
	p[2] = (uint8) (v >> 8);
	p[3] = (uint8) v;
}

static uint32
SealGetUint32(const uint8 *p)
{
	return (uint32) p[0] << 24 | (uint32) p[1] << 16 | (uint32) p[2] << 8 | p[3];
}

/* Associated data binding a wrapped data key to its company and master key. */
static void
SealWrapAad(uint8 *aad, const pg_uuid_t *company, int32 key_id,
			const uint8 *header)
{
	memcpy(aad, "actloom/datakey/v1", 18);
	memcpy(aad + 18, company->data, UUID_LEN);
	SealPutUint32(aad + 18 + UUID_LEN, (uint32) key_id);
	memcpy(aad + 22 + UUID_LEN, header, 5);
}

#define WRAP_AAD_LEN (18 + UUID_LEN + 4 + 5)

/*
 * Wrap a data key under a master key into out (WRAP_LEN bytes).
 */
static void
SealWrap(const pg_uuid_t *company, int32 key_id, const uint8 *datakey,
		 const MasterKey *master, uint8 *out)
{
	uint8		aad[WRAP_AAD_LEN];

	out[0] = WRAP_VERSION;
	SealPutUint32(out + 1, (uint32) master->id);
	CryptoRandom(out + 5, CRYPTO_NONCE_LEN);
	SealWrapAad(aad, company, key_id, out);
	CryptoGcmSeal(master->key, out + 5, aad, sizeof(aad), datakey, CRYPTO_KEY_LEN,
				  out + 5 + CRYPTO_NONCE_LEN,
				  out + 5 + CRYPTO_NONCE_LEN + CRYPTO_KEY_LEN);
}

/*
 * Unwrap a stored data key into datakey; raises when it does not open.
 */
static void
SealUnwrap(const pg_uuid_t *company, int32 key_id, const bytea *wrapped,
		   uint8 *datakey)
{
	const uint8 *w = (const uint8 *) VARDATA_ANY(wrapped);
	uint8		aad[WRAP_AAD_LEN];
	const MasterKey *master;
	int32		master_id;

	if (VARSIZE_ANY_EXHDR(wrapped) != WRAP_LEN || w[0] != WRAP_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored data key of company %s is malformed",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(company))))));
	master_id = (int32) SealGetUint32(w + 1);
	master = KeyringGet(master_id);
	SealWrapAad(aad, company, key_id, w);
	if (!CryptoGcmOpen(master->key, w + 5, aad, sizeof(aad),
					   w + 5 + CRYPTO_NONCE_LEN, CRYPTO_KEY_LEN,
					   w + 5 + CRYPTO_NONCE_LEN + CRYPTO_KEY_LEN, datakey))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot unwrap the data key of company %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(company)))),
				 errdetail("Master key %d of the key ring is not the key that wrapped it, or the stored data key was altered.",
						   master_id)));
}

/* Raise the error for a company whose data key was shredded. */
static void
pg_attribute_noreturn()
SealShredded(const pg_uuid_t *company)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the data key of company %s was shredded",
					DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(company)))),
			 errdetail("Nothing sealed for this company can be opened again, and nothing new is sealed for it.")));
	pg_unreachable();
}

/*
 * Create the company's data key.  Returns false when another transaction
 * created it first (the caller then reads that one).
 */
static bool
SealCreateDataKey(const pg_uuid_t *company, int32 *key_id, uint8 *datakey)
{
	const MasterKey *master = KeyringActive();
	Oid			argtypes[4] = {UUIDOID, INT4OID, INT4OID, BYTEAOID};
	Datum		values[4];
	bytea	   *wrapped = palloc(VARHDRSZ + WRAP_LEN);
	bool		isnull;
	int			ret;

	ActloomPrepare(&NextIdPlan,
				   "SELECT pg_catalog.nextval('actloom.company_keys_key_id_seq')::integer",
				   0, NULL);
	ret = SPI_execute_plan(NextIdPlan, NULL, NULL, false, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "data key id allocation failed: %s", SPI_result_code_string(ret));
	*key_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	CryptoRandom(datakey, CRYPTO_KEY_LEN);
	SET_VARSIZE(wrapped, VARHDRSZ + WRAP_LEN);
	SealWrap(company, *key_id, datakey, master, (uint8 *) VARDATA(wrapped));

	ActloomPrepare(&InsertPlan,
				   "INSERT INTO actloom.company_keys (company_id, key_id, master_key_id, wrapped) "
				   "VALUES ($1, $2, $3, $4) ON CONFLICT (company_id) DO NOTHING",
				   4, argtypes);
	values[0] = UUIDPGetDatum(company);
	values[1] = Int32GetDatum(*key_id);
	values[2] = Int32GetDatum(master->id);
	values[3] = PointerGetDatum(wrapped);
	ret = SPI_execute_plan(InsertPlan, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "data key insert failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
	{
		CryptoWipe(datakey, CRYPTO_KEY_LEN);
		return false;
	}
	CreatedInXact = true;
	return true;
}

/*
 * SealDataKey returns the company's data key, from the cache or unwrapped
 * from its row, creating one when there is none and create is true.  With
 * create false and no key, returns NULL.  Raises when the key was shredded
 * or does not unwrap.  Its queries run as the extension's owner (see
 * ActloomBecomeOwner), since seal() and unseal() are not SECURITY DEFINER.
 */
static DataKey *
SealDataKey(const pg_uuid_t *company, bool create)
{
	DataKey    *cached;
	uint64		generation = KeyringCheck();
	ActloomSavedUser saved;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];
	uint8		datakey[CRYPTO_KEY_LEN];
	int32		key_id = 0;
	bool		found = false;
	bool		shredded = false;
	int			ret;
	int			attempt;

	if (generation != DataKeysRingGeneration)
	{
		SealCacheFlush();
		DataKeysRingGeneration = generation;
	}
	cached = SealCacheLookup(company);
	if (cached)
		return cached;

	/* Looked up on every miss: the extension may have been re-created. */
	CompanyKeysRelid = get_relname_relid("company_keys",
										 get_namespace_oid("actloom", false));

	ActloomBecomeOwner(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ActloomPrepare(&SelectPlan,
				   "SELECT k.key_id, k.wrapped FROM actloom.company_keys k "
				   "WHERE k.company_id OPERATOR(pg_catalog.=) $1",
				   1, argtypes);
	values[0] = UUIDPGetDatum(company);

	for (attempt = 0; attempt < 2 && !found; attempt++)
	{
		/* Writers read with a fresh snapshot, to see a key created meanwhile. */
		ret = SPI_execute_plan(SelectPlan, values, NULL, !create, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "data key lookup failed: %s", SPI_result_code_string(ret));
		if (SPI_processed == 1)
		{
			HeapTuple	tuple = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		wrapped;

			key_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
			wrapped = SPI_getbinval(tuple, desc, 2, &isnull);
			if (isnull)
				shredded = true;
			else
				SealUnwrap(company, key_id, DatumGetByteaPP(wrapped), datakey);
			found = true;
		}
		else if (!create)
			break;
		else if (SealCreateDataKey(company, &key_id, datakey))
			found = true;
	}
	SPI_finish();
	ActloomRestoreUser(&saved);

	if (shredded)
		SealShredded(company);
	if (!found)
		return NULL;
	cached = SealCacheStore(company, key_id, datakey);
	CryptoWipe(datakey, CRYPTO_KEY_LEN);
	return cached;
}

/* Room for the associated data of most values without an allocation. */
#define SEAL_AAD_BUF	1280

/*
 * Build the associated data of a sealed value, of *aadlen bytes, into buf
 * (SEAL_AAD_BUF bytes) when it fits and into a new palloc'd buffer when not;
 * returns where it is.
 */
static uint8 *
SealAad(const pg_uuid_t *company, const uint8 *header, SealKind kind,
		const char *purpose, int purposelen, const char *name, int namelen,
		uint8 *buf, size_t *aadlen)
{
	size_t		len = 15 + UUID_LEN + 5 + 1 + 4 + purposelen + 4 + namelen;
	uint8	   *aad = len <= SEAL_AAD_BUF ? buf : palloc(len);
	uint8	   *p = aad;

	memcpy(p, "actloom/seal/v1", 15);
	p += 15;
	memcpy(p, company->data, UUID_LEN);
	p += UUID_LEN;
	memcpy(p, header, 5);
	p += 5;
	*p++ = (uint8) kind;
	SealPutUint32(p, (uint32) purposelen);
	p += 4;
	memcpy(p, purpose, purposelen);
	p += purposelen;
	SealPutUint32(p, (uint32) namelen);
	p += 4;
	if (namelen > 0)
		memcpy(p, name, namelen);
	*aadlen = len;
	return aad;
}

/*
 * SealValue seals len bytes for a company and purpose (and name, for named
 * secrets), creating the company's data key on first use.
 */
static bytea *
SealValue(const pg_uuid_t *company, SealKind kind, const char *purpose,
		  int purposelen, const char *name, int namelen,
		  const char *plain, Size len)
{
	DataKey    *dk;
	bytea	   *result;
	uint8	   *out;
	uint8		aadbuf[SEAL_AAD_BUF];
	uint8	   *aad;
	size_t		aadlen;

	if (len > MaxAllocSize - VARHDRSZ - SEAL_OVERHEAD)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too large to seal")));
	result = palloc(VARHDRSZ + SEAL_OVERHEAD + len);
	SET_VARSIZE(result, VARHDRSZ + SEAL_OVERHEAD + len);
	out = (uint8 *) VARDATA(result);

	dk = SealDataKey(company, true);
	if (dk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not create the data key of company %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(company)))),
				 errdetail("Another transaction created it, and this one cannot see it."),
				 errhint("Retry the transaction.")));
	out[0] = SEAL_VERSION;
	SealPutUint32(out + 1, (uint32) dk->key_id);
	CryptoRandom(out + 5, CRYPTO_NONCE_LEN);
	aad = SealAad(company, out, kind, purpose, purposelen, name, namelen, aadbuf, &aadlen);
	CryptoGcmSeal(dk->key, out + 5, aad, aadlen, (const uint8 *) plain, len,
				  out + SEAL_HEADER_LEN, out + SEAL_HEADER_LEN + len);
	return result;
}

/*
 * UnsealValue opens what SealValue made for the same company, kind, purpose
 * and name, into a new varlena (a bytea, or a text for named secrets, which
 * were text when sealed).  Raises 22P03 for a value that is truncated, of an
 * unknown version, of another data key or that does not authenticate, and
 * 55000 when the company's data key was shredded.
 */
static struct varlena *
UnsealValue(const pg_uuid_t *company, SealKind kind, const char *purpose,
			int purposelen, const char *name, int namelen,
			const bytea *sealed)
{
	const uint8 *in = (const uint8 *) VARDATA_ANY(sealed);
	Size		inlen = VARSIZE_ANY_EXHDR(sealed);
	Size		len;
	int32		key_id;
	DataKey    *dk;
	uint8		aadbuf[SEAL_AAD_BUF];
	uint8	   *aad;
	size_t		aadlen;
	struct varlena *result;

	if (inlen >= 1 && in[0] != SEAL_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("sealed value has unknown format version %d", in[0])));
	if (inlen < SEAL_OVERHEAD)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("sealed value is truncated"),
				 errdetail("A sealed value has at least %d bytes; this one has %zu.",
						   SEAL_OVERHEAD, inlen)));
	key_id = (int32) SealGetUint32(in + 1);
	len = inlen - SEAL_OVERHEAD;
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	aad = SealAad(company, in, kind, purpose, purposelen, name, namelen, aadbuf, &aadlen);

	dk = SealDataKey(company, false);
	if (dk == NULL || dk->key_id != key_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("sealed value was sealed with data key %u, which is not the data key of this company",
						(uint32) key_id)));
	if (!CryptoGcmOpen(dk->key, in + 5, aad, aadlen, in + SEAL_HEADER_LEN, len,
					   in + SEAL_HEADER_LEN + len, (uint8 *) VARDATA(result)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("sealed value does not authenticate"),
				 errdetail("It was altered or cut short, or it was sealed for another company, purpose or name.")));
	return result;
}

/*
 * Raise 42501 unless the actor acts in the company: an application opens
 * the sealed values of the company it acts for, and no other.
 */
static void
SealRequireActor(const pg_uuid_t *company)
{
	const ActorContext *actor = ContextGet();

	if (actor->kind == ACTOR_NONE || !actor->has_company)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for sealed values of the company"),
				 errdetail("No actor acts in a company in this transaction."),
				 errhint("Call actloom.act_as() or actloom.authenticate_api_key() first, in the same transaction.")));
	if (memcmp(&actor->company_id, company, sizeof(pg_uuid_t)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for sealed values of the company"),
				 errdetail("The actor acts in another company.")));
}

/* Check a purpose argument and return it; 22023 when empty or too long. */
static text *
SealPurposeArg(FunctionCallInfo fcinfo, int n)
{
	text	   *purpose;

	ACTLOOM_REQUIRE_ARG(n, "purpose");
	purpose = PG_GETARG_TEXT_PP(n);
	if (VARSIZE_ANY_EXHDR(purpose) < 1 || VARSIZE_ANY_EXHDR(purpose) > SEAL_PURPOSE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid purpose"),
				 errdetail("A purpose has 1 to %d bytes.", SEAL_PURPOSE_MAX)));
	return purpose;
}

PG_FUNCTION_INFO_V1(seal);

/*
 * seal(company uuid, purpose text, value bytea) returns value sealed for the
 * company and purpose.  The actor must act in the company (42501).  The
 * purpose is what binds the value to where it is kept: an application that
 * keeps sealed values in a column of its own uses the table, column and row
 * key, so a value moved to another row does not open.
 */
Datum
seal(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *company;
	text	   *purpose;
	bytea	   *value;

	ACTLOOM_REQUIRE_ARG(0, "company");
	company = PG_GETARG_UUID_P(0);
	purpose = SealPurposeArg(fcinfo, 1);
	ACTLOOM_REQUIRE_ARG(2, "value");
	value = PG_GETARG_BYTEA_PP(2);
	SealRequireActor(company);

	PG_RETURN_BYTEA_P(SealValue(company, SEAL_GENERIC,
								VARDATA_ANY(purpose), VARSIZE_ANY_EXHDR(purpose),
								NULL, 0,
								VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)));
}

PG_FUNCTION_INFO_V1(unseal);

/*
 * unseal(company uuid, purpose text, sealed bytea) returns the value that
 * seal() sealed for the same company and purpose.  The actor must act in the
 * company (42501); see UnsealValue for the errors of a value that does not
 * open.
 */
Datum
unseal(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *company;
	text	   *purpose;
	bytea	   *sealed;

	ACTLOOM_REQUIRE_ARG(0, "company");
	company = PG_GETARG_UUID_P(0);
	purpose = SealPurposeArg(fcinfo, 1);
	ACTLOOM_REQUIRE_ARG(2, "sealed");
	sealed = PG_GETARG_BYTEA_PP(2);
	SealRequireActor(company);

	PG_RETURN_BYTEA_P((bytea *) UnsealValue(company, SEAL_GENERIC,
											VARDATA_ANY(purpose), VARSIZE_ANY_EXHDR(purpose),
											NULL, 0, sealed));
}

#define SECRET_PURPOSE "actloom.secret"

PG_FUNCTION_INFO_V1(seal_secret);

/*
 * _seal_secret(company uuid, name text, value text) seals a named secret of
 * the company.  Internal: the SQL functions that call it check permissions
 * and validate the name.
 */
Datum
seal_secret(PG_FUNCTION_ARGS)
{
	text	   *name;
	text	   *value;

	ACTLOOM_REQUIRE_ARG(0, "company");
	ACTLOOM_REQUIRE_ARG(1, "name");
	ACTLOOM_REQUIRE_ARG(2, "value");
	name = PG_GETARG_TEXT_PP(1);
	value = PG_GETARG_TEXT_PP(2);
	PG_RETURN_BYTEA_P(SealValue(PG_GETARG_UUID_P(0), SEAL_NAMED,
								SECRET_PURPOSE, strlen(SECRET_PURPOSE),
								VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name),
								VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)));
}

PG_FUNCTION_INFO_V1(unseal_secret);

/*
 * _unseal_secret(company uuid, name text, sealed bytea) opens a named secret
 * sealed by _seal_secret for the same company and name.  Internal.
 */
Datum
unseal_secret(PG_FUNCTION_ARGS)
{
	text	   *name;

	ACTLOOM_REQUIRE_ARG(0, "company");
	ACTLOOM_REQUIRE_ARG(1, "name");
	ACTLOOM_REQUIRE_ARG(2, "sealed");
	name = PG_GETARG_TEXT_PP(1);
	/* It was valid text when sealed, and it authenticated. */
	PG_RETURN_TEXT_P((text *) UnsealValue(PG_GETARG_UUID_P(0), SEAL_NAMED,
										  SECRET_PURPOSE, strlen(SECRET_PURPOSE),
										  VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name),
										  PG_GETARG_BYTEA_PP(2)));
}

#define WEBHOOK_PURPOSE "actloom.webhook_secret"

/*
 * SealWebhookSecret seals the signing key of a webhook endpoint for its
 * company, bound to the endpoint: a sealed key copied to another endpoint's
 * row does not open.  Internal to webhook.c, which checks who asks.
 */
bytea *
SealWebhookSecret(const pg_uuid_t *company, const char *endpoint,
				  const uint8 *key, Size len)
{
	return SealValue(company, SEAL_WEBHOOK, WEBHOOK_PURPOSE, strlen(WEBHOOK_PURPOSE),
					 endpoint, strlen(endpoint), (const char *) key, len);
}

/*
 * UnsealWebhookSecret opens what SealWebhookSecret sealed for the same
 * company and endpoint, into a palloc'd bytea the caller wipes; it raises
 * as UnsealValue does (55000 once the company was shredded).
 */
bytea *
UnsealWebhookSecret(const pg_uuid_t *company, const char *endpoint,
					const bytea *sealed)
{
	return (bytea *) UnsealValue(company, SEAL_WEBHOOK, WEBHOOK_PURPOSE,
								 strlen(WEBHOOK_PURPOSE), endpoint, strlen(endpoint),
								 sealed);
}

PG_FUNCTION_INFO_V1(rewrap_data_key);

/*
 * _rewrap_data_key(company uuid, key_id integer, wrapped bytea,
 * master_key_id integer) returns the company's data key wrapped under
 * another master key of the ring.  Internal, for rotate_master_key(); the
 * data key itself, and so every value sealed under it, stays the same.
 */
Datum
rewrap_data_key(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *company;
	int32		key_id;
	const MasterKey *master;
	uint8		datakey[CRYPTO_KEY_LEN];
	bytea	   *result;

	ACTLOOM_REQUIRE_ARG(0, "company");
	ACTLOOM_REQUIRE_ARG(1, "key_id");
	ACTLOOM_REQUIRE_ARG(2, "wrapped");
	ACTLOOM_REQUIRE_ARG(3, "master_key_id");
	company = PG_GETARG_UUID_P(0);
	key_id = PG_GETARG_INT32(1);
	master = KeyringGet(PG_GETARG_INT32(3));

	result = palloc(VARHDRSZ + WRAP_LEN);
	SET_VARSIZE(result, VARHDRSZ + WRAP_LEN);
	SealUnwrap(company, key_id, PG_GETARG_BYTEA_PP(2), datakey);
	SealWrap(company, key_id, datakey, master, (uint8 *) VARDATA(result));
	CryptoWipe(datakey, CRYPTO_KEY_LEN);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(keyring_active);

/*
 * _keyring_active() returns the id of the active master key; F0000 when the
 * key ring cannot be read.
 */
Datum
keyring_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(KeyringActive()->id);
}

PG_FUNCTION_INFO_V1(company_keys_changed);

/*
 * _company_keys_changed() is an AFTER statement trigger on
 * actloom.company_keys: it makes every backend forget its cached data keys
 * once the change commits, and this one at once.
 */
Datum
company_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_company_keys_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	SealCacheFlush();
	return PointerGetDatum(NULL);
}
