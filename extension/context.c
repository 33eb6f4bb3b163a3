/*
 * context.c
 *	  The actor context: who is acting in the current transaction.
 *
 * The context lives in static memory of this backend, never in a GUC, a
 * table or anything else a session can write: the only ways in are act_as()
 * here, which checks the membership and is granted to the gateway only,
 * authenticate_api_key() in apikey.c, which verified a key first, and
 * act_as_session() in session.c, which verified a sign-in session first.  So
 * neither SET, set_config() nor a crafted row can forge an actor.
 *
 * Kinds.  A user acts with a role in a company (or in none, to create one),
 * possibly through a sign-in session, which audit entries then record;
 * an API key acts in its company with its scopes and no user and no role, so
 * current_user_id() is NULL for it and roles.c checks its scopes instead.
 *
 * Lifetime.  The context is cleared when the top-level transaction ends,
 * whether it commits, aborts or is prepared, so it never leaks from one
 * transaction to the next on a pooled connection.  A context established
 * inside a subtransaction that later aborts is cleared as well (failing
 * closed rather than restoring an older actor), and one established in a
 * subtransaction that commits is handed to the parent, so a later abort of
 * the parent clears it too.
 *
 * Parallel workers do not share this memory, so every SQL function that reads
 * the context is declared PARALLEL RESTRICTED.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "actloom.h"

static ActorContext Actor;

/*
 * The end client's address, as the gateway reports it, for audit entries.
 * Not an authority, so it is kept apart from the actor and only cleared at
 * the end of the transaction.  Allocated in TopMemoryContext.
 */
static inet *ClientAddr = NULL;

/* The subtransaction that established the context; valid when kind != NONE. */
static SubTransactionId ActorSubId = InvalidSubTransactionId;

static void
ContextClear(void)
{
	int			i;

	for (i = 0; i < Actor.nscopes; i++)
		pfree(Actor.scopes[i]);
	if (Actor.scopes)
		pfree(Actor.scopes);
	memset(&Actor, 0, sizeof(Actor));
	ActorSubId = InvalidSubTransactionId;
}

static void
ContextXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ContextClear();
			if (ClientAddr)
				pfree(ClientAddr);
			ClientAddr = NULL;
			break;
		default:
			break;
	}
}

static void
ContextSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (Actor.kind == ACTOR_NONE)
		return;

	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
			if (ActorSubId >= mySubid)
				ContextClear();
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			if (ActorSubId == mySubid)
				ActorSubId = parentSubid;
			break;
		default:
			break;
	}
}

/*
 * ContextInit registers the transaction callbacks; called once from _PG_init.
 */
void
ContextInit(void)
{
	ContextClear();
	RegisterXactCallback(ContextXactCallback, NULL);
	RegisterSubXactCallback(ContextSubXactCallback, NULL);
}

/*
 * ContextGet returns the current actor; kind is ACTOR_NONE when nobody acts.
 */
const ActorContext *
ContextGet(void)
{
	return &Actor;
}

/*
 * ContextSetUser makes a user the actor, optionally within a company.  The
 * caller has verified that the user exists and belongs to the company.
 */
void
ContextSetUser(const pg_uuid_t *user_id, const pg_uuid_t *company_id)
{
	if (!IsTransactionState())
		elog(ERROR, "actor context set outside a transaction");

	ContextClear();
	Actor.kind = ACTOR_USER;
	Actor.user_id = *user_id;
	if (company_id)
	{
		Actor.has_company = true;
		Actor.company_id = *company_id;
	}
	ActorSubId = GetCurrentSubTransactionId();
}

/*
 * ContextSetApiKey makes an API key the actor (by its row id, which audit
 * entries record, and its public key id), in its company, with its scopes
 * (copied).  Only authenticate_api_key() calls it, after verifying
 * the key.
 */
void
ContextSetApiKey(const pg_uuid_t *api_key, const char *key_id,
				 const pg_uuid_t *company_id, int nscopes, char **scopes)
{
	char	  **copy;
	int			i;

	if (!IsTransactionState())
		elog(ERROR, "actor context set outside a transaction");
	if (strlen(key_id) != APIKEY_ID_LEN)
		elog(ERROR, "malformed API key id");

	/* Allocate before clearing, so that running out of memory keeps the old actor. */
	copy = MemoryContextAllocZero(TopMemoryContext, sizeof(char *) * Max(nscopes, 1));
	for (i = 0; i < nscopes; i++)
		copy[i] = MemoryContextStrdup(TopMemoryContext, scopes[i]);

	ContextClear();
	Actor.kind = ACTOR_API_KEY;
	Actor.has_company = true;
	Actor.company_id = *company_id;
	Actor.api_key = *api_key;
	strlcpy(Actor.key_id, key_id, sizeof(Actor.key_id));
	Actor.nscopes = nscopes;
	Actor.scopes = copy;
	ActorSubId = GetCurrentSubTransactionId();
}

/*
 * ContextSetSession makes the user of a sign-in session the actor, optionally
 * within a company; audit entries then name the session too.  Only
 * act_as_session() in session.c calls it, after checking that the session is
 * alive, the user enabled and, with a company, a member of it.
 */
void
ContextSetSession(const pg_uuid_t *session_id, const pg_uuid_t *user_id,
				  const pg_uuid_t *company_id)
{
	ContextSetUser(user_id, company_id);
	Actor.has_session = true;
	Actor.session_id = *session_id;
}

static Datum
UuidDatumCopy(const pg_uuid_t *u)
{
	pg_uuid_t  *r = palloc(sizeof(pg_uuid_t));

	memcpy(r, u, sizeof(pg_uuid_t));
	return UUIDPGetDatum(r);
}

PG_FUNCTION_INFO_V1(act_as);

/*
 * act_as(user uuid, company uuid DEFAULT NULL) makes a user the actor of the
 * current transaction, acting within the company when one is given.  EXECUTE
 * is granted only to actloom_gateway.  Raises 28000 for an unknown or
 * disabled user and 42501 when the user is not a member of the company.
 */
Datum
act_as(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *user_id;
	pg_uuid_t  *company_id = NULL;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];
	bool		isnull;
	bool		enabled;
	int			ret;

	ACTLOOM_REQUIRE_ARG(0, "user");
	user_id = PG_GETARG_UUID_P(0);
	if (!PG_ARGISNULL(1))
		company_id = PG_GETARG_UUID_P(1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	values[0] = UUIDPGetDatum(user_id);
	ret = SPI_execute_with_args("SELECT u.disabled_at IS NULL FROM actloom.users u WHERE u.id = $1",
								1, argtypes, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "user lookup failed: %s", SPI_result_code_string(ret));
	enabled = SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	if (!enabled)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("user does not exist or is disabled")));

	if (company_id && RolesMembership(company_id, user_id) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("user is not a member of the company")));

	ContextSetUser(user_id, company_id);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(current_user_id);

/*
 * current_user_id() returns the acting user, or NULL when nobody acts or an
 * API key acts.
 */
Datum
current_user_id(PG_FUNCTION_ARGS)
{
	if (Actor.kind != ACTOR_USER)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(UuidDatumCopy(&Actor.user_id));
}

PG_FUNCTION_INFO_V1(current_company);

/*
 * current_company() returns the company the actor acts in, or NULL.  Row
 * level security policies compare tenant keys with it, so NULL (no actor)
 * matches no row.
 */
Datum
current_company(PG_FUNCTION_ARGS)
{
	if (Actor.kind == ACTOR_NONE || !Actor.has_company)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(UuidDatumCopy(&Actor.company_id));
}

PG_FUNCTION_INFO_V1(current_session);

/*
 * current_session() returns the sign-in session the acting user acts
 * through, or NULL when nobody acts or the actor was set otherwise.
 */
Datum
current_session(PG_FUNCTION_ARGS)
{
	if (Actor.kind != ACTOR_USER || !Actor.has_session)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(UuidDatumCopy(&Actor.session_id));
}

/*
 * ContextGetClientAddr returns the address set by set_client_addr() in this
 * transaction, or NULL.
 */
const inet *
ContextGetClientAddr(void)
{
	return ClientAddr;
}

PG_FUNCTION_INFO_V1(set_client_addr);

/*
 * set_client_addr(addr inet) records the end client's address for the audit
 * entries of the current transaction (NULL forgets it).  EXECUTE is granted
 * only to actloom_gateway.
 */
Datum
set_client_addr(PG_FUNCTION_ARGS)
{
	inet	   *addr;

	if (!IsTransactionState())
		elog(ERROR, "client address set outside a transaction");
	if (ClientAddr)
		pfree(ClientAddr);
	ClientAddr = NULL;
	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	addr = PG_GETARG_INET_PP(0);
	ClientAddr = MemoryContextAlloc(TopMemoryContext, VARSIZE_ANY(addr));
	memcpy(ClientAddr, addr, VARSIZE_ANY(addr));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(current_api_key);

/*
 * current_api_key() returns the id of the acting API key, or NULL when no
 * API key acts.
 */
Datum
current_api_key(PG_FUNCTION_ARGS)
{
	if (Actor.kind != ACTOR_API_KEY)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(Actor.key_id));
}

PG_FUNCTION_INFO_V1(current_actor_kind);

/*
 * current_actor_kind() returns 'user' or 'api_key', or NULL when nobody
 * acts.
 */
Datum
current_actor_kind(PG_FUNCTION_ARGS)
{
	switch (Actor.kind)
	{
		case ACTOR_USER:
			PG_RETURN_TEXT_P(cstring_to_text("user"));
		case ACTOR_API_KEY:
			PG_RETURN_TEXT_P(cstring_to_text("api_key"));
		case ACTOR_NONE:
			break;
	}
	PG_RETURN_NULL();
}
