/*
 * netranges.h: the one table of addresses that no outbound request may reach.
 *
 * Both sides use it: the shim refuses a connection to any of these addresses
 * at connect time, on the address actually being connected (netcheck.c), and
 * the extension refuses a webhook URL whose host is an address literal in
 * one of them at registration (extension/webhook.c).  It is plain C with no
 * dependency, so that one file serves both builds.
 *
 * IPv6 addresses that carry an IPv4 address (IPv4-mapped, IPv4-compatible,
 * IPv4-translated, NAT64 64:ff9b::/96, 6to4 and Teredo) are unwrapped and
 * the IPv4 address checked as well: 64:ff9b::7f00:1 is 127.0.0.1 and is
 * refused as such.  The local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215)
 * is refused outright: where the IPv4 address sits in it depends on a prefix
 * length only its operator knows, and its translator is by definition inside
 * some network.
 */
#ifndef ACTLOOM_NETRANGES_H
#define ACTLOOM_NETRANGES_H

#include <string.h>

/* One denied range: an address of its family, the bits that must match, and a name for messages. */
struct netrange
{
	int			v6;				/* 0: IPv4 (4 bytes), 1: IPv6 (16 bytes) */
	unsigned char addr[16];
	unsigned	bits;
	const char *name;
};

/* clang-format off */
static const struct netrange netranges_denied[] = {
	/* IPv4 */
	{0, {0}, 8, "this network (0.0.0.0/8)"},
	{0, {10}, 8, "private (10.0.0.0/8)"},
	{0, {100, 64}, 10, "shared address space (100.64.0.0/10)"},
	{0, {127}, 8, "loopback (127.0.0.0/8)"},
	{0, {169, 254}, 16, "link-local (169.254.0.0/16)"},
	{0, {172, 16}, 12, "private (172.16.0.0/12)"},
	{0, {192, 0, 0}, 24, "IETF protocol assignments (192.0.0.0/24)"},
	{0, {192, 0, 2}, 24, "documentation (192.0.2.0/24)"},
	{0, {192, 88, 99}, 24, "6to4 relay anycast (192.88.99.0/24)"},
	{0, {192, 168}, 16, "private (192.168.0.0/16)"},
	{0, {198, 18}, 15, "benchmarking (198.18.0.0/15)"},
	{0, {198, 51, 100}, 24, "documentation (198.51.100.0/24)"},
	{0, {203, 0, 113}, 24, "documentation (203.0.113.0/24)"},
	{0, {224}, 4, "multicast (224.0.0.0/4)"},
	{0, {240}, 4, "reserved (240.0.0.0/4)"},
	{0, {255, 255, 255, 255}, 32, "broadcast (255.255.255.255)"},
	/* IPv6 */
	{1, {0}, 128, "unspecified (::)"},
	{1, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback (::1)"},
	{1, {0xfe, 0x80}, 10, "link-local (fe80::/10)"},
	{1, {0xfe, 0xc0}, 10, "site-local (fec0::/10)"},
	{1, {0xfc}, 7, "unique local (fc00::/7)"},
	{1, {0xff}, 8, "multicast (ff00::/8)"},
	{1, {0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
	{1, {0x01, 0x00}, 64, "discard-only (100::/64)"},
	{1, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "local-use NAT64 (64:ff9b:1::/48)"},
};
/* clang-format on */

#define NETRANGES_N (sizeof(netranges_denied) / sizeof(netranges_denied[0]))

/* Whether the first bits of a and b are equal. */
static inline int
netranges_prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned	whole = bits / 8;
	unsigned	rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

/* The denied range of one family that addr falls in, or NULL. */
static inline const char *
netranges_match_plain(int v6, const unsigned char *addr)
{
	size_t		i;

	for (i = 0; i < NETRANGES_N; i++)
		if (netranges_denied[i].v6 == v6 &&
			netranges_prefix_equal(addr, netranges_denied[i].addr, netranges_denied[i].bits))
			return netranges_denied[i].name;
	return NULL;
}

/*
 * The IPv4 addresses an IPv6 address carries (at most two: a Teredo address
 * names its server and its client), written to v4[0..]; returns how many.
 */
static inline int
netranges_embedded_v4(const unsigned char *a, unsigned char v4[2][4])
{
	static const unsigned char zero[12] = {0};
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
	static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	int			i;

	/* ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (translated), 64:ff9b::a.b.c.d */
	if (memcmp(a, zero, 12) == 0 || memcmp(a, mapped, 12) == 0 ||
		memcmp(a, translated, 12) == 0 || memcmp(a, nat64, 12) == 0)
	{
		memcpy(v4[0], a + 12, 4);
		return 1;
	}
	/* 6to4: 2002:aabb:ccdd::/48 */
	if (a[0] == 0x20 && a[1] == 0x02)
	{
		memcpy(v4[0], a + 2, 4);
		return 1;
	}
	/* Teredo: 2001:0000:<server>:<flags>:<port>:<client XOR ffffffff> */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)
	{
		memcpy(v4[0], a + 4, 4);
		for (i = 0; i < 4; i++)
			v4[1][i] = a[12 + i] ^ 0xff;
		return 2;
	}
	return 0;
}

/*
 * The name of the denied range that an address (4 bytes when v6 is 0, 16
 * otherwise) falls in, or NULL when it may be reached.  An IPv6 address that
 * carries IPv4 is refused when any IPv4 address it carries is.
 */
static inline const char *
netranges_match(int v6, const unsigned char *addr)
{
	unsigned char v4[2][4];
	const char *name;
	int			n,
				i;

	if ((name = netranges_match_plain(v6, addr)) != NULL || !v6)
		return name;
	n = netranges_embedded_v4(addr, v4);
	for (i = 0; i < n; i++)
		if ((name = netranges_match_plain(0, v4[i])) != NULL)
			return name;
	return NULL;
}

#endif
