/*
 * clientaddr.h: who the client is, for rate limits and the access log.
 *
 * The peer address, unless the peer is a trusted proxy: then the right-most
 * X-Forwarded-For entry that is not itself a trusted proxy.  Entries left of
 * it were written by the client and prove nothing.
 */
#ifndef ACTLOOM_CLIENTADDR_H
#define ACTLOOM_CLIENTADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"

#define CLIENTADDR_LEN INET6_ADDRSTRLEN

/*
 * Writes the client address as text into out (CLIENTADDR_LEN bytes).  xff
 * holds the X-Forwarded-For values in order of arrival, joined by commas
 * (NULL or empty when absent).
 */
void clientaddr_resolve(const struct sockaddr *peer, const char *xff, size_t xff_len, const struct config_cidr *proxies,
                        unsigned nproxies, char *out);

#endif
