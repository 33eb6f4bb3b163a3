/*
 * deliver.c: the webhook deliverer (deliver.h).
 *
 * Lifetime of a delivery in a worker: a claim job returns it with its lease,
 * its URL, its body as stored and the webhook-signature header the database
 * computed; it becomes an item, sent at once; when the transfer ends, its
 * attempt joins the queue of attempts to record, and one record job at a
 * time reports everything queued (actloom.webhook_record_all: one commit for
 * many attempts); when that job answers, its items are freed.  An item
 * counts against the worker's budget and its endpoint's limit from the claim
 * until its record answered, because until then the database still shows
 * the delivery under this worker's lease.  A record that cannot be written
 * (the database went away) is given up: the leases expire and a deliverer
 * delivers those again, which at-least-once delivery allows.
 *
 * At most one claim job runs at a time.  Its second statement asks when the
 * next delivery of the shard is due, so the worker claims again exactly
 * then (to the tick), or after webhooks.poll_ms, whichever is sooner.
 */
#include "deliver.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http_out.h"
#include "log.h"
#include "metrics.h"
#include "shim.h"

/* A claim that failed is tried again this late. */
#define RETRY_CLAIM_MS 1000
/*
 * A wake is followed by a second claim this much later: the database sends
 * at most one notification every 10 ms (extension/wake.c), so a transaction
 * that committed just after the one that sent it is found then.
 */
#define FOLLOW_UP_MS 30
/* How often the gauge of due deliveries is refreshed. */
#define DUE_GAUGE_MS 1000
/* The response text recorded with an attempt. */
#define EXCERPT_BYTES 4096

#define CLAIM_SQL                                                                                                      \
    "SELECT delivery_id, endpoint_id, url, message_id, attempt, webhook_timestamp, signature, body, lease "            \
    "FROM actloom.webhook_claim($1::integer, $2::integer, $3::integer, $4::integer, $5::jsonb, $6::integer)"
#define NEXT_DUE_SQL "SELECT actloom.webhook_next_due($1::integer, $2::integer)"
#define DUE_COUNT_SQL "SELECT actloom.webhook_due_count($1::integer, $2::integer)"
#define RECORD_SQL "SELECT delivery_id, state FROM actloom.webhook_record_all($1::jsonb)"
/* Attempts reported by one record job at most. */
#define RECORD_BATCH 64

struct item {
    h2o_linklist_t link;
    struct deliverer *d;
    struct http_out_xfer *xfer;
    struct item *next_record; /* the queue of attempts to record */
    json_t *attempt;          /* the attempt as webhook_record_all takes it, once the transfer ended */
    char delivery_id[40];
    char endpoint_id[40];
    char lease[40];
    char message_id[64];
    char timestamp[24];
    char *url;
    char *body;
    char *signature;
};

struct deliverer {
    struct shim_thread *t;
    struct http_out *out;
    unsigned shard, shards;
    unsigned budget; /* this worker's share of webhooks.max_in_flight */
    h2o_linklist_t items;
    unsigned nitems;
    struct db_job *claim_job;
    int claiming;
    int in_claimed;        /* on_claimed runs: it claims again itself, if need be */
    int claim_again;       /* woken while a claim ran */
    int work_left;         /* the last claim may have left due deliveries behind */
    uint64_t claim_at;     /* the next claim by the clock, in loop milliseconds */
    uint64_t count_at;     /* the next refresh of the due gauge */
    uint64_t follow_up_at; /* a claim after the last wake; 0: none */
    struct db_job *count_job;
    int counting;
    int stopped;
    h2o_multithread_receiver_t wake;
    atomic_int wake_pending;
    struct item *record_head, **record_tail; /* attempts waiting for the next record job */
    struct item *batch[RECORD_BATCH];        /* those the record job running reports */
    unsigned nbatch;
    struct db_job *record_job;
    int recording;
};

static void claim(struct deliverer *d);

/* --- the response excerpt ----------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_sequence(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    /* C1 controls (U+0080 to U+009F) are control characters too. */
    if (cp >= 0x80 && cp <= 0x9f)
        return 0;
    return len;
}

/*
 * The first EXCERPT_BYTES of a response as text: valid UTF-8 without
 * control characters (each control character and each byte that is not
 * UTF-8 is dropped), so that a receiver cannot put terminal escapes or
 * invalid text into the database.  Written to out (EXCERPT_BYTES + 1).
 */
static void
excerpt(const char *body, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)body;
    size_t o = 0;

    for (size_t i = 0; i < len && o < EXCERPT_BYTES;) {
        size_t n = utf8_sequence(s + i, len - i);
        if (n == 0 || (n == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
            i++;
            continue;
        }
        if (o + n > EXCERPT_BYTES)
            break;
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
}

/* --- items ---------------------------------------------------------------------------- */

static void
item_free(struct item *it)
{
    h2o_linklist_unlink(&it->link);
    it->d->nitems--;
    json_decref(it->attempt);
    free(it->url);
    free(it->body);
    free(it->signature);
    free(it);
}

/* Whether enough slots are free for a claim worth its round trip: half a batch, or all when few. */
static int
room_for_claim(const struct deliverer *d)
{
    unsigned batch = shim.cfg->webhooks_batch < d->budget ? shim.cfg->webhooks_batch : d->budget;

    return d->nitems + (batch + 1) / 2 <= d->budget;
}

static void flush_records(struct deliverer *d);

/* The record job answered: its items' slots are free. */
static void
on_recorded(void *owner, const struct db_result *res)
{
    struct deliverer *d = owner;
    int rows = res->outcome == DB_OK ? PQntuples(res->res[0]) : 0;

    d->recording = 0;
    d->record_job = NULL;
    if (res->outcome != DB_OK)
        LOG_WARN("webhooks: could not record %u attempt(s) (%s); their leases will expire and they will be "
                 "delivered again",
                 d->nbatch, res->outcome == DB_ERROR ? res->sqlstate : "database unavailable");
    for (int i = 0; i < rows; i++)
        if (strcmp(PQgetvalue(res->res[0], i, 1), "stale") == 0)
            LOG_WARN("webhooks: delivery %s was claimed again before its attempt was recorded",
                     PQgetvalue(res->res[0], i, 0));
    for (unsigned i = 0; i < d->nbatch; i++)
        item_free(d->batch[i]);
    d->nbatch = 0;
    flush_records(d);
    if ((d->work_left || d->claim_again) && !d->in_claimed && room_for_claim(d))
        claim(d);
}

/* Starts a record job for the attempts queued, unless one runs. */
static void
flush_records(struct deliverer *d)
{
    json_t *all;
    char *text;
    struct db_stmt stmt = {RECORD_SQL, 1, {NULL}, 0};
    struct db_job *job;

    if (d->recording || d->record_head == NULL || (all = json_array()) == NULL)
        return;
    while (d->record_head != NULL && d->nbatch < RECORD_BATCH) {
        struct item *it = d->record_head;
        d->record_head = it->next_record;
        json_array_append(all, it->attempt);
        d->batch[d->nbatch++] = it;
    }
    if (d->record_head == NULL)
        d->record_tail = &d->record_head;
    text = json_dumps(all, JSON_COMPACT);
    json_decref(all);
    stmt.params[0] = text;
    d->recording = 1;
    /* Without text (out of memory) the job fails at once, and its leases expire. */
    job = text != NULL ? db_submit(d->t->db, &stmt, 1, on_recorded, d) : NULL;
    if (text == NULL)
        on_recorded(d, &(struct db_result){.outcome = DB_UNAVAILABLE});
    else if (job != NULL)
        d->record_job = job; /* on failure db_submit has already called on_recorded */
    free(text);
}

/* The transfer ended: queue its attempt for the next record job. */
static void
on_sent(void *owner, const struct http_out_result *res)
{
    struct item *it = owner;
    struct deliverer *d = it->d;
    const char *outcome;
    char *text = NULL;

    it->xfer = NULL;
    if (res->outcome == HTTP_OUT_RESPONSE)
        outcome = res->status >= 200 && res->status < 300 ? "delivered" : "http_status";
    else
        outcome = http_out_outcome_name(res->outcome);
    metrics_webhook_attempt(d->t->metrics, outcome, res->duration_ms);
    if (res->outcome == HTTP_OUT_REFUSED_ADDRESS)
        LOG_WARN("webhooks: delivery %s refused: %s", it->delivery_id, res->detail ? res->detail : "denied address");
    if (res->status > 0 && (text = malloc(EXCERPT_BYTES + 1)) != NULL)
        excerpt(res->body, res->body_len, text);
    it->attempt =
        json_pack("{s:s, s:s, s:s, s:o, s:I, s:o, s:o}", "delivery_id", it->delivery_id, "lease", it->lease, "outcome",
                  outcome, "http_status", res->status > 0 ? json_integer(res->status) : json_null(), "duration_ms",
                  (json_int_t)res->duration_ms, "response", text ? json_string(text) : json_null(), "retry_after_s",
                  res->retry_after_s >= 0 ? json_integer(res->retry_after_s) : json_null());
    free(text);
    if (it->attempt == NULL) {
        /* Not even recorded: the lease expires, and the delivery is made again. */
        item_free(it);
        return;
    }
    it->next_record = NULL;
    *d->record_tail = it;
    d->record_tail = &it->next_record;
    flush_records(d);
}

/* Starts the transfer of a claimed delivery. */
static void
item_send(struct item *it)
{
    char id[96], ts[64], *sig;
    size_t siglen = strlen(it->signature) + sizeof("webhook-signature: ");
    const char *headers[5];
    struct http_out_request req;
    struct http_out_xfer *xfer;

    if ((sig = malloc(siglen)) == NULL) {
        struct http_out_result res = {.outcome = HTTP_OUT_ERROR, .retry_after_s = -1, .detail = "out of memory"};
        on_sent(it, &res);
        return;
    }
    snprintf(id, sizeof(id), "webhook-id: %s", it->message_id);
    snprintf(ts, sizeof(ts), "webhook-timestamp: %s", it->timestamp);
    snprintf(sig, siglen, "webhook-signature: %s", it->signature);
    headers[0] = "Content-Type: application/json";
    headers[1] = id;
    headers[2] = ts;
    headers[3] = sig;
    headers[4] = NULL;
    req = (struct http_out_request){"POST", it->url, headers, it->body, strlen(it->body)};
    xfer = http_out_start(it->d->out, &req, on_sent, it);
    free(sig);
    if (xfer == NULL) {
        /* Recorded as an error of this attempt, and retried as the schedule says. */
        struct http_out_result res = {.outcome = HTTP_OUT_ERROR, .retry_after_s = -1, .detail = "cannot start"};
        on_sent(it, &res);
        return;
    }
    it->xfer = xfer;
}

/* --- claims ---------------------------------------------------------------------------- */

/*
 * The caller's in-flight count per endpoint, as the JSON object
 * webhook_claim takes; malloc'd.
 */
static char *
busy_json(struct deliverer *d)
{
    size_t cap = 3 + (size_t)d->nitems * 48, len = 0;
    char *out = malloc(cap);
    h2o_linklist_t *node;

    if (out == NULL)
        return NULL;
    out[len++] = '{';
    for (node = d->items.next; node != &d->items; node = node->next) {
        struct item *it = H2O_STRUCT_FROM_MEMBER(struct item, link, node), *first = NULL;
        unsigned n = 0;
        /* Each endpoint once: at its first item. */
        for (h2o_linklist_t *o = d->items.next; o != &d->items; o = o->next) {
            struct item *other = H2O_STRUCT_FROM_MEMBER(struct item, link, o);
            if (strcmp(other->endpoint_id, it->endpoint_id) == 0) {
                if (first == NULL)
                    first = other;
                n++;
            }
        }
        if (first == it)
            len += (size_t)snprintf(out + len, cap - len, "%s\"%s\":%u", len > 1 ? "," : "", it->endpoint_id, n);
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

static char *
dup_value(const PGresult *r, int row, int col)
{
    return strdup(PQgetvalue(r, row, col));
}

static void
on_claimed(void *owner, const struct db_result *res)
{
    struct deliverer *d = owner;
    uint64_t now = h2o_now(d->t->loop), wait = shim.cfg->webhooks_poll_ms;
    int rows = 0, asked = d->claiming;

    d->claiming = 0;
    d->claim_job = NULL;
    d->in_claimed = 1;
    if (res->outcome != DB_OK) {
        d->in_claimed = 0;
        if (res->outcome == DB_ERROR)
            LOG_WARN("webhooks: could not claim deliveries: SQLSTATE %s", res->sqlstate);
        d->claim_at = now + RETRY_CLAIM_MS;
        return;
    }
    rows = PQntuples(res->res[0]);
    for (int i = 0; i < rows; i++) {
        const PGresult *r = res->res[0];
        struct item *it = calloc(1, sizeof(*it));
        if (it == NULL)
            break; /* its lease expires: it is delivered again */
        it->d = d;
        snprintf(it->delivery_id, sizeof(it->delivery_id), "%s", PQgetvalue(r, i, 0));
        snprintf(it->endpoint_id, sizeof(it->endpoint_id), "%s", PQgetvalue(r, i, 1));
        snprintf(it->message_id, sizeof(it->message_id), "%s", PQgetvalue(r, i, 3));
        snprintf(it->timestamp, sizeof(it->timestamp), "%s", PQgetvalue(r, i, 5));
        snprintf(it->lease, sizeof(it->lease), "%s", PQgetvalue(r, i, 8));
        it->url = dup_value(r, i, 2);
        it->signature = dup_value(r, i, 6);
        it->body = dup_value(r, i, 7);
        h2o_linklist_insert(&d->items, &it->link);
        d->nitems++;
        if (it->url == NULL || it->signature == NULL || it->body == NULL) {
            struct http_out_result fail = {.outcome = HTTP_OUT_ERROR, .retry_after_s = -1, .detail = "out of memory"};
            on_sent(it, &fail);
            continue;
        }
        item_send(it);
    }
    /* A full batch may have left more behind; so may a shard whose next delivery is due now. */
    d->work_left = rows == asked;
    if (res->nres > 1 && !PQgetisnull(res->res[1], 0, 0)) {
        double due = strtod(PQgetvalue(res->res[1], 0, 0), NULL);
        if (due <= 0)
            d->work_left = 1;
        else if (due * 1000 < (double)wait)
            wait = (uint64_t)(due * 1000) + 1;
    }
    d->claim_at = now + wait;
    d->in_claimed = 0;
    if ((d->work_left || d->claim_again) && d->nitems < d->budget)
        claim(d);
}

/* Claims as many due deliveries as the budget allows, unless a claim runs. */
static void
claim(struct deliverer *d)
{
    char shard[16], shards[16], rows[16], per_endpoint[16], lease[16], *busy;
    unsigned room = d->budget > d->nitems ? d->budget - d->nitems : 0;
    struct db_stmt stmts[2] = {{CLAIM_SQL, 6, {NULL}, 1}, {NEXT_DUE_SQL, 2, {NULL}, 0}};
    struct db_job *job;

    if (d->claiming) {
        d->claim_again = 1;
        return;
    }
    d->claim_again = 0;
    if (d->stopped || room == 0)
        return;
    if (room > shim.cfg->webhooks_batch)
        room = shim.cfg->webhooks_batch;
    if ((busy = busy_json(d)) == NULL)
        return;
    snprintf(shard, sizeof(shard), "%u", d->shard);
    snprintf(shards, sizeof(shards), "%u", d->shards);
    snprintf(rows, sizeof(rows), "%u", room);
    snprintf(per_endpoint, sizeof(per_endpoint), "%u", shim.cfg->webhooks_max_in_flight_per_endpoint);
    snprintf(lease, sizeof(lease), "%u", shim.cfg->webhooks_lease_s);
    stmts[0].params[0] = stmts[1].params[0] = shard;
    stmts[0].params[1] = stmts[1].params[1] = shards;
    stmts[0].params[2] = rows;
    stmts[0].params[3] = per_endpoint;
    stmts[0].params[4] = busy;
    stmts[0].params[5] = lease;
    d->claiming = (int)room;
    d->work_left = 0;
    /* On failure db_submit has already called on_claimed. */
    job = db_submit(d->t->db, stmts, 2, on_claimed, d);
    if (job != NULL)
        d->claim_job = job;
    free(busy);
}

/* --- waking ------------------------------------------------------------------------------ */

static void
on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct deliverer *d = H2O_STRUCT_FROM_MEMBER(struct deliverer, wake, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    atomic_store(&d->wake_pending, 0);
    d->follow_up_at = h2o_now(d->t->loop) + FOLLOW_UP_MS;
    claim(d);
}

static pthread_mutex_t wakes_lock = PTHREAD_MUTEX_INITIALIZER;
static int wakes_on;

void
deliver_wakes(int on)
{
    pthread_mutex_lock(&wakes_lock);
    wakes_on = on;
    pthread_mutex_unlock(&wakes_lock);
}

void
deliver_wake_all(void)
{
    pthread_mutex_lock(&wakes_lock);
    for (unsigned i = 0; wakes_on && i < shim.nthreads; i++) {
        struct deliverer *d = shim.threads[i].deliverer;
        h2o_multithread_message_t *m;
        /* One message at a time is enough: the claim it causes sees everything due by then. */
        if (d == NULL || atomic_exchange(&d->wake_pending, 1))
            continue;
        if ((m = calloc(1, sizeof(*m))) == NULL) {
            atomic_store(&d->wake_pending, 0);
            continue;
        }
        h2o_multithread_send_message(&d->wake, m);
    }
    pthread_mutex_unlock(&wakes_lock);
}

/* --- life ------------------------------------------------------------------------------------ */

struct deliverer *
deliver_create(struct shim_thread *t)
{
    const struct config *cfg = shim.cfg;
    struct deliverer *d = calloc(1, sizeof(*d));
    struct http_out_settings s = {
        .ca_file = cfg->webhooks_ca_file,
        .connect_timeout_ms = cfg->webhooks_connect_timeout_ms,
        .total_timeout_ms = cfg->webhooks_timeout_ms,
        .low_speed_bytes = HTTP_OUT_LOW_SPEED_BYTES,
        .low_speed_time_s = HTTP_OUT_LOW_SPEED_TIME_S,
        .max_response_bytes = 65536,
        .user_agent = "actloom-webhooks/" ACTLOOM_VERSION,
        .allow = cfg->webhooks_allow,
        .nallow = cfg->nwebhooks_allow,
    };
    unsigned share;

    if (d == NULL)
        return NULL;
    if ((d->out = http_out_create(t->loop, &s)) == NULL) {
        free(d);
        return NULL;
    }
    d->t = t;
    d->shard = t->index;
    d->shards = shim.nthreads;
    /* webhooks.max_in_flight shared out, the first workers taking the remainder; each at least one. */
    share = cfg->webhooks_max_in_flight / shim.nthreads + (t->index < cfg->webhooks_max_in_flight % shim.nthreads);
    d->budget = share ? share : 1;
    h2o_linklist_init_anchor(&d->items);
    d->record_tail = &d->record_head;
    h2o_multithread_register_receiver(t->queue, &d->wake, on_wake);
    return d;
}

static void
on_counted(void *owner, const struct db_result *res)
{
    struct deliverer *d = owner;

    d->counting = 0;
    d->count_job = NULL;
    if (res->outcome == DB_OK && PQntuples(res->res[0]) == 1)
        metrics_webhook_due(d->t->metrics, strtoll(PQgetvalue(res->res[0], 0, 0), NULL, 10));
}

void
deliver_tick(struct deliverer *d, uint64_t now_ms)
{
    unsigned inflight = 0;

    if (d->follow_up_at != 0 && now_ms >= d->follow_up_at) {
        d->follow_up_at = 0;
        claim(d);
    } else if (!d->stopped && now_ms >= d->claim_at)
        claim(d);
    if (!d->stopped && !d->counting && now_ms >= d->count_at) {
        char shard[16], shards[16];
        struct db_stmt stmt = {DUE_COUNT_SQL, 2, {shard, shards}, 0};
        struct db_job *job;
        snprintf(shard, sizeof(shard), "%u", d->shard);
        snprintf(shards, sizeof(shards), "%u", d->shards);
        d->count_at = now_ms + DUE_GAUGE_MS;
        d->counting = 1;
        /* On failure db_submit has already called on_counted. */
        job = db_submit(d->t->db, &stmt, 1, on_counted, d);
        if (job != NULL)
            d->count_job = job;
    }
    for (h2o_linklist_t *n = d->items.next; n != &d->items; n = n->next)
        inflight += H2O_STRUCT_FROM_MEMBER(struct item, link, n)->xfer != NULL;
    metrics_webhook_in_flight(d->t->metrics, inflight);
}

void
deliver_stop(struct deliverer *d)
{
    d->stopped = 1;
}

unsigned
deliver_busy(const struct deliverer *d)
{
    return d->nitems + (d->claiming != 0) + d->counting;
}

void
deliver_destroy(struct deliverer *d)
{
    if (d == NULL)
        return;
    while (!h2o_linklist_is_empty(&d->items)) {
        struct item *it = H2O_STRUCT_FROM_MEMBER(struct item, link, d->items.next);
        if (it->xfer != NULL)
            http_out_cancel(it->xfer);
        item_free(it);
    }
    if (d->claim_job != NULL)
        db_detach(d->claim_job);
    if (d->count_job != NULL)
        db_detach(d->count_job);
    if (d->record_job != NULL)
        db_detach(d->record_job);
    http_out_destroy(d->out);
    /* No wake is sent any more (deliver_wakes): one still queued is dropped with the receiver. */
    while (!h2o_linklist_is_empty(&d->wake._messages)) {
        h2o_linklist_t *m = d->wake._messages.next;
        h2o_linklist_unlink(m);
        free(H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, m));
    }
    h2o_multithread_unregister_receiver(d->t->queue, &d->wake);
    free(d);
}
