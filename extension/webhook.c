/*
 * webhook.c
 *	  Outbound webhooks: the URL rules of registration, signing secrets,
 *	  Standard Webhooks signatures, message ids and the retry schedule.
 *
 * The outbox itself (endpoints, messages, deliveries, attempts) is SQL, in
 * extension/sql/92_webhooks.sql; this file holds what SQL does badly or
 * must not see.
 *
 * Secrets.  A signing secret is "whsec_" and the standard base64 of 32
 * random bytes, as Standard Webhooks libraries expect it; the HMAC key is
 * those 32 bytes.  They are sealed with the company's data key, bound to the
 * endpoint id (seal.c, kind 'W'); the SHA-256 of the secret as shown is kept
 * as its fingerprint.  The secret leaves the database once, when it is made.
 *
 * Signing.  _webhook_sign() opens an endpoint's live secrets and returns the
 * value of the webhook-signature header: "v1,<base64 HMAC-SHA256(key, id
 * "." timestamp "." body)>" for each, space-separated, so the deliverer gets
 * signatures and never a key.  A secret that cannot be opened (the company
 * was shredded, the sealed value does not authenticate) makes it return
 * NULL instead of raising, inside a subtransaction, so that one such
 * endpoint does not stop the deliveries of every other: webhook_claim()
 * fails that delivery for good.  Any other error (a key ring that cannot be
 * read, a cancel) is raised as usual: it is not the endpoint's fault.
 *
 * Address literals.  A URL whose host is an address in a denied range
 * (shim/netranges.h, the table the shim checks at connect time) is refused
 * at registration.  An IPv4 host is recognised in every form inet_aton()
 * and the WHATWG URL parser accept (2130706433, 0x7f.1, 017700000001,
 * 127.1): a host whose last label is numeric is an address or an error,
 * never a name.  Host names are left to the connect-time check.
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/uuid.h"

#include "actloom.h"
#include "../shim/netranges.h"

#define WEBHOOK_SECRET_PREFIX		"whsec_"
#define WEBHOOK_SECRET_PREFIX_LEN	6
#define WEBHOOK_KEY_LEN				32
#define WEBHOOK_SECRET_KEY_MAX		64	/* longest key webhook_signature() takes */
#define WEBHOOK_MSG_ID_LEN			24	/* base62 characters after "msg_" */
#define WEBHOOK_URL_MAX				2048
#define WEBHOOK_HOST_MAX			253
#define WEBHOOK_RESPONSE_MAX		4096
#define WEBHOOK_SCHEDULE_MAX_STEPS	32
#define WEBHOOK_STEP_MAX_MS			(30.0 * 24 * 3600 * 1000)

int			WebhookMaxEndpoints = 20;
int			WebhookMaxPayload = 65536;
bool		WebhookAllowHttp = false;
char	   *WebhookRetrySchedule = NULL;
int			WebhookDisableAfter = 5 * 24 * 3600;

/* ---------------------------------------------------------------------
 * The retry schedule
 * ---------------------------------------------------------------------
 */

/*
 * Parse a schedule: comma-separated steps, each a whole number and a unit
 * (ms, s, min, h, d), spaces allowed around them.  Stores at most
 * WEBHOOK_SCHEDULE_MAX_STEPS delays, in milliseconds, into ms and their
 * number into *n; returns NULL, or why the text is not a schedule.
 */
static const char *
WebhookParseSchedule(const char *s, double *ms, int *n)
{
	static const struct
	{
		const char *name;
		double		ms;
	}			units[] = {{"ms", 1}, {"s", 1000}, {"min", 60000}, {"h", 3600000}, {"d", 86400000}};

	*n = 0;
	for (;;)
	{
		double		value = 0;
		int			digits = 0;
		size_t		len;
		size_t		u;
		bool		known = false;

		while (*s == ' ')
			s++;
		while (*s >= '0' && *s <= '9' && digits < 9)
		{
			value = value * 10 + (*s++ - '0');
			digits++;
		}
		if (digits == 0 || (*s >= '0' && *s <= '9'))
			return "Each step is a whole number of at most 9 digits and a unit.";
		len = strspn(s, "abcdefghijklmnopqrstuvwxyz");
		for (u = 0; u < lengthof(units); u++)
			if (strlen(units[u].name) == len && strncmp(s, units[u].name, len) == 0)
			{
				value *= units[u].ms;
				known = true;
			}
		if (!known)
			return "The units are ms, s, min, h and d.";
		if (value > WEBHOOK_STEP_MAX_MS)
			return "A step is at most 30 days.";
		if (*n == WEBHOOK_SCHEDULE_MAX_STEPS)
			return "A schedule has at most 32 steps.";
		ms[(*n)++] = value;
		s += len;
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return NULL;
		if (*s++ != ',')
			return "Steps are separated by commas.";
	}
}

/*
 * WebhookCheckRetrySchedule is the check hook of
 * actloom.webhook_retry_schedule: a value that is not a schedule is refused
 * when it is set, so that reading it later cannot fail.
 */
bool
WebhookCheckRetrySchedule(char **newval, void **extra, GucSource source)
{
	double		ms[WEBHOOK_SCHEDULE_MAX_STEPS];
	int			n;
	const char *problem = WebhookParseSchedule(*newval, ms, &n);

	if (problem)
	{
		GUC_check_errdetail("%s", problem);
		return false;
	}
	return true;
}

PG_FUNCTION_INFO_V1(webhook_retry_delay);

/*
 * _webhook_retry_delay(step integer) returns the delay, in seconds, of the
 * step-th step (1-based) of the current schedule, or NULL when the schedule
 * has fewer steps: the delivery has had its last attempt.
 */
Datum
webhook_retry_delay(PG_FUNCTION_ARGS)
{
	double		ms[WEBHOOK_SCHEDULE_MAX_STEPS];
	int			n;
	int32		step;

	ACTLOOM_REQUIRE_ARG(0, "step");
	step = PG_GETARG_INT32(0);
	if (WebhookParseSchedule(WebhookRetrySchedule, ms, &n) != NULL)
		elog(ERROR, "actloom.webhook_retry_schedule is not a schedule");
	if (step < 1 || step > n)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(ms[step - 1] / 1000.0);
}

/* ---------------------------------------------------------------------
 * URL rules
 * ---------------------------------------------------------------------
 */

/* Raise 22023 for a URL that breaks a rule; reason is the detail. */
static void
pg_attribute_noreturn()
WebhookBadUrl(const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid webhook URL"),
			 errdetail("%s", reason)));
	pg_unreachable();
}

/*
 * Parse one part of an IPv4 address as inet_aton() does: "0x" and hex
 * digits, "0" and octal digits, or decimal digits.  Returns false when the
 * part is none of these or exceeds max.
 */
static bool
WebhookIpv4Part(const char *s, size_t len, uint64 max, uint64 *value)
{
	int			base = 10;
	uint64		v = 0;
	size_t		i = 0;

	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
	{
		base = 16;
		i = 2;
	}
	else if (len >= 2 && s[0] == '0')
	{
		base = 8;
		i = 1;
	}
	if (len == 0 || (base == 10 && len > 10) || len - i > 32)
		return false;
	for (; i < len; i++)
	{
		int			d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			return false;
		if (d >= base)
			return false;
		v = v * base + d;
		if (v > max)
			return false;
	}
	*value = v;
	return true;
}

/*
 * Whether a host (len bytes, no trailing dot) is meant as an IPv4 address:
 * its last label is all decimal digits or "0x" and hex digits.
 */
static bool
WebhookLooksIpv4(const char *host, size_t len)
{
	const char *dot = memrchr(host, '.', len);
	const char *label = dot ? dot + 1 : host;
	size_t		n = host + len - label;
	size_t		i = 0;

	if (n >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X'))
	{
		for (i = 2; i < n; i++)
			if (!isxdigit((unsigned char) label[i]))
				return false;
		return true;
	}
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char) label[i]))
			return false;
	return n > 0;
}

/*
 * Parse an IPv4 address in any form inet_aton() accepts: one to four parts,
 * the last filling the bytes that remain.  Returns false when it is none.
 */
static bool
WebhookParseIpv4(const char *host, size_t len, unsigned char *addr)
{
	uint64		parts[4];
	int			n = 0;
	size_t		start = 0;
	uint64		v;
	int			i;

	for (;;)
	{
		const char *dot = memchr(host + start, '.', len - start);
		size_t		end = dot ? (size_t) (dot - host) : len;

		if (n == 4 || !WebhookIpv4Part(host + start, end - start, UINT64CONST(0xFFFFFFFF), &parts[n]))
			return false;
		n++;
		if (!dot)
			break;
		start = end + 1;
	}
	for (i = 0; i < n - 1; i++)
		if (parts[i] > 255)
			return false;
	if (parts[n - 1] > (UINT64CONST(0xFFFFFFFF) >> (8 * (n - 1))))
		return false;
	v = parts[n - 1];
	for (i = 0; i < n - 1; i++)
		v |= parts[i] << (8 * (3 - i));
	addr[0] = (unsigned char) (v >> 24);
	addr[1] = (unsigned char) (v >> 16);
	addr[2] = (unsigned char) (v >> 8);
	addr[3] = (unsigned char) v;
	return true;
}

/* Refuse an address in a denied range. */
static void
WebhookCheckAddress(int v6, const unsigned char *addr)
{
	const char *range = netranges_match(v6, addr);

	if (range)
		WebhookBadUrl(psprintf("The host is an address in a range no webhook may reach: %s.", range));
}

/*
 * Check the host part of an authority (an IPv6 literal in brackets, an IPv4
 * address in any form, or a name).
 */
static void
WebhookCheckHost(const char *host, size_t len)
{
	size_t		i;

	if (len == 0)
		WebhookBadUrl("A webhook URL needs a host.");
	if (host[0] == '[')
	{
		char		buf[INET6_ADDRSTRLEN + 1];
		unsigned char addr[16];

		if (host[len - 1] != ']' || len - 2 > INET6_ADDRSTRLEN || len < 3)
			WebhookBadUrl("An IPv6 address in a URL is written in brackets, without a zone.");
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, addr) != 1)
			WebhookBadUrl("The host is not a valid IPv6 address.");
		WebhookCheckAddress(1, addr);
		return;
	}
	if (len > WEBHOOK_HOST_MAX + 1 || (len == WEBHOOK_HOST_MAX + 1 && host[len - 1] != '.'))
		WebhookBadUrl("A host name has at most 253 characters.");
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char) host[i]) && host[i] != '-' && host[i] != '.' && host[i] != '_')
			WebhookBadUrl("A host name has only letters, digits, \"-\", \"_\" and \".\"; an IPv6 address is written in brackets.");
	/* A resolver treats "127.0.0.1." as the address too. */
	if (host[len - 1] == '.')
		len--;
	if (len == 0 || host[0] == '.' || memmem(host, len, "..", 2) != NULL)
		WebhookBadUrl("A host name has no empty labels.");
	if (WebhookLooksIpv4(host, len))
	{
		unsigned char addr[4];

		if (!WebhookParseIpv4(host, len, addr))
			WebhookBadUrl("The host is neither a valid IPv4 address nor a name: its last label is a number.");
		WebhookCheckAddress(0, addr);
	}
}

/*
 * WebhookCheckUrl raises 22023, with the rule broken as its detail, unless
 * url (len bytes) is an absolute https URL (or http when
 * actloom.webhook_allow_http is on) with a host, no userinfo, no fragment,
 * a port of 1-65535 if any, at most 2048 bytes of printable ASCII, whose
 * host is not an address literal in a denied range.
 */
static void
WebhookCheckUrl(const char *url, size_t len)
{
	const char *p;
	const char *end = url + len;
	const char *authority;
	const char *host_end;
	size_t		i;

	if (len > WEBHOOK_URL_MAX)
		WebhookBadUrl("A webhook URL has at most 2048 bytes.");
	for (i = 0; i < len; i++)
		if ((unsigned char) url[i] <= 0x20 || (unsigned char) url[i] >= 0x7f)
			WebhookBadUrl("A webhook URL has no whitespace or control characters, and no other characters outside printable ASCII: percent-encode them, and write international host names in their \"xn--\" form.");
	if (memchr(url, '#', len) != NULL)
		WebhookBadUrl("A webhook URL has no fragment.");
	if (len >= 8 && pg_strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else if (len >= 7 && pg_strncasecmp(url, "http://", 7) == 0)
	{
		if (!WebhookAllowHttp)
			WebhookBadUrl("A webhook URL is https; plain http is allowed only when actloom.webhook_allow_http is on.");
		p = url + 7;
	}
	else
		WebhookBadUrl("A webhook URL is an absolute https URL, \"https://host/path\".");

	authority = p;
	while (p < end && *p != '/' && *p != '?')
		p++;
	if (memchr(authority, '@', p - authority) != NULL)
		WebhookBadUrl("A webhook URL has no user name or password.");

	/* The host ends at the port's colon; an IPv6 literal at its "]". */
	if (authority < p && *authority == '[')
	{
		const char *close = memchr(authority, ']', p - authority);

		host_end = close ? close + 1 : p;
	}
	else
	{
		const char *colon = memchr(authority, ':', p - authority);

		host_end = colon ? colon : p;
	}
	if (host_end < p)
	{
		const char *port = host_end + 1;
		int			value = 0;

		if (*host_end != ':' || port == p || p - port > 5)
			WebhookBadUrl("The port of a webhook URL is a number from 1 to 65535.");
		for (; port < p; port++)
		{
			if (!isdigit((unsigned char) *port))
				WebhookBadUrl("The port of a webhook URL is a number from 1 to 65535.");
			value = value * 10 + (*port - '0');
		}
		if (value < 1 || value > 65535)
			WebhookBadUrl("The port of a webhook URL is a number from 1 to 65535.");
	}
	WebhookCheckHost(authority, host_end - authority);
}

PG_FUNCTION_INFO_V1(webhook_check_url);

/*
 * _webhook_check_url(url text) raises 22023 for a URL no endpoint may have
 * (see WebhookCheckUrl), 22004 for NULL.
 */
Datum
webhook_check_url(PG_FUNCTION_ARGS)
{
	text	   *url;

	ACTLOOM_REQUIRE_ARG(0, "url");
	url = PG_GETARG_TEXT_PP(0);
	WebhookCheckUrl(VARDATA_ANY(url), VARSIZE_ANY_EXHDR(url));
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Ids, secrets and signatures
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(webhook_message_id);

/*
 * _webhook_message_id() returns a new message id: "msg_" and 24 random
 * base62 characters (142 bits).
 */
Datum
webhook_message_id(PG_FUNCTION_ARGS)
{
	char		id[4 + WEBHOOK_MSG_ID_LEN];

	memcpy(id, "msg_", 4);
	ApiKeyRandomBase62(id + 4, WEBHOOK_MSG_ID_LEN);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(id, sizeof(id)));
}

/* The standard base64 of len bytes, palloc'd and NUL-terminated. */
static char *
WebhookBase64(const uint8 *data, int len)
{
	int			enclen = pg_b64_enc_len(len);
	char	   *out = palloc(enclen + 1);
	int			n = pg_b64_encode((const char *) data, len, out, enclen);

	if (n < 0)
		elog(ERROR, "base64 encoding failed");
	out[n] = '\0';
	return out;
}

PG_FUNCTION_INFO_V1(webhook_secret_new);

/*
 * _webhook_secret_new(company uuid, endpoint uuid, OUT secret text,
 * OUT sealed bytea, OUT fingerprint bytea) makes a signing secret for an
 * endpoint: the secret to show once, its key sealed for the company and the
 * endpoint, and the SHA-256 of the secret.  Internal: the callers check
 * permissions.
 */
Datum
webhook_secret_new(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *company;
	char	   *endpoint;
	uint8		key[WEBHOOK_KEY_LEN];
	uint8		fingerprint[CRYPTO_SHA256_LEN];
	char	   *b64;
	char	   *secret;
	bytea	   *fp;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	ACTLOOM_REQUIRE_ARG(0, "company");
	ACTLOOM_REQUIRE_ARG(1, "endpoint");
	company = PG_GETARG_UUID_P(0);
	endpoint = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(1)));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	CryptoRandom(key, sizeof(key));
	b64 = WebhookBase64(key, sizeof(key));
	secret = psprintf("%s%s", WEBHOOK_SECRET_PREFIX, b64);
	CryptoSha256(secret, strlen(secret), fingerprint);
	fp = palloc(VARHDRSZ + CRYPTO_SHA256_LEN);
	SET_VARSIZE(fp, VARHDRSZ + CRYPTO_SHA256_LEN);
	memcpy(VARDATA(fp), fingerprint, CRYPTO_SHA256_LEN);

	values[0] = PointerGetDatum(cstring_to_text(secret));
	values[1] = PointerGetDatum(SealWebhookSecret(company, endpoint, key, sizeof(key)));
	values[2] = PointerGetDatum(fp);
	CryptoWipe(key, sizeof(key));
	CryptoWipe(b64, strlen(b64));
	CryptoWipe(secret, strlen(secret));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * The signature of one message under one key: "v1," and the base64 of
 * HMAC-SHA256(key, msg_id "." ts "." body), appended to buf.
 */
static void
WebhookSignOne(StringInfo buf, const uint8 *key, size_t keylen,
			   const text *msg_id, int64 ts, const text *body)
{
	char		tsbuf[32];
	const void *parts[5];
	size_t		lens[5];
	uint8		mac[CRYPTO_SHA256_LEN];
	char	   *b64;

	snprintf(tsbuf, sizeof(tsbuf), INT64_FORMAT, ts);
	parts[0] = VARDATA_ANY(msg_id);
	lens[0] = VARSIZE_ANY_EXHDR(msg_id);
	parts[1] = ".";
	lens[1] = 1;
	parts[2] = tsbuf;
	lens[2] = strlen(tsbuf);
	parts[3] = ".";
	lens[3] = 1;
	parts[4] = VARDATA_ANY(body);
	lens[4] = VARSIZE_ANY_EXHDR(body);
	CryptoHmacSha256(key, keylen, lengthof(parts), parts, lens, mac);
	b64 = WebhookBase64(mac, sizeof(mac));
	if (buf->len > 0)
		appendStringInfoChar(buf, ' ');
	appendStringInfo(buf, "v1,%s", b64);
}

PG_FUNCTION_INFO_V1(webhook_signature);

/*
 * webhook_signature(secret text, msg_id text, ts bigint, body text) returns
 * the Standard Webhooks signature of a message under a secret given as the
 * receiver holds it ("whsec_" and base64).  It reads nothing stored, so
 * anybody may call it: receivers and tests check signatures with it.
 */
Datum
webhook_signature(PG_FUNCTION_ARGS)
{
	text	   *secret;
	const char *b64;
	int			b64len;
	uint8		key[WEBHOOK_SECRET_KEY_MAX + 3];
	int			keylen;
	StringInfoData buf;

	ACTLOOM_REQUIRE_ARG(0, "secret");
	ACTLOOM_REQUIRE_ARG(1, "msg_id");
	ACTLOOM_REQUIRE_ARG(2, "ts");
	ACTLOOM_REQUIRE_ARG(3, "body");
	secret = PG_GETARG_TEXT_PP(0);
	b64 = VARDATA_ANY(secret);
	b64len = VARSIZE_ANY_EXHDR(secret);
	if (b64len < WEBHOOK_SECRET_PREFIX_LEN ||
		memcmp(b64, WEBHOOK_SECRET_PREFIX, WEBHOOK_SECRET_PREFIX_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook secret"),
				 errdetail("A webhook secret is \"whsec_\" followed by base64.")));
	b64 += WEBHOOK_SECRET_PREFIX_LEN;
	b64len -= WEBHOOK_SECRET_PREFIX_LEN;
	keylen = b64len == 0 || pg_b64_dec_len(b64len) > (int) sizeof(key) ? -1
		: pg_b64_decode(b64, b64len, (char *) key, sizeof(key));
	if (keylen < 1 || keylen > WEBHOOK_SECRET_KEY_MAX)
	{
		CryptoWipe(key, sizeof(key));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook secret"),
				 errdetail("A webhook secret is \"whsec_\" followed by the base64 of 1 to %d bytes.",
						   WEBHOOK_SECRET_KEY_MAX)));
	}
	initStringInfo(&buf);
	WebhookSignOne(&buf, key, keylen, PG_GETARG_TEXT_PP(1), PG_GETARG_INT64(2),
				   PG_GETARG_TEXT_PP(3));
	CryptoWipe(key, sizeof(key));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * Sign with every sealed key of the array, appending to buf.  Raises when a
 * key does not open.
 */
static void
WebhookSignAll(StringInfo buf, const pg_uuid_t *company, const char *endpoint,
			   ArrayType *sealed, const text *msg_id, int64 ts, const text *body)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(sealed, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		bytea	   *key;

		if (nulls[i])
			elog(ERROR, "a sealed webhook secret is NULL");
		key = UnsealWebhookSecret(company, endpoint, DatumGetByteaPP(elems[i]));
		PG_TRY();
		{
			WebhookSignOne(buf, (const uint8 *) VARDATA(key), VARSIZE(key) - VARHDRSZ,
						   msg_id, ts, body);
		}
		PG_CATCH();
		{
			CryptoWipe(VARDATA(key), VARSIZE(key) - VARHDRSZ);
			PG_RE_THROW();
		}
		PG_END_TRY();
		CryptoWipe(VARDATA(key), VARSIZE(key) - VARHDRSZ);
	}
}

PG_FUNCTION_INFO_V1(webhook_sign);

/*
 * _webhook_sign(company uuid, endpoint uuid, sealed bytea[], msg_id text,
 * ts bigint, body text) returns the webhook-signature header value for a
 * message under the endpoint's sealed keys, in the order given, or NULL
 * when there is none or one cannot be opened: the company's data key was
 * shredded (55000), or a sealed value does not authenticate (22P03) or its
 * data key does not unwrap (XX001).  Other errors are raised.  Internal:
 * webhook_claim() calls it.
 */
Datum
webhook_sign(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *company;
	char	   *endpoint;
	ArrayType  *sealed;
	text	   *msg_id;
	int64		ts;
	text	   *body;
	StringInfoData buf;
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		ok = true;

	ACTLOOM_REQUIRE_ARG(0, "company");
	ACTLOOM_REQUIRE_ARG(1, "endpoint");
	ACTLOOM_REQUIRE_ARG(2, "sealed");
	ACTLOOM_REQUIRE_ARG(3, "msg_id");
	ACTLOOM_REQUIRE_ARG(4, "ts");
	ACTLOOM_REQUIRE_ARG(5, "body");
	company = PG_GETARG_UUID_P(0);
	endpoint = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(1)));
	sealed = PG_GETARG_ARRAYTYPE_P(2);
	msg_id = PG_GETARG_TEXT_PP(3);
	ts = PG_GETARG_INT64(4);
	body = PG_GETARG_TEXT_PP(5);
	if (ArrayGetNItems(ARR_NDIM(sealed), ARR_DIMS(sealed)) == 0)
		PG_RETURN_NULL();
	initStringInfo(&buf);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		WebhookSignAll(&buf, company, endpoint, sealed, msg_id, ts, body);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE &&
			edata->sqlerrcode != ERRCODE_INVALID_BINARY_REPRESENTATION &&
			edata->sqlerrcode != ERRCODE_DATA_CORRUPTED)
			ReThrowError(edata);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* ---------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(webhook_clean_response);

/*
 * _webhook_clean_response(response text) returns a receiver's response as
 * it is kept: without control characters (C0, DEL and C1), cut to at most
 * 4096 bytes at a character boundary.
 */
Datum
webhook_clean_response(PG_FUNCTION_ARGS)
{
	text	   *in;
	const char *p;
	const char *end;
	StringInfoData out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	in = PG_GETARG_TEXT_PP(0);
	p = VARDATA_ANY(in);
	end = p + VARSIZE_ANY_EXHDR(in);
	initStringInfo(&out);
	while (p < end)
	{
		int			len = pg_mblen(p);
		bool		control;

		if (len > end - p)
			break;
		control = (len == 1 && ((unsigned char) *p < 0x20 || *p == 0x7f)) ||
			(GetDatabaseEncoding() == PG_UTF8 && len == 2 &&
			 (unsigned char) p[0] == 0xc2 && (unsigned char) p[1] >= 0x80 &&
			 (unsigned char) p[1] <= 0x9f);
		if (!control)
		{
			if (out.len + len > WEBHOOK_RESPONSE_MAX)
				break;
			appendBinaryStringInfo(&out, p, len);
		}
		p += len;
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
