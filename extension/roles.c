/*
 * roles.c
 *	  Authorization: may the current actor do an action in a company?
 *
 * Roles are ranked member < admin < executive < owner (the order of the enum
 * actloom.company_role).  Which role an action needs is data, in
 * actloom.permissions.  Each check reads the actor's membership at the time
 * of the call, so a member removed or demoted earlier in the same
 * transaction is refused at once.
 *
 * An API key has no role: it acts in its own company only, and may do an
 * action when one of its scopes names the action or its resource ("reports.*"
 * covers "reports.generate").  The action must still exist in the permission
 * table, so people and machines share one vocabulary.
 *
 * The SQL declarations make these functions SECURITY DEFINER with a fixed
 * search_path; the queries below additionally name every relation with its
 * schema.  Plans are prepared once per backend and kept.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "actloom.h"

typedef enum RoleVerdict
{
	VERDICT_ALLOWED,
	VERDICT_NO_ACTOR,
	VERDICT_OTHER_COMPANY,
	VERDICT_NOT_MEMBER,
	VERDICT_ROLE_TOO_LOW,
	VERDICT_NO_SCOPE,
	VERDICT_NO_ROLE
} RoleVerdict;

typedef struct RoleCheck
{
	RoleVerdict verdict;
	char	   *required;		/* role the action needs */
	char	   *held;			/* role the actor has, or NULL */
} RoleCheck;

static SPIPlanPtr MembershipPlan = NULL;
static SPIPlanPtr ActionPlan = NULL;
static SPIPlanPtr MinRolePlan = NULL;
static SPIPlanPtr ActionExistsPlan = NULL;

/* Copy a text column of the first result row into the caller's context. */
static char *
RolesGetText(int col, MemoryContext into)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
	MemoryContext old;
	char	   *result;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(into);
	result = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * RolesMembership returns the user's role in the company, or NULL when the
 * user is not a member.  The result is allocated in the caller's context.
 */
char *
RolesMembership(const pg_uuid_t *company_id, const pg_uuid_t *user_id)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[2] = {UUIDOID, UUIDOID};
	Datum		values[2];
	char	   *role = NULL;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ActloomPrepare(&MembershipPlan,
				   "SELECT m.role::text FROM actloom.memberships m "
				   "WHERE m.company_id = $1 AND m.user_id = $2",
				   2, argtypes);
	values[0] = UUIDPGetDatum(company_id);
	values[1] = UUIDPGetDatum(user_id);
	ret = SPI_execute_plan(MembershipPlan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "membership lookup failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
		role = RolesGetText(1, caller);
	SPI_finish();
	return role;
}

/*
 * RolesScopeCovers says whether an API key scope allows an action: the same
 * action, or "resource.*" for an action "resource.verb".
 */
bool
RolesScopeCovers(const char *scope, const char *action)
{
	size_t		n = strlen(scope);

	if (strcmp(scope, action) == 0)
		return true;
	return n >= 3 && scope[n - 1] == '*' && scope[n - 2] == '.' &&
		strncmp(scope, action, n - 1) == 0;
}

static void RolesUnknownAction(const char *action) pg_attribute_noreturn();

/* Raise 22023 for an action that is not in the permission table. */
static void
RolesUnknownAction(const char *action)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown action \"%s\"", ActloomQuotable(action, strlen(action))),
			 errhint("The actions are listed in table actloom.permissions.")));
}

/*
 * RolesRequireAction raises 22023 unless the action is in the permission
 * table.  Its query qualifies every name, since authenticate_api_key() runs
 * it under the caller's search_path.
 */
void
RolesRequireAction(const char *action)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ActloomPrepare(&ActionExistsPlan,
				   "SELECT FROM actloom.permissions p WHERE p.action OPERATOR(pg_catalog.=) $1",
				   1, argtypes);
	values[0] = CStringGetTextDatum(action);
	ret = SPI_execute_plan(ActionExistsPlan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "permission lookup failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		RolesUnknownAction(action);
	SPI_finish();
}

/* The verdict for an API key actor: its company, and a scope covering the action. */
static RoleCheck
RolesEvaluateApiKey(const ActorContext *actor, const pg_uuid_t *company_id,
					const char *action)
{
	RoleCheck	check = {VERDICT_NO_SCOPE, NULL, NULL};
	int			i;

	if (action == NULL)
	{
		check.verdict = VERDICT_NO_ROLE;
		return check;
	}
	RolesRequireAction(action);
	if (memcmp(&actor->company_id, company_id, sizeof(pg_uuid_t)) != 0)
	{
		check.verdict = VERDICT_OTHER_COMPANY;
		return check;
	}
	for (i = 0; i < actor->nscopes; i++)
		if (RolesScopeCovers(actor->scopes[i], action))
		{
			check.verdict = VERDICT_ALLOWED;
			break;
		}
	return check;
}

/*
 * RolesEvaluate decides whether the actor holds at least a role in a company.
 * The needed role is that of an action (action != NULL) or given directly.
 * An unknown action is an error, not a refusal, whoever acts or does not.
 */
static RoleCheck
RolesEvaluate(const pg_uuid_t *company_id, const char *action, const char *min_role)
{
	const ActorContext *actor = ContextGet();
	MemoryContext caller = CurrentMemoryContext;
	RoleCheck	check = {VERDICT_NO_ACTOR, NULL, NULL};
	Oid			argtypes[3] = {UUIDOID, UUIDOID, TEXTOID};
	Datum		values[3];
	SPIPlanPtr	plan;
	bool		isnull;
	bool		enough;
	int			ret;

	if (actor->kind == ACTOR_API_KEY)
		return RolesEvaluateApiKey(actor, company_id, action);
	if (actor->kind != ACTOR_USER ||
		(actor->has_company &&
		 memcmp(&actor->company_id, company_id, sizeof(pg_uuid_t)) != 0))
	{
		/*
		 * Refused without the membership query, which is where an unknown
		 * action shows otherwise: look it up first.
		 */
		if (action)
			RolesRequireAction(action);
		if (actor->kind == ACTOR_USER)
			check.verdict = VERDICT_OTHER_COMPANY;
		return check;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (action)
		plan = ActloomPrepare(&ActionPlan,
							  "SELECT p.min_role::text, m.role::text, m.role >= p.min_role "
							  "FROM actloom.permissions p "
							  "LEFT JOIN actloom.memberships m "
							  "ON m.company_id = $1 AND m.user_id = $2 "
							  "WHERE p.action = $3",
							  3, argtypes);
	else
		plan = ActloomPrepare(&MinRolePlan,
							  "SELECT r.need::text, m.role::text, m.role >= r.need "
							  "FROM (SELECT $3::actloom.company_role AS need) r "
							  "LEFT JOIN actloom.memberships m "
							  "ON m.company_id = $1 AND m.user_id = $2",
							  3, argtypes);

	values[0] = UUIDPGetDatum(company_id);
	values[1] = UUIDPGetDatum(&actor->user_id);
	values[2] = CStringGetTextDatum(action ? action : min_role);
	ret = SPI_execute_plan(plan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "permission lookup failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		RolesUnknownAction(action);

	check.required = RolesGetText(1, caller);
	check.held = RolesGetText(2, caller);
	enough = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	SPI_finish();

	if (check.held == NULL)
		check.verdict = VERDICT_NOT_MEMBER;
	else if (!enough)
		check.verdict = VERDICT_ROLE_TOO_LOW;
	else
		check.verdict = VERDICT_ALLOWED;
	return check;
}

/* Raise 42501 with a detail that says why the check failed. */
static void
RolesRefuse(const RoleCheck *check, const char *what)
{
	switch (check->verdict)
	{
		case VERDICT_ALLOWED:
			return;
		case VERDICT_NO_ACTOR:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s", what),
					 errdetail("No actor is established in this transaction."),
					 errhint("Call actloom.act_as() first, in the same transaction.")));
			break;
		case VERDICT_OTHER_COMPANY:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s", what),
					 errdetail("The actor acts in another company.")));
			break;
		case VERDICT_NOT_MEMBER:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s", what),
					 errdetail("The actor is not a member of the company.")));
			break;
		case VERDICT_ROLE_TOO_LOW:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s", what),
					 errdetail("It requires role \"%s\"; the actor has role \"%s\".",
							   check->required, check->held)));
			break;
		case VERDICT_NO_SCOPE:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s", what),
					 errdetail("The acting API key has no scope that covers it.")));
			break;
		case VERDICT_NO_ROLE:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s", what),
					 errdetail("An API key acts with scopes, not with a role.")));
			break;
	}
}

static char *
RolesActionArg(FunctionCallInfo fcinfo, int n)
{
	ACTLOOM_REQUIRE_ARG(n, "action");
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

PG_FUNCTION_INFO_V1(authorize);

/*
 * authorize(company uuid, action text) returns when the current actor may do
 * the action in the company and raises 42501 otherwise; 22023 for an
 * unknown action.
 */
Datum
authorize(PG_FUNCTION_ARGS)
{
	char	   *action;
	RoleCheck	check;

	ACTLOOM_REQUIRE_ARG(0, "company");
	action = RolesActionArg(fcinfo, 1);
	check = RolesEvaluate(PG_GETARG_UUID_P(0), action, NULL);
	RolesRefuse(&check, psprintf("action \"%s\"", ActloomQuotable(action, strlen(action))));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(can);

/*
 * can(company uuid, action text) is authorize() as a boolean.
 */
Datum
can(PG_FUNCTION_ARGS)
{
	RoleCheck	check;

	ACTLOOM_REQUIRE_ARG(0, "company");
	check = RolesEvaluate(PG_GETARG_UUID_P(0), RolesActionArg(fcinfo, 1), NULL);
	PG_RETURN_BOOL(check.verdict == VERDICT_ALLOWED);
}

PG_FUNCTION_INFO_V1(require_role);

/*
 * require_role(company uuid, min_role company_role) returns when the actor
 * holds at least min_role in the company and raises 42501 otherwise.
 */
Datum
require_role(PG_FUNCTION_ARGS)
{
	char	   *min_role;
	RoleCheck	check;

	ACTLOOM_REQUIRE_ARG(0, "company");
	ACTLOOM_REQUIRE_ARG(1, "min_role");
	min_role = DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(1)));
	check = RolesEvaluate(PG_GETARG_UUID_P(0), NULL, min_role);
	RolesRefuse(&check, "a role in the company");
	PG_RETURN_VOID();
}
