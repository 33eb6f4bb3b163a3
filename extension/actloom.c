/*
 * actloom.c
 *	  Module entry point of the actloom extension.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "actloom.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init reserves the "actloom." settings prefix, so that nobody can invent
 * settings that look like ours, and installs the transaction callbacks that
 * keep the actor context transaction-scoped.
 */
void
_PG_init(void)
{
	MarkGUCPrefixReserved("actloom");
	ContextInit();
}
