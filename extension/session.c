/*
 * session.c
 *	  Sign-in sessions: is the session a request names still alive, and who
 *	  acts through it.
 *
 * A session is a row of actloom.sessions, created at sign-in with a new
 * random id every time.  The shim hands the browser a signed token naming
 * that id; the signature only says that the shim issued the token, the row
 * says whether the session still counts.  Every request therefore asks the
 * database, in the same transaction (and round trip) as the request's own
 * work: act_as_session() checks the session and makes its user the actor,
 * optionally within a company after the same membership check act_as() makes.
 * A session revoked or expired by the time that transaction starts is
 * refused on that very request; a member removed from a company loses access
 * on the next request.
 *
 * Clocks.  A session dies at the first of:
 *	- revocation (sign-out, sign-out everywhere, password change, revoked from
 *	  the list of sessions, replaced by a new sign-in on the same browser);
 *	- its absolute expiry: expires_at, set at creation to created_at +
 *	  actloom.session_max_lifetime, and also created_at + the current value
 *	  of that setting, so lowering it takes effect on sessions already out;
 *	- idleness: no request for actloom.session_idle_timeout after last_seen_at.
 * All comparisons use the start time of the transaction (now()), so one
 * request sees one verdict, and a limit is inclusive: a session whose expiry
 * equals now() is dead.
 *
 * Refusals.  Every dead or unknown session, and a disabled user, gets the
 * same SQLSTATE (28000) and the same message; the reason goes only to the
 * server log (errdetail_log), so a client learns nothing it could probe.
 *
 * last_seen_at.  Writing it on every request would turn reads into writes and
 * make concurrent requests of one session queue on its row lock.  It is
 * written only when it is at least SESSION_TOUCH_INTERVAL_S old, and with
 * SKIP LOCKED, so a request never waits for another request of the same
 * session (the other one is refreshing it anyway).  The idle timeout is thus
 * exact to within that interval, which its minimum value keeps small.  A
 * read-only transaction cannot write and does not refresh it: such requests
 * do not keep a session from going idle, which errs on the safe side.  Under
 * REPEATABLE READ a refresh racing another one may fail with 40001, which a
 * retry resolves; the shim runs at READ COMMITTED.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "actloom.h"

#define SESSION_TOUCH_INTERVAL_S		60
#define SESSION_DEFAULT_IDLE_TIMEOUT_S	(30 * 60)
#define SESSION_DEFAULT_MAX_LIFETIME_S	(12 * 60 * 60)
#define SESSION_LIMIT_MIN_S				60
#define SESSION_IDLE_TIMEOUT_MAX_S		(30 * 24 * 60 * 60)
#define SESSION_MAX_LIFETIME_MAX_S		(365 * 24 * 60 * 60)

static int	SessionIdleTimeout = SESSION_DEFAULT_IDLE_TIMEOUT_S;
static int	SessionMaxLifetime = SESSION_DEFAULT_MAX_LIFETIME_S;

static SPIPlanPtr LookupPlan = NULL;
static SPIPlanPtr TouchPlan = NULL;

/* Columns of LookupPlan's result. */
enum
{
	SL_USER = 1,
	SL_CREATED,
	SL_LAST_SEEN,
	SL_EXPIRES,
	SL_REVOKED,
	SL_REVOKED_REASON,
	SL_USER_DISABLED
};

/*
 * SessionInit defines the session settings; called once from _PG_init.  Both
 * are superuser-only, so the gateway cannot lengthen its own sessions.
 */
void
SessionInit(void)
{
	DefineCustomIntVariable("actloom.session_idle_timeout",
							"Time without a request after which a sign-in session ends.",
							"Measured from the session's last_seen_at, which is refreshed at most once a minute.",
							&SessionIdleTimeout,
							SESSION_DEFAULT_IDLE_TIMEOUT_S,
							SESSION_LIMIT_MIN_S,
							SESSION_IDLE_TIMEOUT_MAX_S,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("actloom.session_max_lifetime",
							"Time after sign-in at which a sign-in session ends, however active.",
							"Lowering it also shortens sessions already created.",
							&SessionMaxLifetime,
							SESSION_DEFAULT_MAX_LIFETIME_S,
							SESSION_LIMIT_MIN_S,
							SESSION_MAX_LIFETIME_MAX_S,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * SessionRefuse raises the one error every refused session gets, with the
 * reason for the server log only.  The session id is not a credential (the
 * token naming it is signed), so the log may name it.
 */
static void pg_attribute_noreturn()
SessionRefuse(const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid or expired session"),
			 errdetail_log("%s", reason)));
}

static TimestampTz
SessionPlusSeconds(TimestampTz t, int seconds)
{
	return t + (TimestampTz) seconds * USECS_PER_SEC;
}

/*
 * SessionTouch sets a session's last_seen_at to now(), unless another
 * transaction holds its row (and is refreshing it or revoking it) or it was
 * refreshed less than SESSION_TOUCH_INTERVAL_S ago.
 */
static void
SessionTouch(pg_uuid_t *session_id, TimestampTz now)
{
	Oid			argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	Datum		values[2];
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ActloomPrepare(&TouchPlan,
				   "UPDATE actloom.sessions s SET last_seen_at = pg_catalog.now() "
				   "WHERE s.id = (SELECT t.id FROM actloom.sessions t "
				   "WHERE t.id = $1 AND t.last_seen_at <= $2 "
				   "FOR NO KEY UPDATE SKIP LOCKED)",
				   2, argtypes);
	values[0] = UUIDPGetDatum(session_id);
	values[1] = TimestampTzGetDatum(SessionPlusSeconds(now, -SESSION_TOUCH_INTERVAL_S));
	ret = SPI_execute_plan(TouchPlan, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "session refresh failed: %s", SPI_result_code_string(ret));
	SPI_finish();
}

PG_FUNCTION_INFO_V1(act_as_session);

/*
 * act_as_session(session uuid, company uuid DEFAULT NULL) returns the user of
 * a live session and makes that user the actor of the current transaction,
 * through that session, acting within the company when one is given.  It
 * refreshes the session's last_seen_at when it is a minute old or more.
 * EXECUTE is granted only to actloom_gateway.
 *
 * Raises 28000, with one message whatever the reason, for an unknown,
 * revoked, expired or idle session and for a disabled user; 42501 when the
 * user is not a member of the company.
 */
Datum
act_as_session(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *session_id;
	pg_uuid_t  *company_id = NULL;
	pg_uuid_t	user_id;
	pg_uuid_t  *result;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];
	bool		isnull;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz created;
	TimestampTz last_seen = 0;
	TimestampTz expires;
	MemoryContext caller = CurrentMemoryContext;
	const char *sid;
	char	   *reason = NULL;
	int			ret;

	ACTLOOM_REQUIRE_ARG(0, "session");
	session_id = PG_GETARG_UUID_P(0);
	if (!PG_ARGISNULL(1))
		company_id = PG_GETARG_UUID_P(1);
	sid = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(session_id)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ActloomPrepare(&LookupPlan,
				   "SELECT s.user_id, s.created_at, s.last_seen_at, s.expires_at, "
				   "s.revoked_at, s.revoked_reason, u.disabled_at IS NOT NULL "
				   "FROM actloom.sessions s JOIN actloom.users u ON u.id = s.user_id "
				   "WHERE s.id = $1",
				   1, argtypes);
	values[0] = UUIDPGetDatum(session_id);
	ret = SPI_execute_plan(LookupPlan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "session lookup failed: %s", SPI_result_code_string(ret));

	/* The reason outlives SPI: build it in the caller's memory. */
	MemoryContextSwitchTo(caller);
	if (SPI_processed != 1)
		reason = psprintf("Session %s does not exist.", sid);
	else
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		revoked;

		memcpy(&user_id, DatumGetUUIDP(SPI_getbinval(row, desc, SL_USER, &isnull)),
			   sizeof(user_id));
		created = DatumGetTimestampTz(SPI_getbinval(row, desc, SL_CREATED, &isnull));
		last_seen = DatumGetTimestampTz(SPI_getbinval(row, desc, SL_LAST_SEEN, &isnull));
		expires = DatumGetTimestampTz(SPI_getbinval(row, desc, SL_EXPIRES, &isnull));
		revoked = SPI_getbinval(row, desc, SL_REVOKED, &isnull);

		if (!isnull)
			reason = psprintf("Session %s was revoked at %s (%s).", sid,
							  timestamptz_to_str(DatumGetTimestampTz(revoked)),
							  SPI_getvalue(row, desc, SL_REVOKED_REASON));
		else if (expires <= now)
			reason = psprintf("Session %s expired at %s.", sid, timestamptz_to_str(expires));
		else if (SessionPlusSeconds(created, SessionMaxLifetime) <= now)
			reason = psprintf("Session %s, created at %s, outlived actloom.session_max_lifetime (%d s).",
							  sid, timestamptz_to_str(created), SessionMaxLifetime);
		else if (SessionPlusSeconds(last_seen, SessionIdleTimeout) <= now)
			reason = psprintf("Session %s was idle since %s, longer than actloom.session_idle_timeout (%d s).",
							  sid, timestamptz_to_str(last_seen), SessionIdleTimeout);
		else if (DatumGetBool(SPI_getbinval(row, desc, SL_USER_DISABLED, &isnull)))
			reason = psprintf("The user of session %s is disabled.", sid);
	}

	SPI_finish();

	if (reason)
		SessionRefuse(reason);

	if (company_id && RolesMembership(company_id, &user_id) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("user is not a member of the company")));

	if (!XactReadOnly && SessionPlusSeconds(last_seen, SESSION_TOUCH_INTERVAL_S) <= now)
		SessionTouch(session_id, now);

	ContextSetSession(session_id, &user_id, company_id);
	result = palloc(sizeof(pg_uuid_t));
	memcpy(result, &user_id, sizeof(pg_uuid_t));
	PG_RETURN_UUID_P(result);
}
