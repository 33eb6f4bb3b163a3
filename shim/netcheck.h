/*
 * netcheck.h: whether an outbound connection may go to an address.
 *
 * The one question http_out.c asks of every address it is about to connect,
 * after name resolution, so that what is checked is what is connected.  The
 * denied ranges are netranges.h's table; an operator's allow list
 * (webhooks.allow_networks) overrides it.
 */
#ifndef ACTLOOM_NETCHECK_H
#define ACTLOOM_NETCHECK_H

#include <sys/socket.h>

#include "config.h"

/*
 * 1 when sa (AF_INET or AF_INET6) may be connected: it lies in one of the
 * nallow networks of allow, or in no denied range.  0 otherwise, with *range
 * naming the denied range ("loopback (127.0.0.0/8)"), or saying that sa is
 * not an Internet address at all (any other family is refused).  range may
 * be NULL.
 */
int netcheck_allowed(const struct sockaddr *sa, const struct config_cidr *allow, unsigned nallow, const char **range);

#endif
