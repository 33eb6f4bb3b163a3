/*
 * session.h: sign-in sessions at the shim.
 *
 * A browser holds a session cookie whose value is a JWT (jwt.h) naming its
 * user and session.  The shim verifies the token without the database, so
 * that forged, tampered and expired tokens cost nothing, and then asks the
 * database, in the request's own transaction, whether the session is still
 * alive (actloom.act_as_session).  State-changing requests must also pass
 * the Origin check and carry the CSRF token (csrf.h).
 *
 * Everything here answers the client itself when it refuses (401 or 403,
 * with a problem body) and returns -1; the caller then stops.
 */
#ifndef ACTLOOM_SESSION_H
#define ACTLOOM_SESSION_H

#include "jwt.h"
#include "shim.h"

/* The session key ring in force, or NULL when sessions are not configured. */
const struct jwt_keyring *session_keys(struct shim_req *r);

/*
 * Reads and verifies the session cookie.  Returns 1 with the claims of a
 * valid token, 0 when the request carries no session cookie, -1 when it
 * carries one that is invalid, expired or sent twice (the reason goes to
 * the server log only).
 */
int session_read(struct shim_req *r, struct jwt_claims *claims);

/* session_read, answering 401 (and deleting a bad cookie) unless it found a valid token. */
int session_require(struct shim_req *r, struct jwt_claims *claims);

/* Whether the request is state-changing (anything but GET, HEAD, OPTIONS). */
int session_unsafe_method(struct shim_req *r);

/* Refuses (403) a request whose Origin header is present and not the shim's own. */
int session_check_origin(struct shim_req *r);

/*
 * For a state-changing request authenticated by the cookie: the Origin check,
 * and an X-CSRF-Token header equal to the CSRF cookie and valid for the
 * session.  Refuses with 403.
 */
int session_check_csrf(struct shim_req *r, const struct jwt_claims *claims);

/*
 * Signs a token for a new session and adds the Set-Cookie header; the
 * cookie lives until the session's absolute expiry (capped by the
 * configured session lifetime).  Returns -1 on failure, having answered 500.
 */
int session_issue(struct shim_req *r, const char *user_id, const char *session_id, int64_t expires_at);

/*
 * Mints a CSRF token for the session into out (CSRF_TOKEN_MAX + 1 bytes) and
 * adds the Set-Cookie header of the CSRF cookie.  Returns -1 on failure,
 * having answered 500.
 */
int session_csrf_issue(struct shim_req *r, const struct jwt_claims *claims, char *out, size_t cap);

/* Adds the Set-Cookie headers that delete both cookies. */
void session_clear(struct shim_req *r);

#endif
