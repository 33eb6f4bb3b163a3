/*
 * actloom.c
 *	  Module entry point of the actloom extension: settings and shared helpers.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "actloom.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* The OWASP floor for argon2id (2023): 19 MiB, two passes, one lane. */
#define ARGON2_FLOOR_MEMORY_KIB		19456
#define ARGON2_FLOOR_ITERATIONS		2
#define ARGON2_FLOOR_PARALLELISM	1

char	   *ActloomKeyringFile = NULL;
int			ActloomArgon2MemoryKiB = ARGON2_FLOOR_MEMORY_KIB;
int			ActloomArgon2Iterations = ARGON2_FLOOR_ITERATIONS;
int			ActloomArgon2Parallelism = ARGON2_FLOOR_PARALLELISM;
int			ActloomPasswordMinLength = 8;
int			ActloomPasswordMaxBytes = 1024;

/*
 * _PG_init defines the settings, reserves the "actloom." prefix so that
 * nobody can invent settings that look like ours, and installs the
 * transaction callbacks that keep the actor context transaction-scoped and
 * the cache of data keys current.
 *
 * Nothing here reads the key ring file: a missing or bad file must not keep
 * the server from starting, so it is read (and checked) when first used.
 */
void
_PG_init(void)
{
	DefineCustomStringVariable("actloom.audit_signing_key_file",
							   "Ed25519 private key (PEM) that signs audit checkpoints.",
							   "The file must not be readable by group or others.",
							   &AuditSigningKeyFile,
							   NULL,
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("actloom.keyring_file",
							   "Path of the file holding the master key ring.",
							   "It must be outside the data directory, owned by the server's "
							   "user (or root) and not accessible by group or others.",
							   &ActloomKeyringFile,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("actloom.argon2_memory",
							"Memory cost of argon2id password hashes.",
							"The floor is the OWASP recommendation, 19 MiB.",
							&ActloomArgon2MemoryKiB,
							ARGON2_FLOOR_MEMORY_KIB,
							ARGON2_FLOOR_MEMORY_KIB,
							4 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("actloom.argon2_iterations",
							"Time cost (passes over memory) of argon2id password hashes.",
							NULL,
							&ActloomArgon2Iterations,
							ARGON2_FLOOR_ITERATIONS,
							ARGON2_FLOOR_ITERATIONS,
							64,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("actloom.argon2_parallelism",
							"Lanes of argon2id password hashes.",
							NULL,
							&ActloomArgon2Parallelism,
							ARGON2_FLOOR_PARALLELISM,
							ARGON2_FLOOR_PARALLELISM,
							16,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("actloom.password_min_length",
							"Least number of characters of a new password.",
							NULL,
							&ActloomPasswordMinLength,
							8, 8, 1024,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("actloom.password_max_bytes",
							"Largest size in bytes of a password; longer ones are refused unhashed.",
							NULL,
							&ActloomPasswordMaxBytes,
							1024, 64, 65536,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("actloom.webhook_max_endpoints",
							"Most webhook endpoints a company may register.",
							NULL,
							&WebhookMaxEndpoints,
							20, 1, 1000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("actloom.webhook_max_payload",
							"Largest payload of a webhook event, in bytes of its JSON text.",
							NULL,
							&WebhookMaxPayload,
							65536, 1024, 1024 * 1024,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("actloom.webhook_allow_http",
							 "Whether webhook endpoints may be plain http URLs.",
							 "Off: only https. For tests and closed networks only.",
							 &WebhookAllowHttp,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("actloom.webhook_retry_schedule",
							   "When the attempts of a webhook delivery are made.",
							   "Comma-separated delays: the n-th is waited before the n-th attempt, "
							   "counted from the failure before it (the first from the event). "
							   "Each is a whole number and a unit: ms, s, min, h or d.",
							   &WebhookRetrySchedule,
							   "0s,5s,5min,30min,2h,5h,10h,10h",
							   PGC_SUSET,
							   0,
							   WebhookCheckRetrySchedule, NULL, NULL);

	DefineCustomIntVariable("actloom.webhook_disable_after",
							"How long every attempt to an endpoint may fail before it is disabled.",
							NULL,
							&WebhookDisableAfter,
							5 * 24 * 3600, 1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	SessionInit();
	MarkGUCPrefixReserved("actloom");
	ContextInit();
	SealInit();
	AuditInit();
	WakeInit();
}

/*
 * ActloomPrepare returns the plan in *slot, preparing and keeping it for the
 * life of the backend the first time.  The caller is connected to SPI.
 */
SPIPlanPtr
ActloomPrepare(SPIPlanPtr *slot, const char *query, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(query, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

/*
 * ActloomBecomeOwner makes the owner of schema actloom (the role that owns
 * the extension's tables) the current user, saving the caller's identity in
 * *saved; ActloomRestoreUser switches back.  An error in between needs no
 * cleanup: transaction and subtransaction abort restore the user.
 *
 * This is for the hot-path C functions that are not SECURITY DEFINER because
 * a SET search_path clause costs a configuration save and restore on every
 * call (seal, unseal, authenticate_api_key).  The queries they run in between
 * name every relation, function and operator with its schema, so the
 * caller's search_path cannot redirect them; and the restricted-operation
 * flag forbids anything that could change the session meanwhile.
 */
void
ActloomBecomeOwner(ActloomSavedUser *saved)
{
	Oid			nsp = get_namespace_oid("actloom", false);
	HeapTuple	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
	ReleaseSysCache(tuple);

	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(owner, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

/*
 * ActloomRestoreUser undoes ActloomBecomeOwner.
 */
void
ActloomRestoreUser(const ActloomSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * ActloomQuotable returns an input of len bytes in the form a message may
 * quote: the input itself when it has at most ACTLOOM_QUOTE_MAX characters,
 * else its first ACTLOOM_QUOTE_MAX characters followed by "...".  Every
 * message that quotes what a caller passed quotes it through this, so that
 * no input makes an error, or the server log line it becomes, large.  The
 * result is palloc'd.
 */
char *
ActloomQuotable(const char *s, int len)
{
	int			cut = pg_mbcharcliplen(s, len, ACTLOOM_QUOTE_MAX);

	return cut < len ? psprintf("%.*s...", cut, s) : pnstrdup(s, len);
}

PG_FUNCTION_INFO_V1(quotable);

/*
 * quotable(input text) is ActloomQuotable for the PL/pgSQL functions.
 */
Datum
quotable(PG_FUNCTION_ARGS)
{
	text	   *input = PG_GETARG_TEXT_PP(0);

	PG_RETURN_TEXT_P(cstring_to_text(ActloomQuotable(VARDATA_ANY(input),
													 VARSIZE_ANY_EXHDR(input))));
}
