/*
 * actloom.h
 *	  Declarations shared by the C sources of the actloom extension.
 */
#ifndef ACTLOOM_H
#define ACTLOOM_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/uuid.h"

/* Who is acting in the current transaction; see context.c. */
typedef enum ActorKind
{
	ACTOR_NONE = 0,
	ACTOR_USER,
	ACTOR_API_KEY
} ActorKind;

/* An API key id: 12 base62 characters (see apikey.c). */
#define APIKEY_ID_LEN 12

typedef struct ActorContext
{
	ActorKind	kind;
	bool		has_company;
	pg_uuid_t	user_id;		/* ACTOR_USER */
	pg_uuid_t	company_id;
	pg_uuid_t	api_key;		/* ACTOR_API_KEY: actloom.api_keys.id */
	char		key_id[APIKEY_ID_LEN + 1];	/* ACTOR_API_KEY: its public key id */
	int			nscopes;		/* ACTOR_API_KEY */
	char	  **scopes;			/* in TopMemoryContext */
	bool		has_session;	/* ACTOR_USER signed in through a session */
	pg_uuid_t	session_id;
} ActorContext;

/* actloom.c: settings */
extern char *ActloomKeyringFile;
extern int	ActloomArgon2MemoryKiB;
extern int	ActloomArgon2Iterations;
extern int	ActloomArgon2Parallelism;
extern int	ActloomPasswordMinLength;
extern int	ActloomPasswordMaxBytes;

/* actloom.c: helpers */
typedef struct ActloomSavedUser
{
	Oid			userid;
	int			sec_context;
} ActloomSavedUser;

extern SPIPlanPtr ActloomPrepare(SPIPlanPtr *slot, const char *query,
								 int nargs, Oid *argtypes);
extern void ActloomBecomeOwner(ActloomSavedUser *saved);
extern void ActloomRestoreUser(const ActloomSavedUser *saved);

/* At most this many characters of an input are quoted in a message. */
#define ACTLOOM_QUOTE_MAX 100
extern char *ActloomQuotable(const char *s, int len);

/* context.c */
extern void ContextInit(void);
extern const ActorContext *ContextGet(void);
extern void ContextSetUser(const pg_uuid_t *user_id, const pg_uuid_t *company_id);
extern void ContextSetApiKey(const pg_uuid_t *api_key, const char *key_id,
							 const pg_uuid_t *company_id, int nscopes, char **scopes);
extern void ContextSetSession(const pg_uuid_t *session_id, const pg_uuid_t *user_id,
							  const pg_uuid_t *company_id);
extern const inet *ContextGetClientAddr(void);

/* audit.c */
extern char *AuditSigningKeyFile;
extern void AuditInit(void);

/* apikey.c */
extern void ApiKeyRandomBase62(char *out, int n);

/* webhook.c */
extern int	WebhookMaxEndpoints;
extern int	WebhookMaxPayload;
extern bool WebhookAllowHttp;
extern char *WebhookRetrySchedule;
extern int	WebhookDisableAfter;
extern bool WebhookCheckRetrySchedule(char **newval, void **extra, GucSource source);

/* session.c */
extern void SessionInit(void);

/* roles.c */
extern char *RolesMembership(const pg_uuid_t *company_id, const pg_uuid_t *user_id);
extern bool RolesScopeCovers(const char *scope, const char *action);
extern void RolesRequireAction(const char *action);

/* crypto.c: the one place that calls OpenSSL */
#define CRYPTO_KEY_LEN		32	/* AES-256 */
#define CRYPTO_NONCE_LEN	12	/* GCM, 96 bits */
#define CRYPTO_TAG_LEN		16
#define CRYPTO_SHA256_LEN	32

extern void CryptoRandom(void *buf, size_t len);
extern void CryptoSha256(const void *data, size_t len, uint8 *out);
extern void CryptoGcmSeal(const uint8 *key, const uint8 *nonce,
						  const uint8 *aad, size_t aadlen,
						  const uint8 *plain, size_t len,
						  uint8 *cipher, uint8 *tag);
extern bool CryptoGcmOpen(const uint8 *key, const uint8 *nonce,
						  const uint8 *aad, size_t aadlen,
						  const uint8 *cipher, size_t len,
						  const uint8 *tag, uint8 *plain);
extern void CryptoHmacSha256(const uint8 *key, size_t keylen, int nparts,
							 const void *const *parts, const size_t *lens, uint8 *out);
extern void CryptoForgetKeys(void);
extern bool CryptoEqual(const void *a, const void *b, size_t len);
extern void CryptoWipe(void *buf, size_t len);

/* seal.c */
extern void SealInit(void);

/* wake.c */
extern void WakeInit(void);
extern bytea *SealWebhookSecret(const pg_uuid_t *company, const char *endpoint,
								const uint8 *key, Size len);
extern bytea *UnsealWebhookSecret(const pg_uuid_t *company, const char *endpoint,
								  const bytea *sealed);

/* keyring.c */
typedef struct MasterKey
{
	int32		id;
	uint8		key[CRYPTO_KEY_LEN];
} MasterKey;

extern uint64 KeyringCheck(void);
extern const MasterKey *KeyringGet(int32 id);
extern const MasterKey *KeyringActive(void);

/* Raise 22004 when a SQL argument that must be given is NULL. */
#define ACTLOOM_REQUIRE_ARG(n, name) \
	do { \
		if (PG_ARGISNULL(n)) \
			ereport(ERROR, \
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
					 errmsg("argument \"%s\" must not be null", (name)))); \
	} while (0)

#endif							/* ACTLOOM_H */
