/*
 * jwt.h: the session token, a JWT (RFC 7519) signed with HMAC-SHA256 by the
 * shim and verified strictly, and the key ring it is signed with.
 *
 * The token only says "the shim issued this for session sid of user sub
 * until exp"; whether the session still counts is the database's to say
 * (actloom.act_as_session), on every request.
 *
 * Key file.  A text file of at most 64 kB; "#" starts a comment that runs to
 * the end of the line; blank lines are ignored; every other line is one of
 *
 *     key <kid> <64 to 128 hexadecimal digits>   an HMAC-SHA256 key of 32 to 64 bytes
 *     active <kid>                               the key that signs new tokens
 *
 * where <kid> is 1 to 32 characters of [A-Za-z0-9_-].  Kids are unique, at
 * most JWT_MAX_KEYS keys, exactly one "active" line naming a key of the file.
 * Tokens signed with any key of the file verify, so a new key is rolled out
 * by adding it, making it active once every shim has it, and removing the
 * old one after the longest session lifetime.  The file must be a regular
 * file owned by the shim's user or root, without access for group or others.
 */
#ifndef ACTLOOM_JWT_H
#define ACTLOOM_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_KEYS 16
#define JWT_KID_MAX 32
#define JWT_KEY_MIN 32 /* bytes: RFC 7518 3.2, at least the hash size */
#define JWT_KEY_MAX 64
#define JWT_MAX_LEN 2048 /* characters of a token; ours are about 330 */
#define JWT_UUID_LEN 36
#define JWT_SKEW_S 30 /* clock skew allowed between shims, seconds */
#define JWT_ISSUER "actloom"

struct jwt_key {
    char kid[JWT_KID_MAX + 1];
    unsigned char secret[JWT_KEY_MAX];
    size_t len;
};

struct jwt_keyring {
    struct jwt_key keys[JWT_MAX_KEYS];
    size_t nkeys;
    size_t active;
};

/* What a token says, all of it checked by jwt_verify. */
struct jwt_claims {
    char sub[JWT_UUID_LEN + 1]; /* the user */
    char sid[JWT_UUID_LEN + 1]; /* the session */
    int64_t iat;                /* issued at, seconds since the epoch */
    int64_t nbf;                /* not before */
    int64_t exp;                /* expires */
};

enum jwt_status {
    JWT_OK = 0,
    JWT_MALFORMED,     /* not three canonical base64url parts, or too long */
    JWT_BAD_HEADER,    /* header not a strict JSON object of alg, typ, kid */
    JWT_BAD_ALG,       /* alg is not the one the key is for (none, RS256, ...) */
    JWT_UNKNOWN_KID,   /* no key of the ring has this kid */
    JWT_BAD_SIGNATURE, /* the HMAC does not match */
    JWT_BAD_CLAIMS,    /* payload not a strict JSON object of the expected claims */
    JWT_NOT_YET_VALID, /* iat or nbf in the future, beyond the skew */
    JWT_EXPIRED,       /* exp in the past, beyond the skew */
};

/* A short English reason, for logs; never for clients. */
const char *jwt_strerror(enum jwt_status status);

/*
 * Reads a key file into ring.  Returns 0, or -1 with a message in err that
 * never contains key material.
 */
int jwt_keyring_load(const char *path, struct jwt_keyring *ring, char *err, size_t errlen);

/* Parses key file text (the file checks aside); for jwt_keyring_load and tests. */
int jwt_keyring_parse(const char *text, size_t len, struct jwt_keyring *ring, char *err, size_t errlen);

/* Wipes the key material of a ring. */
void jwt_keyring_wipe(struct jwt_keyring *ring);

/* Finds a key by kid, or NULL. */
const struct jwt_key *jwt_keyring_find(const struct jwt_keyring *ring, const char *kid, size_t len);

/* HMAC-SHA256 through OpenSSL's EVP_MAC; returns 0, or -1 when OpenSSL fails. */
int jwt_hmac_sha256(const unsigned char *key, size_t keylen, const void *data, size_t len, unsigned char out[32]);

/*
 * Signs claims (sub and sid canonical lower-case uuids, iat <= nbf < exp)
 * with the ring's active key into out, NUL-terminated.  Returns the token's
 * length, or -1 when the claims are invalid, out is too small or OpenSSL fails.
 */
long jwt_sign(const struct jwt_keyring *ring, const struct jwt_claims *claims, char *out, size_t cap);

/*
 * Verifies token[0..len) against the ring at time now (seconds since the
 * epoch), allowing max_lifetime seconds at most between iat and exp, and
 * fills claims on success.  The algorithm is HS256 because the keys are
 * HMAC keys; the header only has to agree.
 */
enum jwt_status jwt_verify(const struct jwt_keyring *ring, const char *token, size_t len, int64_t now,
                           int64_t max_lifetime, struct jwt_claims *claims);

/* Whether s[0..len) is a canonical lower-case uuid. */
int jwt_uuid_valid(const char *s, size_t len);

#endif
