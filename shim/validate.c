/*
 * validate.c: strict JSON parsing and the JSON Schema subset (validate.h).
 *
 * The validator walks schema and instance together, keeping the JSON pointer
 * of the current instance location in a fixed buffer; every keyword that
 * fails adds one issue and validation continues with the next keyword, so
 * a client learns about every failing field in one response.  Schemas are
 * checked once (validate_schema_check) when the registry is loaded, so the
 * walk may assume well-formed keywords.
 *
 * What one request costs is bounded by its size: the walk visits each value
 * of the instance once (a schema has no references), the first
 * VALIDATE_MAX_ISSUES issues are built and the rest only counted, each
 * pattern of the schema is compiled once per walk, and a string longer than
 * its maxLength is matched against neither its pattern nor its format.
 */
#include "validate.h"

#include <curl/curl.h>
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 1024

static const char *const type_names[] = {"object", "array", "string", "integer", "number", "boolean", "null"};
static const char *const format_names[] = {"email", "uuid", "uri", "date-time"};
static const char *const keywords[] = {"type",      "properties", "required", "additionalProperties",
                                       "items",     "minItems",   "maxItems", "minLength",
                                       "maxLength", "minimum",    "maximum",  "enum",
                                       "pattern",   "format",     "title",    "description"};

#define LENGTHOF(a) (sizeof(a) / sizeof((a)[0]))

static int
in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* --- parsing -------------------------------------------------------------- */

/*
 * Measures nesting before jansson sees the text, so that a deeply nested
 * document is refused without recursion.  Returns the depth, or -1 for a NUL
 * byte anywhere (jansson would stop at it in some paths).
 */
static long
scan_depth(const char *text, size_t len)
{
    long depth = 0, max = 0;
    int in_string = 0, escaped = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\0')
            return -1;
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"')
            in_string = 1;
        else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}')
            depth--;
    }
    return max;
}

/*
 * What went wrong, in words of our own: jansson's messages quote the text
 * near the error ("invalid escape near '"Hunter2\q'"), bytes of it, or
 * escapes from it, and the text may be a password.
 */
static const char *
parse_error(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_premature_end_of_input:
        return "the text ends before the value does";
    case json_error_end_of_input_expected:
        return "text after the value";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "a NUL character";
    case json_error_duplicate_key:
        return "a duplicate object key";
    case json_error_numeric_overflow:
        return "a number out of range";
    case json_error_stack_overflow:
        return "nesting too deep";
    case json_error_out_of_memory:
        return "out of memory";
    default:
        return "invalid syntax";
    }
}

json_t *
validate_parse(const char *text, size_t len, unsigned max_depth, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc;
    long depth = scan_depth(text, len);

    if (depth < 0) {
        snprintf(err, errlen, "the body contains a NUL byte");
        return NULL;
    }
    if (depth > (long)max_depth) {
        snprintf(err, errlen, "the body nests deeper than %u levels", max_depth);
        return NULL;
    }
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, parse_error(&jerr));
        return NULL;
    }
    return doc;
}

/* --- formats -------------------------------------------------------------- */

int
validate_is_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return s[sizeof(shape) - 1] == '\0';
}

int
validate_is_email(const char *s)
{
    static const char local_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                      ".!#$%&'*+/=?^_`{|}~-";
    const char *at = strrchr(s, '@'), *d;
    size_t local_len, label = 0;
    int dots = 0;

    if (at == NULL || strlen(s) > 254)
        return 0;
    local_len = (size_t)(at - s);
    if (local_len == 0 || local_len > 64 || strspn(s, local_chars) != local_len)
        return 0;
    if (s[0] == '.' || at[-1] == '.' || strstr(s, "..") != NULL)
        return 0;
    for (d = at + 1;; d++) {
        if (*d == '.' || *d == '\0') {
            if (label == 0 || label > 63 || d[-1] == '-')
                return 0;
            if (*d == '\0')
                break;
            dots++;
            label = 0;
        } else if (isalnum((unsigned char)*d) || (*d == '-' && label > 0)) {
            label++;
        } else
            return 0;
    }
    return dots > 0;
}

int
validate_is_uri(const char *s)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL;
    int ok = 0;

    /* curl tolerates some characters a URI may not hold; refuse them first. */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\' || *p == '^' || *p == '`' ||
            *p == '{' || *p == '|' || *p == '}')
            return 0;
    if (strlen(s) > 2048 || (u = curl_url()) == NULL)
        return 0;
    if (curl_url_set(u, CURLUPART_URL, s, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        ok = (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) && host[0] != '\0' &&
             (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Reads exactly n digits into *out. */
static int
digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

int
validate_is_date_time(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh, om, leap, dim;
    const char *p = s;

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d))
        return 0;
    if (*p != 'T' && *p != 't')
        return 0;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' || !digits(&p, 2, &sec))
        return 0;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        p++;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return 0;
    } else
        return 0;
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return 0;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    dim = mdays[mo - 1] + (mo == 2 && leap);
    return d <= dim;
}

/* --- schema check ---------------------------------------------------------- */

static int check_schema(const json_t *schema, int depth, int for_query, const char *where, char *err, size_t errlen);

static int
check_nonneg_int(const json_t *schema, const char *kw, const char *where, char *err, size_t errlen)
{
    const json_t *v = json_object_get(schema, kw);

    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0)) {
        snprintf(err, errlen, "%s: \"%s\" must be a non-negative integer", where, kw);
        return -1;
    }
    return 0;
}

static int
check_order(const json_t *schema, const char *lo, const char *hi, const char *where, char *err, size_t errlen)
{
    const json_t *a = json_object_get(schema, lo), *b = json_object_get(schema, hi);

    if (a != NULL && b != NULL && json_number_value(a) > json_number_value(b)) {
        snprintf(err, errlen, "%s: \"%s\" exceeds \"%s\"", where, lo, hi);
        return -1;
    }
    return 0;
}

/* Whether the schema's "type" allows t (a schema without "type" allows all). */
static int
type_allows(const json_t *schema, const char *t)
{
    const json_t *type = json_object_get(schema, "type");
    size_t i;
    json_t *item;

    if (type == NULL)
        return 1;
    if (json_is_string(type))
        return strcmp(json_string_value(type), t) == 0;
    json_array_foreach(type, i, item) if (strcmp(json_string_value(item), t) == 0) return 1;
    return 0;
}

static int
check_schema(const json_t *schema, int depth, int for_query, const char *where, char *err, size_t errlen)
{
    const char *key;
    json_t *v, *item;
    size_t i;
    regex_t re;

    if (!json_is_object(schema)) {
        snprintf(err, errlen, "%s: a schema must be a JSON object", where);
        return -1;
    }
    if (depth > VALIDATE_SCHEMA_DEPTH) {
        snprintf(err, errlen, "%s: the schema nests deeper than %d levels", where, VALIDATE_SCHEMA_DEPTH);
        return -1;
    }
    json_object_foreach((json_t *)schema, key, v)
    {
        if (!in_list(key, keywords, LENGTHOF(keywords))) {
            snprintf(err, errlen, "%s: unsupported keyword \"%.64s\"", where, key);
            return -1;
        }
    }
    if ((v = json_object_get(schema, "type")) != NULL) {
        if (json_is_string(v)) {
            if (!in_list(json_string_value(v), type_names, LENGTHOF(type_names)))
                goto bad_type;
        } else if (json_is_array(v) && json_array_size(v) > 0) {
            json_array_foreach(v, i, item) if (!json_is_string(item) || !in_list(json_string_value(item), type_names,
                                                                                 LENGTHOF(type_names))) goto bad_type;
        } else
            goto bad_type;
    }
    if (check_nonneg_int(schema, "minItems", where, err, errlen) ||
        check_nonneg_int(schema, "maxItems", where, err, errlen) ||
        check_nonneg_int(schema, "minLength", where, err, errlen) ||
        check_nonneg_int(schema, "maxLength", where, err, errlen))
        return -1;
    for (const char *const *kw = (const char *const[]){"minimum", "maximum", NULL}; *kw; kw++)
        if ((v = json_object_get(schema, *kw)) != NULL && !json_is_number(v)) {
            snprintf(err, errlen, "%s: \"%s\" must be a number", where, *kw);
            return -1;
        }
    if (check_order(schema, "minItems", "maxItems", where, err, errlen) ||
        check_order(schema, "minLength", "maxLength", where, err, errlen) ||
        check_order(schema, "minimum", "maximum", where, err, errlen))
        return -1;
    for (const char *const *kw = (const char *const[]){"title", "description", NULL}; *kw; kw++)
        if ((v = json_object_get(schema, *kw)) != NULL && !json_is_string(v)) {
            snprintf(err, errlen, "%s: \"%s\" must be a string", where, *kw);
            return -1;
        }
    if ((v = json_object_get(schema, "enum")) != NULL && (!json_is_array(v) || json_array_size(v) == 0)) {
        snprintf(err, errlen, "%s: \"enum\" must be a non-empty array", where);
        return -1;
    }
    if ((v = json_object_get(schema, "format")) != NULL &&
        (!json_is_string(v) || !in_list(json_string_value(v), format_names, LENGTHOF(format_names)))) {
        snprintf(err, errlen, "%s: \"format\" must be one of email, uuid, uri, date-time", where);
        return -1;
    }
    if ((v = json_object_get(schema, "pattern")) != NULL) {
        if (!json_is_string(v) || json_string_length(v) > 1024 ||
            regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(err, errlen, "%s: \"pattern\" must be a POSIX extended regular expression", where);
            return -1;
        }
        regfree(&re);
    }
    if ((v = json_object_get(schema, "additionalProperties")) != NULL && !json_is_boolean(v)) {
        snprintf(err, errlen, "%s: \"additionalProperties\" must be true or false", where);
        return -1;
    }
    if ((v = json_object_get(schema, "properties")) != NULL) {
        if (!json_is_object(v)) {
            snprintf(err, errlen, "%s: \"properties\" must be an object", where);
            return -1;
        }
        json_object_foreach(v, key, item)
        {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s/properties/%.64s", where, key);
            if (check_schema(item, depth + 1, 0, sub, err, errlen) != 0)
                return -1;
            if (for_query && (!json_is_string(json_object_get(item, "type")) || type_allows(item, "object") ||
                              type_allows(item, "array") || type_allows(item, "null"))) {
                snprintf(err, errlen, "%s: a query parameter's type is string, integer, number or boolean", sub);
                return -1;
            }
        }
    }
    if ((v = json_object_get(schema, "required")) != NULL) {
        const json_t *props = json_object_get(schema, "properties");
        int open = json_is_true(json_object_get(schema, "additionalProperties"));
        if (!json_is_array(v)) {
            snprintf(err, errlen, "%s: \"required\" must be an array of property names", where);
            return -1;
        }
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item)) {
                snprintf(err, errlen, "%s: \"required\" must be an array of property names", where);
                return -1;
            }
            if (!open && json_object_get(props, json_string_value(item)) == NULL) {
                snprintf(err, errlen, "%s: required property \"%.64s\" is not in \"properties\"", where,
                         json_string_value(item));
                return -1;
            }
        }
    }
    if ((v = json_object_get(schema, "items")) != NULL) {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s/items", where);
        if (check_schema(v, depth + 1, 0, sub, err, errlen) != 0)
            return -1;
    }
    if (for_query && !(json_is_string(json_object_get(schema, "type")) && type_allows(schema, "object"))) {
        snprintf(err, errlen, "%s: a query schema must be of type object", where);
        return -1;
    }
    return 0;

bad_type:
    snprintf(err, errlen, "%s: \"type\" must be one of object, array, string, integer, number, boolean, null", where);
    return -1;
}

int
validate_schema_check(const json_t *schema, int for_query, char *err, size_t errlen)
{
    return check_schema(schema, 0, for_query, "#", err, errlen);
}

/* --- validation ------------------------------------------------------------ */

void
validate_issues_init(struct validate_issues *is)
{
    is->list = json_array();
    is->count = 0;
}

void
validate_issues_free(struct validate_issues *is)
{
    json_decref(is->list);
    is->list = NULL;
    is->count = 0;
}

void
validate_issue(struct validate_issues *is, const char *path, const char *rule, const char *message)
{
    if (is->count++ < VALIDATE_MAX_ISSUES)
        json_array_append_new(is->list, json_pack("{s:s,s:s,s:s}", "path", path, "rule", rule, "message", message));
}

/* The JSON pointer being built; segments are appended and removed. */
struct ptr {
    char buf[PATH_MAX_LEN];
    size_t len;
    int truncated;
};

static size_t
ptr_push(struct ptr *p, const char *seg)
{
    size_t old = p->len;

    if (p->len + 1 >= sizeof(p->buf))
        goto full;
    p->buf[p->len++] = '/';
    for (const char *c = seg; *c; c++) {
        const char *esc = *c == '~' ? "~0" : *c == '/' ? "~1" : NULL;
        size_t n = esc ? 2 : 1;
        if (p->len + n >= sizeof(p->buf))
            goto full;
        if (esc)
            memcpy(p->buf + p->len, esc, 2);
        else
            p->buf[p->len] = *c;
        p->len += n;
    }
    p->buf[p->len] = '\0';
    return old;
full:
    p->truncated = 1;
    p->len = old;
    p->buf[old] = '\0';
    return old;
}

static void
ptr_pop(struct ptr *p, size_t old)
{
    p->len = old;
    p->buf[old] = '\0';
}

/* Characters (code points) of a valid UTF-8 string. */
static size_t
utf8_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

static const char *
json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* Whether v is of the schema type name t; 1.0 is an integer, 1 a number. */
static int
is_type(const json_t *v, const char *t)
{
    const char *actual = json_type_name(v);

    if (strcmp(t, actual) == 0)
        return 1;
    if (strcmp(t, "number") == 0)
        return json_is_integer(v);
    if (strcmp(t, "integer") == 0 && json_is_real(v)) {
        double d = json_real_value(v);
        return isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0;
    }
    return 0;
}

/* A compiled pattern of the schema, by its node; patterns past the cache are compiled at each use. */
#define PATTERN_CACHE 64
struct pattern {
    const json_t *node;
    regex_t re;
    int ok; /* regcomp succeeded */
};

/* One walk: where it is, what it found, and the patterns it compiled. */
struct walk {
    struct ptr p;
    struct validate_issues *issues;
    struct pattern patterns[PATTERN_CACHE];
    size_t npatterns;
};

static void walk(struct walk *w, const json_t *schema, const json_t *v);

static void issuef(struct walk *w, const char *rule, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
issuef(struct walk *w, const char *rule, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (w->issues->count >= VALIDATE_MAX_ISSUES) {
        w->issues->count++; /* counted, not listed: nothing to build */
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    validate_issue(w->issues, w->p.len ? w->p.buf : "", rule, msg);
}

/* Whether s matches the pattern of node, compiling it once per walk. */
static int
pattern_matches(struct walk *w, const json_t *node, const char *s)
{
    struct pattern *pat = NULL, own;
    int match;

    for (size_t i = 0; i < w->npatterns && pat == NULL; i++)
        if (w->patterns[i].node == node)
            pat = &w->patterns[i];
    if (pat == NULL) {
        pat = w->npatterns < PATTERN_CACHE ? &w->patterns[w->npatterns++] : &own;
        pat->node = node;
        pat->ok = regcomp(&pat->re, json_string_value(node), REG_EXTENDED | REG_NOSUB) == 0;
    }
    match = pat->ok && regexec(&pat->re, s, 0, NULL, 0) == 0;
    if (pat == &own && own.ok)
        regfree(&own.re);
    return match;
}

/* Compares v with a bound: <0, 0, >0, exactly when both are integers. */
static int
compare_number(const json_t *v, const json_t *bound)
{
    if (json_is_integer(v) && json_is_integer(bound)) {
        json_int_t a = json_integer_value(v), b = json_integer_value(bound);
        return (a > b) - (a < b);
    }
    double a = json_number_value(v), b = json_number_value(bound);
    return (a > b) - (a < b);
}

static void
walk_object(struct walk *w, const json_t *schema, const json_t *v)
{
    const json_t *props = json_object_get(schema, "properties");
    int open = json_is_true(json_object_get(schema, "additionalProperties"));
    const char *key;
    json_t *item;
    size_t i;

    json_array_foreach(json_object_get(schema, "required"), i, item)
    {
        if (json_object_get(v, json_string_value(item)) == NULL) {
            size_t old = ptr_push(&w->p, json_string_value(item));
            issuef(w, "required", "is required");
            ptr_pop(&w->p, old);
        }
    }
    json_object_foreach((json_t *)v, key, item)
    {
        const json_t *sub = json_object_get(props, key);
        size_t old = ptr_push(&w->p, key);
        if (sub != NULL)
            walk(w, sub, item);
        else if (!open)
            issuef(w, "additionalProperties", "is not an allowed property");
        ptr_pop(&w->p, old);
    }
}

static void
walk_string(struct walk *w, const json_t *schema, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t chars = utf8_chars(s, json_string_length(v));
    const json_t *kw;

    if ((kw = json_object_get(schema, "minLength")) != NULL && chars < (size_t)json_integer_value(kw))
        issuef(w, "minLength", "must be at least %lld characters long", (long long)json_integer_value(kw));
    if ((kw = json_object_get(schema, "maxLength")) != NULL && chars > (size_t)json_integer_value(kw)) {
        issuef(w, "maxLength", "must be at most %lld characters long", (long long)json_integer_value(kw));
        return; /* too long to be worth matching, however long it is */
    }
    if ((kw = json_object_get(schema, "pattern")) != NULL && !pattern_matches(w, kw, s))
        issuef(w, "pattern", "does not match the required pattern");
    if ((kw = json_object_get(schema, "format")) != NULL) {
        const char *f = json_string_value(kw);
        int ok = strcmp(f, "email") == 0  ? validate_is_email(s)
                 : strcmp(f, "uuid") == 0 ? validate_is_uuid(s)
                 : strcmp(f, "uri") == 0  ? validate_is_uri(s)
                                          : validate_is_date_time(s);
        if (!ok)
            issuef(w, "format", "must be a valid %s", f);
    }
}

static void
walk(struct walk *w, const json_t *schema, const json_t *v)
{
    const json_t *type = json_object_get(schema, "type"), *kw;
    size_t i;
    json_t *item;

    if (type != NULL) {
        int ok = 0;
        if (json_is_string(type))
            ok = is_type(v, json_string_value(type));
        else
            json_array_foreach(type, i, item) ok |= is_type(v, json_string_value(item));
        if (!ok) {
            if (json_is_string(type))
                issuef(w, "type", "must be of type %s, not %s", json_string_value(type), json_type_name(v));
            else
                issuef(w, "type", "has a type (%s) the schema does not allow", json_type_name(v));
            return; /* the other keywords would only repeat it */
        }
    }
    if ((kw = json_object_get(schema, "enum")) != NULL) {
        int found = 0;
        json_array_foreach(kw, i, item) found |= json_equal((json_t *)v, item);
        if (!found)
            issuef(w, "enum", "must be one of the allowed values");
    }
    if (json_is_object(v) && type_allows(schema, "object"))
        walk_object(w, schema, v);
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if ((kw = json_object_get(schema, "minItems")) != NULL && n < (size_t)json_integer_value(kw))
            issuef(w, "minItems", "must have at least %lld items", (long long)json_integer_value(kw));
        if ((kw = json_object_get(schema, "maxItems")) != NULL && n > (size_t)json_integer_value(kw))
            issuef(w, "maxItems", "must have at most %lld items", (long long)json_integer_value(kw));
        if ((kw = json_object_get(schema, "items")) != NULL) {
            json_array_foreach(v, i, item)
            {
                char idx[24];
                snprintf(idx, sizeof(idx), "%zu", i);
                size_t old = ptr_push(&w->p, idx);
                walk(w, kw, item);
                ptr_pop(&w->p, old);
            }
        }
    }
    if (json_is_string(v))
        walk_string(w, schema, v);
    if (json_is_number(v)) {
        if ((kw = json_object_get(schema, "minimum")) != NULL && compare_number(v, kw) < 0)
            issuef(w, "minimum", "must be at least %.17g", json_number_value(kw));
        if ((kw = json_object_get(schema, "maximum")) != NULL && compare_number(v, kw) > 0)
            issuef(w, "maximum", "must be at most %.17g", json_number_value(kw));
    }
}

/* A walk that has found nothing yet and compiled no pattern. */
static void
walk_init(struct walk *w, struct validate_issues *issues)
{
    w->p.len = 0;
    w->p.truncated = 0;
    w->p.buf[0] = '\0';
    w->issues = issues;
    w->npatterns = 0;
}

size_t
validate(const json_t *schema, const json_t *instance, struct validate_issues *issues)
{
    struct walk w;
    size_t before = issues->count;

    walk_init(&w, issues);
    walk(&w, schema, instance);
    for (size_t i = 0; i < w.npatterns; i++)
        if (w.patterns[i].ok)
            regfree(&w.patterns[i].re);
    return issues->count - before;
}

/* --- query strings --------------------------------------------------------- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Percent-decodes s[0..len) into a new string; '+' is a space.  NULL when an
 * escape is malformed or the result holds a NUL byte or invalid UTF-8.
 */
static char *
form_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                goto bad;
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else
            out[n++] = s[i] == '+' ? ' ' : s[i];
        if (out[n - 1] == '\0')
            goto bad;
    }
    out[n] = '\0';
    {
        /* jansson checks UTF-8 when it makes the string. */
        json_t *probe = json_stringn(out, n);
        if (probe == NULL)
            goto bad;
        json_decref(probe);
    }
    return out;
bad:
    free(out);
    return NULL;
}

/* Converts one parameter value by the declared type; NULL if impossible. */
static json_t *
coerce(const char *type, const char *value)
{
    char *end;

    if (type == NULL || strcmp(type, "string") == 0)
        return json_string(value);
    if (strcmp(type, "integer") == 0) {
        long long n;
        if (*value == '\0' || isspace((unsigned char)*value))
            return NULL;
        errno = 0;
        n = strtoll(value, &end, 10);
        return errno == 0 && *end == '\0' ? json_integer(n) : NULL;
    }
    if (strcmp(type, "number") == 0) {
        double d;
        if (*value == '\0' || isspace((unsigned char)*value) || strpbrk(value, "xXnNiI") != NULL)
            return NULL;
        errno = 0;
        d = strtod(value, &end);
        return errno == 0 && *end == '\0' && isfinite(d) ? json_real(d) : NULL;
    }
    if (strcmp(type, "boolean") == 0) {
        if (strcmp(value, "true") == 0)
            return json_true();
        if (strcmp(value, "false") == 0)
            return json_false();
    }
    return NULL;
}

json_t *
validate_query(const json_t *schema, const char *query, size_t len, struct validate_issues *issues)
{
    json_t *obj = json_object();
    const json_t *props = json_object_get(schema, "properties");
    size_t start = 0;
    struct walk w;

    walk_init(&w, issues);
    while (start < len) {
        const char *seg = query + start, *amp = memchr(seg, '&', len - start), *eq;
        size_t seglen = amp ? (size_t)(amp - seg) : len - start;
        char *name, *value;

        start += seglen + 1;
        if (seglen == 0)
            continue;
        eq = memchr(seg, '=', seglen);
        name = form_decode(seg, eq ? (size_t)(eq - seg) : seglen);
        value = eq ? form_decode(eq + 1, seglen - (size_t)(eq - seg) - 1) : strdup("");
        if (name == NULL || value == NULL) {
            validate_issue(issues, "", "encoding", "a query parameter is not valid percent-encoded UTF-8");
        } else {
            const json_t *sub = json_object_get(props, name);
            size_t old = ptr_push(&w.p, name);
            if (json_object_get(obj, name) != NULL) {
                issuef(&w, "duplicate", "is given more than once");
            } else if (sub == NULL) {
                /* Unknown parameters are refused by the walk over the object. */
                json_object_set_new(obj, name, json_string(value));
            } else {
                const char *type = json_string_value(json_object_get(sub, "type"));
                json_t *coerced = coerce(type, value);
                if (coerced == NULL)
                    issuef(&w, "type", "must be of type %s", type);
                else
                    json_object_set_new(obj, name, coerced);
            }
            ptr_pop(&w.p, old);
        }
        free(name);
        free(value);
    }
    return obj;
}

char *
validate_query_text(const json_t *query)
{
    const char *name;
    json_t *value;
    size_t len = 0, cap = 64;
    char *out = malloc(cap);

    if (out == NULL)
        return NULL;
    out[len++] = '{';
    json_object_foreach((json_t *)query, name, value)
    {
        json_t *key = json_string(name);
        char num[32], *k = key != NULL ? json_dumps(key, JSON_ENCODE_ANY) : NULL, *v;

        json_decref(key);
        if (json_is_real(value)) {
            double d = json_real_value(value);
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(num, sizeof(num), "%.*g", digits, d);
                if (strtod(num, NULL) == d)
                    break;
            }
            v = strdup(num);
        } else
            v = json_dumps(value, JSON_ENCODE_ANY);
        if (k == NULL || v == NULL) {
            free(k);
            free(v);
            free(out);
            return NULL;
        }
        size_t need = len + strlen(k) + strlen(v) + 4;
        if (need > cap) {
            char *grown = realloc(out, need * 2);
            if (grown == NULL) {
                free(k);
                free(v);
                free(out);
                return NULL;
            }
            out = grown;
            cap = need * 2;
        }
        len += (size_t)sprintf(out + len, "%s%s:%s", len > 1 ? "," : "", k, v);
        free(k);
        free(v);
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

static json_t *no_params_schema;
static pthread_once_t no_params_once = PTHREAD_ONCE_INIT;

static void
make_no_params_schema(void)
{
    no_params_schema = json_pack("{s:s}", "type", "object");
}

const json_t *
validate_no_params_schema(void)
{
    pthread_once(&no_params_once, make_no_params_schema);
    return no_params_schema;
}
