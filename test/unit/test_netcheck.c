/*
 * Unit tests of netcheck.c: every range of netranges.h at its first and last
 * address and just outside it, IPv4 carried in IPv6 in every form, public
 * addresses, the allow list.  The expectations are written out by hand, not
 * derived from the table, and every row of the table must have its network
 * address among them, so a row added without a test fails here.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "netcheck.h"
#include "netranges.h"
#include "unit.h"

/* An address and the range it must be refused as (the parenthesised part of its name), or NULL: allowed. */
struct netcase {
    const char *addr;
    const char *refused_as;
};

static const struct netcase cases[] = {
    /* IPv4: first, last, just before, just after. */
    {"0.0.0.0", "(0.0.0.0/8)"},
    {"0.255.255.255", "(0.0.0.0/8)"},
    {"1.0.0.0", NULL},
    {"9.255.255.255", NULL},
    {"10.0.0.0", "(10.0.0.0/8)"},
    {"10.255.255.255", "(10.0.0.0/8)"},
    {"11.0.0.0", NULL},
    {"100.63.255.255", NULL},
    {"100.64.0.0", "(100.64.0.0/10)"},
    {"100.127.255.255", "(100.64.0.0/10)"},
    {"100.128.0.0", NULL},
    {"126.255.255.255", NULL},
    {"127.0.0.0", "(127.0.0.0/8)"},
    {"127.0.0.1", "(127.0.0.0/8)"},
    {"127.255.255.255", "(127.0.0.0/8)"},
    {"128.0.0.0", NULL},
    {"169.253.255.255", NULL},
    {"169.254.0.0", "(169.254.0.0/16)"},
    {"169.254.169.254", "(169.254.0.0/16)"},
    {"169.254.255.255", "(169.254.0.0/16)"},
    {"169.255.0.0", NULL},
    {"172.15.255.255", NULL},
    {"172.16.0.0", "(172.16.0.0/12)"},
    {"172.31.255.255", "(172.16.0.0/12)"},
    {"172.32.0.0", NULL},
    {"191.255.255.255", NULL},
    {"192.0.0.0", "(192.0.0.0/24)"},
    {"192.0.0.255", "(192.0.0.0/24)"},
    {"192.0.1.0", NULL},
    {"192.0.1.255", NULL},
    {"192.0.2.0", "(192.0.2.0/24)"},
    {"192.0.2.255", "(192.0.2.0/24)"},
    {"192.0.3.0", NULL},
    {"192.88.98.255", NULL},
    {"192.88.99.0", "(192.88.99.0/24)"},
    {"192.88.99.255", "(192.88.99.0/24)"},
    {"192.88.100.0", NULL},
    {"192.167.255.255", NULL},
    {"192.168.0.0", "(192.168.0.0/16)"},
    {"192.168.255.255", "(192.168.0.0/16)"},
    {"192.169.0.0", NULL},
    {"198.17.255.255", NULL},
    {"198.18.0.0", "(198.18.0.0/15)"},
    {"198.19.255.255", "(198.18.0.0/15)"},
    {"198.20.0.0", NULL},
    {"198.51.99.255", NULL},
    {"198.51.100.0", "(198.51.100.0/24)"},
    {"198.51.100.255", "(198.51.100.0/24)"},
    {"198.51.101.0", NULL},
    {"203.0.112.255", NULL},
    {"203.0.113.0", "(203.0.113.0/24)"},
    {"203.0.113.255", "(203.0.113.0/24)"},
    {"203.0.114.0", NULL},
    {"223.255.255.255", NULL},
    {"224.0.0.0", "(224.0.0.0/4)"},
    {"239.255.255.255", "(224.0.0.0/4)"},
    {"240.0.0.0", "(240.0.0.0/4)"},
    {"255.255.255.254", "(240.0.0.0/4)"},
    /* The broadcast row lies inside 240.0.0.0/4, which comes first in the table and names it. */
    {"255.255.255.255", "(240.0.0.0/4)"},
    /* IPv6. Next to :: and ::1 lie IPv4-compatible addresses, refused for the IPv4 they carry. */
    {"::", "(::)"},
    {"::1", "(::1)"},
    {"::2", "(0.0.0.0/8)"},
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"fe80::", "(fe80::/10)"},
    {"fe80::1", "(fe80::/10)"},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "(fe80::/10)"},
    {"fec0::", "(fec0::/10)"},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "(fec0::/10)"},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"fc00::", "(fc00::/7)"},
    {"fd12:3456::1", "(fc00::/7)"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "(fc00::/7)"},
    {"fe00::", NULL},
    {"ff00::", "(ff00::/8)"},
    {"ff02::1", "(ff00::/8)"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "(ff00::/8)"},
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001:db8::", "(2001:db8::/32)"},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "(2001:db8::/32)"},
    {"2001:db9::", NULL},
    {"ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"100::", "(100::/64)"},
    {"100::ffff:ffff:ffff:ffff", "(100::/64)"},
    {"100:0:0:1::", NULL},
    {"64:ff9b:0:ffff:ffff:ffff:ffff:ffff", NULL},
    {"64:ff9b:1::", "(64:ff9b:1::/48)"},
    {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "(64:ff9b:1::/48)"},
    {"64:ff9b:2::", NULL},
    /* IPv4 in IPv6: mapped, compatible, translated, NAT64, 6to4, Teredo (server, then client XOR ffffffff). */
    {"::ffff:127.0.0.1", "(127.0.0.0/8)"},
    {"::ffff:10.1.2.3", "(10.0.0.0/8)"},
    {"::ffff:8.8.8.8", NULL},
    {"::127.0.0.1", "(127.0.0.0/8)"},
    {"::169.254.169.254", "(169.254.0.0/16)"},
    {"::8.8.8.8", NULL},
    {"::ffff:0:10.0.0.1", "(10.0.0.0/8)"},
    {"::ffff:0:8.8.8.8", NULL},
    {"64:ff9b::127.0.0.1", "(127.0.0.0/8)"},
    {"64:ff9b::192.168.1.1", "(192.168.0.0/16)"},
    {"64:ff9b::8.8.8.8", NULL},
    {"2002:7f00:1::", "(127.0.0.0/8)"},
    {"2002:a9fe:a9fe::1", "(169.254.0.0/16)"},
    {"2002:808:808::1", NULL},
    {"2001:0:7f00:1::", "(127.0.0.0/8)"},
    {"2001:0:808:808:0:0:80ff:fffe", "(127.0.0.0/8)"},
    {"2001:0:808:808:0:0:f5ff:fffe", "(10.0.0.0/8)"},
    {"2001:0:808:808:0:0:f7f7:f7f7", NULL},
    /* Public addresses. */
    {"8.8.8.8", NULL},
    {"1.1.1.1", NULL},
    {"93.184.216.34", NULL},
    {"2606:4700:4700::1111", NULL},
    {"2a00:1450:4001:82a::200e", NULL},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Fills ss with the address text (IPv4 or IPv6) and a port; 0 on success. */
static int
sockaddr_of(const char *text, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(443);
        return 0;
    }
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(443);
        return 0;
    }
    return -1;
}

/* Whether netcheck gives the expected verdict for text under the allow list. */
static int
verdict_is(const char *text, const struct config_cidr *allow, unsigned nallow, const char *refused_as)
{
    struct sockaddr_storage ss;
    const char *range = NULL;
    int ok;

    if (sockaddr_of(text, &ss) != 0)
        return 0;
    ok = netcheck_allowed((struct sockaddr *)&ss, allow, nallow, &range);
    if (refused_as == NULL)
        return ok == 1;
    if (!(ok == 0 && range != NULL && strstr(range, refused_as) != NULL))
        printf("# %s: %s, range %s, expected refused as %s\n", text, ok ? "allowed" : "refused", range ? range : "-",
               refused_as);
    return ok == 0 && range != NULL && strstr(range, refused_as) != NULL;
}

/* Whether a hand-written case names exactly the network address of table row i. */
static int
row_covered(size_t i)
{
    const struct netrange *r = &netranges_denied[i];

    for (size_t c = 0; c < NCASES; c++) {
        struct sockaddr_storage ss;
        const unsigned char *a;
        if (sockaddr_of(cases[c].addr, &ss) != 0 || (ss.ss_family == AF_INET6) != r->v6)
            continue;
        a = r->v6 ? ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr
                  : (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
        if (memcmp(a, r->addr, r->v6 ? 16 : 4) == 0 && cases[c].refused_as != NULL)
            return 1;
    }
    return 0;
}

static struct config_cidr
cidr(const char *text)
{
    struct config_cidr c;

    if (config_parse_cidr(text, &c) != 0)
        memset(&c, 0xff, sizeof(c));
    return c;
}

int
main(void)
{
    char name[160];
    struct config_cidr allow[3];
    struct sockaddr_storage ss;
    struct sockaddr_un sun;
    const char *range;

    for (size_t c = 0; c < NCASES; c++) {
        snprintf(name, sizeof(name), "%s %s%s", cases[c].addr, cases[c].refused_as ? "refused as " : "allowed",
                 cases[c].refused_as ? cases[c].refused_as : "");
        CHECK(verdict_is(cases[c].addr, NULL, 0, cases[c].refused_as), name);
    }
    for (size_t i = 0; i < NETRANGES_N; i++) {
        snprintf(name, sizeof(name), "table row \"%s\" has a case at its network address", netranges_denied[i].name);
        CHECK(row_covered(i), name);
    }

    /* The allow list names networks that are then reachable, and nothing else. */
    allow[0] = cidr("127.0.0.0/8");
    allow[1] = cidr("::1");
    allow[2] = cidr("10.1.0.0/16");
    CHECK(verdict_is("127.0.0.1", allow, 3, NULL) && verdict_is("127.255.255.255", allow, 3, NULL),
          "an allowed network is reachable");
    CHECK(verdict_is("::ffff:127.0.0.1", allow, 3, NULL), "an allowed IPv4 network is reachable IPv4-mapped");
    CHECK(verdict_is("::1", allow, 3, NULL), "an allowed IPv6 address is reachable");
    CHECK(verdict_is("10.1.0.0", allow, 3, NULL) && verdict_is("10.1.255.255", allow, 3, NULL) &&
              verdict_is("10.0.255.255", allow, 3, "(10.0.0.0/8)") && verdict_is("10.2.0.0", allow, 3, "(10.0.0.0/8)"),
          "an allowed subnet ends where its prefix does, the rest of its range stays refused");
    CHECK(verdict_is("192.168.1.1", allow, 3, "(192.168.0.0/16)") && verdict_is("::2", allow, 3, "(0.0.0.0/8)") &&
              verdict_is("fe80::1", allow, 3, "(fe80::/10)"),
          "ranges not allowed stay refused");
    CHECK(verdict_is("64:ff9b::127.0.0.1", allow, 3, "(127.0.0.0/8)") &&
              verdict_is("2002:7f00:1::", allow, 3, "(127.0.0.0/8)"),
          "allowing an IPv4 network does not allow translators to it");
    CHECK(verdict_is("8.8.8.8", allow, 3, NULL), "public addresses stay allowed beside an allow list");
    allow[0] = cidr("0.0.0.0/0");
    allow[1] = cidr("::/0");
    CHECK(verdict_is("10.0.0.1", allow, 2, NULL) && verdict_is("fc00::1", allow, 2, NULL),
          "an allow list of everything allows everything");

    /* Anything but IPv4 and IPv6 is refused, whatever the allow list says. */
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, "/tmp/socket");
    range = NULL;
    CHECK(netcheck_allowed((struct sockaddr *)&sun, allow, 2, &range) == 0 && range != NULL &&
              strcmp(range, "not an Internet address") == 0,
          "a unix socket address is refused");
    CHECK(sockaddr_of("127.0.0.1", &ss) == 0 && netcheck_allowed((struct sockaddr *)&ss, NULL, 0, NULL) == 0,
          "range may be NULL");
    return unit_done();
}
