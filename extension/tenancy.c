/*
 * tenancy.c
 *	  The trigger that keeps a row in its tenant.
 *
 * actloom.protect_table() confines every command on a table to the actor's
 * company with row level security.  Policies alone would let the table's
 * owner, a superuser or a BYPASSRLS role re-home a row by changing its tenant
 * key; this trigger refuses that for everyone.
 *
 * protect_table() itself runs with its caller's rights, since ALTER TABLE
 * must see the table's owner.  Auditing it needs the rights of the audit
 * trail's owner instead, for one statement: audit_protect_table() checks
 * ownership of the table, then switches to that owner the way a SECURITY
 * DEFINER function would (restricted, and undone by the transaction's
 * abort if anything fails).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "actloom.h"

PG_FUNCTION_INFO_V1(refuse_tenant_move);

/*
 * refuse_tenant_move() is a BEFORE UPDATE row trigger whose one argument
 * names the tenant column; it raises 42501 when an update changes that
 * column and otherwise lets the new row through unchanged.
 */
Datum
refuse_tenant_move(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	const char *column;
	int			attnum;
	bool		oldnull;
	bool		newnull;
	Datum		olddatum;
	Datum		newdatum;
	bool		same;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("refuse_tenant_move() must be a BEFORE UPDATE row trigger")));
	if (trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("refuse_tenant_move() takes the tenant column name as its only argument")));

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	column = trigdata->tg_trigger->tgargs[0];
	attnum = SPI_fnumber(tupdesc, column);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("tenant column \"%s\" does not exist in table \"%s\"",
						column, RelationGetRelationName(trigdata->tg_relation))));
	if (TupleDescAttr(tupdesc, attnum - 1)->atttypid != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column \"%s\" must be of type uuid", column)));

	olddatum = heap_getattr(trigdata->tg_trigtuple, attnum, tupdesc, &oldnull);
	newdatum = heap_getattr(trigdata->tg_newtuple, attnum, tupdesc, &newnull);
	if (oldnull || newnull)
		same = oldnull && newnull;
	else
		same = memcmp(DatumGetUUIDP(olddatum), DatumGetUUIDP(newdatum),
					  sizeof(pg_uuid_t)) == 0;

	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot move a row of table \"%s\" to another company",
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("Column \"%s\" is the tenant key; it never changes.", column)));

	return PointerGetDatum(trigdata->tg_newtuple);
}

PG_FUNCTION_INFO_V1(audit_protect_table);

/*
 * audit_protect_table(tbl regclass, company_column name) appends the
 * "table.protect" entry for a table the caller owns, as the owner of the
 * audit trail.  Raises 42501 for anybody but the table's owner.
 */
Datum
audit_protect_table(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Oid			audit_relid;
	Oid			owner;
	HeapTuple	tuple;
	Oid			save_userid;
	int			save_sec;
	Oid			argtypes[2] = {REGCLASSOID, NAMEOID};
	Datum		args[2];

	ACTLOOM_REQUIRE_ARG(0, "tbl");
	ACTLOOM_REQUIRE_ARG(1, "company_column");
	relid = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));

	audit_relid = get_relname_relid("audit_log", get_namespace_oid("actloom", false));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(audit_relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "table actloom.audit_log does not exist");
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = ObjectIdGetDatum(relid);
	args[1] = PG_GETARG_DATUM(1);
	if (SPI_execute_with_args("SELECT actloom._audit_protect_table_as_owner($1, $2)",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not audit protect_table");
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	PG_RETURN_VOID();
}
