/* Unit tests of ratelimit.c, verified.c, clientaddr.c and apikey.c. */
#include <arpa/inet.h>
#include <string.h>

#include "apikey.h"
#include "clientaddr.h"
#include "ratelimit.h"
#include "unit.h"
#include "verified.h"

static struct sockaddr_in
v4(const char *text)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, text, &sa.sin_addr);
    return sa;
}

int
main(void)
{
    struct config_rate_class rc = {"test", 10, 10, 3, RL_KEY_ADDRESS};
    struct rl_verdict v;
    struct rl_table *t = rl_create(1024);
    char buf[128];
    int allowed = 0;

    /* GCRA: 10 per 10 s (one a second), burst 3 */
    for (int i = 0; i < 5; i++) {
        rl_take(t, &rc, "k", 1, 1000000, &v);
        allowed += v.allowed;
        if (i == 0)
            CHECK(v.remaining == 2 && v.reset == 1, "first take leaves burst - 1");
    }
    CHECK(allowed == 3, "a burst of 3 is allowed, then refused");
    CHECK(!v.allowed && v.retry_after == 1 && v.remaining == 0, "a refusal says when to retry");
    rl_take(t, &rc, "other", 5, 1000000, &v);
    CHECK(v.allowed, "keys are independent");
    rl_take(t, &rc, "k", 1, 1000999, &v);
    CHECK(!v.allowed, "not before the advertised wait");
    rl_take(t, &rc, "k", 1, 1001000, &v);
    CHECK(v.allowed && v.remaining == 0, "allowed again after the advertised wait");
    rl_take(t, &rc, "k", 1, 1100000, &v);
    CHECK(v.allowed && v.remaining == 2, "an idle key is whole again");
    rl_policy_header(&rc, buf, sizeof(buf));
    CHECK(strcmp(buf, "\"test\";q=10;w=10") == 0, "RateLimit-Policy value");
    rl_state_header(&rc, &v, buf, sizeof(buf));
    CHECK(strcmp(buf, "\"test\";r=2;t=1") == 0, "RateLimit value");

    /* a limit above a million a second still allows its burst */
    {
        struct config_rate_class fast = {"fast", 100000000, 1, 1000, RL_KEY_API_KEY};
        int ok = 0;
        for (int i = 0; i < 1000; i++) {
            rl_take(t, &fast, "f", 1, 1500000, &v);
            ok += v.allowed;
        }
        CHECK(ok == 1000, "a very high rate keeps its burst");
    }

    /* bounded memory: a flood of keys never grows the table */
    for (int i = 0; i < 100000; i++) {
        char key[32];
        int n = snprintf(key, sizeof(key), "flood-%d", i);
        rl_take(t, &rc, key, (size_t)n, 2000000, &v);
    }
    CHECK(rl_live(t, 2000000) <= 1024 && rl_evictions(t) > 0, "the table is bounded and evicts");
    CHECK(rl_live(t, 2000000 + 11000) == 0, "idle entries expire");
    rl_destroy(t);

    /* a guard: checked taking nothing, charged past the limit (10 per 10 s, burst 3) */
    t = rl_create(1024);
    rl_peek(t, &rc, "g", 1, 1000000, &v);
    CHECK(v.allowed && v.remaining == 3 && v.reset == 0, "a fresh key: the whole burst");
    rl_peek(t, &rc, "g", 1, 1000000, &v);
    CHECK(v.allowed && v.remaining == 3 && rl_live(t, 1000000) == 0, "peeking takes nothing and stores nothing");
    for (int i = 0; i < 3; i++)
        rl_charge(t, &rc, "g", 1, 1000000);
    rl_peek(t, &rc, "g", 1, 1000000, &v);
    CHECK(!v.allowed && v.remaining == 0 && v.retry_after == 1 && v.reset == 3, "three charges spend the burst");
    for (int i = 0; i < 5; i++)
        rl_charge(t, &rc, "g", 1, 1000000);
    rl_peek(t, &rc, "g", 1, 1000000, &v);
    CHECK(!v.allowed && v.retry_after == 6 && v.reset == 8, "charges past the limit leave a debt");
    rl_peek(t, &rc, "g", 1, 1005999, &v);
    CHECK(!v.allowed, "not paid off before its time");
    rl_peek(t, &rc, "g", 1, 1006000, &v);
    CHECK(v.allowed && v.remaining == 1, "paid off at the advertised time");
    rl_charge(t, &rc, "g", 1, 1006000);
    rl_refund(t, &rc, "g", 1, 1006000);
    rl_peek(t, &rc, "g", 1, 1006000, &v);
    CHECK(v.allowed && v.remaining == 1, "a refund gives a charge back");
    rl_refund(t, &rc, "never", 5, 1006000);
    rl_peek(t, &rc, "never", 5, 1006000, &v);
    CHECK(v.allowed && v.remaining == 3, "a refund of a key never charged changes nothing");

    /* a refusal held for the database store */
    rl_hold(t, &rc, "h", 1, 1000000, 7);
    rl_peek(t, &rc, "h", 1, 1000000, &v);
    CHECK(!v.allowed && v.retry_after == 7 && v.remaining == 0, "a held key refuses for the seconds given");
    rl_peek(t, &rc, "h", 1, 1006999, &v);
    CHECK(!v.allowed && v.retry_after == 1, "until the last of them");
    rl_peek(t, &rc, "h", 1, 1007000, &v);
    CHECK(v.allowed, "and then allows again");
    rl_hold(t, &rc, "h", 1, 1007000, 1);
    rl_hold(t, &rc, "h", 1, 1007000, 0);
    rl_peek(t, &rc, "h", 1, 1007500, &v);
    CHECK(!v.allowed, "a shorter hold does not shorten a longer one");
    rl_destroy(t);

    /* verified keys */
    {
        struct verified_table *vt = verified_create(64);
        const char *genuine = "alk_ABCDEFGHIJKL_genuine", *forged = "alk_ABCDEFGHIJKL_forged";
        struct verified_key g, f, prefix;
        uint64_t age = 0;
        verified_key_of(genuine, strlen(genuine), &g);
        verified_key_of(forged, strlen(forged), &f);
        verified_key_of(genuine, strlen(genuine) - 1, &prefix);
        CHECK(!verified_recent(vt, &g, 1000, 60000, &age), "an unknown key is not verified");
        verified_add(vt, &g, 1000);
        CHECK(verified_recent(vt, &g, 1000, 60000, &age) && age == 0, "a key the database accepted is");
        CHECK(!verified_recent(vt, &f, 1000, 60000, &age), "another secret under its id is not");
        CHECK(!verified_recent(vt, &prefix, 1000, 60000, &age), "nor a prefix of it");
        CHECK(verified_recent(vt, &g, 60999, 60000, &age) && age == 59999 &&
                  !verified_recent(vt, &g, 61000, 60000, &age),
              "for the TTL after it was accepted");
        verified_add(vt, &g, 61000);
        CHECK(verified_recent(vt, &g, 120999, 60000, &age), "accepted again, it is renewed");
        CHECK(!verified_recent(vt, &g, 61000, 0, &age), "a TTL of 0 verifies nothing");
        verified_forget(vt, &g);
        CHECK(!verified_recent(vt, &g, 61000, 60000, &age), "a refused key is forgotten");
        for (int i = 0; i < 10000; i++) {
            char key[32];
            int n = snprintf(key, sizeof(key), "flood-%d", i);
            struct verified_key k;
            verified_key_of(key, (size_t)n, &k);
            verified_add(vt, &k, 2000 + (uint64_t)i);
        }
        verified_key_of("flood-9999", 10, &g);
        verified_key_of("flood-0", 7, &f);
        CHECK(verified_recent(vt, &g, 20000, 60000, &age) && !verified_recent(vt, &f, 20000, 60000, &age),
              "the table is bounded: the oldest entries give way");
        verified_destroy(vt);
    }

    /* client address */
    {
        struct config_cidr proxies[2];
        struct sockaddr_in peer = v4("10.0.0.5"), stranger = v4("203.0.113.9");
        char out[CLIENTADDR_LEN];
        config_parse_cidr("10.0.0.0/8", &proxies[0]);
        config_parse_cidr("192.168.1.1", &proxies[1]);
        clientaddr_resolve((struct sockaddr *)&stranger, "1.2.3.4", 7, proxies, 2, out);
        CHECK(strcmp(out, "203.0.113.9") == 0, "an untrusted peer's X-Forwarded-For is ignored");
        clientaddr_resolve((struct sockaddr *)&peer, NULL, 0, proxies, 2, out);
        CHECK(strcmp(out, "10.0.0.5") == 0, "without X-Forwarded-For the peer is the client");
        const char *xff = "6.6.6.6, 1.2.3.4, 192.168.1.1";
        clientaddr_resolve((struct sockaddr *)&peer, xff, strlen(xff), proxies, 2, out);
        CHECK(strcmp(out, "1.2.3.4") == 0, "the right-most untrusted entry is the client");
        xff = "10.1.1.1,10.2.2.2";
        clientaddr_resolve((struct sockaddr *)&peer, xff, strlen(xff), proxies, 2, out);
        CHECK(strcmp(out, "10.1.1.1") == 0, "all trusted: the left-most entry");
        xff = "1.2.3.4, junk";
        clientaddr_resolve((struct sockaddr *)&peer, xff, strlen(xff), proxies, 2, out);
        CHECK(strcmp(out, "10.0.0.5") == 0, "garbage stops the walk at the last trusted hop");
        CHECK(config_parse_cidr("10.0.0.0/33", &proxies[0]) != 0 && config_parse_cidr("x", &proxies[0]) != 0,
              "bad CIDRs refused");
    }

    /* API key format */
    {
        char key[APIKEY_LEN + 1] = "alk_ABCDEFGHIJKL_0123456789abcdefghijABCDEFGHIJ0123456789abc";
        char id[APIKEY_ID_LEN + 1];
        CHECK(strlen(key) == 60, "test key body has 60 characters");
        apikey_checksum(key, key + 60);
        key[66] = '\0';
        CHECK(apikey_check(key, 66, id) && strcmp(id, "ABCDEFGHIJKL") == 0, "a well-formed key passes");
        key[20] ^= 1;
        CHECK(!apikey_check(key, 66, NULL), "a flipped character fails the checksum");
        key[20] ^= 1;
        CHECK(!apikey_check(key, 65, NULL), "a truncated key fails");
        key[0] = 'b';
        CHECK(!apikey_check(key, 66, NULL), "a wrong prefix fails");
        key[0] = 'a';
        key[30] = '-';
        CHECK(!apikey_check(key, 66, NULL), "a character outside base62 fails");
        /* CRC32 (zlib) of sixty "0", big-endian base62: computed independently with Python */
        char sum[6];
        apikey_checksum("000000000000000000000000000000000000000000000000000000000000", sum);
        CHECK(memcmp(sum, "177IEJ", 6) == 0, "checksum matches an independent computation");
    }
    return unit_done();
}
