/*
 * Unit tests of b64url.c and jwt.c: strict base64url, the key file, signing,
 * and a verifier that refuses every token it did not issue: other or no
 * algorithms, extra header members, unknown kids, tampering, duplicates,
 * bad times, and thousands of mutated and random tokens.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "b64url.h"
#include "jwt.h"
#include "unit.h"

#define NOW 1800000000LL
#define LIFETIME (12 * 3600)
#define SUB "0b5ad8a4-6a3c-4d5e-9f10-1a2b3c4d5e6f"
#define SID "7e57c0de-1234-4abc-8def-0123456789ab"
#define KEY1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100aabbccdd"

static struct jwt_keyring ring;

static void
test_b64url(void)
{
    unsigned char in[64] = {0}, out[64];
    char enc[128];
    int roundtrip = 1;

    for (size_t n = 0; n < sizeof(in); n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (unsigned char)(i * 37 + n);
        size_t e = b64url_encode(in, n, enc);
        long d = b64url_decode(enc, e, out, sizeof(out));
        if (e != B64URL_ENCODED_LEN(n) || d != (long)n || memcmp(in, out, n) != 0 || strchr(enc, '=') != NULL)
            roundtrip = 0;
    }
    CHECK(roundtrip, "b64url: every length 0..63 round-trips, without padding");
    CHECK(b64url_decode("", 0, out, sizeof(out)) == 0, "b64url: empty is empty");
    CHECK(b64url_decode("QQ", 2, out, sizeof(out)) == 1 && out[0] == 'A', "b64url: QQ is A");
    CHECK(b64url_decode("QR", 2, out, sizeof(out)) == -1, "b64url: non-zero unused bits refused (QR)");
    CHECK(b64url_decode("QUI", 3, out, sizeof(out)) == 2, "b64url: QUI is AB");
    CHECK(b64url_decode("QUJ", 3, out, sizeof(out)) == -1, "b64url: non-zero unused bits refused (QUJ)");
    CHECK(b64url_decode("QQ==", 4, out, sizeof(out)) == -1, "b64url: padding refused");
    CHECK(b64url_decode("Q", 1, out, sizeof(out)) == -1, "b64url: length 1 mod 4 refused");
    CHECK(b64url_decode("a+b/", 4, out, sizeof(out)) == -1, "b64url: + and / refused");
    CHECK(b64url_decode("ab cd", 5, out, sizeof(out)) == -1, "b64url: whitespace refused");
    CHECK(b64url_decode("ab\0d", 4, out, sizeof(out)) == -1, "b64url: NUL refused");
    CHECK(b64url_decode("-_-_", 4, out, sizeof(out)) == 3, "b64url: - and _ accepted");
    CHECK(b64url_decode("AAAAAAAA", 8, out, 5) == -1, "b64url: output that does not fit refused");
    CHECK(b64url_decode("AAAAAAAA", 8, out, 6) == 6, "b64url: output that just fits accepted");
}

static int
parse_fails_with(const char *text, const char *want)
{
    struct jwt_keyring r;
    char err[256] = "";
    int rc = jwt_keyring_parse(text, strlen(text), &r, err, sizeof(err));

    if (rc == 0 || strstr(err, want) == NULL) {
        fprintf(stderr, "parse of [%s]: rc %d, error [%s], wanted [%s]\n", text, rc, err, want);
        return 0;
    }
    /* No message ever quotes key material. */
    return strstr(err, "00112233") == NULL && strstr(err, "ffeedd") == NULL;
}

static void
test_keyring(void)
{
    char err[256];
    char many[8192] = "";
    const char *good = "# session keys\n"
                       "key k1 " KEY1 "   # the old one\n"
                       "\n"
                       "key k-2_B " KEY2 "\r\n"
                       "active k-2_B\n";

    CHECK(jwt_keyring_parse(good, strlen(good), &ring, err, sizeof(err)) == 0, "keyring: a good file parses");
    CHECK(ring.nkeys == 2 && ring.active == 1 && ring.keys[0].len == 32 && ring.keys[1].len == 36 &&
              ring.keys[0].secret[1] == 0x11 && strcmp(ring.keys[1].kid, "k-2_B") == 0,
          "keyring: keys, lengths and active key as written");
    CHECK(jwt_keyring_find(&ring, "k1", 2) == &ring.keys[0] && jwt_keyring_find(&ring, "k", 1) == NULL &&
              jwt_keyring_find(&ring, "k1x", 3) == NULL,
          "keyring: find by exact kid");

    CHECK(parse_fails_with("key k1 " KEY1 "\n", "no \"active\" line"), "keyring: no active line");
    CHECK(parse_fails_with("key k1 " KEY1 "\nactive k2\n", "\"k2\" is not in the key file"),
          "keyring: active key unknown");
    CHECK(parse_fails_with("key k1 " KEY1 "\nactive k1\nactive k1\n", "second \"active\""),
          "keyring: two active lines");
    CHECK(parse_fails_with("key k1 " KEY1 "\nkey k1 " KEY2 "\nactive k1\n", "appears twice"), "keyring: duplicate kid");
    CHECK(parse_fails_with("key k1 0011223344556677\nactive k1\n", "64 to 128 hexadecimal digits"),
          "keyring: a key shorter than 256 bits");
    CHECK(parse_fails_with("key k1 " KEY1 "0\nactive k1\n", "64 to 128 hexadecimal digits"),
          "keyring: odd number of digits");
    CHECK(parse_fails_with("key k1 " KEY1 KEY1 "00\nactive k1\n", "64 to 128 hexadecimal digits"),
          "keyring: a key longer than 512 bits");
    CHECK(parse_fails_with("key k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\nactive k1\n",
                           "not hexadecimal"),
          "keyring: non-hex digit");
    CHECK(parse_fails_with("key k.1 " KEY1 "\nactive k.1\n", "a key id has"), "keyring: kid with a dot");
    CHECK(parse_fails_with("key abcdefghijabcdefghijabcdefghijabc " KEY1 "\nactive k1\n", "a key id has"),
          "keyring: kid of 33 characters");
    CHECK(parse_fails_with("key k1 " KEY1 " extra\nactive k1\n", "expected \"key <id> <hex>\""), "keyring: extra word");
    CHECK(parse_fails_with("secret k1 " KEY1 "\nactive k1\n", "expected \"key <id> <hex>\""),
          "keyring: unknown directive");
    CHECK(parse_fails_with("", "no \"active\" line"), "keyring: empty file");
    for (int i = 0; i <= JWT_MAX_KEYS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "key k%d %s\n", i, KEY1);
    strcat(many, "active k1\n");
    CHECK(parse_fails_with(many, "more than 16 keys"), "keyring: too many keys");
    {
        char nul[] = "key k1 " KEY1 "\nactive k1\n";
        struct jwt_keyring r;
        nul[3] = '\0';
        CHECK(jwt_keyring_parse(nul, sizeof(nul) - 1, &r, err, sizeof(err)) == -1 && strstr(err, "NUL") != NULL,
              "keyring: NUL byte refused");
    }
}

static void
test_keyring_file(void)
{
    char dir[] = "/tmp/actloom-jwt-XXXXXX", path[64], err[256];
    const char *text = "key k1 " KEY1 "\nactive k1\n";
    struct jwt_keyring r;
    FILE *f;

    if (mkdtemp(dir) == NULL) {
        CHECK(0, "keyring file: temporary directory");
        return;
    }
    snprintf(path, sizeof(path), "%s/keys", dir);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, 0644);
    CHECK(jwt_keyring_load(path, &r, err, sizeof(err)) == -1 && strstr(err, "group or world access") != NULL,
          "keyring file: readable by others refused");
    chmod(path, 0640);
    CHECK(jwt_keyring_load(path, &r, err, sizeof(err)) == -1, "keyring file: readable by group refused");
    chmod(path, 0600);
    CHECK(jwt_keyring_load(path, &r, err, sizeof(err)) == 0 && r.nkeys == 1, "keyring file: mode 0600 loads");
    chmod(path, 0400);
    CHECK(jwt_keyring_load(path, &r, err, sizeof(err)) == 0, "keyring file: mode 0400 loads");
    CHECK(jwt_keyring_load(dir, &r, err, sizeof(err)) == -1 && strstr(err, "not a regular file") != NULL,
          "keyring file: a directory refused");
    unlink(path);
    CHECK(jwt_keyring_load(path, &r, err, sizeof(err)) == -1 && strstr(err, "could not open") != NULL,
          "keyring file: a missing file refused");
    rmdir(dir);
}

/* A token with any header and payload, signed with HMAC over digest md under key. */
static void
forge(const char *header, const char *payload, const char *md, const unsigned char *key, size_t keylen, char *out)
{
    unsigned char sig[64];
    size_t o, siglen = 0;

    o = b64url_encode((const unsigned char *)header, strlen(header), out);
    out[o++] = '.';
    o += b64url_encode((const unsigned char *)payload, strlen(payload), out + o);
    EVP_Q_mac(NULL, "HMAC", NULL, md, NULL, key, keylen, (unsigned char *)out, o, sig, sizeof(sig), &siglen);
    out[o++] = '.';
    b64url_encode(sig, siglen, out + o);
}

#define GOOD_PAYLOAD                                                                                                   \
    "{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1800000000,\"nbf\":1800000000,"              \
    "\"exp\":1800043200}"

static enum jwt_status
verify_forged(const char *header, const char *payload)
{
    char token[4096];
    struct jwt_claims c;

    forge(header, payload, "SHA256", ring.keys[1].secret, ring.keys[1].len, token);
    return jwt_verify(&ring, token, strlen(token), NOW, LIFETIME, &c);
}

static enum jwt_status
verify_payload(const char *payload)
{
    return verify_forged("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k-2_B\"}", payload);
}

static enum jwt_status
verify_header(const char *header)
{
    return verify_forged(header, GOOD_PAYLOAD);
}

static enum jwt_status
verify_str(const char *token)
{
    struct jwt_claims c;
    return jwt_verify(&ring, token, strlen(token), NOW, LIFETIME, &c);
}

static void
test_sign_verify(void)
{
    struct jwt_claims in = {SUB, SID, NOW, NOW, NOW + LIFETIME}, out;
    char token[JWT_MAX_LEN], copy[JWT_MAX_LEN];
    long len = jwt_sign(&ring, &in, token, sizeof(token));

    CHECK(len > 0 && (size_t)len == strlen(token), "sign: a token");
    CHECK(jwt_verify(&ring, token, (size_t)len, NOW, LIFETIME, &out) == JWT_OK, "verify: our own token");
    CHECK(strcmp(out.sub, SUB) == 0 && strcmp(out.sid, SID) == 0 && out.iat == NOW && out.nbf == NOW &&
              out.exp == NOW + LIFETIME,
          "verify: the claims as signed");
    CHECK(jwt_sign(&ring, &in, token, (size_t)len) == -1, "sign: refuses a buffer too small");
    {
        struct jwt_claims bad = in;
        strcpy(bad.sub, "0B5AD8A4-6A3C-4D5E-9F10-1A2B3C4D5E6F");
        CHECK(jwt_sign(&ring, &bad, token, sizeof(token)) == -1, "sign: refuses an upper-case uuid");
        bad = in;
        bad.exp = bad.iat;
        CHECK(jwt_sign(&ring, &bad, token, sizeof(token)) == -1, "sign: refuses exp <= nbf");
    }
    jwt_sign(&ring, &in, token, sizeof(token));

    /* time */
    CHECK(jwt_verify(&ring, token, (size_t)len, NOW + LIFETIME + JWT_SKEW_S, LIFETIME, &out) == JWT_EXPIRED,
          "verify: expired beyond the skew");
    CHECK(jwt_verify(&ring, token, (size_t)len, NOW + LIFETIME + JWT_SKEW_S - 1, LIFETIME, &out) == JWT_OK,
          "verify: expired within the skew");
    CHECK(jwt_verify(&ring, token, (size_t)len, NOW - JWT_SKEW_S - 1, LIFETIME, &out) == JWT_NOT_YET_VALID,
          "verify: issued in the future beyond the skew");
    CHECK(jwt_verify(&ring, token, (size_t)len, NOW - JWT_SKEW_S, LIFETIME, &out) == JWT_OK,
          "verify: issued in the future within the skew");
    CHECK(jwt_verify(&ring, token, (size_t)len, NOW, LIFETIME - 1, &out) == JWT_BAD_CLAIMS,
          "verify: a lifetime longer than allowed");
    CHECK(out.sub[0] == '\0' && out.sid[0] == '\0', "verify: no claims out of a refused token");

    /* rotation: the old key still verifies, a removed one does not */
    {
        struct jwt_keyring old = ring;
        char t2[JWT_MAX_LEN];
        old.active = 0;
        jwt_sign(&old, &in, t2, sizeof(t2));
        CHECK(verify_str(t2) == JWT_OK, "rotation: a token of the inactive key verifies");
        old.nkeys = 1;
        CHECK(jwt_verify(&old, token, strlen(token), NOW, LIFETIME, &out) == JWT_UNKNOWN_KID,
              "rotation: a token of a removed key is refused");
        /* the same kid with another secret */
        memcpy(old.keys[0].kid, "k-2_B", 6);
        CHECK(jwt_verify(&old, token, strlen(token), NOW, LIFETIME, &out) == JWT_BAD_SIGNATURE,
              "rotation: the same kid with another secret");
    }

    /* tampering */
    {
        char *dot1 = strchr(token, '.'), *dot2 = strchr(dot1 + 1, '.');
        char forged[JWT_MAX_LEN];
        size_t o;
        const char *evil = "{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"00000000-0000-4000-8000-000000000000\","
                           "\"iat\":1800000000,\"nbf\":1800000000,\"exp\":1800043200}";

        memcpy(forged, token, (size_t)(dot1 - token + 1));
        o = (size_t)(dot1 - token + 1);
        o += b64url_encode((const unsigned char *)evil, strlen(evil), forged + o);
        strcpy(forged + o, dot2);
        CHECK(verify_str(forged) == JWT_BAD_SIGNATURE, "tamper: another session id, old signature");

        strcpy(copy, token);
        copy[len - 1] = copy[len - 1] == 'A' ? 'B' : 'A';
        CHECK(verify_str(copy) == JWT_MALFORMED || verify_str(copy) == JWT_BAD_SIGNATURE,
              "tamper: last character of the signature");
        strcpy(copy, token);
        copy[dot2 - token + 1] = copy[dot2 - token + 1] == 'A' ? 'B' : 'A';
        CHECK(verify_str(copy) == JWT_BAD_SIGNATURE, "tamper: first character of the signature");
        strcpy(copy, token);
        strcat(copy, "=");
        CHECK(verify_str(copy) == JWT_MALFORMED, "tamper: padding added");
        strcpy(copy, token);
        strcat(copy, "AAAA");
        CHECK(verify_str(copy) == JWT_BAD_SIGNATURE, "tamper: a longer signature");
        strcpy(copy, token);
        copy[len - 4] = '\0';
        CHECK(verify_str(copy) == JWT_BAD_SIGNATURE, "tamper: a shorter signature");
        strcpy(copy, token);
        *strrchr(copy, '.') = '\0';
        strcat(copy, ".");
        CHECK(verify_str(copy) == JWT_MALFORMED, "tamper: signature removed");
        strcpy(copy, token);
        strcat(copy, ".x");
        CHECK(verify_str(copy) == JWT_MALFORMED, "tamper: a fourth part");
        /* the unused bits of the last signature character (32 bytes: 4 bits used of the last 6) */
        {
            static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            int same_bits_refused = 1;
            strcpy(copy, token);
            int v = (int)(strchr(alphabet, copy[len - 1]) - alphabet);
            for (int low = 1; low < 4; low++) {
                copy[len - 1] = alphabet[(v & ~3) | low];
                if (verify_str(copy) != JWT_MALFORMED)
                    same_bits_refused = 0;
            }
            CHECK(same_bits_refused, "tamper: non-canonical trailing bits of the signature");
        }
    }
}

static void
test_header_attacks(void)
{
    char token[4096];
    struct jwt_claims c;

    CHECK(verify_header("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k-2_B\"}") == JWT_OK, "header: the forge works");
    CHECK(verify_header("{\"kid\":\"k-2_B\",\"alg\":\"HS256\"}") == JWT_OK, "header: typ optional, order free");

    /* alg: none */
    {
        char none[1024];
        const char *h = "{\"alg\":\"none\",\"kid\":\"k-2_B\"}";
        size_t o = b64url_encode((const unsigned char *)h, strlen(h), none);
        none[o++] = '.';
        o += b64url_encode((const unsigned char *)GOOD_PAYLOAD, strlen(GOOD_PAYLOAD), none + o);
        none[o++] = '.';
        none[o] = '\0';
        CHECK(verify_str(none) == JWT_MALFORMED, "alg none: unsigned token");
        strcpy(none + o, "AAAA");
        CHECK(verify_str(none) == JWT_BAD_ALG, "alg none: with a signature");
    }
    CHECK(verify_header("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg none: signed");
    CHECK(verify_header("{\"alg\":\"None\",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg None");
    CHECK(verify_header("{\"alg\":\"NONE\",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg NONE");
    CHECK(verify_header("{\"alg\":\"hs256\",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg hs256");
    CHECK(verify_header("{\"alg\":\"HS256 \",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg with a space");
    CHECK(verify_header("{\"alg\":\"RS256\",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg RS256");
    CHECK(verify_header("{\"alg\":\"ES256\",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg ES256");
    CHECK(verify_header("{\"alg\":\"HS512\",\"kid\":\"k-2_B\"}") == JWT_BAD_ALG, "alg HS512");
    CHECK(verify_header("{\"alg\":\"HS256\\u0000\",\"kid\":\"k-2_B\"}") == JWT_BAD_HEADER, "alg with a NUL");
    CHECK(verify_header("{\"alg\":[\"HS256\"],\"kid\":\"k-2_B\"}") == JWT_BAD_HEADER, "alg as an array");
    CHECK(verify_header("{\"kid\":\"k-2_B\"}") == JWT_BAD_HEADER, "alg missing");
    /* wrong algorithm, same secret: HS384 */
    forge("{\"alg\":\"HS384\",\"kid\":\"k-2_B\"}", GOOD_PAYLOAD, "SHA384", ring.keys[1].secret, ring.keys[1].len,
          token);
    CHECK(jwt_verify(&ring, token, strlen(token), NOW, LIFETIME, &c) == JWT_BAD_ALG, "alg HS384 with the same key");
    /* header says HS256, signature is HS384 */
    forge("{\"alg\":\"HS256\",\"kid\":\"k-2_B\"}", GOOD_PAYLOAD, "SHA384", ring.keys[1].secret, ring.keys[1].len,
          token);
    CHECK(jwt_verify(&ring, token, strlen(token), NOW, LIFETIME, &c) == JWT_BAD_SIGNATURE,
          "an HS384 signature under an HS256 header");

    /* members that make other verifiers fetch keys or skip checks */
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"crit\":[\"exp\"]}") == JWT_BAD_HEADER, "crit");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"jku\":\"https://evil.test/k\"}") == JWT_BAD_HEADER,
          "jku");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"x5u\":\"https://evil.test/c\"}") == JWT_BAD_HEADER,
          "x5u");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}") ==
              JWT_BAD_HEADER,
          "jwk");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"x5c\":[]}") == JWT_BAD_HEADER, "x5c");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"cty\":\"JWT\"}") == JWT_BAD_HEADER, "cty");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"b64\":false}") == JWT_BAD_HEADER, "b64");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"typ\":\"at+jwt\"}") == JWT_BAD_HEADER, "typ other");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"alg\":\"HS256\"}") == JWT_BAD_HEADER, "duplicate alg");
    CHECK(verify_header("{\"alg\":\"none\",\"kid\":\"k-2_B\",\"alg\":\"HS256\"}") == JWT_BAD_HEADER,
          "duplicate alg, none first");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k1\",\"kid\":\"k-2_B\"}") == JWT_BAD_HEADER, "duplicate kid");
    CHECK(verify_header("[\"HS256\"]") == JWT_BAD_HEADER, "header an array");
    CHECK(verify_header("\"HS256\"") == JWT_BAD_HEADER, "header a string");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\"} x") == JWT_BAD_HEADER, "header with trailing text");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\"") == JWT_BAD_HEADER, "header unterminated");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k9\"}") == JWT_UNKNOWN_KID, "unknown kid");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"\"}") == JWT_UNKNOWN_KID, "empty kid");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\\u0000\"}") == JWT_BAD_HEADER, "kid with a NUL");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"../../k-2_B\"}") == JWT_UNKNOWN_KID, "kid as a path");
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":7}") == JWT_BAD_HEADER, "kid a number");
    CHECK(verify_header("{\"alg\":\"HS256\"}") == JWT_BAD_HEADER, "kid missing");
    /* signed with the other key of the ring, naming this one */
    forge("{\"alg\":\"HS256\",\"kid\":\"k-2_B\"}", GOOD_PAYLOAD, "SHA256", ring.keys[0].secret, ring.keys[0].len,
          token);
    CHECK(jwt_verify(&ring, token, strlen(token), NOW, LIFETIME, &c) == JWT_BAD_SIGNATURE,
          "signed with another key of the ring");
    /* invalid UTF-8 in the header */
    CHECK(verify_header("{\"alg\":\"HS256\",\"kid\":\"k-2_B\",\"x\":\"\xff\"}") == JWT_BAD_HEADER,
          "invalid UTF-8 in the header");
}

static void
test_claims(void)
{
    CHECK(verify_payload(GOOD_PAYLOAD) == JWT_OK, "claims: the good payload");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"exp\":1800043200}") == JWT_OK,
          "claims: nbf optional");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"exp\":1800043200,\"admin\":true}") == JWT_BAD_CLAIMS,
          "claims: an unknown claim");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"sid\":\"" SUB
                         "\",\"iat\":1800000000,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: duplicate sid");
    CHECK(verify_payload("{\"iss\":\"evil\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: another issuer");
    CHECK(verify_payload("{\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1800000000,\"exp\":1800043200}") ==
              JWT_BAD_CLAIMS,
          "claims: no issuer");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"iat\":1800000000,\"exp\":1800043200}") ==
              JWT_BAD_CLAIMS,
          "claims: no session");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID "\",\"iat\":1800000000}") ==
              JWT_BAD_CLAIMS,
          "claims: no expiry");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"7E57C0DE-1234-4ABC-8DEF-0123456789AB"
                         "\",\"iat\":1800000000,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: upper-case session id");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"7e57c0de12344abc8def0123456789ab"
                         "\",\"iat\":1800000000,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: session id without dashes");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "' OR 1=1 --\",\"iat\":1800000000,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: session id with SQL");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"exp\":1800043200.0}") == JWT_BAD_CLAIMS,
          "claims: exp not an integer");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"exp\":\"1800043200\"}") == JWT_BAD_CLAIMS,
          "claims: exp a string");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"exp\":99999999999999999999}") == JWT_BAD_CLAIMS,
          "claims: exp too large");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":-1,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: negative iat");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"exp\":1800000000}") == JWT_BAD_CLAIMS,
          "claims: exp equal to iat");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1700000000,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: a lifetime longer than allowed");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1800000000,\"nbf\":1800000100,\"exp\":1800043200}") == JWT_NOT_YET_VALID,
          "claims: nbf in the future");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID
                         "\",\"iat\":1799990000,\"exp\":1799999000}") == JWT_EXPIRED,
          "claims: expired");
    CHECK(verify_payload("{\"iss\":\"actloom\",\"sub\":\"" SUB "\",\"sid\":\"" SID "\\u0000"
                         "\",\"iat\":1800000000,\"exp\":1800043200}") == JWT_BAD_CLAIMS,
          "claims: a NUL escape");
    CHECK(verify_payload("[1]") == JWT_BAD_CLAIMS, "claims: an array");
    CHECK(verify_payload("") == JWT_MALFORMED, "claims: empty payload");
}

/* Tokens that are not ours, by the thousand: none may verify. */
static void
test_fuzz(void)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \"{}\0\xff";
    struct jwt_claims in = {SUB, SID, NOW, NOW, NOW + LIFETIME}, out;
    char token[JWT_MAX_LEN], copy[JWT_MAX_LEN + 8];
    size_t len = (size_t)jwt_sign(&ring, &in, token, sizeof(token));
    unsigned seed = 20261129;
    int accepted = 0, truncated_ok = 0, big = 0;

    /* every single-character change */
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < sizeof(chars) - 1; k++) {
            if (token[i] == chars[k])
                continue;
            memcpy(copy, token, len);
            copy[i] = chars[k];
            if (jwt_verify(&ring, copy, len, NOW, LIFETIME, &out) == JWT_OK)
                accepted++;
        }
    CHECK(accepted == 0, "fuzz: no single-character change verifies");
    /* every truncation and every extension by one character */
    for (size_t n = 0; n < len; n++)
        if (jwt_verify(&ring, token, n, NOW, LIFETIME, &out) == JWT_OK)
            truncated_ok++;
    for (size_t k = 0; k < sizeof(chars) - 1; k++) {
        memcpy(copy, token, len);
        copy[len] = chars[k];
        if (jwt_verify(&ring, copy, len + 1, NOW, LIFETIME, &out) == JWT_OK)
            truncated_ok++;
    }
    CHECK(truncated_ok == 0, "fuzz: no truncation or extension verifies");
    /* random multi-character mutations */
    accepted = 0;
    for (int round = 0; round < 200000; round++) {
        int edits = 1 + (int)(rand_r(&seed) % 4);
        memcpy(copy, token, len);
        for (int e = 0; e < edits; e++)
            copy[rand_r(&seed) % len] = chars[rand_r(&seed) % (sizeof(chars) - 1)];
        if (memcmp(copy, token, len) != 0 && jwt_verify(&ring, copy, len, NOW, LIFETIME, &out) == JWT_OK)
            accepted++;
    }
    CHECK(accepted == 0, "fuzz: no random mutation verifies");
    /* random strings of the alphabet and dots */
    accepted = 0;
    for (int round = 0; round < 100000; round++) {
        size_t n = 1 + rand_r(&seed) % 400;
        for (size_t i = 0; i < n; i++)
            copy[i] = chars[rand_r(&seed) % (sizeof(chars) - 1)];
        if (jwt_verify(&ring, copy, n, NOW, LIFETIME, &out) == JWT_OK)
            accepted++;
    }
    CHECK(accepted == 0, "fuzz: no random string verifies");
    /* over-long tokens are refused before any work */
    {
        char *huge = malloc(1 << 20);
        memset(huge, 'A', 1 << 20);
        huge[100] = '.';
        huge[200] = '.';
        big = jwt_verify(&ring, huge, 1 << 20, NOW, LIFETIME, &out) == JWT_MALFORMED &&
              jwt_verify(&ring, huge, JWT_MAX_LEN + 1, NOW, LIFETIME, &out) == JWT_MALFORMED;
        free(huge);
    }
    CHECK(big, "fuzz: over-long tokens are malformed");
    CHECK(jwt_verify(&ring, "", 0, NOW, LIFETIME, &out) == JWT_MALFORMED, "fuzz: empty token");
    CHECK(jwt_verify(&ring, "..", 2, NOW, LIFETIME, &out) == JWT_MALFORMED, "fuzz: two dots");
    CHECK(strcmp(jwt_strerror(JWT_BAD_ALG), "algorithm is not HS256") == 0, "strerror names the reason");
}

int
main(void)
{
    test_b64url();
    test_keyring();
    test_keyring_file();
    test_sign_verify();
    test_header_attacks();
    test_claims();
    test_fuzz();
    jwt_keyring_wipe(&ring);
    CHECK(ring.nkeys == 0 && ring.keys[1].secret[0] == 0, "wipe clears the ring");
    return unit_done();
}
