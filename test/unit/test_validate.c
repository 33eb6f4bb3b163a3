/* Unit tests of validate.c: strict parsing, the schema subset, query coercion. */
#include <string.h>

#include "unit.h"
#include "validate.h"

/* Validates text against schema text; returns the issue count, -1 on bad input. */
static int
issues_for(const char *schema_text, const char *instance_text, const char *want_path, const char *want_rule)
{
    json_error_t e;
    json_t *schema = json_loads(schema_text, 0, &e), *inst = json_loads(instance_text, JSON_DECODE_ANY, &e);
    struct validate_issues issues;
    char err[256];
    int n;

    if (schema == NULL || inst == NULL || validate_schema_check(schema, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "bad test input: %s / %s\n", schema_text, instance_text);
        return -1;
    }
    validate_issues_init(&issues);
    n = (int)validate(schema, inst, &issues);
    if (want_path != NULL) {
        json_t *first = json_array_get(issues.list, 0);
        if (first == NULL || strcmp(json_string_value(json_object_get(first, "path")), want_path) != 0 ||
            strcmp(json_string_value(json_object_get(first, "rule")), want_rule) != 0) {
            char *dump = json_dumps(issues.list, 0);
            fprintf(stderr, "issues: %s\n", dump);
            free(dump);
            n = -2;
        }
    }
    json_decref(schema);
    json_decref(inst);
    validate_issues_free(&issues);
    return n;
}

static int
schema_ok(const char *text, int for_query)
{
    json_t *schema = json_loads(text, 0, NULL);
    char err[256];
    int ok = schema != NULL && validate_schema_check(schema, for_query, err, sizeof(err)) == 0;

    json_decref(schema);
    return ok;
}

static int
parses(const char *text, size_t len, unsigned depth)
{
    char err[256];
    json_t *doc = validate_parse(text, len, depth, err, sizeof(err));
    int ok = doc != NULL;

    json_decref(doc);
    return ok;
}

int
main(void)
{
    /* parsing */
    CHECK(parses("{\"a\": [1, 2.5, \"x\", null, true]}", 32, 8), "plain JSON parses");
    CHECK(!parses("{\"a\": 1, \"a\": 2}", 16, 8), "duplicate keys refused");
    CHECK(!parses("\"\xff\"", 3, 8), "invalid UTF-8 refused");
    CHECK(!parses("\"\xc0\xaf\"", 4, 8), "overlong UTF-8 refused");
    CHECK(!parses("\"a\\u0000b\"", 10, 8), "escaped NUL refused");
    CHECK(!parses("{\"a\":\0 1}", 9, 8), "raw NUL refused");
    CHECK(!parses("[[[[1]]]]", 9, 3), "nesting beyond the limit refused");
    CHECK(parses("[[[1]]]", 7, 3), "nesting at the limit parses");
    CHECK(parses("[\"[[[[[\"]", 9, 1), "brackets inside strings do not count");
    CHECK(!parses("123456789012345678901234567890", 30, 8), "huge integer refused");
    CHECK(!parses("1e400", 5, 8), "number overflow refused");
    CHECK(!parses("{\"a\":1} x", 9, 8), "trailing garbage refused");
    CHECK(!parses("", 0, 8), "empty text refused");

    /* schemas */
    CHECK(schema_ok("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]}", 0),
          "a plain schema is valid");
    CHECK(!schema_ok("{\"type\":\"obj\"}", 0), "unknown type refused");
    CHECK(!schema_ok("{\"oneOf\":[]}", 0), "unsupported keyword refused");
    CHECK(!schema_ok("{\"minLength\":5,\"maxLength\":2}", 0), "minLength > maxLength refused");
    CHECK(!schema_ok("{\"minItems\":-1}", 0), "negative minItems refused");
    CHECK(!schema_ok("{\"pattern\":\"(\"}", 0), "bad pattern refused");
    CHECK(!schema_ok("{\"format\":\"ipv4\"}", 0), "unknown format refused");
    CHECK(!schema_ok("{\"enum\":[]}", 0), "empty enum refused");
    CHECK(!schema_ok("{\"type\":\"object\",\"required\":[\"x\"]}", 0), "unsatisfiable required refused");
    CHECK(!schema_ok("{\"additionalProperties\":{}}", 0), "schema-valued additionalProperties refused");
    CHECK(!schema_ok("[]", 0), "non-object schema refused");
    CHECK(schema_ok("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}", 1), "query schema valid");
    CHECK(!schema_ok("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"array\"}}}", 1),
          "query schema with an array refused");
    CHECK(!schema_ok("{\"type\":\"string\"}", 1), "query schema must be an object");

    /* every keyword, accepted and refused */
    CHECK(issues_for("{\"type\":\"string\"}", "\"x\"", NULL, NULL) == 0, "type string accepts");
    CHECK(issues_for("{\"type\":\"string\"}", "1", "", "type") == 1, "type string refuses a number");
    CHECK(issues_for("{\"type\":\"integer\"}", "2.0", NULL, NULL) == 0, "2.0 is an integer");
    CHECK(issues_for("{\"type\":\"integer\"}", "2.5", "", "type") == 1, "2.5 is not an integer");
    CHECK(issues_for("{\"type\":\"number\"}", "2", NULL, NULL) == 0, "2 is a number");
    CHECK(issues_for("{\"type\":\"boolean\"}", "null", "", "type") == 1, "null is not a boolean");
    CHECK(issues_for("{\"type\":[\"string\",\"null\"]}", "null", NULL, NULL) == 0, "type list accepts");
    CHECK(issues_for("{\"type\":[\"string\",\"null\"]}", "3", "", "type") == 1, "type list refuses");
    CHECK(issues_for("{\"type\":\"array\"}", "{}", "", "type") == 1, "array refuses object");
    CHECK(issues_for("{\"type\":\"object\"}", "{\"x\":1}", "/x", "additionalProperties") == 1,
          "additionalProperties is false unless stated");
    CHECK(issues_for("{\"type\":\"object\",\"additionalProperties\":true}", "{\"x\":1}", NULL, NULL) == 0,
          "additionalProperties true accepts");
    CHECK(issues_for("{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"a\"]}", "{}", "/a", "required") ==
              1,
          "required refuses a missing property");
    CHECK(issues_for("{\"properties\":{\"a/b~\":{\"type\":\"string\"}}}", "{\"a/b~\":1}", "/a~1b~0", "type") == 1,
          "paths escape / and ~");
    CHECK(issues_for("{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", "[1,\"x\",3]", "/1", "type") == 1,
          "items checks each item");
    CHECK(issues_for("{\"minItems\":2}", "[1]", "", "minItems") == 1, "minItems refuses");
    CHECK(issues_for("{\"maxItems\":1}", "[1,2]", "", "maxItems") == 1, "maxItems refuses");
    CHECK(issues_for("{\"minItems\":1,\"maxItems\":2}", "[1,2]", NULL, NULL) == 0, "item bounds accept");
    CHECK(issues_for("{\"minLength\":2}", "\"\xc3\xa9\"", "", "minLength") == 1, "minLength counts characters");
    CHECK(issues_for("{\"maxLength\":1}", "\"\xc3\xa9\"", NULL, NULL) == 0, "maxLength counts characters");
    CHECK(issues_for("{\"maxLength\":1}", "\"ab\"", "", "maxLength") == 1, "maxLength refuses");
    CHECK(issues_for("{\"minimum\":1}", "0", "", "minimum") == 1, "minimum refuses");
    CHECK(issues_for("{\"minimum\":1}", "1", NULL, NULL) == 0, "minimum is inclusive");
    CHECK(issues_for("{\"maximum\":1.5}", "1.6", "", "maximum") == 1, "maximum refuses");
    CHECK(issues_for("{\"maximum\":9007199254740993}", "9007199254740994", "", "maximum") == 1,
          "integer bounds compare exactly");
    CHECK(issues_for("{\"enum\":[\"a\",1]}", "1", NULL, NULL) == 0, "enum accepts");
    CHECK(issues_for("{\"enum\":[\"a\",1]}", "\"b\"", "", "enum") == 1, "enum refuses");
    CHECK(issues_for("{\"pattern\":\"^[a-z]+$\"}", "\"abc\"", NULL, NULL) == 0, "pattern accepts");
    CHECK(issues_for("{\"pattern\":\"^[a-z]+$\"}", "\"ab1\"", "", "pattern") == 1, "pattern refuses");
    CHECK(issues_for("{\"format\":\"email\"}", "\"a.b@example.com\"", NULL, NULL) == 0, "email accepts");
    CHECK(issues_for("{\"format\":\"email\"}", "\"a..b@example\"", "", "format") == 1, "email refuses");
    CHECK(issues_for("{\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"", NULL, NULL) == 0,
          "uuid accepts");
    CHECK(issues_for("{\"format\":\"uuid\"}", "\"123e4567e89b12d3a456426614174000\"", "", "format") == 1,
          "uuid refuses");
    CHECK(issues_for("{\"format\":\"uri\"}", "\"https://example.com/a?b=c\"", NULL, NULL) == 0, "uri accepts https");
    CHECK(issues_for("{\"format\":\"uri\"}", "\"ftp://example.com/\"", "", "format") == 1, "uri refuses ftp");
    CHECK(issues_for("{\"format\":\"uri\"}", "\"javascript:alert(1)\"", "", "format") == 1, "uri refuses javascript:");
    CHECK(issues_for("{\"format\":\"uri\"}", "\"http://exa mple.com/\"", "", "format") == 1, "uri refuses spaces");
    CHECK(issues_for("{\"format\":\"date-time\"}", "\"2024-02-29T12:00:00.5+01:00\"", NULL, NULL) == 0,
          "date-time accepts");
    CHECK(issues_for("{\"format\":\"date-time\"}", "\"2023-02-29T12:00:00Z\"", "", "format") == 1,
          "date-time refuses Feb 29 of a common year");
    CHECK(issues_for("{\"format\":\"date-time\"}", "\"2023-01-01 12:00:00Z\"", "", "format") == 1,
          "date-time refuses a space");
    CHECK(issues_for("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"minLength\":3},\"b\":{"
                     "\"type\":\"integer\"}},\"required\":[\"a\",\"b\"]}",
                     "{\"a\":\"x\",\"c\":1}", NULL, NULL) == 3,
          "every failing field is listed");

    /* a bounded list, with every issue counted */
    {
        json_t *schema = json_loads("{\"type\":\"object\"}", 0, NULL), *inst = json_object();
        struct validate_issues issues;
        for (int i = 0; i < 1000; i++) {
            char name[16];
            snprintf(name, sizeof(name), "p%d", i);
            json_object_set_new(inst, name, json_integer(i));
        }
        validate_issues_init(&issues);
        CHECK(validate(schema, inst, &issues) == 1000 && issues.count == 1000, "every issue is counted");
        CHECK(json_array_size(issues.list) == VALIDATE_MAX_ISSUES, "the first ones are listed");
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(issues.list, 49), "path")), "/p49") == 0,
              "in document order");
        validate_issue(&issues, "", "body", "one more");
        CHECK(issues.count == 1001 && json_array_size(issues.list) == VALIDATE_MAX_ISSUES,
              "issues added later are counted too");
        validate_issues_free(&issues);
        json_decref(inst);
        json_decref(schema);
    }
    CHECK(issues_for("{\"maxLength\":3,\"pattern\":\"^[0-9]+$\",\"format\":\"uuid\"}", "\"abcdef\"", "", "maxLength") ==
              1,
          "a string over maxLength is matched against neither pattern nor format");
    CHECK(issues_for("{\"type\":\"array\",\"items\":{\"pattern\":\"^a\"}}", "[\"a\",\"b\",\"a\",\"c\"]", "/1",
                     "pattern") == 2,
          "a pattern compiled once serves every item");

    /* parse errors say where, never what the text held */
    {
        static const struct {
            const char *text, *want;
        } cases[] = {
            {"{\"password\": \"Hunter2\\q\"}", "invalid JSON at line 1, column"},
            {"{\"password\": \"Hunter2\xff\"}", "invalid UTF-8"},
            {"{\"password\": \"Hunter2\x01\"}", "invalid syntax"},
            {"{\"password\": \"Hunter2\\uD834\"}", "invalid syntax"},
            {"{\"password\": \"Hunter2", "the text ends before the value does"},
            {"{\"password\": \"Hunter2\"} Hunter2", "text after the value"},
            {"{\"a\": 1, \"a\": 2}", "a duplicate object key"},
            {"{\"n\": 1e999}", "a number out of range"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char err[256], name[320];
            json_t *doc = validate_parse(cases[i].text, strlen(cases[i].text), 8, err, sizeof(err));
            snprintf(name, sizeof(name), "parse error %zu: %s", i, err);
            CHECK(doc == NULL && strstr(err, cases[i].want) != NULL && strstr(err, "Hunter") == NULL &&
                      strstr(err, "0x") == NULL && strstr(err, "D834") == NULL && strstr(err, "near") == NULL,
                  name);
            json_decref(doc);
        }
    }

    /* query strings */
    {
        json_t *schema = json_loads("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"},\"f\":{"
                                    "\"type\":\"boolean\"},\"s\":{\"type\":\"string\"},\"x\":{\"type\":\"number\"}}}",
                                    0, NULL);
        struct validate_issues issues;
        json_t *obj;

        validate_issues_init(&issues);
        obj = validate_query(schema, "n=42&f=true&s=a%20b+c&x=1.5", 27, &issues);
        CHECK(issues.count == 0 && json_integer_value(json_object_get(obj, "n")) == 42 &&
                  json_is_true(json_object_get(obj, "f")) &&
                  strcmp(json_string_value(json_object_get(obj, "s")), "a b c") == 0 &&
                  json_real_value(json_object_get(obj, "x")) == 1.5,
              "query parameters are coerced by type");
        {
            char *text = validate_query_text(obj);
            CHECK(text != NULL && strcmp(text, "{\"n\":42,\"f\":true,\"s\":\"a b c\",\"x\":1.5}") == 0,
                  "the query object as JSON text");
            free(text);
        }
        json_decref(obj);
        obj = validate_query(schema, "x=0.1&s=%22%5C", 14, &issues);
        {
            char *text = validate_query_text(obj);
            CHECK(text != NULL && strcmp(text, "{\"x\":0.1,\"s\":\"\\\"\\\\\"}") == 0,
                  "numbers with the fewest digits, strings escaped");
            free(text);
        }
        json_decref(obj);
        obj = validate_query(schema, "n=4x&f=yes&n=1&s=%zz&s=%00&x=nan", 33, &issues);
        CHECK(issues.count == 5 && json_array_size(issues.list) == 5,
              "bad coercions, duplicates and bad encodings are issues");
        json_decref(obj);
        validate_issues_free(&issues);
        validate_issues_init(&issues);
        obj = validate_query(schema, "zz=1", 4, &issues);
        CHECK(validate(schema, obj, &issues) == 1, "unknown query parameters are refused");
        json_decref(obj);
        validate_issues_free(&issues);
        json_decref(schema);
    }
    return unit_done();
}
