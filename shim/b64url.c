/*
 * b64url.c: strict base64url (b64url.h).  Only public data goes through
 * here, or signatures that are compared after decoding, so the table lookups
 * need not be constant time.
 */
#include "b64url.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of an alphabet character, or -1. */
static int
value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t
b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

long
b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    size_t full = len / 4, rest = len % 4, o = 0;
    unsigned long v = 0;

    if (rest == 1)
        return -1;
    if (full * 3 + (rest ? rest - 1 : 0) > cap)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int d = value_of((unsigned char)in[i]);
        if (d < 0)
            return -1;
        v = v << 6 | (unsigned long)d;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(v >> 16);
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
            v = 0;
        }
    }
    if (rest == 2) {
        /* 12 bits carry one byte: the low 4 must be zero */
        if (v & 0xF)
            return -1;
        out[o++] = (unsigned char)(v >> 4);
    } else if (rest == 3) {
        /* 18 bits carry two bytes: the low 2 must be zero */
        if (v & 0x3)
            return -1;
        out[o++] = (unsigned char)(v >> 10);
        out[o++] = (unsigned char)(v >> 2);
    }
    return (long)o;
}
