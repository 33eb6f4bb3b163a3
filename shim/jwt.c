/*
 * jwt.c: HS256 session tokens, signed and verified by hand on OpenSSL's
 * EVP_MAC (jwt.h).
 *
 * Why by hand.  Generic JWT libraries let the token choose its algorithm and
 * its key ("alg": "none", RS256 against an HMAC secret, "jku", "jwk"...).
 * Here the key decides: every key of the ring is an HMAC-SHA256 key, so a
 * token verifies as HS256 or not at all, and the header can only agree.
 *
 * Order of checks.  The header is read first (it names the key), then the
 * signature is checked, and only then is the payload parsed: bytes an
 * attacker made up never reach the claims parser.  Every part is decoded
 * with strict base64url (b64url.h) and every JSON text with duplicate keys
 * refused, so a token has one reading only.  Header and payload are closed
 * sets of members: anything else ("crit", "jku", "x5u", "jwk", "x5c",
 * "cty", unknown claims) is refused rather than ignored.
 *
 * Constant time.  The signature is compared with CRYPTO_memcmp.  The early
 * refusals (shape, header, unknown kid) reveal nothing about any secret.
 */
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "b64url.h"

#define KEYFILE_MAX_BYTES 65536
#define HEADER_MAX 512   /* decoded bytes */
#define PAYLOAD_MAX 1024 /* decoded bytes */
#define SIG_LEN 32
#define SIG_MAX 96                  /* decoded bytes: a longer signature is refused as such */
#define TIME_MAX ((int64_t)1 << 40) /* seconds; the year 36812 */

const char *
jwt_strerror(enum jwt_status status)
{
    switch (status) {
    case JWT_OK:
        return "valid";
    case JWT_MALFORMED:
        return "malformed token";
    case JWT_BAD_HEADER:
        return "unacceptable header";
    case JWT_BAD_ALG:
        return "algorithm is not HS256";
    case JWT_UNKNOWN_KID:
        return "unknown key id";
    case JWT_BAD_SIGNATURE:
        return "bad signature";
    case JWT_BAD_CLAIMS:
        return "unacceptable claims";
    case JWT_NOT_YET_VALID:
        return "not yet valid";
    case JWT_EXPIRED:
        return "expired";
    }
    return "unknown status";
}

/* ---- HMAC ------------------------------------------------------------- */

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

int
jwt_hmac_sha256(const unsigned char *key, size_t keylen, const void *data, size_t len, unsigned char out[32])
{
    static char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx;
    size_t outlen = 0;
    int ok;

    pthread_once(&hmac_once, hmac_fetch);
    if (hmac_alg == NULL || (ctx = EVP_MAC_CTX_new(hmac_alg)) == NULL)
        return -1;
    ok = EVP_MAC_init(ctx, key, keylen, params) == 1 && EVP_MAC_update(ctx, data, len) == 1 &&
         EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* ---- the key ring ----------------------------------------------------- */

static int
kid_valid(const char *s, size_t len)
{
    if (len == 0 || len > JWT_KID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const struct jwt_key *
jwt_keyring_find(const struct jwt_keyring *ring, const char *kid, size_t len)
{
    for (size_t i = 0; i < ring->nkeys; i++)
        if (strlen(ring->keys[i].kid) == len && memcmp(ring->keys[i].kid, kid, len) == 0)
            return &ring->keys[i];
    return NULL;
}

void
jwt_keyring_wipe(struct jwt_keyring *ring)
{
    OPENSSL_cleanse(ring, sizeof(*ring));
}

/* Splits a line into at most 4 words separated by blanks; returns the count. */
static int
split_words(char *line, char **words)
{
    int n = 0;
    char *p = line;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (n == 4)
            return 5;
        words[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        if (*p != '\0')
            *p++ = '\0';
    }
    return n;
}

int
jwt_keyring_parse(const char *text, size_t len, struct jwt_keyring *ring, char *err, size_t errlen)
{
    char line[512];
    char active[JWT_KID_MAX + 1] = "";
    size_t pos = 0;
    int lineno = 0, result = -1;

    memset(ring, 0, sizeof(*ring));
    if (len > KEYFILE_MAX_BYTES) {
        snprintf(err, errlen, "the key file is larger than %d bytes", KEYFILE_MAX_BYTES);
        return -1;
    }
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "the key file contains a NUL byte");
        return -1;
    }
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = (nl ? (size_t)(nl - text) : len) - pos;
        char *words[4], *hash;
        int nw;

        lineno++;
        if (n >= sizeof(line)) {
            snprintf(err, errlen, "line %d of the key file is too long", lineno);
            goto done;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r')
            line[n - 1] = '\0';
        if ((hash = strchr(line, '#')) != NULL)
            *hash = '\0';
        nw = split_words(line, words);
        if (nw == 0)
            continue;
        if (nw == 3 && strcmp(words[0], "key") == 0) {
            struct jwt_key *k;
            size_t hexlen = strlen(words[2]);

            if (!kid_valid(words[1], strlen(words[1]))) {
                snprintf(err, errlen, "line %d of the key file: a key id has 1 to %d characters of A-Z a-z 0-9 _ -",
                         lineno, JWT_KID_MAX);
                goto done;
            }
            if (jwt_keyring_find(ring, words[1], strlen(words[1])) != NULL) {
                snprintf(err, errlen, "line %d of the key file: key id \"%s\" appears twice", lineno, words[1]);
                goto done;
            }
            if (ring->nkeys == JWT_MAX_KEYS) {
                snprintf(err, errlen, "the key file holds more than %d keys", JWT_MAX_KEYS);
                goto done;
            }
            if (hexlen % 2 != 0 || hexlen < 2 * JWT_KEY_MIN || hexlen > 2 * JWT_KEY_MAX) {
                snprintf(err, errlen, "line %d of the key file: a key has %d to %d hexadecimal digits", lineno,
                         2 * JWT_KEY_MIN, 2 * JWT_KEY_MAX);
                goto done;
            }
            k = &ring->keys[ring->nkeys];
            for (size_t i = 0; i < hexlen; i += 2) {
                int hi = hex_value(words[2][i]), lo = hex_value(words[2][i + 1]);
                if (hi < 0 || lo < 0) {
                    snprintf(err, errlen, "line %d of the key file: the key is not hexadecimal", lineno);
                    goto done;
                }
                k->secret[i / 2] = (unsigned char)(hi << 4 | lo);
            }
            k->len = hexlen / 2;
            memcpy(k->kid, words[1], strlen(words[1]) + 1);
            ring->nkeys++;
        } else if (nw == 2 && strcmp(words[0], "active") == 0) {
            if (active[0] != '\0') {
                snprintf(err, errlen, "line %d of the key file: a second \"active\" line", lineno);
                goto done;
            }
            if (!kid_valid(words[1], strlen(words[1]))) {
                snprintf(err, errlen, "line %d of the key file: a key id has 1 to %d characters of A-Z a-z 0-9 _ -",
                         lineno, JWT_KID_MAX);
                goto done;
            }
            memcpy(active, words[1], strlen(words[1]) + 1);
        } else {
            snprintf(err, errlen, "line %d of the key file: expected \"key <id> <hex>\" or \"active <id>\"", lineno);
            goto done;
        }
    }
    if (active[0] == '\0') {
        snprintf(err, errlen, "the key file has no \"active\" line");
        goto done;
    }
    for (size_t i = 0; i < ring->nkeys; i++)
        if (strcmp(ring->keys[i].kid, active) == 0) {
            ring->active = i;
            result = 0;
        }
    if (result != 0)
        snprintf(err, errlen, "the active key \"%s\" is not in the key file", active);
done:
    OPENSSL_cleanse(line, sizeof(line));
    if (result != 0)
        jwt_keyring_wipe(ring);
    return result;
}

int
jwt_keyring_load(const char *path, struct jwt_keyring *ring, char *err, size_t errlen)
{
    char *buf = NULL;
    struct stat st;
    size_t got = 0;
    int fd, result = -1;

    memset(ring, 0, sizeof(*ring));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "could not open the session key file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "could not stat the session key file \"%s\": %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the session key file \"%s\" is not a regular file", path);
        goto done;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, errlen, "the session key file \"%s\" must be owned by the shim's user or root", path);
        goto done;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "the session key file \"%s\" has group or world access; it must be 0600 or less", path);
        goto done;
    }
    if (st.st_size > KEYFILE_MAX_BYTES) {
        snprintf(err, errlen, "the session key file \"%s\" is larger than %d bytes", path, KEYFILE_MAX_BYTES);
        goto done;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        snprintf(err, errlen, "out of memory reading the session key file");
        goto done;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "could not read the session key file \"%s\": %s", path,
                     n < 0 ? strerror(errno) : "unexpected end of file");
            goto done;
        }
        got += (size_t)n;
    }
    result = jwt_keyring_parse(buf, got, ring, err, errlen);
done:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, (size_t)st.st_size);
        free(buf);
    }
    close(fd);
    return result;
}

/* ---- tokens ----------------------------------------------------------- */

int
jwt_uuid_valid(const char *s, size_t len)
{
    if (len != JWT_UUID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

long
jwt_sign(const struct jwt_keyring *ring, const struct jwt_claims *claims, char *out, size_t cap)
{
    const struct jwt_key *key = &ring->keys[ring->active];
    char header[128], payload[256];
    unsigned char sig[SIG_LEN];
    int hlen, plen;
    size_t need, o;

    if (ring->nkeys == 0 || !jwt_uuid_valid(claims->sub, strlen(claims->sub)) ||
        !jwt_uuid_valid(claims->sid, strlen(claims->sid)) || claims->iat < 0 || claims->nbf < claims->iat ||
        claims->exp <= claims->nbf || claims->exp > TIME_MAX)
        return -1;
    hlen = snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", key->kid);
    plen = snprintf(payload, sizeof(payload),
                    "{\"iss\":\"" JWT_ISSUER "\",\"sub\":\"%s\",\"sid\":\"%s\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld}",
                    claims->sub, claims->sid, (long long)claims->iat, (long long)claims->nbf, (long long)claims->exp);
    if (hlen < 0 || (size_t)hlen >= sizeof(header) || plen < 0 || (size_t)plen >= sizeof(payload))
        return -1;
    need = B64URL_ENCODED_LEN((size_t)hlen) + 1 + B64URL_ENCODED_LEN((size_t)plen) + 1 + B64URL_ENCODED_LEN(SIG_LEN);
    if (need + 1 > cap)
        return -1;
    o = b64url_encode((const unsigned char *)header, (size_t)hlen, out);
    out[o++] = '.';
    o += b64url_encode((const unsigned char *)payload, (size_t)plen, out + o);
    if (jwt_hmac_sha256(key->secret, key->len, out, o, sig) != 0)
        return -1;
    out[o++] = '.';
    o += b64url_encode(sig, SIG_LEN, out + o);
    OPENSSL_cleanse(sig, sizeof(sig));
    return (long)o;
}

/* Parses decoded JSON strictly: an object, no duplicate keys, nothing after it. */
static json_t *
parse_object(const unsigned char *buf, size_t len)
{
    json_error_t e;
    json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &e);

    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static int
string_is(json_t *v, const char *want)
{
    return json_is_string(v) && json_string_length(v) == strlen(want) &&
           memcmp(json_string_value(v), want, strlen(want)) == 0;
}

/* Reads the header; on success *key is the key it names. */
static enum jwt_status
check_header(const struct jwt_keyring *ring, json_t *header, const struct jwt_key **key)
{
    const char *name;
    json_t *value, *alg, *kid;

    json_object_foreach(header, name, value)
    {
        if (strcmp(name, "alg") != 0 && strcmp(name, "kid") != 0 && strcmp(name, "typ") != 0)
            return JWT_BAD_HEADER;
    }
    alg = json_object_get(header, "alg");
    kid = json_object_get(header, "kid");
    if (!json_is_string(alg) || !json_is_string(kid))
        return JWT_BAD_HEADER;
    if (json_object_get(header, "typ") != NULL && !string_is(json_object_get(header, "typ"), "JWT"))
        return JWT_BAD_HEADER;
    if (!string_is(alg, "HS256"))
        return JWT_BAD_ALG;
    if ((*key = jwt_keyring_find(ring, json_string_value(kid), json_string_length(kid))) == NULL)
        return JWT_UNKNOWN_KID;
    return JWT_OK;
}

static int
time_claim(json_t *v, int64_t *out)
{
    json_int_t t;

    if (!json_is_integer(v))
        return 0;
    t = json_integer_value(v);
    if (t < 0 || t > TIME_MAX)
        return 0;
    *out = (int64_t)t;
    return 1;
}

static int
uuid_claim(json_t *v, char *out)
{
    if (!json_is_string(v) || !jwt_uuid_valid(json_string_value(v), json_string_length(v)))
        return 0;
    memcpy(out, json_string_value(v), JWT_UUID_LEN + 1);
    return 1;
}

/* Reads the claims of a payload whose signature checked. */
static enum jwt_status
check_claims(json_t *payload, int64_t now, int64_t max_lifetime, struct jwt_claims *c)
{
    static const char *const known[] = {"iss", "sub", "sid", "iat", "nbf", "exp"};
    const char *name;
    json_t *value;

    json_object_foreach(payload, name, value)
    {
        size_t i;
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strcmp(name, known[i]) == 0)
                break;
        if (i == sizeof(known) / sizeof(known[0]))
            return JWT_BAD_CLAIMS;
    }
    if (!string_is(json_object_get(payload, "iss"), JWT_ISSUER) ||
        !uuid_claim(json_object_get(payload, "sub"), c->sub) || !uuid_claim(json_object_get(payload, "sid"), c->sid) ||
        !time_claim(json_object_get(payload, "iat"), &c->iat) || !time_claim(json_object_get(payload, "exp"), &c->exp))
        return JWT_BAD_CLAIMS;
    c->nbf = c->iat;
    if (json_object_get(payload, "nbf") != NULL && !time_claim(json_object_get(payload, "nbf"), &c->nbf))
        return JWT_BAD_CLAIMS;
    if (c->exp <= c->iat || c->exp <= c->nbf || (max_lifetime > 0 && c->exp - c->iat > max_lifetime))
        return JWT_BAD_CLAIMS;
    if (c->iat > now + JWT_SKEW_S || c->nbf > now + JWT_SKEW_S)
        return JWT_NOT_YET_VALID;
    if (c->exp <= now - JWT_SKEW_S)
        return JWT_EXPIRED;
    return JWT_OK;
}

enum jwt_status
jwt_verify(const struct jwt_keyring *ring, const char *token, size_t len, int64_t now, int64_t max_lifetime,
           struct jwt_claims *claims)
{
    unsigned char header_buf[HEADER_MAX], payload_buf[PAYLOAD_MAX], sig[SIG_MAX], mac[SIG_LEN];
    const char *dot1, *dot2;
    const struct jwt_key *key = NULL;
    json_t *header, *payload;
    enum jwt_status status;
    long hlen, plen, slen;

    memset(claims, 0, sizeof(*claims));
    if (len == 0 || len > JWT_MAX_LEN)
        return JWT_MALFORMED;
    if ((dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return JWT_MALFORMED;
    if (dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == token + len)
        return JWT_MALFORMED;
    hlen = b64url_decode(token, (size_t)(dot1 - token), header_buf, sizeof(header_buf));
    plen = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload_buf, sizeof(payload_buf));
    slen = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof(sig));
    if (hlen < 0 || plen < 0 || slen < 0)
        return JWT_MALFORMED;

    if ((header = parse_object(header_buf, (size_t)hlen)) == NULL)
        return JWT_BAD_HEADER;
    status = check_header(ring, header, &key);
    json_decref(header);
    if (status != JWT_OK)
        return status;

    if (slen != SIG_LEN || jwt_hmac_sha256(key->secret, key->len, token, (size_t)(dot2 - token), mac) != 0 ||
        CRYPTO_memcmp(mac, sig, SIG_LEN) != 0)
        return JWT_BAD_SIGNATURE;

    if ((payload = parse_object(payload_buf, (size_t)plen)) == NULL)
        return JWT_BAD_CLAIMS;
    status = check_claims(payload, now, max_lifetime, claims);
    json_decref(payload);
    if (status != JWT_OK)
        memset(claims, 0, sizeof(*claims));
    return status;
}
