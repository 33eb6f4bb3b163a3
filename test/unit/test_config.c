/* Unit tests of config.c. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static int
load(const char *yaml, struct config *cfg, char *err, size_t errlen)
{
    char path[] = "/tmp/actloom-config-XXXXXX";
    int fd = mkstemp(path), rc;

    if (fd < 0 || write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml))
        return -2;
    close(fd);
    config_defaults(cfg);
    rc = config_load(cfg, path, err, errlen);
    unlink(path);
    return rc;
}

int
main(void)
{
    struct config cfg;
    char err[512];

    CHECK(load("", &cfg, err, sizeof(err)) == 0 && cfg.listen_port == 8080 && cfg.db_pool_size == 4 &&
              cfg.db_hash_pool_size == 1 && cfg.refusal_delay_ms == 1000 && cfg.refusals_held_max == 1024 &&
              config_class(&cfg, "login") != NULL && config_class(&cfg, "api") != NULL,
          "an empty file gives the defaults");
    config_free(&cfg);
    CHECK(load("listen:\n  address: 0.0.0.0\n  port: 9000\nthreads: 2\ndatabase:\n  conninfo: \"host=/tmp\"\n"
               "  pool_size: 8\n  hash_pool_size: 3\nlimits:\n  body_bytes: 4096\n  json_depth: 5\n"
               "trusted_proxies: [10.0.0.0/8, \"::1\"]\nrate_limits:\n  refusal_delay_ms: 0\n"
               "  refusals_held_max: 7\n  classes:\n    api: {limit: 5, period: 1, burst: 2, key: [api_key]}\n"
               "    custom: {limit: 3, period: 60, burst: 1, key: [address, user]}\n",
               &cfg, err, sizeof(err)) == 0,
          "a full file loads");
    CHECK(strcmp(cfg.listen_address, "0.0.0.0") == 0 && cfg.listen_port == 9000 && cfg.threads == 2 &&
              cfg.db_pool_size == 8 && cfg.db_hash_pool_size == 3 && cfg.body_bytes == 4096 && cfg.json_depth == 5 &&
              cfg.nproxies == 2 && cfg.refusal_delay_ms == 0 && cfg.refusals_held_max == 7,
          "settings are read");
    CHECK(config_class(&cfg, "api")->limit == 5 && config_class(&cfg, "custom")->keys == (RL_KEY_ADDRESS | RL_KEY_USER),
          "classes are overridden and added");
    config_free(&cfg);
    CHECK(load("listen:\n  prot: 1\n", &cfg, err, sizeof(err)) == -1 && strstr(err, "listen.prot") != NULL,
          "unknown settings are errors");
    config_free(&cfg);
    CHECK(load("listen:\n  port: 70000\n", &cfg, err, sizeof(err)) == -1 && strstr(err, ":2:") != NULL,
          "out of range numbers are errors with a line");
    config_free(&cfg);
    CHECK(load("tls:\n  certificate: /x\n", &cfg, err, sizeof(err)) == -1, "certificate without key refused");
    config_free(&cfg);
    CHECK(load("rate_limits:\n  classes:\n    x: {limit: 1, burst: 2}\n", &cfg, err, sizeof(err)) == -1,
          "burst above limit refused");
    config_free(&cfg);
    CHECK(load("database:\n  hash_pool_size: 0\n", &cfg, err, sizeof(err)) == -1, "no hashing connection refused");
    config_free(&cfg);
    CHECK(load("limits: {request_timeout_ms: 500}\nrate_limits: {refusal_delay_ms: 600}", &cfg, err, sizeof(err)) ==
                  -1 &&
              strstr(err, "refusal_delay_ms") != NULL,
          "a refusal delay beyond the request timeout refused");
    config_free(&cfg);
    CHECK(load("limits: {connections: 64}\n", &cfg, err, sizeof(err)) == 0 && cfg.connections == 64,
          "limits.connections is read");
    config_free(&cfg);
    CHECK(load("", &cfg, err, sizeof(err)) == 0 && cfg.connections == 1024, "limits.connections defaults to 1024");
    config_free(&cfg);
    CHECK(load("limits: {connections: 0}\n", &cfg, err, sizeof(err)) == -1 && strstr(err, "limits.connections") != NULL,
          "no connection at all refused");
    config_free(&cfg);
    CHECK(load("", &cfg, err, sizeof(err)) == 0 && config_class(&cfg, "api_address")->keys == RL_KEY_ADDRESS &&
              config_class(&cfg, "api_address")->limit == 6000 &&
              config_class(&cfg, "api_auth_failed")->keys == RL_KEY_ADDRESS &&
              config_class(&cfg, "api_auth_failed")->limit == 10 && cfg.verified_ttl_s == 60,
          "the classes before a key is proved, keyed on the address, and the verified keys' TTL");
    config_free(&cfg);
    CHECK(load("rate_limits:\n  classes:\n    api_address: {key: [api_key]}\n", &cfg, err, sizeof(err)) == -1 &&
              strstr(err, "\"api_address\" is keyed on address only") != NULL,
          "api_address keyed on the key id refused");
    config_free(&cfg);
    CHECK(load("rate_limits:\n  classes:\n    api_auth_failed: {key: [address, account]}\n", &cfg, err, sizeof(err)) ==
                  -1 &&
              strstr(err, "\"api_auth_failed\" is keyed on address only") != NULL,
          "api_auth_failed keyed on anything but the address refused");
    config_free(&cfg);
    CHECK(load("rate_limits:\n  classes:\n    api_auth_failed: {limit: 3, period: 600, burst: 2}\n"
               "api_keys: {verified_ttl_s: 0}\n",
               &cfg, err, sizeof(err)) == 0 &&
              config_class(&cfg, "api_auth_failed")->limit == 3 && cfg.verified_ttl_s == 0,
          "their numbers may change; verified keys may be forgotten at once");
    config_free(&cfg);
    CHECK(load("api_keys: {verified_ttl_s: 3601}\n", &cfg, err, sizeof(err)) == -1 &&
              strstr(err, "api_keys.verified_ttl_s") != NULL,
          "a TTL over an hour refused");
    config_free(&cfg);
    CHECK(load("", &cfg, err, sizeof(err)) == 0 && cfg.webhooks_deliver == 0 && cfg.webhooks_max_in_flight == 64 &&
              cfg.webhooks_max_in_flight_per_endpoint == 4 && cfg.webhooks_batch == 32 && cfg.webhooks_lease_s == 60 &&
              cfg.webhooks_poll_ms == 5000 && cfg.webhooks_connect_timeout_ms == 5000 &&
              cfg.webhooks_timeout_ms == 15000 && cfg.webhooks_ca_file == NULL && cfg.nwebhooks_allow == 0,
          "webhooks: the defaults, delivering off, no network allowed");
    config_free(&cfg);
    CHECK(load("webhooks:\n  deliver: true\n  max_in_flight: 8\n  max_in_flight_per_endpoint: 2\n  batch: 5\n"
               "  lease_s: 3\n  poll_ms: 200\n  connect_timeout_ms: 300\n  timeout_ms: 1000\n"
               "  ca_file: /dev/null\n  allow_networks: [127.0.0.0/8, \"::1\", 10.1.0.0/16]\n",
               &cfg, err, sizeof(err)) == 0 &&
              cfg.webhooks_deliver == 1 && cfg.webhooks_max_in_flight == 8 &&
              cfg.webhooks_max_in_flight_per_endpoint == 2 && cfg.webhooks_batch == 5 && cfg.webhooks_lease_s == 3 &&
              cfg.webhooks_poll_ms == 200 && cfg.webhooks_connect_timeout_ms == 300 &&
              cfg.webhooks_timeout_ms == 1000 && strcmp(cfg.webhooks_ca_file, "/dev/null") == 0 &&
              cfg.nwebhooks_allow == 3 && cfg.webhooks_allow[0].family == AF_INET &&
              cfg.webhooks_allow[0].prefix == 8 && cfg.webhooks_allow[1].family == AF_INET6 &&
              cfg.webhooks_allow[1].prefix == 128 && cfg.webhooks_allow[2].prefix == 16,
          "webhooks: every setting is read");
    config_free(&cfg);
    {
        /* Each refusal names the file's line and the setting. */
        static const struct {
            const char *yaml, *line, *says;
        } bad[] = {
            {"webhooks:\n  deliver: yes\n", ":2:", "\"webhooks.deliver\" must be true or false"},
            {"webhooks:\n  max_in_flight: 0\n", ":2:", "\"webhooks.max_in_flight\" must be a whole number from 1"},
            {"webhooks:\n  max_in_flight: 10001\n", ":2:", "webhooks.max_in_flight"},
            {"webhooks:\n  max_in_flight_per_endpoint: 0\n", ":2:", "webhooks.max_in_flight_per_endpoint"},
            {"webhooks:\n  batch: 1001\n", ":2:", "webhooks.batch"},
            {"webhooks:\n  lease_s: 0\n", ":2:", "webhooks.lease_s"},
            {"webhooks:\n  poll_ms: 9\n", ":2:", "webhooks.poll_ms"},
            {"webhooks:\n  connect_timeout_ms: 99\n", ":2:", "webhooks.connect_timeout_ms"},
            {"webhooks:\n  timeout_ms: 300001\n", ":2:", "webhooks.timeout_ms"},
            {"webhooks:\n  timeout_ms: -1\n", ":2:", "webhooks.timeout_ms"},
            {"webhooks:\n  ca_file: /nonexistent/ca.pem\n", ":2:", "\"webhooks.ca_file\": could not open"},
            {"webhooks:\n  ca_file: [a]\n", ":2:", "\"webhooks.ca_file\" must be a string"},
            {"webhooks:\n  allow_networks: 127.0.0.1\n", ":2:", "\"webhooks.allow_networks\" must be a list"},
            {"webhooks:\n  allow_networks:\n    - 127.0.0.1\n    - localhost\n",
             ":4:", "\"webhooks.allow_networks\": \"localhost\" is not an address or CIDR"},
            {"webhooks:\n  allow_networks: [10.0.0.0/33]\n", ":2:", "\"10.0.0.0/33\" is not an address or CIDR"},
            {"webhooks:\n  delivr: true\n", ":2:", "unknown setting \"webhooks.delivr\""},
            {"webhooks: true\n", ":1:", "\"webhooks\" must be a mapping"},
            {"webhooks:\n  max_in_flight: 4\n  max_in_flight_per_endpoint: 5\n", "",
             "exceeds \"webhooks.max_in_flight\""},
            {"webhooks:\n  connect_timeout_ms: 2000\n  timeout_ms: 1000\n", "", "exceeds \"webhooks.timeout_ms\""},
            {"webhooks:\n  lease_s: 15\n", "", "\"webhooks.lease_s\" must be longer than \"webhooks.timeout_ms\""},
        };
        char name[256];
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(name, sizeof(name), "webhooks refused: %s", bad[i].says);
            CHECK(load(bad[i].yaml, &cfg, err, sizeof(err)) == -1 && strstr(err, bad[i].line) != NULL &&
                      strstr(err, bad[i].says) != NULL,
                  name);
            if (strstr(err, bad[i].says) == NULL)
                printf("# %s\n", err);
            config_free(&cfg);
        }
    }
    {
        char yaml[8192] = "webhooks:\n  allow_networks:\n";
        for (int i = 0; i <= CONFIG_MAX_ALLOW_NETWORKS; i++)
            snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml), "    - 10.0.%d.0/24\n", i);
        CHECK(load(yaml, &cfg, err, sizeof(err)) == -1 && strstr(err, "at most 64 networks") != NULL,
              "webhooks: too many allowed networks refused");
        config_free(&cfg);
    }
    CHECK(load("webhooks: {lease_s: 16, timeout_ms: 15000, allow_networks: []}\n", &cfg, err, sizeof(err)) == 0 &&
              cfg.nwebhooks_allow == 0,
          "webhooks: a lease just longer than the timeout, an empty allow list");
    config_free(&cfg);
    CHECK(load("trusted_proxies: [nonsense]\n", &cfg, err, sizeof(err)) == -1, "bad proxy refused");
    config_free(&cfg);
    CHECK(load("a: [\n", &cfg, err, sizeof(err)) == -1, "invalid YAML refused");
    config_free(&cfg);
    return unit_done();
}
