/*
 * password.c
 *	  Password storage: argon2id hashes in PHC string format, imported bcrypt
 *	  hashes, and the password policy.
 *
 * Hashing.  New hashes are argon2id (libargon2) with a 16-byte salt from
 * RAND_bytes, a 32-byte tag, and the cost of the settings
 * actloom.argon2_memory / _iterations / _parallelism, whose floors are the
 * OWASP recommendation (19 MiB, 2, 1).  They are stored as PHC strings:
 *
 *		$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<tag, base64>
 *
 * (standard base64 alphabet, no padding), the format of libargon2, Auth.js
 * adapters and most other libraries, so hashes can move both ways.
 *
 * Threads.  libargon2 computes the lanes of a hash on as many threads as it
 * has lanes, if let.  Here every hash, new or verified, runs on the calling
 * backend's thread, lane after lane (argon2_ctx with one thread; the result
 * does not depend on it): no threads are started inside a PostgreSQL backend,
 * and a hash costs one core however many lanes it has, which is what the
 * gateway's budget of concurrent hashes counts.
 *
 * Verifying.  An argon2id hash is parsed here, strictly, and recomputed with
 * argon2id_hash_raw; the tags are compared with CRYPTO_memcmp.  A bcrypt
 * hash ($2a$, $2b$, $2y$) is checked with pgcrypto's crypt(), which knows
 * the algorithm as $2a$ only, so the other two prefixes are given to it as
 * $2a$: the three differ only in how old implementations mishandled
 * passwords of more than 255 bytes or with 8-bit characters.  Results are
 * compared with CRYPTO_memcmp.  When there is no hash to check (no such
 * user, or a user without a password), a dummy argon2id hash of the current
 * cost is checked instead, so that the answer takes about as long either way.
 *
 * Imported hashes are validated before they are stored, with caps on the
 * cost (argon2id: 1 GiB, 64 passes, 16 lanes; bcrypt: 2^16 rounds) so that
 * a stored hash cannot make sign-in a denial of service.  A hash weaker than the current settings,
 * or a bcrypt hash, "needs rehash": verify_password() replaces it after a
 * successful sign-in.
 *
 * No password, hash or salt ever reaches a message or the log; every buffer
 * that held one is wiped.
 */
#include "postgres.h"

#include <argon2.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "actloom.h"

#define PASSWORD_SALT_LEN		16
#define PASSWORD_TAG_LEN		32
#define PASSWORD_MAX_SALT		64
#define PASSWORD_MAX_TAG		64
#define IMPORT_MAX_MEMORY_KIB	(1024 * 1024)
#define IMPORT_MAX_ITERATIONS	64
#define IMPORT_MAX_PARALLELISM	16
#define BCRYPT_LEN				60
#define BCRYPT_MAX_COST			16

typedef enum PasswordScheme
{
	SCHEME_UNKNOWN,
	SCHEME_ARGON2ID,
	SCHEME_BCRYPT
} PasswordScheme;

/* A parsed argon2id PHC string. */
typedef struct Argon2Hash
{
	uint32		m;
	uint32		t;
	uint32		p;
	uint8		salt[PASSWORD_MAX_SALT];
	size_t		saltlen;
	uint8		tag[PASSWORD_MAX_TAG];
	size_t		taglen;
} Argon2Hash;

static SPIPlanPtr CryptPlan = NULL;

/* The dummy hash checked when there is none, and the cost it was made with. */
static char *DummyHash = NULL;
static uint32 DummyM, DummyT, DummyP;

static const char B64[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Decode unpadded standard base64 of exactly len characters into out (at
 * most outmax bytes).  Returns the number of bytes, or -1 when the text is
 * not canonical unpadded base64.
 */
static int
PasswordB64Decode(const char *s, size_t len, uint8 *out, size_t outmax)
{
	uint32		acc = 0;
	int			bits = 0;
	size_t		n = 0;
	size_t		i;

	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++)
	{
		const char *p = memchr(B64, s[i], 64);

		if (p == NULL || s[i] == '\0')
			return -1;
		acc = (acc << 6) | (uint32) (p - B64);
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (n >= outmax)
				return -1;
			out[n++] = (uint8) (acc >> bits);
		}
	}
	/* Leftover bits must be zero, so each byte string has one encoding. */
	if ((acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (int) n;
}

/*
 * Encode len bytes as unpadded standard base64 into out, which holds at
 * least 4 * ((len + 2) / 3) + 1 bytes; returns the length written.
 */
static size_t
PasswordB64Encode(const uint8 *in, size_t len, char *out)
{
	size_t		n = 0;
	size_t		i;

	for (i = 0; i + 3 <= len; i += 3)
	{
		uint32		v = ((uint32) in[i] << 16) | ((uint32) in[i + 1] << 8) | in[i + 2];

		out[n++] = B64[(v >> 18) & 63];
		out[n++] = B64[(v >> 12) & 63];
		out[n++] = B64[(v >> 6) & 63];
		out[n++] = B64[v & 63];
	}
	if (len - i == 1)
	{
		out[n++] = B64[in[i] >> 2];
		out[n++] = B64[(in[i] & 3) << 4];
	}
	else if (len - i == 2)
	{
		out[n++] = B64[in[i] >> 2];
		out[n++] = B64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[n++] = B64[(in[i + 1] & 15) << 2];
	}
	out[n] = '\0';
	return n;
}

/* Parse a decimal uint32 at *s, advancing it; false on anything else. */
static bool
PasswordParseUint(const char **s, uint32 *v)
{
	uint64		acc = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9'))
		return false;
	for (; *p >= '0' && *p <= '9'; p++)
	{
		acc = acc * 10 + (*p - '0');
		if (acc > PG_UINT32_MAX)
			return false;
	}
	*v = (uint32) acc;
	*s = p;
	return true;
}

/*
 * Parse "$argon2id$v=19$m=M,t=T,p=P$SALT$TAG" into h.  Returns NULL when it
 * is well formed, or why not (without quoting it).
 */
static const char *
PasswordParseArgon2(const char *s, Argon2Hash *h)
{
	const char *salt;
	const char *tag;
	uint32		version;
	int			n;

	if (strncmp(s, "$argon2id$", 10) != 0)
		return "it is not an argon2id hash";
	s += 10;
	if (strncmp(s, "v=", 2) != 0)
		return "the version field is missing";
	s += 2;
	if (!PasswordParseUint(&s, &version) || version != ARGON2_VERSION_13)
		return "only argon2 version 19 is accepted";
	if (strncmp(s, "$m=", 3) != 0)
		return "the parameters are malformed";
	s += 3;
	if (!PasswordParseUint(&s, &h->m) || strncmp(s, ",t=", 3) != 0)
		return "the parameters are malformed";
	s += 3;
	if (!PasswordParseUint(&s, &h->t) || strncmp(s, ",p=", 3) != 0)
		return "the parameters are malformed";
	s += 3;
	if (!PasswordParseUint(&s, &h->p) || *s != '$')
		return "the parameters are malformed";
	salt = s + 1;
	tag = strchr(salt, '$');
	if (tag == NULL)
		return "the hash field is missing";
	n = PasswordB64Decode(salt, tag - salt, h->salt, sizeof(h->salt));
	if (n < (int) ARGON2_MIN_SALT_LENGTH)
		return "the salt must be 8 to 64 bytes of unpadded base64";
	h->saltlen = n;
	tag++;
	n = PasswordB64Decode(tag, strlen(tag), h->tag, sizeof(h->tag));
	if (n < 16)
		return "the hash must be 16 to 64 bytes of unpadded base64";
	h->taglen = n;
	if (h->p < 1 || h->p > IMPORT_MAX_PARALLELISM)
		return "parallelism must be between 1 and 16";
	if (h->t < 1 || h->t > IMPORT_MAX_ITERATIONS)
		return "iterations must be between 1 and 64";
	if (h->m < 8 * h->p || h->m > IMPORT_MAX_MEMORY_KIB)
		return "memory must be between 8 KiB per lane and 1 GiB";
	return NULL;
}

/*
 * Whether s is a bcrypt hash: $2a$, $2b$ or $2y$, cost 04-16, 53 characters.
 * Higher costs are refused: at 2^31 rounds one sign-in would take hours.
 */
static bool
PasswordIsBcrypt(const char *s)
{
	int			i;
	int			cost;

	if (strlen(s) != BCRYPT_LEN || s[0] != '$' || s[1] != '2' ||
		(s[2] != 'a' && s[2] != 'b' && s[2] != 'y') || s[3] != '$' ||
		s[4] < '0' || s[4] > '3' || s[5] < '0' || s[5] > '9' || s[6] != '$')
		return false;
	cost = (s[4] - '0') * 10 + (s[5] - '0');
	if (cost < 4 || cost > BCRYPT_MAX_COST)
		return false;
	for (i = 7; i < BCRYPT_LEN; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
			  (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '/'))
			return false;
	return true;
}

static PasswordScheme
PasswordSchemeOf(const char *hash)
{
	if (strncmp(hash, "$argon2id$", 10) == 0)
		return SCHEME_ARGON2ID;
	if (strncmp(hash, "$2", 2) == 0)
		return SCHEME_BCRYPT;
	return SCHEME_UNKNOWN;
}

/* Raise for a libargon2 failure; the message names no input. */
static void
pg_attribute_noreturn()
PasswordArgon2Fail(int rc)
{
	ereport(ERROR,
			(errcode(rc == ARGON2_MEMORY_ALLOCATION_ERROR ? ERRCODE_OUT_OF_MEMORY
					 : ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("password hashing failed: %s", argon2_error_message(rc))));
	pg_unreachable();
}

/*
 * The argon2id tag of a password at a cost, into tag (taglen bytes), on this
 * thread alone; raises on failure.
 */
static void
PasswordArgon2(const char *pwd, size_t len, const uint8 *salt, size_t saltlen,
			   uint32 m, uint32 t, uint32 p, uint8 *tag, size_t taglen)
{
	argon2_context ctx;
	int			rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.out = tag;
	ctx.outlen = (uint32) taglen;
	ctx.pwd = (uint8 *) unconstify(char *, pwd);	/* not written: no CLEAR_PASSWORD flag */
	ctx.pwdlen = (uint32) len;
	ctx.salt = (uint8 *) unconstify(uint8 *, salt);
	ctx.saltlen = (uint32) saltlen;
	ctx.t_cost = t;
	ctx.m_cost = m;
	ctx.lanes = p;
	ctx.threads = 1;
	ctx.version = ARGON2_VERSION_13;
	ctx.flags = ARGON2_DEFAULT_FLAGS;
	rc = argon2_ctx(&ctx, Argon2_id);
	if (rc != ARGON2_OK)
		PasswordArgon2Fail(rc);
}

/*
 * Hash a password with argon2id at the given cost; returns a palloc'd PHC
 * string.
 */
static char *
PasswordHashWith(const char *pwd, size_t len, uint32 m, uint32 t, uint32 p)
{
	uint8		salt[PASSWORD_SALT_LEN];
	uint8		tag[PASSWORD_TAG_LEN];
	char		salt64[4 * ((PASSWORD_SALT_LEN + 2) / 3) + 1];
	char		tag64[4 * ((PASSWORD_TAG_LEN + 2) / 3) + 1];
	char	   *encoded;

	CryptoRandom(salt, sizeof(salt));
	PasswordArgon2(pwd, len, salt, sizeof(salt), m, t, p, tag, sizeof(tag));
	PasswordB64Encode(salt, sizeof(salt), salt64);
	PasswordB64Encode(tag, sizeof(tag), tag64);
	encoded = psprintf("$argon2id$v=%d$m=%u,t=%u,p=%u$%s$%s",
					   ARGON2_VERSION_13, m, t, p, salt64, tag64);
	CryptoWipe(salt, sizeof(salt));
	CryptoWipe(tag, sizeof(tag));
	CryptoWipe(salt64, sizeof(salt64));
	CryptoWipe(tag64, sizeof(tag64));
	return encoded;
}

/* Check a password against a parsed argon2id hash, in constant time. */
static bool
PasswordCheckArgon2(const char *pwd, size_t len, const Argon2Hash *h)
{
	uint8		tag[PASSWORD_MAX_TAG];
	bool		ok;

	PasswordArgon2(pwd, len, h->salt, h->saltlen, h->m, h->t, h->p, tag, h->taglen);
	ok = CryptoEqual(tag, h->tag, h->taglen);
	CryptoWipe(tag, sizeof(tag));
	return ok;
}

/* Check a password against a bcrypt hash with pgcrypto's crypt(). */
static bool
PasswordCheckBcrypt(const char *pwd, size_t len, const char *hash)
{
	char		setting[BCRYPT_LEN + 1];
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	bool		ok = false;
	int			ret;

	/* pgcrypto knows $2a$ only; $2b$ and $2y$ are the same algorithm. */
	memcpy(setting, hash, BCRYPT_LEN + 1);
	setting[2] = 'a';

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (CryptPlan == NULL)
	{
		char	   *schema;
		char	   *query;

		ret = SPI_execute("SELECT n.nspname FROM pg_catalog.pg_extension e "
						  "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
						  "WHERE e.extname = 'pgcrypto'", true, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("extension \"pgcrypto\" is needed to check bcrypt hashes")));
		schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		query = psprintf("SELECT %s.crypt($1, $2)", quote_identifier(schema));
		ActloomPrepare(&CryptPlan, query, 2, argtypes);
	}
	values[0] = PointerGetDatum(cstring_to_text_with_len(pwd, len));
	values[1] = CStringGetTextDatum(setting);
	ret = SPI_execute_plan(CryptPlan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "crypt() failed: %s", SPI_result_code_string(ret));
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			text	   *result = DatumGetTextPP(d);

			ok = VARSIZE_ANY_EXHDR(result) == BCRYPT_LEN &&
				CryptoEqual(VARDATA_ANY(result), setting, BCRYPT_LEN);
			CryptoWipe(VARDATA_ANY(result), VARSIZE_ANY_EXHDR(result));
		}
	}
	CryptoWipe(VARDATA(DatumGetPointer(values[0])), len);
	SPI_finish();
	return ok;
}

/*
 * Check against a dummy hash of the current cost, so that "no hash" takes
 * as long as a wrong password.  Always false.
 */
static bool
PasswordCheckDummy(const char *pwd, size_t len)
{
	Argon2Hash	h;

	if (DummyHash == NULL || DummyM != (uint32) ActloomArgon2MemoryKiB ||
		DummyT != (uint32) ActloomArgon2Iterations || DummyP != (uint32) ActloomArgon2Parallelism)
	{
		uint8		random[32];
		char	   *made;

		CryptoRandom(random, sizeof(random));
		made = PasswordHashWith((const char *) random, sizeof(random),
								ActloomArgon2MemoryKiB, ActloomArgon2Iterations,
								ActloomArgon2Parallelism);
		CryptoWipe(random, sizeof(random));
		if (DummyHash)
			pfree(DummyHash);
		DummyHash = MemoryContextStrdup(TopMemoryContext, made);
		pfree(made);
		DummyM = ActloomArgon2MemoryKiB;
		DummyT = ActloomArgon2Iterations;
		DummyP = ActloomArgon2Parallelism;
	}
	if (PasswordParseArgon2(DummyHash, &h) != NULL)
		elog(ERROR, "dummy password hash does not parse");
	(void) PasswordCheckArgon2(pwd, len, &h);
	return false;
}

PG_FUNCTION_INFO_V1(password_hash);

/*
 * _password_hash(password text) returns a new argon2id PHC hash of the
 * password at the cost of the current settings.  Internal; the policy is
 * checked by the caller.
 */
Datum
password_hash(PG_FUNCTION_ARGS)
{
	text	   *pwd;
	char	   *hash;

	ACTLOOM_REQUIRE_ARG(0, "password");
	pwd = PG_GETARG_TEXT_PP(0);
	hash = PasswordHashWith(VARDATA_ANY(pwd), VARSIZE_ANY_EXHDR(pwd),
							ActloomArgon2MemoryKiB, ActloomArgon2Iterations,
							ActloomArgon2Parallelism);
	PG_RETURN_TEXT_P(cstring_to_text(hash));
}

PG_FUNCTION_INFO_V1(password_verify);

/*
 * _password_verify(password text, hash text) returns whether the password
 * matches the stored hash (argon2id or bcrypt).  With a NULL hash it checks
 * a dummy hash and returns false, in about the same time.  A password longer
 * than actloom.password_max_bytes is not hashed at all: the result is NULL.
 * Internal.
 */
Datum
password_verify(PG_FUNCTION_ARGS)
{
	text	   *pwd;
	const char *p;
	size_t		len;
	char	   *hash;
	Argon2Hash	h;
	bool		ok;

	ACTLOOM_REQUIRE_ARG(0, "password");
	pwd = PG_GETARG_TEXT_PP(0);
	p = VARDATA_ANY(pwd);
	len = VARSIZE_ANY_EXHDR(pwd);
	if (len > (size_t) ActloomPasswordMaxBytes)
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(PasswordCheckDummy(p, len));

	hash = text_to_cstring(PG_GETARG_TEXT_PP(1));
	switch (PasswordSchemeOf(hash))
	{
		case SCHEME_ARGON2ID:
			if (PasswordParseArgon2(hash, &h) != NULL)
				break;
			ok = PasswordCheckArgon2(p, len, &h);
			CryptoWipe(&h, sizeof(h));
			PG_RETURN_BOOL(ok);
		case SCHEME_BCRYPT:
			if (!PasswordIsBcrypt(hash))
				break;
			PG_RETURN_BOOL(PasswordCheckBcrypt(p, len, hash));
		case SCHEME_UNKNOWN:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("stored password hash has an unknown or malformed format")));
	PG_RETURN_BOOL(false);
}

PG_FUNCTION_INFO_V1(password_needs_rehash);

/*
 * _password_needs_rehash(hash text) returns whether a stored hash should be
 * replaced by a new argon2id hash at the next successful sign-in: bcrypt, or
 * argon2id of another cost than the current settings' (less memory, fewer
 * passes, other lanes).  Internal.
 */
Datum
password_needs_rehash(PG_FUNCTION_ARGS)
{
	char	   *hash;
	Argon2Hash	h;

	ACTLOOM_REQUIRE_ARG(0, "hash");
	hash = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (PasswordSchemeOf(hash) != SCHEME_ARGON2ID || PasswordParseArgon2(hash, &h) != NULL)
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(h.m < (uint32) ActloomArgon2MemoryKiB ||
				   h.t < (uint32) ActloomArgon2Iterations ||
				   h.p != (uint32) ActloomArgon2Parallelism ||
				   h.saltlen < PASSWORD_SALT_LEN || h.taglen < PASSWORD_TAG_LEN);
}

PG_FUNCTION_INFO_V1(password_hash_scheme);

/*
 * _password_hash_scheme(hash text) returns 'argon2id' or 'bcrypt' for a hash
 * that may be imported, and raises 22023 (with the reason, never the hash)
 * for anything else.  Internal, for import_password_hash().
 */
Datum
password_hash_scheme(PG_FUNCTION_ARGS)
{
	char	   *hash;
	Argon2Hash	h;
	const char *why;

	ACTLOOM_REQUIRE_ARG(0, "hash");
	hash = text_to_cstring(PG_GETARG_TEXT_PP(0));
	switch (PasswordSchemeOf(hash))
	{
		case SCHEME_ARGON2ID:
			if ((why = PasswordParseArgon2(hash, &h)) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid argon2id password hash"),
						 errdetail("The hash is not a valid PHC string: %s.", why)));
			PG_RETURN_TEXT_P(cstring_to_text("argon2id"));
		case SCHEME_BCRYPT:
			if (!PasswordIsBcrypt(hash))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid bcrypt password hash"),
						 errdetail("A bcrypt hash is \"$2a$\", \"$2b$\" or \"$2y$\", a cost from 04 to 16, \"$\" and 53 characters of bcrypt's base64.")));
			PG_RETURN_TEXT_P(cstring_to_text("bcrypt"));
		case SCHEME_UNKNOWN:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unsupported password hash format"),
			 errdetail("Hashes can be imported in argon2id PHC format ($argon2id$...) or as bcrypt ($2a$, $2b$, $2y$).")));
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(password_check_policy);

/*
 * _password_check_policy(email text, password text) raises 22023 when a new
 * password breaks the policy: fewer characters than
 * actloom.password_min_length, more bytes than actloom.password_max_bytes,
 * or equal to (ignoring case) the local part of the email address, or
 * containing it when it has three characters or more.  Internal.
 */
Datum
password_check_policy(PG_FUNCTION_ARGS)
{
	text	   *email;
	text	   *pwd;
	int			bytes;
	int			chars;
	char	   *local;
	char	   *at;
	char	   *lower_pwd;

	ACTLOOM_REQUIRE_ARG(0, "email");
	ACTLOOM_REQUIRE_ARG(1, "password");
	email = PG_GETARG_TEXT_PP(0);
	pwd = PG_GETARG_TEXT_PP(1);
	bytes = VARSIZE_ANY_EXHDR(pwd);

	if (bytes > ActloomPasswordMaxBytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password is too long"),
				 errdetail("A password has at most %d bytes.", ActloomPasswordMaxBytes)));
	chars = pg_mbstrlen_with_len(VARDATA_ANY(pwd), bytes);
	if (chars < ActloomPasswordMinLength)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password is too short"),
				 errdetail("A password has at least %d characters.", ActloomPasswordMinLength)));

	local = text_to_cstring(email);
	if ((at = strchr(local, '@')) != NULL)
		*at = '\0';
	local = text_to_cstring(DatumGetTextPP(DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID,
																   CStringGetTextDatum(local))));
	lower_pwd = text_to_cstring(DatumGetTextPP(DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID,
																	   PointerGetDatum(pwd))));
	if (local[0] != '\0' &&
		(strcmp(lower_pwd, local) == 0 ||
		 (pg_mbstrlen(local) >= 3 && strstr(lower_pwd, local) != NULL)))
	{
		CryptoWipe(lower_pwd, strlen(lower_pwd));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password must not contain the email address"),
				 errdetail("It is, or contains, the part of the email address before the \"@\".")));
	}
	CryptoWipe(lower_pwd, strlen(lower_pwd));
	PG_RETURN_VOID();
}
