/*
 * http_out.h: the shim's one path for outbound HTTP requests (webhooks, and
 * later the identity providers), a libcurl multi handle driven by a worker's
 * h2o event loop.
 *
 * Every transfer speaks http or https only, follows no redirect (a 3xx is a
 * response like any other), ignores proxies from the environment, verifies
 * the TLS peer and its name, requests no compressed response and decodes
 * none, reads at most max_response_bytes of headers and of body, and
 * connects only to addresses netcheck_allowed accepts: the check runs on
 * each address actually being connected, after name resolution, so names
 * that resolve inward and odd spellings of addresses are refused alike.
 *
 * Nothing here blocks the loop: sockets and the timer are the loop's, and
 * libcurl resolves names on threads of its own (the threaded resolver).  A
 * struct http_out and its transfers belong to the loop's thread.
 */
#ifndef ACTLOOM_HTTP_OUT_H
#define ACTLOOM_HTTP_OUT_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct http_out;      /* one per event loop: a libcurl multi handle driven by it */
struct http_out_xfer; /* one request in flight */

/* How a transfer ended; http_out_outcome_name gives the database's name of each. */
enum http_out_outcome {
    HTTP_OUT_RESPONSE,        /* a whole response arrived, whatever its status (3xx included) */
    HTTP_OUT_TIMEOUT,         /* the connect or total timeout, or the low-speed cutoff */
    HTTP_OUT_CONNECT,         /* no connection to any address tried (refused, unreachable) */
    HTTP_OUT_DNS,             /* the host name did not resolve */
    HTTP_OUT_TLS,             /* the TLS handshake failed or the peer was not verified */
    HTTP_OUT_REFUSED_ADDRESS, /* an address tried lies in a denied range: nothing was sent to it */
    HTTP_OUT_TOO_LARGE,       /* the response exceeded max_response_bytes; status and the first bytes reported */
    HTTP_OUT_ERROR,           /* anything else (connection reset, malformed response or URL, ...) */
};

/*
 * The low-speed cutoff callers use unless they have a reason not to: a
 * transfer that moves less than a byte a second for ten seconds (a receiver
 * gone silent, a trickle) is stopped before its total timeout.
 */
#define HTTP_OUT_LOW_SPEED_BYTES 1
#define HTTP_OUT_LOW_SPEED_TIME_S 10

/* From the YAML webhooks.* keys; http_out_create copies what it keeps. */
struct http_out_settings {
    const char *ca_file; /* NULL: the system's CAs only; otherwise its CAs are trusted as well */
    unsigned connect_timeout_ms, total_timeout_ms;
    unsigned low_speed_bytes, low_speed_time_s; /* cut off below this many bytes/s for this long; 0: no cutoff */
    size_t max_response_bytes;                  /* 65536 */
    const char *user_agent;                     /* "actloom-webhooks/<version>" */
    const struct config_cidr *allow;            /* webhooks.allow_networks */
    unsigned nallow;
};

/* One request; http_out_start copies all of it. */
struct http_out_request {
    const char *method;         /* "POST", "GET", ... */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value", NULL-terminated; NULL: none */
    const char *body;           /* sent as is; NULL: none */
    size_t body_len;
};

/*
 * What became of a transfer.  body (body_len bytes, not NUL-terminated) and
 * detail live only during the callback.  status is the last response's
 * status, 0 without one; a TOO_LARGE transfer reports its status and the
 * first max_response_bytes of its body.  retry_after_s is Retry-After in
 * seconds from now (delta-seconds or an HTTP-date, at most 2147483647), -1
 * when absent or unreadable.  detail says what went wrong in words, naming a
 * host or a denied range but never a header or a body ("" after a response).
 */
struct http_out_result {
    enum http_out_outcome outcome;
    long status;
    const char *body;
    size_t body_len;
    long retry_after_s;
    uint64_t duration_ms;
    const char *detail;
};

/* Called exactly once per transfer, on the loop, never from within http_out_start. The transfer is gone after. */
typedef void (*http_out_cb)(void *owner, const struct http_out_result *res);

/*
 * A multi handle on loop with settings s.  NULL (the reason logged) when
 * libcurl cannot be set up or s->ca_file holds no readable certificate.
 * curl_global_init must have been called.
 */
struct http_out *http_out_create(h2o_evloop_t *loop, const struct http_out_settings *s);

/*
 * Starts a transfer; cb(owner, result) follows on the loop.  NULL when the
 * request cannot even be set up (out of memory, a method that is not a
 * token): cb is then never called.  A URL libcurl refuses is reported
 * through cb as HTTP_OUT_ERROR.
 */
struct http_out_xfer *http_out_start(struct http_out *h, const struct http_out_request *r, http_out_cb cb, void *owner);

/* Stops a transfer whose callback has not run; cb is not called afterwards. */
void http_out_cancel(struct http_out_xfer *x);

/* Cancels everything (no callback runs) and frees h.  Not from within a callback of h. */
void http_out_destroy(struct http_out *h);

/*
 * The database's name of an outcome (webhook_record): "timeout", "connect",
 * "dns", "tls", "refused_address", "response_too_large", "error", and
 * "http_status" for a response, which the caller records as "delivered"
 * instead when its status says so.
 */
const char *http_out_outcome_name(enum http_out_outcome o);

/* Transfers started and neither finished nor cancelled. */
unsigned http_out_in_flight(const struct http_out *h);

#endif
