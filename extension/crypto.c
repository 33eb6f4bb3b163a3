/*
 * crypto.c
 *	  The one file that calls OpenSSL: random bytes, SHA-256, HMAC-SHA256,
 *	  AES-256-GCM, constant-time comparison and wiping.
 *
 * Every OpenSSL failure goes through CryptoFail(), which clears OpenSSL's
 * error queue and raises one kind of error.
 *
 * Handles.  AES-256-GCM and SHA-256 are fetched from OpenSSL's provider once
 * per backend, and their contexts are reused: fetching and allocating on
 * every call would cost more than encrypting a kilobyte.  They live as long
 * as the backend, so nothing can leak through a longjmp and no resource
 * owner is needed.  Callers allocate every buffer beforehand, so nothing
 * between initialising a context and finishing with it can raise a
 * PostgreSQL error.
 *
 * Keys.  There is one AES-256-GCM context for sealing and one for opening.
 * Each keeps the key schedule of the last key it used, with a copy of that
 * key to recognise it, so that a run of values of one company (a statement
 * over many rows) expands its key once.  The keys it keeps are keys the
 * caller keeps anyway (master keys of the ring, cached data keys);
 * CryptoForgetKeys() resets both contexts (which cleanses the schedules) and
 * wipes the copies, and keyring.c and seal.c call it whenever they drop
 * their keys.  A failed operation forgets its key at once.
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "actloom.h"

/* An AES-256-GCM context and the key whose schedule it holds, if any. */
typedef struct GcmState
{
	EVP_CIPHER_CTX *ctx;
	bool		keyed;
	uint8		key[CRYPTO_KEY_LEN];
} GcmState;

static EVP_CIPHER *Aes256Gcm = NULL;
static GcmState SealState;
static GcmState OpenState;
static EVP_MD *Sha256 = NULL;
static EVP_MD_CTX *Sha256Ctx = NULL;
static EVP_MAC *Hmac = NULL;

static EVP_CIPHER_CTX *CryptoGcmInit(GcmState *st, bool encrypt, const uint8 *key,
									 const uint8 *nonce);
static void CryptoGcmForget(GcmState *st);

/*
 * CryptoFail raises the error for a failed OpenSSL call; it never returns.
 */
static void
pg_attribute_noreturn()
CryptoFail(const char *what)
{
	unsigned long code = ERR_get_error();
	char		buf[256];

	ERR_clear_error();
	if (code != 0)
		ERR_error_string_n(code, buf, sizeof(buf));
	else
		strlcpy(buf, "no error reported", sizeof(buf));
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("cryptographic operation failed: %s", what),
			 errdetail("OpenSSL: %s", buf)));
	pg_unreachable();
}

/*
 * CryptoRandom fills buf with len bytes from OpenSSL's CSPRNG, or raises.
 */
void
CryptoRandom(void *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int) len) != 1)
		CryptoFail("random bytes");
}

/*
 * CryptoSha256 writes the SHA-256 digest of data to out (32 bytes).
 */
void
CryptoSha256(const void *data, size_t len, uint8 *out)
{
	unsigned int outlen = 0;
	bool		ok;

	if (Sha256 == NULL && (Sha256 = EVP_MD_fetch(NULL, "SHA-256", NULL)) == NULL)
		CryptoFail("SHA-256 lookup");
	if (Sha256Ctx == NULL && (Sha256Ctx = EVP_MD_CTX_new()) == NULL)
		CryptoFail("SHA-256 context");
	ok = EVP_DigestInit_ex(Sha256Ctx, Sha256, NULL) == 1 &&
		EVP_DigestUpdate(Sha256Ctx, data, len) == 1 &&
		EVP_DigestFinal_ex(Sha256Ctx, out, &outlen) == 1 &&
		outlen == CRYPTO_SHA256_LEN;
	EVP_MD_CTX_reset(Sha256Ctx);
	if (!ok)
		CryptoFail("SHA-256");
}

/*
 * CryptoHmacSha256 writes HMAC-SHA256 under key (keylen bytes) of the
 * concatenation of nparts parts (parts[i], lens[i] bytes each) to out (32
 * bytes).  The MAC context is made and freed on every call, so that no key
 * schedule outlives it (freeing cleanses it); the MAC itself is fetched once.
 */
void
CryptoHmacSha256(const uint8 *key, size_t keylen, int nparts,
				 const void *const *parts, const size_t *lens, uint8 *out)
{
	EVP_MAC_CTX *ctx;
	OSSL_PARAM	params[2];
	size_t		outlen = 0;
	bool		ok;
	int			i;

	if (Hmac == NULL && (Hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		CryptoFail("HMAC lookup");
	if ((ctx = EVP_MAC_CTX_new(Hmac)) == NULL)
		CryptoFail("HMAC context");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	ok = EVP_MAC_init(ctx, key, keylen, params) == 1;
	for (i = 0; ok && i < nparts; i++)
		ok = EVP_MAC_update(ctx, parts[i], lens[i]) == 1;
	ok = ok && EVP_MAC_final(ctx, out, &outlen, CRYPTO_SHA256_LEN) == 1 &&
		outlen == CRYPTO_SHA256_LEN;
	EVP_MAC_CTX_free(ctx);
	if (!ok)
	{
		OPENSSL_cleanse(out, CRYPTO_SHA256_LEN);
		CryptoFail("HMAC-SHA256");
	}
}

/* Check a length for OpenSSL's int-sized interfaces. */
static int
CryptoLen(size_t len)
{
	if (len > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too large to encrypt")));
	return (int) len;
}

/*
 * CryptoGcmSeal encrypts len bytes of plain with AES-256-GCM under key and a
 * 96-bit nonce, authenticating aad as well; writes len bytes to cipher and
 * the 16-byte tag to tag.  The nonce must never repeat under one key; our
 * callers draw it at random.
 */
void
CryptoGcmSeal(const uint8 *key, const uint8 *nonce,
			  const uint8 *aad, size_t aadlen,
			  const uint8 *plain, size_t len,
			  uint8 *cipher, uint8 *tag)
{
	int			ilen = CryptoLen(len);
	int			iaadlen = CryptoLen(aadlen);
	EVP_CIPHER_CTX *ctx;
	int			n;
	const char *failed = NULL;

	if ((ctx = CryptoGcmInit(&SealState, true, key, nonce)) == NULL)
		failed = "AES-256-GCM setup";
	else if (iaadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, iaadlen) != 1)
		failed = "AES-256-GCM associated data";
	else if (EVP_EncryptUpdate(ctx, cipher, &n, plain, ilen) != 1 || n != ilen)
		failed = "AES-256-GCM encryption";
	else if (EVP_EncryptFinal_ex(ctx, cipher + n, &n) != 1 || n != 0)
		failed = "AES-256-GCM finalization";
	else if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN, tag) != 1)
		failed = "AES-256-GCM tag";

	if (failed)
	{
		CryptoGcmForget(&SealState);
		OPENSSL_cleanse(cipher, len);
		CryptoFail(failed);
	}
}

/*
 * CryptoGcmOpen decrypts and authenticates what CryptoGcmSeal made.  It
 * returns true and writes len bytes to plain when the tag verifies, and
 * returns false, with plain wiped, when it does not: a changed bit anywhere
 * in nonce, aad, cipher or tag, or another key.  OpenSSL compares the tag in
 * constant time.
 */
bool
CryptoGcmOpen(const uint8 *key, const uint8 *nonce,
			  const uint8 *aad, size_t aadlen,
			  const uint8 *cipher, size_t len,
			  const uint8 *tag, uint8 *plain)
{
	int			ilen = CryptoLen(len);
	int			iaadlen = CryptoLen(aadlen);
	EVP_CIPHER_CTX *ctx;
	uint8		tagcopy[CRYPTO_TAG_LEN];
	int			n;
	int			final;
	const char *failed = NULL;
	bool		ok = false;

	/* OpenSSL's interface takes a writable tag buffer. */
	memcpy(tagcopy, tag, CRYPTO_TAG_LEN);

	if ((ctx = CryptoGcmInit(&OpenState, false, key, nonce)) == NULL)
		failed = "AES-256-GCM setup";
	else if (iaadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, iaadlen) != 1)
		failed = "AES-256-GCM associated data";
	else if (EVP_DecryptUpdate(ctx, plain, &n, cipher, ilen) != 1 || n != ilen)
		failed = "AES-256-GCM decryption";
	else if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN, tagcopy) != 1)
		failed = "AES-256-GCM tag";
	else
	{
		/* The only step that fails for a value that does not authenticate. */
		final = EVP_DecryptFinal_ex(ctx, plain + n, &n);
		ok = final == 1 && n == 0;
		ERR_clear_error();
	}

	if (!ok)
	{
		CryptoGcmForget(&OpenState);
		OPENSSL_cleanse(plain, len);
	}
	if (failed)
		CryptoFail(failed);
	return ok;
}

/*
 * CryptoGcmInit starts an operation on st's context with a key and a 96-bit
 * nonce (GCM's default length), expanding the key only when it is not the
 * one the context already holds.  Makes the cipher and the context on first
 * use.  Returns the context, or NULL when OpenSSL failed (the context then
 * holds no key).
 */
static EVP_CIPHER_CTX *
CryptoGcmInit(GcmState *st, bool encrypt, const uint8 *key, const uint8 *nonce)
{
	int			rc;

	if (Aes256Gcm == NULL)
	{
		Aes256Gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
		if (Aes256Gcm == NULL)
			CryptoFail("AES-256-GCM lookup");
		if (EVP_CIPHER_get_iv_length(Aes256Gcm) != CRYPTO_NONCE_LEN)
			elog(ERROR, "AES-256-GCM has an unexpected default nonce length");
	}
	if (st->ctx == NULL && (st->ctx = EVP_CIPHER_CTX_new()) == NULL)
		CryptoFail("AES-256-GCM context");

	if (st->keyed && CRYPTO_memcmp(st->key, key, CRYPTO_KEY_LEN) == 0)
		rc = encrypt ? EVP_EncryptInit_ex(st->ctx, NULL, NULL, NULL, nonce)
			: EVP_DecryptInit_ex(st->ctx, NULL, NULL, NULL, nonce);
	else
	{
		CryptoGcmForget(st);
		rc = encrypt ? EVP_EncryptInit_ex(st->ctx, Aes256Gcm, NULL, key, nonce)
			: EVP_DecryptInit_ex(st->ctx, Aes256Gcm, NULL, key, nonce);
		if (rc == 1)
		{
			memcpy(st->key, key, CRYPTO_KEY_LEN);
			st->keyed = true;
		}
	}
	if (rc != 1)
	{
		CryptoGcmForget(st);
		return NULL;
	}
	return st->ctx;
}

/* Reset a context (cleansing its key schedule) and wipe its key copy. */
static void
CryptoGcmForget(GcmState *st)
{
	if (st->ctx)
		EVP_CIPHER_CTX_reset(st->ctx);
	OPENSSL_cleanse(st->key, CRYPTO_KEY_LEN);
	st->keyed = false;
}

/*
 * CryptoForgetKeys makes the cipher contexts forget the keys they hold.
 */
void
CryptoForgetKeys(void)
{
	CryptoGcmForget(&SealState);
	CryptoGcmForget(&OpenState);
}

/*
 * CryptoEqual compares two secrets of the same length in time that depends
 * on the length only.
 */
bool
CryptoEqual(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/*
 * CryptoWipe overwrites secret material in a way the compiler does not
 * optimize away.
 */
void
CryptoWipe(void *buf, size_t len)
{
	OPENSSL_cleanse(buf, len);
}
