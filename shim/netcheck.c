/*
 * netcheck.c: the address check of outbound connections (netcheck.h).
 *
 * The allow list is consulted first, with config_cidr_match's rule that an
 * IPv4-mapped IPv6 address matches IPv4 entries: an operator who allows
 * 127.0.0.0/8 also allows ::ffff:127.0.0.1, the same host reached through a
 * dual-stack socket.  Everything else about IPv4 carried in IPv6 is the
 * table's business (netranges_match unwraps it).
 */
#include "netcheck.h"

#include <netinet/in.h>

#include "netranges.h"

int
netcheck_allowed(const struct sockaddr *sa, const struct config_cidr *allow, unsigned nallow, const char **range)
{
    const char *denied;

    if (sa->sa_family == AF_INET)
        denied = netranges_match(0, (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    else if (sa->sa_family == AF_INET6)
        denied = netranges_match(1, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    else {
        /* A unix socket or anything else curl might be talked into: never. */
        if (range != NULL)
            *range = "not an Internet address";
        return 0;
    }
    if (denied == NULL || config_cidr_match(allow, nallow, sa))
        return 1;
    if (range != NULL)
        *range = denied;
    return 0;
}
