/*
 * b64url.h: base64url without padding (RFC 4648 section 5), decoded strictly.
 *
 * The decoder accepts exactly one spelling of each byte string: characters
 * of the URL-safe alphabet only (no "=", no whitespace, no "+" or "/"), a
 * length that is not 1 modulo 4, and zero in the unused low bits of the last
 * character.  So an attacker cannot make one token into several equivalent
 * ones, and a signature covers the only text that decodes to what it signs.
 */
#ifndef ACTLOOM_B64URL_H
#define ACTLOOM_B64URL_H

#include <stddef.h>

/* Characters b64url_encode writes for n bytes (no terminator). */
#define B64URL_ENCODED_LEN(n) (((n) / 3) * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))
/* Most bytes a decoder can produce from n characters. */
#define B64URL_DECODED_MAX(n) (((n) / 4) * 3 + 2)

/* Writes B64URL_ENCODED_LEN(len) characters and a NUL into out; returns their count. */
size_t b64url_encode(const unsigned char *in, size_t len, char *out);

/*
 * Decodes in[0..len) into out (at most cap bytes); returns the decoded length,
 * or -1 when the text is not canonical base64url or does not fit.
 */
long b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
