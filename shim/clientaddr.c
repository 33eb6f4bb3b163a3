/*
 * clientaddr.c: the client address (clientaddr.h).
 *
 * The walk goes right to left because each trusted proxy appends the address
 * it received the request from; the first entry not in the trusted list is
 * the nearest hop we cannot vouch for, which is the client as far as anyone
 * can tell.  An unparseable entry stops the walk: the last hop vouched for
 * (a proxy) is used, so garbage never becomes a rate-limit key.
 */
#include "clientaddr.h"

#include <arpa/inet.h>
#include <string.h>

/* Formats an address without port, IPv4-mapped IPv6 as plain IPv4. */
static void
format_addr(const struct sockaddr *sa, char *out)
{
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, CLIENTADDR_LEN);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, a->s6_addr + 12, out, CLIENTADDR_LEN);
        else
            inet_ntop(AF_INET6, a, out, CLIENTADDR_LEN);
    } else
        strcpy(out, "unix");
}

/* Parses one X-Forwarded-For entry (surrounding spaces allowed) into ss. */
static int
parse_entry(const char *s, size_t len, struct sockaddr_storage *ss)
{
    char buf[CLIENTADDR_LEN + 1];

    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 0;
    }
    return -1;
}

void
clientaddr_resolve(const struct sockaddr *peer, const char *xff, size_t xff_len, const struct config_cidr *proxies,
                   unsigned nproxies, char *out)
{
    struct sockaddr_storage hop, last;
    size_t end = xff_len;

    format_addr(peer, out);
    if (xff == NULL || xff_len == 0 || !config_cidr_match(proxies, nproxies, peer))
        return;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        if (parse_entry(xff + start, end - start, &hop) != 0)
            return; /* out still names the last hop vouched for */
        last = hop;
        format_addr((struct sockaddr *)&last, out);
        if (!config_cidr_match(proxies, nproxies, (struct sockaddr *)&hop))
            return;
        end = start > 0 ? start - 1 : 0;
    }
}
