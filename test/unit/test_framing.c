/*
 * Unit tests of framing.c: request heads as h2o's parser accepts them, read
 * again; the framings a front proxy could read otherwise are named, the
 * others pass, and bytes that are not a whole head are not read.
 */
#include <string.h>

#include "framing.h"
#include "unit.h"

/* The verdict on a head, or -1 when framing_read does not read it. */
static int
verdict(const char *text)
{
    struct framing_head head;

    if (framing_read(text, strlen(text), &head) != 0)
        return -1;
    return (int)head.verdict;
}

int
main(void)
{
    static const char get[] = "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n";
    struct framing_head head;

    CHECK(framing_read(get, strlen(get), &head) == 0, "a head is read");
    CHECK(head.verdict == FRAMING_OK, "a request without a body is fine");
    CHECK(head.method_len == 3 && memcmp(head.method, "GET", 3) == 0, "its method");
    CHECK(head.path_len == 12 && memcmp(head.path, "/healthz?x=1", 12) == 0, "its path, query included");
    CHECK(head.minor_version == 1, "its version");
    CHECK(head.len == strlen(get), "its length, the empty line included");
    CHECK(head.fields == 2 && head.fields_kept_out == 1, "its fields, Host among those h2o keeps apart");
    CHECK(framing_read("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n", 46, &head) == 0 && head.len == 27,
          "a pipelined request after it is not part of it");
    CHECK(framing_read("\r\nGET / HTTP/1.0\r\n\r\n", 20, &head) == 0 && head.len == 20 && head.minor_version == 0,
          "one empty line before the request line is skipped, as h2o does");

    CHECK(verdict("POST /v1/x HTTP/1.1\r\nContent-Length: 12\r\n\r\n") == FRAMING_OK, "Content-Length alone");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == FRAMING_OK, "chunked alone");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\ntransfer-encoding:\tChunked\r\n\r\n") == FRAMING_OK,
          "names and the coding are case-insensitive");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n") == FRAMING_OK,
          "the same Content-Length twice");

    CHECK(verdict("POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
              FRAMING_CL_AND_TE,
          "Content-Length and Transfer-Encoding");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") ==
              FRAMING_CL_AND_TE,
          "in either order");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n") == FRAMING_CL_DIFFER,
          "two Content-Length values");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n") == FRAMING_CL_DIFFER,
          "spelled differently");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n") ==
              FRAMING_TE_NOT_CHUNKED,
          "a coding before chunked, in another field");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
              FRAMING_TE_NOT_CHUNKED,
          "chunked twice");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == FRAMING_TE_NOT_CHUNKED,
          "a list of codings");
    CHECK(verdict("POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked \r\n\r\n") == FRAMING_TE_NOT_CHUNKED,
          "chunked with a trailing space");
    CHECK(verdict("POST /v1/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == FRAMING_TE_HTTP10,
          "Transfer-Encoding in HTTP/1.0");
    CHECK(verdict("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n") == FRAMING_OBS_FOLD, "a folded field");
    CHECK(verdict("POST / HTTP/1.1\r\nX-A: a\r\n\tTransfer-Encoding: chunked\r\n\r\n") == FRAMING_OBS_FOLD,
          "a folded field that looks like a framing field");
    CHECK(verdict("GET / HTTP/1.1\nHost: a\r\n\r\n") == FRAMING_BARE_LF, "a bare LF after the request line");
    CHECK(verdict("GET / HTTP/1.1\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n") == FRAMING_BARE_LF,
          "a bare LF between fields");
    CHECK(verdict("GET / HTTP/1.1\r\nHost: a\r\n\n") == FRAMING_BARE_LF, "a bare LF ending the head");
    CHECK(verdict("\nGET / HTTP/1.1\r\n\r\n") == FRAMING_BARE_LF, "a bare LF before the request line");

    CHECK(verdict("GET / HTTP/1.1\r\nHost: a\r\n") == -1, "a head without its empty line is not read");
    CHECK(verdict("GET / HTTP/1.1") == -1, "nor a request line alone");
    CHECK(verdict("GET /HTTP/1.1\r\n\r\n") == -1, "nor a request line without a path");
    CHECK(verdict("GET / HTTP/2.0\r\n\r\n") == -1, "nor another version");
    CHECK(verdict("GET / HTTP/1.1\r\n b\r\n\r\n") == -1, "nor a continuation line first");
    CHECK(verdict("GET / HTTP/1.1\r\nno colon\r\n\r\n") == -1, "nor a field without a colon");
    CHECK(verdict("GET / HTTP/1.1\r\n: x\r\n\r\n") == -1, "nor a field without a name");
    CHECK(verdict("") == -1, "nor nothing");

    for (int v = FRAMING_BARE_LF; v < FRAMING_UNREADABLE; v++)
        CHECK(framing_detail((enum framing_verdict)v) != NULL, "every refusal has a detail");
    return unit_done();
}
