/*
 * framing.h: how an HTTP/1.x request's body is delimited, and the requests
 * whose delimitation another server on the path could read otherwise.
 *
 * h2o 2.2 frames a request body by the last Transfer-Encoding field when
 * there is one (and refuses any value but "chunked"), else by the first
 * Content-Length; it keeps both fields out of req->headers.  A front proxy
 * that frames the same bytes by the other field, or by the last
 * Content-Length, sees a different next request: request smuggling.  So the
 * shim reads the request head again, from the bytes h2o parsed, and refuses
 * (RFC 9112, sections 2.2, 5.2, 6.1, 6.3) a head whose framing depends on
 * who reads it.
 */
#ifndef ACTLOOM_FRAMING_H
#define ACTLOOM_FRAMING_H

#include <h2o.h>

enum framing_verdict {
    FRAMING_OK = 0,
    FRAMING_BARE_LF,        /* a line of the head ends in LF without CR */
    FRAMING_OBS_FOLD,       /* a field line continues the one before it (obsolete line folding) */
    FRAMING_CL_AND_TE,      /* both Content-Length and Transfer-Encoding */
    FRAMING_CL_DIFFER,      /* several Content-Length fields that are not all the same */
    FRAMING_TE_NOT_CHUNKED, /* Transfer-Encoding other than one field "chunked" */
    FRAMING_TE_HTTP10,      /* Transfer-Encoding in an HTTP/1.0 request */
    FRAMING_UNREADABLE,     /* the connection's buffer does not hold the head of the request h2o parsed */
};

/* A request head as framing_read finds it; pointers into the buffer read. */
struct framing_head {
    const char *method, *path;
    size_t method_len, path_len;
    int minor_version;      /* the x of HTTP/1.x */
    size_t len;             /* bytes of the head, its empty last line included */
    size_t fields;          /* field lines, continuation lines included */
    size_t fields_kept_out; /* Content-Length, Expect, Host, Transfer-Encoding, Upgrade: not in req->headers */
    enum framing_verdict verdict;
};

/*
 * Reads the request head at the start of buf (len bytes), which h2o has
 * parsed: the request line, the field lines, the empty line.  Returns 0 with
 * the head and its verdict, or -1 when buf does not start with a whole head
 * of that form.
 */
int framing_read(const char *buf, size_t len, struct framing_head *head);

/*
 * The verdict on an HTTP/1.x request that h2o hands to the shim, read from
 * its connection's input buffer, which holds the request's head at its start
 * while the request is served (h2o consumes it after the response).  The
 * head must be that of req (method, path, version and field count agree);
 * otherwise FRAMING_UNREADABLE.  *head_len is set to the head's size in
 * bytes as it came.
 */
enum framing_verdict framing_check(h2o_req_t *req, size_t *head_len);

/* A sentence for the problem detail; says which rule, never quotes the request. */
const char *framing_detail(enum framing_verdict verdict);

#endif
