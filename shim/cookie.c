/*
 * cookie.c: Cookie parsing and Set-Cookie writing (cookie.h), after RFC 6265
 * sections 4.1 and 5.2.  Parsing is lenient about what others put in the
 * header and exact about our names; writing is strict about values.
 */
#include "cookie.h"

#include <stdio.h>
#include <string.h>

int
cookie_mode_parse(const char *word)
{
    if (strcmp(word, "secure") == 0)
        return COOKIE_SECURE;
    if (strcmp(word, "insecure-dev") == 0)
        return COOKIE_INSECURE_DEV;
    return -1;
}

const char *
cookie_session_name(enum cookie_mode mode)
{
    return mode == COOKIE_SECURE ? COOKIE_SESSION_NAME : COOKIE_SESSION_NAME_DEV;
}

const char *
cookie_csrf_name(enum cookie_mode mode)
{
    return mode == COOKIE_SECURE ? COOKIE_CSRF_NAME : COOKIE_CSRF_NAME_DEV;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

void
cookie_scan(const char *header, size_t len, const char *name, const char **value, size_t *vlen, int *count)
{
    size_t namelen = strlen(name), pos = 0;

    while (pos < len) {
        const char *semi = memchr(header + pos, ';', len - pos);
        size_t end = semi ? (size_t)(semi - header) : len;
        size_t a = pos, b = end;
        const char *eq;

        pos = end + 1;
        while (a < b && is_blank(header[a]))
            a++;
        while (b > a && is_blank(header[b - 1]))
            b--;
        if ((eq = memchr(header + a, '=', b - a)) == NULL)
            continue;
        {
            size_t nb = (size_t)(eq - header), va = nb + 1;
            while (nb > a && is_blank(header[nb - 1]))
                nb--;
            while (va < b && is_blank(header[va]))
                va++;
            if (nb - a != namelen || memcmp(header + a, name, namelen) != 0)
                continue;
            if (b - va >= 2 && header[va] == '"' && header[b - 1] == '"') {
                va++;
                b--;
            }
            (*count)++;
            *value = header + va;
            *vlen = b - va;
        }
    }
}

/* cookie-octet of RFC 6265 4.1.1: printable ASCII but for " , ; \ and space. */
static int
value_valid(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == ';' || c == '\\')
            return 0;
    }
    return 1;
}

static long
format_cookie(const char *name, const char *value, long max_age, int secure, int http_only, const char *same_site,
              char *out, size_t cap)
{
    int n;

    if (max_age < 0 || !value_valid(value))
        return -1;
    n = snprintf(out, cap, "%s=%s; Path=/; Max-Age=%ld%s%s; SameSite=%s", name, value, max_age,
                 secure ? "; Secure" : "", http_only ? "; HttpOnly" : "", same_site);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

long
cookie_session_set(enum cookie_mode mode, const char *token, long max_age, char *out, size_t cap)
{
    return format_cookie(cookie_session_name(mode), token, max_age, mode == COOKIE_SECURE, 1, "Lax", out, cap);
}

long
cookie_csrf_set(enum cookie_mode mode, const char *token, long max_age, char *out, size_t cap)
{
    return format_cookie(cookie_csrf_name(mode), token, max_age, mode == COOKIE_SECURE, 0, "Strict", out, cap);
}
