/*
 * Unit tests of csrf.c: tokens bound to a session and a key, checked in
 * constant time; every other token, session or key is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csrf.h"
#include "unit.h"

#define SID "7e57c0de-1234-4abc-8def-0123456789ab"
#define SID2 "7e57c0de-1234-4abc-8def-0123456789ac"
#define KEYS                                                                                                           \
    "key old 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"                                       \
    "key new ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"

static int
load(struct jwt_keyring *ring, const char *active)
{
    char text[512], err[256];
    snprintf(text, sizeof(text), "%sactive %s\n", KEYS, active);
    return jwt_keyring_parse(text, strlen(text), ring, err, sizeof(err));
}

int
main(void)
{
    struct jwt_keyring ring, old_ring, other;
    char t1[CSRF_TOKEN_MAX + 1], t2[CSRF_TOKEN_MAX + 1], copy[CSRF_TOKEN_MAX + 8];
    long n1, n2;
    int refused = 1;
    unsigned seed = 7;

    CHECK(load(&ring, "new") == 0 && load(&old_ring, "old") == 0, "two rings over the same keys");
    n1 = csrf_make(&ring, SID, t1, sizeof(t1));
    n2 = csrf_make(&ring, SID, t2, sizeof(t2));
    CHECK(n1 > 0 && (size_t)n1 == strlen(t1) && strncmp(t1, "new.", 4) == 0, "a token names the active key");
    CHECK(n1 == n2 && strcmp(t1, t2) != 0, "two tokens for one session differ (random nonce)");
    CHECK(csrf_check(&ring, SID, t1, (size_t)n1) && csrf_check(&ring, SID, t2, (size_t)n2),
          "both verify for their session");
    CHECK(!csrf_check(&ring, SID2, t1, (size_t)n1), "a token of another session is refused");
    CHECK(csrf_make(&ring, "not-a-session", t2, sizeof(t2)) == -1, "no token for a malformed session id");
    CHECK(!csrf_check(&ring, "not-a-session", t1, (size_t)n1), "no check against a malformed session id");
    CHECK(csrf_make(&ring, SID, t2, (size_t)n1) == -1, "a buffer too small is refused");

    /* rotation: a token of the old active key verifies while the key is in the ring */
    n2 = csrf_make(&old_ring, SID, t2, sizeof(t2));
    CHECK(strncmp(t2, "old.", 4) == 0 && csrf_check(&ring, SID, t2, (size_t)n2), "rotation: the old key's token");
    other = ring;
    other.nkeys = 1; /* "old" only */
    CHECK(!csrf_check(&other, SID, t1, (size_t)n1), "rotation: a removed key's token is refused");
    /* the same kid with another secret */
    other = ring;
    memcpy(other.keys[1].secret, other.keys[0].secret, 32);
    CHECK(!csrf_check(&other, SID, t1, (size_t)n1), "another secret under the same kid");
    /* swapping the kid does not move a token to another key */
    memcpy(copy, t1, (size_t)n1 + 1);
    memcpy(copy, "old", 3);
    CHECK(!csrf_check(&ring, SID, copy, (size_t)n1), "a token relabelled with another kid");

    /* every single-character change, truncation and extension is refused */
    for (long i = 0; i < n1; i++)
        for (int c = 0x20; c < 0x7f; c++) {
            if (t1[i] == c)
                continue;
            memcpy(copy, t1, (size_t)n1);
            copy[i] = (char)c;
            if (csrf_check(&ring, SID, copy, (size_t)n1))
                refused = 0;
        }
    CHECK(refused, "no single-character change verifies");
    for (long i = 0; i < n1; i++)
        if (csrf_check(&ring, SID, t1, (size_t)i))
            refused = 0;
    memcpy(copy, t1, (size_t)n1);
    memcpy(copy + n1, "AAAA", 4);
    if (csrf_check(&ring, SID, copy, (size_t)n1 + 4))
        refused = 0;
    CHECK(refused, "no truncation or extension verifies");
    for (int round = 0; round < 100000; round++) {
        size_t n = 1 + rand_r(&seed) % (CSRF_TOKEN_MAX + 4);
        for (size_t i = 0; i < n; i++)
            copy[i] = "new.AZaz09-_="[rand_r(&seed) % 13];
        if (csrf_check(&ring, SID, copy, n))
            refused = 0;
    }
    CHECK(refused, "no random string verifies");
    CHECK(!csrf_check(&ring, SID, "", 0), "the empty token is refused");

    /* the double submit: header and cookie equal */
    CHECK(csrf_same(t1, (size_t)n1, t1, (size_t)n1), "same: equal tokens");
    memcpy(copy, t1, (size_t)n1);
    copy[n1 - 1] ^= 1;
    CHECK(!csrf_same(t1, (size_t)n1, copy, (size_t)n1), "same: one bit differs");
    CHECK(!csrf_same(t1, (size_t)n1, t1, (size_t)n1 - 1), "same: a prefix");
    CHECK(!csrf_same("", 0, "", 0), "same: two empty tokens are no match");

    jwt_keyring_wipe(&ring);
    jwt_keyring_wipe(&old_ring);
    jwt_keyring_wipe(&other);
    return unit_done();
}
