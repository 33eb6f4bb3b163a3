/*
 * csrf.c: signed double-submit tokens (csrf.h).  Every comparison that
 * involves a MAC or a token is CRYPTO_memcmp; what is compared byte by byte
 * otherwise (the kid, the shape) is public.
 */
#include "csrf.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "b64url.h"

#define NONCE_LEN 16
#define MAC_LEN 32
#define MAC_LABEL "actloom-csrf-v1"
#define KEY_LABEL "actloom-csrf-key-v1"

/* mac = HMAC(K, label 0 sid 0 nonce) with K derived from the session key. */
static int
token_mac(const struct jwt_key *key, const char *sid, const unsigned char *nonce, unsigned char *mac)
{
    unsigned char k[MAC_LEN];
    unsigned char msg[sizeof(MAC_LABEL) + JWT_UUID_LEN + 1 + NONCE_LEN];
    size_t o = 0;
    int rc;

    memcpy(msg, MAC_LABEL, sizeof(MAC_LABEL)); /* with its NUL */
    o += sizeof(MAC_LABEL);
    memcpy(msg + o, sid, JWT_UUID_LEN);
    o += JWT_UUID_LEN;
    msg[o++] = 0;
    memcpy(msg + o, nonce, NONCE_LEN);
    o += NONCE_LEN;
    rc = jwt_hmac_sha256(key->secret, key->len, KEY_LABEL, strlen(KEY_LABEL), k) == 0 &&
                 jwt_hmac_sha256(k, sizeof(k), msg, o, mac) == 0
             ? 0
             : -1;
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

long
csrf_make(const struct jwt_keyring *ring, const char *sid, char *out, size_t cap)
{
    const struct jwt_key *key = &ring->keys[ring->active];
    unsigned char nonce[NONCE_LEN], mac[MAC_LEN];
    size_t kidlen = strlen(key->kid), o;

    if (ring->nkeys == 0 || !jwt_uuid_valid(sid, strlen(sid)))
        return -1;
    if (cap < kidlen + 1 + B64URL_ENCODED_LEN(NONCE_LEN) + 1 + B64URL_ENCODED_LEN(MAC_LEN) + 1)
        return -1;
    if (RAND_bytes(nonce, sizeof(nonce)) != 1 || token_mac(key, sid, nonce, mac) != 0)
        return -1;
    memcpy(out, key->kid, kidlen);
    o = kidlen;
    out[o++] = '.';
    o += b64url_encode(nonce, NONCE_LEN, out + o);
    out[o++] = '.';
    o += b64url_encode(mac, MAC_LEN, out + o);
    return (long)o;
}

int
csrf_check(const struct jwt_keyring *ring, const char *sid, const char *token, size_t len)
{
    unsigned char nonce[NONCE_LEN + 2], mac[MAC_LEN + 2], want[MAC_LEN];
    const char *dot1, *dot2;
    const struct jwt_key *key;

    if (len == 0 || len > CSRF_TOKEN_MAX || !jwt_uuid_valid(sid, strlen(sid)))
        return 0;
    if ((dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL)
        return 0;
    if ((key = jwt_keyring_find(ring, token, (size_t)(dot1 - token))) == NULL)
        return 0;
    if (b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), nonce, sizeof(nonce)) != NONCE_LEN ||
        b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), mac, sizeof(mac)) != MAC_LEN)
        return 0;
    if (token_mac(key, sid, nonce, want) != 0)
        return 0;
    return CRYPTO_memcmp(want, mac, MAC_LEN) == 0;
}

int
csrf_same(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Lengths are public: every token of a ring has the same length per kid. */
    return alen == blen && alen > 0 && CRYPTO_memcmp(a, b, alen) == 0;
}
