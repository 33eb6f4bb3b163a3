/*
 * tenancy.c
 *	  Confining application tables to the acting company.
 *
 * protect_table() confines every command on a table to the actor's company
 * with row level security: it enables and forces it, adds a permissive
 * policy for each command and a restrictive guard, all keyed on the tenant
 * column, and a trigger that refuses changing that column.  Policies alone
 * would let the table's owner, a superuser or a BYPASSRLS role re-home a
 * row; the trigger refuses that for everyone.
 *
 * Partitions and inheritance children.  Row level security belongs to each
 * table: a query through a parent applies the parent's policies to all its
 * rows, but a query that names a partition or child applies that table's
 * own.  So every partition and child of a protected table, at every level,
 * is protected too.  protect_table() protects the whole tree, each table
 * before its children.  Later, the event trigger actloom_protect_children
 * protects every table that becomes a partition or child of a protected
 * table (CREATE TABLE ... PARTITION OF or INHERITS, ALTER TABLE ... ATTACH
 * PARTITION or INHERIT), with the tables below it, at the end of the command
 * that made it one; a table detached from a protected table stays protected.
 * A foreign table cannot be protected, so it can be neither: protect_table()
 * and those commands refuse it.  Each table is locked (by its ALTER TABLE)
 * before its children are listed, so that none is attached unseen meanwhile.
 *
 * The move trigger of a partitioned table is cloned by PostgreSQL into each
 * of its partitions, present and future, and dropped from a partition when
 * it is detached.  A partition therefore keeps its parent's trigger and
 * gets none of its own; a partition's own trigger of the same name would
 * make the clone, and so CREATE TRIGGER on the parent or ATTACH PARTITION,
 * fail: it is dropped first (actloom_protect_children_prepare does that for
 * ATTACH, at the start of the command).  A detached partition gets its own
 * trigger back.
 *
 * Rights.  All of it runs with the rights of the role that called
 * protect_table() or ran the command, so the tables must be its own.  Only
 * the audit entry of each table ("table.protect") is appended as the owner
 * of the audit trail, for one statement, once the protection is in place.
 * It goes to the schema chain, not the system chain that every sign-in
 * appends to: a migration that protects a table in a transaction it keeps
 * open delays other migrations, never a sign-in.  EXECUTE on protect_table()
 * is for members of actloom_dba; the event trigger protects new partitions
 * for any owner of a protected table.
 *
 * The statements are run with search_path set to pg_catalog, actloom and
 * pg_temp, so that they and the names they print mean one thing, whatever
 * the caller's setting.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/deparse_utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "actloom.h"

#define TENANCY_MOVE_TRIGGER	"actloom_tenant_move"

/* Why a table is being protected, for the messages of a refusal. */
typedef enum TenancyReason
{
	TENANCY_ASKED,				/* protect_table() named it */
	TENANCY_BELOW,				/* a partition or child of the table named */
	TENANCY_DETACHED			/* detached from a protected table */
} TenancyReason;

typedef struct TenancyTree
{
	const char *column;
	TenancyReason reason;
	Oid			origin;			/* the protected table it belongs (belonged) to */
	List	   *done;			/* tables protected so far */
} TenancyTree;

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

/*
 * TenancyPin sets search_path (and, against the notices of DROP ... IF
 * EXISTS, client_min_messages) for the statements to come; TenancyUnpin
 * undoes both.  An error in between needs no cleanup: the abort of the
 * (sub)transaction restores the settings.
 */
static int
TenancyPin(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, actloom, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("client_min_messages", "warning",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static void
TenancyUnpin(int level)
{
	AtEOXact_GUC(true, level);
}

static void
TenancyConnect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Run one statement of ours. */
static void
TenancyRun(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

/*
 * Run a query with one oid parameter and, optionally, one name; not read-only,
 * so that it sees what our statements changed.
 */
static void
TenancyQuery(const char *sql, Oid relid, const char *name)
{
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Datum		args[2];
	int			rc;

	args[0] = ObjectIdGetDatum(relid);
	if (name != NULL)
		args[1] = DirectFunctionCall1(namein, CStringGetDatum(name));
	rc = SPI_execute_with_args(sql, name != NULL ? 2 : 1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
}

/*
 * The table's name as regclass prints it, under the pinned search_path:
 * schema-qualified unless in actloom or pg_temp; quoted as SQL needs.
 */
static char *
TenancyName(Oid relid)
{
	return DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid)));
}

/*
 * TenancyProtectedColumn returns the tenant column of a protected table (one
 * with the guard policy and the move trigger, its own or its parent's), or
 * NULL when it is not protected.
 */
static char *
TenancyProtectedColumn(Oid relid)
{
	bool		isnull;
	bytea	   *args;
	int			len;

	TenancyQuery("SELECT t.tgargs FROM pg_catalog.pg_trigger t"
				 " WHERE t.tgrelid = $1 AND t.tgname = '" TENANCY_MOVE_TRIGGER "' AND t.tgnargs = 1"
				 "   AND EXISTS (SELECT FROM pg_catalog.pg_policy p"
				 "                WHERE p.polrelid = $1 AND p.polname = 'actloom_tenant_guard')",
				 relid, NULL);
	if (SPI_processed == 0)
		return NULL;
	args = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	len = VARSIZE_ANY_EXHDR(args);
	/* One argument: its bytes and a terminating zero byte. */
	if (len < 2 || VARDATA_ANY(args)[len - 1] != '\0')
		elog(ERROR, "malformed arguments of trigger \"%s\"", TENANCY_MOVE_TRIGGER);
	return pnstrdup(VARDATA_ANY(args), len - 1);
}

/*
 * TenancyMoveTrigger tells whether the table has a move trigger, and
 * whether it is a clone of its parent's.
 */
static bool
TenancyMoveTrigger(Oid relid, bool *cloned)
{
	bool		isnull;

	TenancyQuery("SELECT t.tgparentid <> 0 FROM pg_catalog.pg_trigger t"
				 " WHERE t.tgrelid = $1 AND t.tgname = '" TENANCY_MOVE_TRIGGER "'",
				 relid, NULL);
	if (SPI_processed == 0)
		return false;
	*cloned = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return true;
}

/*
 * TenancyDropOwnMoveTriggers drops the move triggers of a table and of the
 * partitions below it that are not clones, so that the clones of a
 * partitioned parent's trigger can take their place.
 */
static void
TenancyDropOwnMoveTriggers(Oid relid)
{
	ListCell   *lc;

	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
	{
		Oid			part = lfirst_oid(lc);
		bool		cloned;

		if (TenancyMoveTrigger(part, &cloned) && !cloned)
			TenancyRun(psprintf("DROP TRIGGER " TENANCY_MOVE_TRIGGER " ON %s", TenancyName(part)));
	}
}

/*
 * TenancyAudit appends the "table.protect" entry of a table the caller owns,
 * as the owner of the audit trail (actloom._audit_protect_table_as_owner
 * checks that the table is protected on that column).
 */
static void
TenancyAudit(Oid relid, const char *column)
{
	ActloomSavedUser saved;
	Oid			argtypes[2] = {REGCLASSOID, NAMEOID};
	Datum		args[2];

	args[0] = ObjectIdGetDatum(relid);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(column));
	ActloomBecomeOwner(&saved);
	if (SPI_execute_with_args("SELECT actloom._audit_protect_table_as_owner($1, $2)",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not audit protect_table");
	ActloomRestoreUser(&saved);
}

/* Protect one table: row level security, the policies, the trigger, the entry. */
static void
TenancyProtectRelation(Oid relid, const char *column)
{
	static const char *const commands[] = {"select", "insert", "update", "delete", "guard"};
	const char *rel = TenancyName(relid);
	const char *col = quote_identifier(column);
	bool		cloned = false;
	size_t		i;

	TenancyRun(psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY", rel));

	/*
	 * Permissive policies let the actor's company in; the restrictive guard
	 * keeps any other permissive policy of the application from widening it.
	 */
	for (i = 0; i < lengthof(commands); i++)
		TenancyRun(psprintf("DROP POLICY IF EXISTS actloom_tenant_%s ON %s", commands[i], rel));
	TenancyRun(psprintf("CREATE POLICY actloom_tenant_select ON %s FOR SELECT "
						"USING (%s = actloom.current_company())", rel, col));
	TenancyRun(psprintf("CREATE POLICY actloom_tenant_insert ON %s FOR INSERT "
						"WITH CHECK (%s = actloom.current_company())", rel, col));
	TenancyRun(psprintf("CREATE POLICY actloom_tenant_update ON %s FOR UPDATE "
						"USING (%s = actloom.current_company()) "
						"WITH CHECK (%s = actloom.current_company())", rel, col, col));
	TenancyRun(psprintf("CREATE POLICY actloom_tenant_delete ON %s FOR DELETE "
						"USING (%s = actloom.current_company())", rel, col));
	TenancyRun(psprintf("CREATE POLICY actloom_tenant_guard ON %s AS RESTRICTIVE FOR ALL "
						"USING (%s = actloom.current_company()) "
						"WITH CHECK (%s = actloom.current_company())", rel, col, col));

	/*
	 * A partition has its protected parent's trigger already.  A partitioned
	 * table's trigger is cloned into the partitions below it, where a trigger
	 * of their own would collide with it.
	 */
	if (!TenancyMoveTrigger(relid, &cloned) || !cloned)
	{
		if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
			TenancyDropOwnMoveTriggers(relid);
		else
			TenancyRun(psprintf("DROP TRIGGER IF EXISTS " TENANCY_MOVE_TRIGGER " ON %s", rel));
		TenancyRun(psprintf("CREATE TRIGGER " TENANCY_MOVE_TRIGGER " BEFORE UPDATE ON %s FOR EACH ROW "
							"WHEN (OLD.%s IS DISTINCT FROM NEW.%s) "
							"EXECUTE FUNCTION actloom.refuse_tenant_move(%s)",
							rel, col, col, quote_literal_cstr(column)));
	}

	TenancyAudit(relid, column);
}

/*
 * TenancyProtectTree protects a table and every partition and child below
 * it, each before its children, refusing foreign tables and tables the
 * caller does not own.
 */
static void
TenancyProtectTree(Oid relid, TenancyTree *tree)
{
	char		relkind = get_rel_relkind(relid);
	const char *rel = TenancyName(relid);
	ListCell   *lc;

	if (list_member_oid(tree->done, relid))
		return;
	tree->done = lappend_oid(tree->done, relid);

	if (relkind == RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect foreign table \"%s\"", rel),
				 errdetail("Every partition and child of protected table \"%s\" is protected, and row level security cannot be enabled on a foreign table.",
						   TenancyName(tree->origin))));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		elog(ERROR, "\"%s\" is neither a table nor a partitioned table", rel);
	if (!pg_class_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid)),
				 tree->reason == TENANCY_ASKED ? 0
				 : tree->reason == TENANCY_DETACHED
				 ? errdetail("A table detached from protected table \"%s\" stays protected, and only its owner can protect it.",
							 TenancyName(tree->origin))
				 : errdetail("Every partition and child of protected table \"%s\" is protected, and only its owner can protect \"%s\".",
							 TenancyName(tree->origin), rel)));

	TenancyProtectRelation(relid, tree->column);

	/* Detached partitions too: they are partitions until the detach ends. */
	foreach(lc, find_inheritance_children_extended(relid, false, NoLock, NULL, NULL))
	{
		if (tree->reason == TENANCY_ASKED)
			tree->reason = TENANCY_BELOW;
		TenancyProtectTree(lfirst_oid(lc), tree);
	}
}

/*
 * TenancyAncestorColumn finds the tenant column of the protected tables a
 * table is a partition or child of, at any level; NULL when there are none.
 * The nearest of them is returned in *ancestor.  Tables protected on
 * different columns cannot share a child: that raises 42P16.
 */
static char *
TenancyAncestorColumn(Oid relid, Oid *ancestor)
{
	List	   *ancestors = NIL;
	char	   *column = NULL;
	ListCell   *lc;
	uint64		i;

	TenancyQuery("WITH RECURSIVE up (rel, depth) AS ("
				 "  SELECT i.inhparent, 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = $1"
				 "  UNION ALL"
				 "  SELECT i.inhparent, up.depth + 1 FROM pg_catalog.pg_inherits i"
				 "    JOIN up ON i.inhrelid = up.rel)"
				 " SELECT rel FROM up ORDER BY depth",
				 relid, NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		ancestors = lappend_oid(ancestors,
								DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 1, &isnull)));
	}
	foreach(lc, ancestors)
	{
		Oid			anc = lfirst_oid(lc);
		char	   *c = TenancyProtectedColumn(anc);

		if (c == NULL)
			continue;
		if (column == NULL)
		{
			column = c;
			*ancestor = anc;
		}
		else if (strcmp(c, column) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("table \"%s\" cannot inherit from tables protected on different columns",
							TenancyName(relid)),
					 errdetail("Table \"%s\" is protected on column \"%s\", table \"%s\" on column \"%s\".",
							   TenancyName(*ancestor), column, TenancyName(anc), c)));
	}
	return column;
}

PG_FUNCTION_INFO_V1(protect_table);

/*
 * protect_table(tbl regclass, company_column name) confines the table, and
 * every partition and child below it, to the actor's company; idempotent.
 * Raises 42809 for anything but a table or partitioned table, or a foreign
 * table below it; 42703 and 42804 for a missing or non-uuid column; 42501
 * for a table the caller does not own; 42P16 when the table belongs to a
 * table protected on another column.
 */
Datum
protect_table(PG_FUNCTION_ARGS)
{
	Oid			relid;
	const char *column;
	const char *rel;
	char		relkind;
	AttrNumber	attnum;
	char	   *inherited;
	Oid			ancestor = InvalidOid;
	TenancyTree tree = {0};
	int			level;

	ACTLOOM_REQUIRE_ARG(0, "tbl");
	ACTLOOM_REQUIRE_ARG(1, "company_column");
	relid = PG_GETARG_OID(0);
	column = NameStr(*PG_GETARG_NAME(1));

	TenancyConnect();
	level = TenancyPin();
	rel = TenancyName(relid);
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", rel)));
	attnum = get_attnum(relid, column);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", column, rel)));
	if (get_atttype(relid, attnum) != UUIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" must be of type uuid", column, rel)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	inherited = TenancyAncestorColumn(relid, &ancestor);
	if (inherited != NULL && strcmp(inherited, column) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" belongs to protected table \"%s\", whose tenant column is \"%s\"",
						rel, TenancyName(ancestor), inherited),
				 errhint("Protect it on column \"%s\", or detach it first.", inherited)));

	tree.column = column;
	tree.reason = TENANCY_ASKED;
	tree.origin = relid;
	TenancyProtectTree(relid, &tree);

	TenancyQuery("SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a"
				 "  ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
				 " WHERE i.indrelid = $1 AND a.attname = $2",
				 relid, column);
	if (SPI_processed == 0)
		ereport(WARNING,
				(errmsg("column \"%s\" of table \"%s\" has no index", column, rel),
				 errhint("Every query filters on it: CREATE INDEX ON %s (%s).",
						 rel, quote_identifier(column))));
	TenancyUnpin(level);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * At the start of ALTER TABLE: a table about to be attached as a partition
 * of a table with a move trigger gets its parent's trigger cloned into it
 * and the tables below it, which fails where one has its own trigger of the
 * name.  Drop those first; the end of the command protects them again.
 * Tables the caller does not own are left for ATTACH to refuse.
 */
static void
TenancyBeforeAlter(Node *parsetree)
{
	AlterTableStmt *stmt;
	ListCell   *lc;

	if (!IsA(parsetree, AlterTableStmt))
		return;
	stmt = (AlterTableStmt *) parsetree;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		Oid			parent;
		Oid			part;
		int			level;
		bool		cloned;

		if (cmd->subtype != AT_AttachPartition)
			continue;
		/* The names as the command will resolve them, before search_path is pinned. */
		parent = RangeVarGetRelid(stmt->relation, NoLock, true);
		part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);
		if (!OidIsValid(parent) || !OidIsValid(part) ||
			get_rel_relkind(part) == RELKIND_FOREIGN_TABLE ||
			!pg_class_ownercheck(part, GetUserId()))
			continue;
		TenancyConnect();
		level = TenancyPin();
		if (TenancyMoveTrigger(parent, &cloned))
			TenancyDropOwnMoveTriggers(part);
		TenancyUnpin(level);
		SPI_finish();
	}
}

/* The table a subcommand names, as the command resolved it. */
static Oid
TenancyPartition(AlterTableCmd *at)
{
	return RangeVarGetRelid(((PartitionCmd *) at->def)->name, NoLock, true);
}

/*
 * At the end of a command: protect what became a partition or child of a
 * protected table, and what was detached from one.  The names of attached
 * and detached partitions are resolved before search_path is pinned.
 */
static void
TenancyAfterCommand(void)
{
	List	   *joined = NIL;
	List	   *left = NIL;
	List	   *from = NIL;
	ListCell   *lc;
	ListCell   *lc2;
	uint64		i;
	int			level;

	TenancyConnect();
	if (SPI_execute("SELECT command FROM pg_catalog.pg_event_trigger_ddl_commands()",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the commands of this statement");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		CollectedCommand *cmd = (CollectedCommand *)
			DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (cmd->type == SCT_Simple && cmd->parsetree != NULL &&
			(IsA(cmd->parsetree, CreateStmt) || IsA(cmd->parsetree, CreateForeignTableStmt)) &&
			((CreateStmt *) cmd->parsetree)->inhRelations != NIL &&
			cmd->d.simple.address.classId == RelationRelationId &&
			OidIsValid(cmd->d.simple.address.objectId))
			joined = list_append_unique_oid(joined, cmd->d.simple.address.objectId);
		else if (cmd->type == SCT_AlterTable)
		{
			foreach(lc, cmd->d.alterTable.subcmds)
			{
				AlterTableCmd *at = (AlterTableCmd *) ((CollectedATSubcmd *) lfirst(lc))->parsetree;
				Oid			part;

				if (at->subtype == AT_AddInherit)
					joined = list_append_unique_oid(joined, cmd->d.alterTable.objectId);
				else if (at->subtype == AT_AttachPartition &&
						 OidIsValid(part = TenancyPartition(at)))
					joined = list_append_unique_oid(joined, part);
				else if ((at->subtype == AT_DetachPartition ||
						  at->subtype == AT_DetachPartitionFinalize) &&
						 OidIsValid(part = TenancyPartition(at)))
				{
					left = lappend_oid(left, part);
					from = lappend_oid(from, cmd->d.alterTable.objectId);
				}
			}
		}
	}

	level = TenancyPin();
	foreach(lc, joined)
	{
		Oid			child = lfirst_oid(lc);
		char		relkind = get_rel_relkind(child);
		TenancyTree tree = {0};

		/* ALTER INDEX ... ATTACH PARTITION attaches indexes. */
		if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
			relkind != RELKIND_FOREIGN_TABLE)
			continue;
		tree.column = TenancyAncestorColumn(child, &tree.origin);
		if (tree.column == NULL)
			continue;
		tree.reason = TENANCY_BELOW;
		TenancyProtectTree(child, &tree);
	}
	forboth(lc, left, lc2, from)
	{
		TenancyTree tree = {0};

		/* A foreign table was never protected (nor attached to a protected table). */
		tree.column = TenancyProtectedColumn(lfirst_oid(lc2));
		if (tree.column == NULL || get_rel_relkind(lfirst_oid(lc)) == RELKIND_FOREIGN_TABLE)
			continue;
		tree.reason = TENANCY_DETACHED;
		tree.origin = lfirst_oid(lc2);
		TenancyProtectTree(lfirst_oid(lc), &tree);
	}
	TenancyUnpin(level);
	SPI_finish();
}

PG_FUNCTION_INFO_V1(tenancy_ddl);

/*
 * tenancy_ddl() is the function of the event triggers
 * actloom_protect_children_prepare (ddl_command_start of ALTER TABLE) and
 * actloom_protect_children (ddl_command_end of the commands that make a
 * table a partition or child); see the top of this file.
 */
Datum
tenancy_ddl(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_tenancy_ddl() must be called as an event trigger")));
	if (strcmp(trigdata->event, "ddl_command_start") == 0)
		TenancyBeforeAlter(trigdata->parsetree);
	else if (strcmp(trigdata->event, "ddl_command_end") == 0)
		TenancyAfterCommand();
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(audit_protect_table);

/*
 * audit_protect_table(tbl regclass, company_column name) appends the
 * "table.protect" entry for a table the caller owns; 42501 for anybody but
 * its owner.  Only 0.1's protect_table calls it (through
 * actloom._audit_protect_table, which 0.2 drops): it stays so that a 0.1
 * database runs on this library until ALTER EXTENSION actloom UPDATE.
 */
Datum
audit_protect_table(PG_FUNCTION_ARGS)
{
	Oid			relid;

	ACTLOOM_REQUIRE_ARG(0, "tbl");
	ACTLOOM_REQUIRE_ARG(1, "company_column");
	relid = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	TenancyAudit(relid, NameStr(*PG_GETARG_NAME(1)));
	SPI_finish();
	PG_RETURN_VOID();
}
