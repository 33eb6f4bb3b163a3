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
 * _PG_init defines the settings, reserves the "actloom." prefix, so that
 * nobody can invent settings that look like ours, and installs the transaction callbacks that
 * keep the actor context transaction-scoped.
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
	MarkGUCPrefixReserved("actloom");
	ContextInit();
}
