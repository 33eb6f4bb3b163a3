/*
 * csrf.h: signed double-submit tokens against cross-site request forgery.
 *
 * GET /auth/csrf hands the browser a token bound to its session, in the
 * response body and in a cookie that scripts of the site can read; every
 * state-changing request authenticated by the session cookie must send it
 * back in X-CSRF-Token.  The shim accepts the request when the header equals
 * the cookie and the token's HMAC verifies for the session the request's
 * session token names.  Another site can make a browser send the cookies,
 * but it cannot read them to write the header, and it cannot mint a token
 * for a session without the key.
 *
 *     <kid> "." <nonce: 16 random bytes, base64url> "." <mac: base64url>
 *     mac = HMAC-SHA256(K, "actloom-csrf-v1" 0x00 <session id> 0x00 <nonce>)
 *     K   = HMAC-SHA256(<session key kid>, "actloom-csrf-key-v1")
 *
 * K is derived from the session key ring (jwt.h), so the tokens rotate with
 * it, and the derivation keeps a CSRF MAC from ever being a JWT signature.
 */
#ifndef ACTLOOM_CSRF_H
#define ACTLOOM_CSRF_H

#include <stddef.h>

#include "jwt.h"

#define CSRF_TOKEN_MAX (JWT_KID_MAX + 1 + 22 + 1 + 43)

/*
 * Writes a fresh token for session sid (a canonical uuid), NUL-terminated,
 * into out.  Returns its length, or -1 (bad sid, out too small, no
 * randomness or OpenSSL failed).
 */
long csrf_make(const struct jwt_keyring *ring, const char *sid, char *out, size_t cap);

/* Whether token[0..len) is a token of any key of the ring for session sid. */
int csrf_check(const struct jwt_keyring *ring, const char *sid, const char *token, size_t len);

/* Whether a[0..alen) equals b[0..blen), in time independent of their content. */
int csrf_same(const char *a, size_t alen, const char *b, size_t blen);

#endif
