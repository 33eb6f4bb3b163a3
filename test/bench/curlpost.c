/*
 * curlpost.c: the baseline of "make bench ONLY=webhooks": a plain libcurl
 * multi client posting the same body N times to one URL, at most C at once,
 * with the headers a webhook carries (signatures made up), reusing
 * connections.  Prints the requests per second that got a 2xx.
 *
 *   curlpost URL CONCURRENCY N BODYFILE
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t
discard(char *ptr, size_t size, size_t n, void *data)
{
    (void)ptr;
    (void)data;
    return size * n;
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    static char body[1 << 20];
    struct curl_slist *headers = NULL;
    long started = 0, done = 0, ok = 0, total, concurrency;
    size_t len;
    CURLM *multi;
    FILE *f;
    double t0;

    if (argc != 5 || (f = fopen(argv[4], "rb")) == NULL) {
        fprintf(stderr, "usage: curlpost URL CONCURRENCY N BODYFILE\n");
        return 2;
    }
    len = fread(body, 1, sizeof(body) - 1, f);
    fclose(f);
    concurrency = atol(argv[2]);
    total = atol(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "webhook-id: msg_2Kbd0vF0ejtFz2e0i1KHgL");
    headers = curl_slist_append(headers, "webhook-timestamp: 1614265330");
    headers = curl_slist_append(headers, "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, concurrency);
    t0 = now();
    while (done < total) {
        int running, queued;
        CURLMsg *m;
        while (started < total && started - done < concurrency) {
            CURL *e = curl_easy_init();
            curl_easy_setopt(e, CURLOPT_URL, argv[1]);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(e, CURLOPT_PROXY, "");
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            curl_multi_add_handle(multi, e);
            started++;
        }
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &queued)) != NULL) {
            long status = 0;
            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            ok += m->data.result == CURLE_OK && status >= 200 && status < 300;
            curl_multi_remove_handle(multi, m->easy_handle);
            curl_easy_cleanup(m->easy_handle);
            done++;
        }
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    printf("%.1f\n", ok / (now() - t0));
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return ok == total ? 0 : 1;
}
