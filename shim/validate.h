/*
 * validate.h: strict JSON input and the documented JSON Schema subset.
 *
 * Keywords: type (object, array, string, integer, number, boolean, null, or
 * a list of them), properties, required, additionalProperties (false unless
 * stated), items, minItems, maxItems, minLength, maxLength (characters),
 * minimum, maximum, enum, pattern (POSIX extended, unanchored), format
 * (email, uuid, uri with http or https, date-time), and the annotations title
 * and description.  Anything else in a schema makes the schema invalid.
 *
 * Failures are collected, not stopped at: an issue is a JSON object
 * {"path": JSON pointer, "rule": keyword, "message": sentence}.  The first
 * VALIDATE_MAX_ISSUES, in document order, are listed; all are counted.
 * Messages never quote the instance's values.
 */
#ifndef ACTLOOM_VALIDATE_H
#define ACTLOOM_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

/* Schemas nest at most this deep. */
#define VALIDATE_SCHEMA_DEPTH 32

/* The most issues listed for one request. */
#define VALIDATE_MAX_ISSUES 50

/* The issues found in one request: the first ones listed, all counted. */
struct validate_issues {
    json_t *list; /* a jansson array of at most VALIDATE_MAX_ISSUES issues */
    size_t count; /* every issue found, listed or not */
};

void validate_issues_init(struct validate_issues *issues);
void validate_issues_free(struct validate_issues *issues);

/*
 * Parses a JSON text: duplicate keys, invalid UTF-8, NUL bytes (raw or
 * \u0000), numbers out of range and nesting deeper than max_depth are
 * refused.  Returns NULL with a message for the client in err, which says
 * where (line and column) and what, never quoting the text: it may carry a
 * password.
 */
json_t *validate_parse(const char *text, size_t len, unsigned max_depth, char *err, size_t errlen);

/*
 * Whether a schema is within the subset and consistent (min <= max, patterns
 * compile, required properties can exist).  for_query: the schema must be an
 * object whose properties are strings, integers, numbers or booleans.
 * Returns 0, or -1 with the reason in err.
 */
int validate_schema_check(const json_t *schema, int for_query, char *err, size_t errlen);

/*
 * Adds to issues every way instance fails schema; returns how many.  Costs
 * time linear in the size of the instance, whatever the schema.
 */
size_t validate(const json_t *schema, const json_t *instance, struct validate_issues *issues);

/*
 * Decodes a query string ("a=1&b=x%20y") into an object, coercing each value
 * to the type its property in schema declares (schema may be NULL: then
 * every parameter is unknown).  Undecodable or repeated parameters and
 * impossible coercions become issues; the caller then validates the object.
 */
json_t *validate_query(const json_t *schema, const char *query, size_t len, struct validate_issues *issues);

/*
 * The JSON text of a decoded query object (scalars only), numbers written
 * with the fewest digits that read back as the same double (0.1, not
 * 0.10000000000000001).  Malloc'd; NULL when out of memory.
 */
char *validate_query_text(const json_t *query);

/* The schema of a query that takes no parameters at all: {"type": "object"}. */
const json_t *validate_no_params_schema(void);

/* Adds one issue. */
void validate_issue(struct validate_issues *issues, const char *path, const char *rule, const char *message);

/* Format checks, exposed for tests. */
int validate_is_email(const char *s);
int validate_is_uuid(const char *s);
int validate_is_uri(const char *s);
int validate_is_date_time(const char *s);

#endif
