/*
 * actloom.h
 *	  Declarations shared by the C sources of the actloom extension.
 */
#ifndef ACTLOOM_H
#define ACTLOOM_H

#include "postgres.h"

#include "utils/inet.h"
#include "utils/uuid.h"

/* Who is acting in the current transaction; see context.c. */
typedef enum ActorKind
{
	ACTOR_NONE = 0,
	ACTOR_USER
} ActorKind;

typedef struct ActorContext
{
	ActorKind	kind;
	bool		has_company;
	pg_uuid_t	user_id;
	pg_uuid_t	company_id;
} ActorContext;

/* context.c */
extern void ContextInit(void);
extern const ActorContext *ContextGet(void);
extern void ContextSetUser(const pg_uuid_t *user_id, const pg_uuid_t *company_id);
extern const inet *ContextGetClientAddr(void);

/* audit.c */
extern char *AuditSigningKeyFile;

/* roles.c */
extern char *RolesMembership(const pg_uuid_t *company_id, const pg_uuid_t *user_id);

/* Raise 22004 when a SQL argument that must be given is NULL. */
#define ACTLOOM_REQUIRE_ARG(n, name) \
	do { \
		if (PG_ARGISNULL(n)) \
			ereport(ERROR, \
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
					 errmsg("argument \"%s\" must not be null", (name)))); \
	} while (0)

#endif							/* ACTLOOM_H */
