/*
 * oidc_token.h: the OpenID Connect ID token, verified strictly against a
 * provider's JSON Web Key Set (OpenID Connect Core 1.0, 3.1.3.7; RFC 7515,
 * 7517, 7518, 7519), on OpenSSL EVP and jansson.
 *
 * Strict in the manner of the session tokens (jwt.c): canonical base64url,
 * exactly three segments, JSON objects whose duplicate keys are refused, an
 * algorithm from the caller's allow-list that fits the key's type (never
 * "none", never an HMAC algorithm), and no header that would let the token
 * choose its own key or extensions (crit, jku, x5u, x5c, jwk).
 */
#ifndef ACTLOOM_OIDC_TOKEN_H
#define ACTLOOM_OIDC_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* The algorithms a provider may sign with: an allow-list is a mask of these. */
#define OIDC_ALG_RS256 1u
#define OIDC_ALG_PS256 2u
#define OIDC_ALG_ES256 4u

#define OIDC_SKEW_S 120        /* clock skew allowed for exp, iat and nbf, seconds */
#define OIDC_MAX_IAT_AGE_S 600 /* a token issued longer ago than this is stale */
#define OIDC_TOKEN_MAX 16384   /* characters of an ID token */
#define OIDC_JWKS_MAX 262144   /* bytes of a JWKS document */

/* A parsed key set: immutable once made, so threads may share it read-only. */
struct oidc_jwks;

/*
 * Parses a JWKS document.  Keys that cannot be parsed, that say "use":"enc",
 * of a type or curve other than RSA and EC P-256, or RSA keys under 2048 bits
 * are skipped and counted in *skipped.  NULL, with a reason in err, for a
 * document that is not a JSON object with a "keys" array, has duplicate
 * keys, or is larger than OIDC_JWKS_MAX; a set without a usable key is a set.
 */
struct oidc_jwks *oidc_jwks_parse(const char *json, size_t len, unsigned *skipped, char *err, size_t errlen);
void oidc_jwks_free(struct oidc_jwks *keys);
size_t oidc_jwks_count(const struct oidc_jwks *keys);

/* What the token must say. */
struct oidc_expect {
    const char *const *issuers; /* iss equals one of these exactly */
    size_t nissuers;
    const char *client_id; /* in aud; equal to azp when present */
    const char *nonce;     /* equal to the token's nonce */
    unsigned algorithms;   /* allow-list, OIDC_ALG_* */
    int64_t now;           /* seconds since the epoch */
};

enum oidc_token_status {
    OIDC_TOKEN_OK = 0,
    OIDC_TOKEN_MALFORMED,       /* not three canonical base64url segments, or too long */
    OIDC_TOKEN_BAD_HEADER,      /* header not a strict JSON object, or crit, jku, x5u, x5c, jwk present */
    OIDC_TOKEN_BAD_ALG,         /* alg not allowed (none, HS256, ...) or not fitting the key */
    OIDC_TOKEN_UNKNOWN_KID,     /* no key of the set has this kid: the caller may refetch once */
    OIDC_TOKEN_NO_KEY,          /* no kid, and no single key of the algorithm's type */
    OIDC_TOKEN_BAD_SIGNATURE,   /* the signature does not verify */
    OIDC_TOKEN_BAD_CLAIMS,      /* payload not a strict JSON object, or a required claim missing or mistyped */
    OIDC_TOKEN_BAD_ISSUER,      /* iss is not the provider's */
    OIDC_TOKEN_BAD_AUDIENCE,    /* aud lacks the client id, or several audiences without azp */
    OIDC_TOKEN_BAD_AZP,         /* azp is another client's */
    OIDC_TOKEN_EXPIRED,         /* exp in the past, beyond the skew */
    OIDC_TOKEN_NOT_YET_VALID,   /* iat or nbf in the future, beyond the skew */
    OIDC_TOKEN_STALE,           /* iat older than OIDC_MAX_IAT_AGE_S, beyond the skew */
    OIDC_TOKEN_BAD_NONCE,       /* nonce missing or not the transaction's */
    OIDC_TOKEN_BAD_SUBJECT,     /* sub missing, empty or longer than 255 characters */
};

/* A short name of a status for audit reasons and logs ("bad_signature", ...); never for browsers. */
const char *oidc_token_status_name(enum oidc_token_status status);

/* What a verified token says; filled on OIDC_TOKEN_OK only. */
struct oidc_claims {
    char iss[512];
    char sub[256];
    char email[321]; /* "" when absent */
    int email_verified; /* 1 only for JSON true */
    char name[201];  /* "" when absent or unusable */
    char hd[254];    /* Google's hosted domain, "" when absent */
    char *claims_json; /* the claims the database keeps, a compact JSON object; the caller frees it */
};

/* Verifies token[0..len) against keys and e; fills out on success. */
enum oidc_token_status oidc_token_verify(const struct oidc_jwks *keys, const char *token, size_t len,
                                         const struct oidc_expect *e, struct oidc_claims *out);

#endif
