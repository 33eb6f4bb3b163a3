/*
 * framing.c: the framing of HTTP/1.x requests (framing.h).
 *
 * framing_read reads a head that h2o's parser (picohttpparser) has
 * accepted, so it follows that parser's grammar and no more: an optional
 * empty line, "METHOD SP PATH SP HTTP/1.x", field lines "name: value" or
 * continuation lines beginning with SP or HT, an empty line; each line ends
 * in LF, optionally after CR.  A field value runs from the first byte after
 * the colon that is not SP or HT to the end of the line, as h2o sees it.
 *
 * h2o has stopped reading the connection when it hands the request over,
 * and parses the next request only after the response: a refusal sent with
 * req->http1_is_persistent cleared is the last thing that happens on the
 * connection, whatever else its buffer holds.
 */
#include "framing.h"

#include <string.h>

/* The fields h2o keeps out of req->headers (its tokens marked is_init_header_special). */
static const h2o_iovec_t kept_out[] = {
    {H2O_STRLIT("content-length")},    {H2O_STRLIT("expect")},  {H2O_STRLIT("host")},
    {H2O_STRLIT("transfer-encoding")}, {H2O_STRLIT("upgrade")},
};

/* The next line at *p (before end): its content without CR LF; -1 when no LF ends it. */
static int
next_line(const char **p, const char *end, h2o_iovec_t *line, int *bare_lf)
{
    const char *lf = *p < end ? memchr(*p, '\n', (size_t)(end - *p)) : NULL;

    if (lf == NULL)
        return -1;
    *line = h2o_iovec_init(*p, (size_t)(lf - *p));
    if (line->len > 0 && line->base[line->len - 1] == '\r')
        line->len--;
    else
        *bare_lf = 1;
    *p = lf + 1;
    return 0;
}

/* Reads "METHOD SP PATH SP HTTP/1.x" into head; -1 when the line is not of that form. */
static int
read_request_line(h2o_iovec_t line, struct framing_head *head)
{
    const char *end = line.base + line.len;
    const char *sp1 = memchr(line.base, ' ', line.len), *sp2;

    if (sp1 == NULL || (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL)
        return -1;
    if (end - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '0' || sp2[8] > '9')
        return -1;
    head->method = line.base;
    head->method_len = (size_t)(sp1 - line.base);
    head->path = sp1 + 1;
    head->path_len = (size_t)(sp2 - sp1 - 1);
    head->minor_version = sp2[8] - '0';
    return 0;
}

int
framing_read(const char *buf, size_t len, struct framing_head *head)
{
    const char *p = buf, *end = buf + len;
    h2o_iovec_t line, first_cl = {NULL, 0}, te = {NULL, 0};
    size_t ncl = 0, nte = 0;
    int bare_lf = 0, folded = 0, cl_differ = 0;

    memset(head, 0, sizeof(*head));
    /* The parser skips one empty line before the request line. */
    if (p < end && (*p == '\n' || (*p == '\r' && end - p >= 2 && p[1] == '\n'))) {
        if (next_line(&p, end, &line, &bare_lf) != 0)
            return -1;
    }
    if (next_line(&p, end, &line, &bare_lf) != 0 || read_request_line(line, head) != 0)
        return -1;
    for (;;) {
        const char *colon;
        h2o_iovec_t name, value;
        if (next_line(&p, end, &line, &bare_lf) != 0)
            return -1;
        if (line.len == 0)
            break;
        head->fields++;
        if (line.base[0] == ' ' || line.base[0] == '\t') {
            if (head->fields == 1)
                return -1;
            folded = 1;
            continue;
        }
        if ((colon = memchr(line.base, ':', line.len)) == NULL || colon == line.base)
            return -1;
        name = h2o_iovec_init(line.base, (size_t)(colon - line.base));
        value = h2o_iovec_init(colon + 1, (size_t)(line.base + line.len - colon - 1));
        while (value.len > 0 && (value.base[0] == ' ' || value.base[0] == '\t')) {
            value.base++;
            value.len--;
        }
        for (size_t i = 0; i < sizeof(kept_out) / sizeof(kept_out[0]); i++)
            if (h2o_lcstris(name.base, name.len, kept_out[i].base, kept_out[i].len))
                head->fields_kept_out++;
        if (h2o_lcstris(name.base, name.len, H2O_STRLIT("content-length"))) {
            if (ncl++ == 0)
                first_cl = value;
            else if (!h2o_memis(value.base, value.len, first_cl.base, first_cl.len))
                cl_differ = 1;
        } else if (h2o_lcstris(name.base, name.len, H2O_STRLIT("transfer-encoding"))) {
            nte++;
            te = value;
        }
    }
    head->len = (size_t)(p - buf);
    if (bare_lf)
        head->verdict = FRAMING_BARE_LF;
    else if (folded)
        head->verdict = FRAMING_OBS_FOLD;
    else if (nte > 0 && ncl > 0)
        head->verdict = FRAMING_CL_AND_TE;
    else if (cl_differ)
        head->verdict = FRAMING_CL_DIFFER;
    else if (nte > 1 || (nte == 1 && !h2o_lcstris(te.base, te.len, H2O_STRLIT("chunked"))))
        head->verdict = FRAMING_TE_NOT_CHUNKED;
    else if (nte > 0 && head->minor_version == 0)
        head->verdict = FRAMING_TE_HTTP10;
    else
        head->verdict = FRAMING_OK;
    return 0;
}

enum framing_verdict
framing_check(h2o_req_t *req, size_t *head_len)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    struct framing_head head;
    size_t avail;

    *head_len = 0;
    if (sock == NULL || sock->input == NULL)
        return FRAMING_UNREADABLE;
    avail = sock->input->size < H2O_MAX_REQLEN ? sock->input->size : H2O_MAX_REQLEN;
    if (framing_read(sock->input->bytes, avail, &head) != 0 ||
        !h2o_memis(head.method, head.method_len, req->input.method.base, req->input.method.len) ||
        !h2o_memis(head.path, head.path_len, req->input.path.base, req->input.path.len) ||
        (0x100 | (head.minor_version != 0)) != req->version || head.fields - head.fields_kept_out != req->headers.size)
        return FRAMING_UNREADABLE;
    *head_len = head.len;
    return head.verdict;
}

const char *
framing_detail(enum framing_verdict verdict)
{
    switch (verdict) {
    case FRAMING_BARE_LF:
        return "A line of the request head ends in LF without CR.";
    case FRAMING_OBS_FOLD:
        return "A header field is folded over several lines.";
    case FRAMING_CL_AND_TE:
        return "The request has both Content-Length and Transfer-Encoding.";
    case FRAMING_CL_DIFFER:
        return "The request has several Content-Length fields that differ.";
    case FRAMING_TE_NOT_CHUNKED:
        return "Transfer-Encoding must be a single field whose value is chunked.";
    case FRAMING_TE_HTTP10:
        return "An HTTP/1.0 request cannot carry Transfer-Encoding.";
    case FRAMING_UNREADABLE:
    case FRAMING_OK:
        break;
    }
    return NULL;
}
