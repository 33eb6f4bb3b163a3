/* Unit tests of cookie.c: finding our cookies, and the Set-Cookie we write. */
#include <string.h>

#include "cookie.h"
#include "unit.h"

/* The value of cookie name in one header, or "<none>" / "<ambiguous>". */
static const char *
find(const char *header, const char *name)
{
    static char buf[256];
    const char *v = NULL;
    size_t vlen = 0;
    int count = 0;

    cookie_scan(header, strlen(header), name, &v, &vlen, &count);
    if (count == 0)
        return "<none>";
    if (count > 1)
        return "<ambiguous>";
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return buf;
}

int
main(void)
{
    char out[COOKIE_SET_MAX];
    const char *s = COOKIE_SESSION_NAME;

    CHECK(strcmp(find("__Host-actloom_session=abc.def.ghi", s), "abc.def.ghi") == 0, "scan: the only cookie");
    CHECK(strcmp(find("a=1; __Host-actloom_session=xyz; b=2", s), "xyz") == 0, "scan: among others");
    CHECK(strcmp(find("a=1;__Host-actloom_session=xyz;b=2", s), "xyz") == 0, "scan: without spaces");
    CHECK(strcmp(find("a=1;  __Host-actloom_session = xyz ;b=2", s), "xyz") == 0, "scan: extra blanks");
    CHECK(strcmp(find("__Host-actloom_session=\"xyz\"", s), "xyz") == 0, "scan: a quoted value");
    CHECK(strcmp(find("__Host-actloom_session=", s), "") == 0, "scan: an empty value");
    CHECK(strcmp(find("x__Host-actloom_session=1; __Host-actloom_sessionx=2", s), "<none>") == 0,
          "scan: names must match exactly");
    CHECK(strcmp(find("__host-actloom_session=1", s), "<none>") == 0, "scan: names are case-sensitive");
    CHECK(strcmp(find("actloom_insecure_dev_session=1", s), "<none>") == 0,
          "scan: the development cookie is not the secure one");
    CHECK(strcmp(find("__Host-actloom_session=1; __Host-actloom_session=2", s), "<ambiguous>") == 0,
          "scan: twice is ambiguous");
    CHECK(strcmp(find("; ;=;__Host-actloom_session;junk", s), "<none>") == 0, "scan: junk is ignored");
    CHECK(strcmp(find("", s), "<none>") == 0, "scan: an empty header");
    {
        const char *v = NULL;
        size_t vlen = 0;
        int count = 0;
        cookie_scan("a=1; __Host-actloom_session=one", 31, s, &v, &vlen, &count);
        cookie_scan("__Host-actloom_session=two", 26, s, &v, &vlen, &count);
        CHECK(count == 2, "scan: counted across several Cookie headers");
    }

    CHECK(cookie_session_set(COOKIE_SECURE, "a.b.c", 3600, out, sizeof(out)) > 0 &&
              strcmp(out, "__Host-actloom_session=a.b.c; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax") == 0,
          "set: the secure session cookie");
    CHECK(cookie_session_set(COOKIE_INSECURE_DEV, "a.b.c", 3600, out, sizeof(out)) > 0 &&
              strcmp(out, "actloom_insecure_dev_session=a.b.c; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax") == 0,
          "set: the development session cookie");
    CHECK(cookie_session_set(COOKIE_SECURE, "", 0, out, sizeof(out)) > 0 &&
              strcmp(out, "__Host-actloom_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax") == 0,
          "set: deleting the session cookie");
    CHECK(cookie_csrf_set(COOKIE_SECURE, "k.n.m", 3600, out, sizeof(out)) > 0 &&
              strcmp(out, "__Host-actloom_csrf=k.n.m; Path=/; Max-Age=3600; Secure; SameSite=Strict") == 0,
          "set: the CSRF cookie, readable by scripts");
    CHECK(cookie_csrf_set(COOKIE_INSECURE_DEV, "k.n.m", 60, out, sizeof(out)) > 0 &&
              strcmp(out, "actloom_insecure_dev_csrf=k.n.m; Path=/; Max-Age=60; SameSite=Strict") == 0,
          "set: the development CSRF cookie");
    CHECK(cookie_session_set(COOKIE_SECURE, "a;b", 60, out, sizeof(out)) == -1, "set: refuses a semicolon");
    CHECK(cookie_session_set(COOKIE_SECURE, "a b", 60, out, sizeof(out)) == -1, "set: refuses a space");
    CHECK(cookie_session_set(COOKIE_SECURE, "a\r\nX: y", 60, out, sizeof(out)) == -1, "set: refuses CR LF");
    CHECK(cookie_session_set(COOKIE_SECURE, "a\"b", 60, out, sizeof(out)) == -1, "set: refuses a quote");
    CHECK(cookie_session_set(COOKIE_SECURE, "abc", -1, out, sizeof(out)) == -1, "set: refuses a negative age");
    CHECK(cookie_session_set(COOKIE_SECURE, "abc", 60, out, 20) == -1, "set: refuses a short buffer");
    CHECK(cookie_mode_parse("secure") == COOKIE_SECURE && cookie_mode_parse("insecure-dev") == COOKIE_INSECURE_DEV &&
              cookie_mode_parse("dev") == -1,
          "mode: the two words of the configuration");
    return unit_done();
}
