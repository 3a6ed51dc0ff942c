/*
 * Configuration: defaults, then a config file (--config FILE), then
 * command-line flags, each overriding the one before.
 *
 * File format: one "key = value" per line; '#' starts a comment; keys are the
 * long flag names without "--" (listen, workers, data, map-size, issuer,
 * access-ttl, refresh-ttl, session-ttl, max-depth, max-conns, idle-timeout,
 * header-timeout, body-timeout, max-body, commit-queue, log-level, pin-cpus,
 * resources, idp-config, auth-fail-burst, map-size-max).
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
    char idp_config[PATH_MAX]; /* IdP trust file (idp.h); empty = no IdP events */
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

#endif
