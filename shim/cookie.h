/*
 * cookie.h: reading the Cookie header and writing Set-Cookie for the session
 * and CSRF cookies.
 *
 * Two modes, chosen in the configuration:
 *
 *   secure            __Host-actloom_session  (Secure; HttpOnly; SameSite=Lax; Path=/)
 *                     __Host-actloom_csrf     (Secure; SameSite=Strict; Path=/)
 *   insecure-dev      actloom_insecure_dev_session, actloom_insecure_dev_csrf:
 *                     the same without Secure, for plain-HTTP local use
 *
 * The __Host- prefix makes browsers refuse the cookie unless it is Secure,
 * has Path=/ and no Domain, so neither a sibling subdomain nor a plain-HTTP
 * page can plant one.  The development names say what they are, and a
 * browser never sends them where the secure ones are expected.  The CSRF
 * cookie is readable by the site's scripts (not HttpOnly): it is meant to be
 * copied into the X-CSRF-Token header.
 */
#ifndef ACTLOOM_COOKIE_H
#define ACTLOOM_COOKIE_H

#include <stddef.h>

enum cookie_mode {
    COOKIE_SECURE = 0,
    COOKIE_INSECURE_DEV,
};

#define COOKIE_SESSION_NAME "__Host-actloom_session"
#define COOKIE_CSRF_NAME "__Host-actloom_csrf"
#define COOKIE_SESSION_NAME_DEV "actloom_insecure_dev_session"
#define COOKIE_CSRF_NAME_DEV "actloom_insecure_dev_csrf"
#define COOKIE_SET_MAX 2560 /* a Set-Cookie value of ours, token included */

/* The mode of a configuration word ("secure", "insecure-dev"), or -1. */
int cookie_mode_parse(const char *word);

const char *cookie_session_name(enum cookie_mode mode);
const char *cookie_csrf_name(enum cookie_mode mode);

/*
 * Looks for cookie name in one Cookie header value (a browser may send
 * several headers; call once per header with the same count).  Adds the
 * number of cookies of that name to *count and points *value and *vlen at the
 * last one's value (without surrounding double quotes).  A request carrying
 * a cookie of ours more than once is ambiguous, and callers refuse it.
 */
void cookie_scan(const char *header, size_t len, const char *name, const char **value, size_t *vlen, int *count);

/*
 * Writes the Set-Cookie value that sets the session cookie to token for
 * max_age seconds (0 deletes it) into out.  Returns its length, or -1 when
 * token holds characters a cookie value may not or out is too small.
 */
long cookie_session_set(enum cookie_mode mode, const char *token, long max_age, char *out, size_t cap);

/* The same for the CSRF cookie. */
long cookie_csrf_set(enum cookie_mode mode, const char *token, long max_age, char *out, size_t cap);

#endif
