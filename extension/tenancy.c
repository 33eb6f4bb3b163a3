/*
 * tenancy.c
 *	  The trigger that keeps a row in its tenant.
 *
 * actloom.protect_table() confines every command on a table to the actor's
 * company with row level security.  Policies alone would let the table's
 * owner, a superuser or a BYPASSRLS role re-home a row by changing its tenant
 * key; this trigger refuses that for everyone.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/rel.h"
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
