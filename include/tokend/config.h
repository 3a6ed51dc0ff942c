/*
 * Configuration: defaults, then a config file (--config FILE), then
 * command-line flags, each overriding the one before.
 *
 * File format: one "key = value" per line; '#' starts a comment; keys are the
 * long flag names without "--" (listen, workers, data, map-size, issuer,
 * access-ttl, refresh-ttl, session-ttl, max-depth, max-conns, idle-timeout,
 * header-timeout, body-timeout, max-body, commit-queue, log-level, pin-cpus,
 * resources, idp-config, auth-fail-burst, map-size-max, metrics-listen,
 * metrics-token, signing-key-overlap).
 *
 * tokend's signing keys live in DATA/keys (keys.h). A key retired by
 * `tokenctl keys rotate` stays in /jwks.json for max(access-ttl,
 * signing-key-overlap) seconds after tokend last signed with it.
 *
 * /metrics is served only on its own listener (metrics-listen ADDR:PORT or
 * "off"), by default 127.0.0.1 on the port after the main one (an ephemeral
 * port when the main one is 0), so it is reachable from the host alone; with
 * metrics-token set it also requires "Authorization: Bearer <token>".
 */
#ifndef TOKEND_CONFIG_H
#define TOKEND_CONFIG_H

#include "tokend/common.h"
#include "tokend/limits.h"
#include <limits.h>

typedef struct tk_config {
    char host[64];
    uint16_t port;
    unsigned workers; /* 0 = one per online CPU */
    char data_dir[PATH_MAX];
    uint64_t map_size;
    char issuer[TK_URL_MAX];
    int64_t access_ttl, refresh_ttl, session_ttl; /* seconds */
    int64_t signing_key_overlap; /* seconds a retired signing key stays published */
    unsigned max_depth;
    unsigned max_conns;
    unsigned idle_timeout_ms, header_timeout_ms, body_timeout_ms;
    size_t max_body;
    unsigned commit_queue;
    unsigned auth_fail_burst; /* failed authentications per address/client id; 0 = no limit */
    uint64_t map_size_max;    /* the committer grows a full map up to this; 0 = never */
    int log_level;
    bool pin_cpus;
    char resources_file[PATH_MAX]; /* protected resources (JSON; resources.h); "" = none */
    char idp_config[PATH_MAX];     /* IdP trust file (idp.h); empty = no IdP events */
    char metrics_host[64];         /* metrics listener address; "" = off */
    int32_t metrics_port;          /* -1: the main port + 1 (see tk_config_metrics_port) */
    char metrics_token[TK_METRICS_TOKEN_MAX + 1]; /* "" = no bearer required */
} tk_config;

void tk_config_defaults(tk_config *cfg);

/* Apply "key = value" lines from path. Returns 0, -errno, or TK_E_BADINPUT
 * with a message naming file, line and key in err (errcap bytes). */
int tk_config_load_file(tk_config *cfg, const char *path, char *err, size_t errcap);

/* Set one key from a string (shared by file and flags). */
int tk_config_set(tk_config *cfg, const char *key, const char *value, char *err, size_t errcap);

/* Check relations between values (ranges, issuer is an http(s) URL without
 * query or fragment). Returns 0 or TK_E_INVALID with a message. */
int tk_config_validate(const tk_config *cfg, char *err, size_t errcap);

/* The port the metrics listener binds: metrics-listen's, or by default the
 * main port + 1 (0, i.e. ephemeral, when the main port is 0). Only
 * meaningful when cfg->metrics_host is not empty and cfg validated. */
uint16_t tk_config_metrics_port(const tk_config *cfg);

#endif
