/* Unit tests of config.c. */
#include <string.h>
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
    CHECK(load("trusted_proxies: [nonsense]\n", &cfg, err, sizeof(err)) == -1, "bad proxy refused");
    config_free(&cfg);
    CHECK(load("a: [\n", &cfg, err, sizeof(err)) == -1, "invalid YAML refused");
    config_free(&cfg);
    return unit_done();
}
