/*
 * The IdP key refresher (idp_jwks.h): per jwks_uri, the last good key set
 * and when to fetch it next; merged snapshots swapped into the trust holder.
 *
 * Three threads meet here, all under one mutex that nobody holds across
 * anything slow: the refresher's timer thread (scheduled fetches), the
 * outbound thread (fetch completions: parse, merge, swap) and the workers
 * (tk_idp_jwks_kid_miss). Submitting to the outbound thread never waits, so
 * holding the mutex around it is fine; the outbound thread never holds its
 * own lock while calling us back, so the order is always jwks → outbound.
 *
 * A source (one issuer's jwks_uri) carries a generation: a completion for
 * an older generation (the entry changed or left at a SIGHUP meanwhile) is
 * dropped, so a late answer can never install keys for a URL no longer
 * configured.
 */
#include "idp_int.h"

#include "tokend/clock.h"
#include "tokend/idp_jwks.h"
#include "tokend/log.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct src {
    bool used;
    bool inflight;
    bool have; /* a good key set was fetched */
    uint64_t gen;
    char issuer[TK_IDP_ISS_MAX + 1];
    size_t issuer_len;
    char uri[TK_URL_MAX + 1];
    unsigned algs;
    uint64_t due_ms;  /* monotonic: the next scheduled fetch */
    uint64_t last_ms; /* monotonic: the latest fetch started; 0 = never */
    unsigned nkeys;
    tk_idp_key keys[TK_IDP_KEYS_MAX];
} src;

struct tk_idp_jwks {
    tk_idp_jwks_cfg cfg;
    tk_outbound *ob;
    tk_idp_holder *holder;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tk_idp_trust *base; /* the trust file's snapshot; NULL = none */
    src srcs[TK_IDP_MAX];
    uint64_t next_gen;
    bool stopping;
    bool started;
    pthread_t thread;
};

_Static_assert(TK_IDP_MAX <= 256, "a source index fits the cookie's low byte");

/* ---- Sources ---------------------------------------------------------------------------- */

static void drop_keys(src *s)
{
    for (unsigned k = 0; k < s->nkeys; k++) {
        EVP_PKEY_free(s->keys[k].pkey);
    }
    memset(s->keys, 0, sizeof s->keys);
    s->nkeys = 0;
    s->have = false;
}

static src *find_src(tk_idp_jwks *j, tk_slice iss)
{
    for (unsigned i = 0; i < TK_IDP_MAX; i++) {
        src *s = &j->srcs[i];
        if (s->used && s->issuer_len == iss.len && memcmp(s->issuer, iss.p, iss.len) == 0) {
            return s;
        }
    }
    return NULL;
}

static uint64_t retry_ms(const tk_idp_jwks *j)
{
    int64_t s = j->cfg.refresh_min_s < 60 ? j->cfg.refresh_min_s : 60;
    return (uint64_t)s * 1000u;
}

/* ---- Snapshots ----------------------------------------------------------------------------- */

static bool has_kid(const tk_idp_issuer *is, const tk_idp_key *k)
{
    for (unsigned i = 0; k->kid_len > 0 && i < is->nkeys; i++) {
        if (is->keys[i].kid_len == k->kid_len && !memcmp(is->keys[i].kid, k->kid, k->kid_len)) {
            return true;
        }
    }
    return false;
}

/* The base issuer is, followed by its source's fetched keys. */
static void merge_issuer(tk_idp_issuer *dst, const tk_idp_issuer *is, const src *s)
{
    memcpy(dst, is, sizeof *dst);
    for (unsigned k = 0; k < dst->nkeys; k++) {
        EVP_PKEY_up_ref(dst->keys[k].pkey);
    }
    if (dst->client_key != NULL) { /* private_key_jwt: freed with either snapshot */
        EVP_PKEY_up_ref(dst->client_key);
    }
    unsigned dropped = 0;
    for (unsigned k = 0; s != NULL && k < s->nkeys; k++) {
        if (has_kid(dst, &s->keys[k])) {
            continue; /* the file's key of that kid wins */
        }
        if (dst->nkeys >= TK_IDP_KEYS_MAX) {
            dropped++;
            continue;
        }
        dst->keys[dst->nkeys] = s->keys[k];
        EVP_PKEY_up_ref(s->keys[k].pkey);
        dst->nkeys++;
    }
    if (dropped > 0) {
        tk_log_warn("jwks_keys_dropped", "iss=\"%s\" dropped=%u max=%d", is->issuer, dropped,
                    TK_IDP_KEYS_MAX);
    }
}

/* Build the merged snapshot and swap it in. Under mu. */
static void publish(tk_idp_jwks *j)
{
    if (j->base == NULL) {
        tk_idp_holder_swap(j->holder, NULL);
        return;
    }
    tk_idp_trust *t = tk_idp_trust_alloc();
    if (t == NULL) {
        tk_log_error("jwks_publish", "err=%s note=\"snapshot in use kept\"", tk_strerror(-ENOMEM));
        return;
    }
    for (unsigned i = 0; i < j->base->n; i++) {
        const tk_idp_issuer *is = &j->base->issuers[i];
        const src *s =
            is->jwks_uri_len > 0 ? find_src(j, (tk_slice){is->issuer, is->issuer_len}) : NULL;
        merge_issuer(&t->issuers[i], is, s != NULL && s->have ? s : NULL);
        t->n++;
    }
    tk_idp_holder_swap(j->holder, t);
}

/* ---- Fetching ------------------------------------------------------------------------------- */

static void on_fetched(void *arg, const tk_outbound_resp *resp);

/* Start a fetch of s. Under mu. True when submitted. */
static bool fetch(tk_idp_jwks *j, src *s, uint64_t now, const char *why)
{
    uint64_t idx = (uint64_t)(s - j->srcs);
    tk_outbound_req r = {
        .purpose = TK_OB_JWKS,
        .method = TK_OB_GET,
        .url = s->uri,
        .accept = "application/jwk-set+json, application/json",
        .max_bytes = TK_IDP_FILE_MAX,
        .cookie = idx | s->gen << 8,
        .cb = on_fetched,
        .cb_arg = j,
    };
    s->last_ms = now;
    int rc = tk_outbound_submit(j->ob, &r);
    if (rc != 0) {
        s->due_ms = now + retry_ms(j);
        tk_log_warn("jwks_fetch_not_started", "iss=\"%s\" why=%s err=%s", s->issuer, why,
                    tk_strerror(rc));
        return false;
    }
    s->inflight = true;
    tk_log_info("jwks_fetch", "iss=\"%s\" why=%s", s->issuer, why);
    return true;
}

/* Parse a fetched key set into tmp (keys pinned to algs). Outside the
 * mutex: JSON and key import take a while, and workers may be waiting. */
static int parse_keys(const char *uri, unsigned algs, const tk_outbound_resp *resp,
                      tk_idp_issuer *tmp, char *err, size_t errcap)
{
    tk_jcfg l;
    int rc = tk_jcfg_init(&l, uri, err, errcap);
    json_error_t jerr;
    json_t *root =
        rc == 0 ? json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (rc == 0 && root == NULL) {
        rc = tk_jcfg_fail(&l, TK_E_BADINPUT, "not JSON: %.80s", jerr.text);
    }
    rc = rc != 0 ? rc : tk_idp_add_jwks(&l, tmp, root, algs);
    if (rc == 0 && tmp->nkeys == 0) {
        rc = tk_jcfg_fail(&l, TK_E_BADINPUT, "no key we can use");
    }
    json_decref(root);
    return rc;
}

static uint64_t next_refresh_ms(const tk_idp_jwks *j, const tk_outbound_resp *resp)
{
    int64_t age = j->cfg.refresh_min_s;
    if (tk_outbound_max_age(tk_outbound_header(resp, "cache-control"), &age) != 0) {
        age = j->cfg.refresh_min_s;
    }
    age = age < j->cfg.refresh_min_s ? j->cfg.refresh_min_s : age;
    age = age > j->cfg.refresh_max_s ? j->cfg.refresh_max_s : age;
    return (uint64_t)age * 1000u;
}

/* A good fetch: the new set replaces the old one, and a snapshot is
 * published. Under mu. */
static void install(tk_idp_jwks *j, src *s, tk_idp_issuer *tmp, const tk_outbound_resp *resp)
{
    drop_keys(s);
    memcpy(s->keys, tmp->keys, sizeof s->keys); /* the references move */
    s->nkeys = tmp->nkeys;
    s->have = true;
    uint64_t next = next_refresh_ms(j, resp);
    s->due_ms = tk_mono_ms() + next;
    tk_log_info("jwks_fetched", "iss=\"%s\" keys=%u next_s=%llu", s->issuer, s->nkeys,
                (unsigned long long)(next / 1000));
    publish(j);
}

/* The source a completion belongs to, or NULL when it is stale (the entry
 * changed or left at a SIGHUP meanwhile, or tokend is stopping). Under mu. */
static src *current(tk_idp_jwks *j, uint64_t cookie)
{
    unsigned idx = (unsigned)(cookie & 0xff);
    TK_ASSERT(idx < TK_IDP_MAX);
    src *s = &j->srcs[idx];
    return s->used && s->gen == cookie >> 8 && !j->stopping ? s : NULL;
}

static void free_tmp(tk_idp_issuer *tmp)
{
    for (unsigned k = 0; tmp != NULL && k < tmp->nkeys; k++) {
        EVP_PKEY_free(tmp->keys[k].pkey);
    }
    free(tmp);
}

/* On the outbound thread: parse outside the mutex, then install (or keep
 * the old set) under it, if the source is still the one fetched. */
static void on_fetched(void *arg, const tk_outbound_resp *resp)
{
    tk_idp_jwks *j = arg;
    char uri[TK_URL_MAX + 1], err[256] = "";
    unsigned algs = 0;
    pthread_mutex_lock(&j->mu);
    src *s = current(j, resp->cookie);
    if (s != NULL) {
        memcpy(uri, s->uri, sizeof uri);
        algs = s->algs;
    }
    pthread_mutex_unlock(&j->mu);
    if (s == NULL) {
        return;
    }
    tk_idp_issuer *tmp = resp->result == TK_OB_OK ? calloc(1, sizeof *tmp) : NULL;
    int rc = resp->result != TK_OB_OK ? TK_E_STORE : tmp == NULL ? -ENOMEM : 0;
    rc = rc != 0 ? rc : parse_keys(uri, algs, resp, tmp, err, sizeof err);
    for (size_t i = 0; err[i] != '\0'; i++) { /* a quoted log value: no '"' inside */
        err[i] = err[i] == '"' ? '\'' : err[i];
    }
    pthread_mutex_lock(&j->mu);
    s = current(j, resp->cookie);
    if (s != NULL && rc == 0) {
        s->inflight = false;
        install(j, s, tmp, resp); /* the key references move to s */
        tmp->nkeys = 0;
    } else if (s != NULL) {
        s->inflight = false;
        s->due_ms = tk_mono_ms() + retry_ms(j);
        tk_log_warn("jwks_fetch_failed",
                    "iss=\"%s\" result=%s status=%d why=\"%s\" keeping=%u retry_s=%llu", s->issuer,
                    tk_outbound_result_name(resp->result), resp->status,
                    resp->result != TK_OB_OK ? resp->error
                    : rc == -ENOMEM          ? "out of memory"
                                             : err,
                    s->nkeys, (unsigned long long)(retry_ms(j) / 1000));
    }
    pthread_cond_signal(&j->cv); /* the timer's next due time moved */
    pthread_mutex_unlock(&j->mu);
    free_tmp(tmp);
}

/* ---- Timer thread ---------------------------------------------------------------------------- */

static void *timer_main(void *arg)
{
    tk_idp_jwks *j = arg;
    pthread_mutex_lock(&j->mu);
    /* Event loop: until tk_idp_jwks_stop. */
    while (!j->stopping) {
        uint64_t now = tk_mono_ms(), next = now + 60000;
        for (unsigned i = 0; i < TK_IDP_MAX; i++) {
            src *s = &j->srcs[i];
            if (s->used && !s->inflight && now >= s->due_ms) {
                fetch(j, s, now, s->have ? "refresh" : "start");
            }
            if (s->used && !s->inflight && s->due_ms < next) {
                next = s->due_ms;
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t wait = next > now ? next - now : 0;
        until.tv_sec += (time_t)(wait / 1000);
        until.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &until);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- Public API --------------------------------------------------------------------------------
 */

int tk_idp_jwks_start(const tk_idp_jwks_cfg *cfg, tk_outbound *ob, tk_idp_holder *holder,
                      tk_idp_jwks **out)
{
    tk_idp_jwks_cfg c = *cfg;
    c.refresh_min_s = c.refresh_min_s != 0 ? c.refresh_min_s : TK_JWKS_REFRESH_MIN_DEFAULT;
    c.refresh_max_s = c.refresh_max_s != 0 ? c.refresh_max_s : TK_JWKS_REFRESH_MAX_DEFAULT;
    c.kid_interval_s = c.kid_interval_s != 0 ? c.kid_interval_s : TK_JWKS_KID_INTERVAL_DEFAULT;
    if (c.refresh_min_s < 1 || c.refresh_min_s > c.refresh_max_s ||
        c.refresh_max_s > TK_JWKS_REFRESH_CEILING || c.kid_interval_s < 1 ||
        c.kid_interval_s > TK_JWKS_KID_INTERVAL_MAX || ob == NULL || holder == NULL) {
        return -EINVAL;
    }
    tk_idp_jwks *j = calloc(1, sizeof *j);
    if (j == NULL) {
        return -ENOMEM;
    }
    j->cfg = c;
    j->ob = ob;
    j->holder = holder;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = -pthread_create(&j->thread, NULL, timer_main, j);
    if (rc != 0) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        free(j);
        return rc;
    }
    j->started = true;
    *out = j;
    return 0;
}

/* Match the sources to the base's jwks_uri entries. Under mu. */
static void reconcile(tk_idp_jwks *j, uint64_t now)
{
    bool keep[TK_IDP_MAX] = {false};
    for (unsigned i = 0; j->base != NULL && i < j->base->n; i++) {
        const tk_idp_issuer *is = &j->base->issuers[i];
        if (is->jwks_uri_len == 0) {
            continue;
        }
        src *s = find_src(j, (tk_slice){is->issuer, is->issuer_len});
        if (s != NULL && strcmp(s->uri, is->jwks_uri) == 0 && s->algs == is->algs) {
            keep[s - j->srcs] = true; /* unchanged: its keys and schedule stay */
            continue;
        }
        for (unsigned k = 0; s == NULL && k < TK_IDP_MAX; k++) {
            s = !j->srcs[k].used && !keep[k] ? &j->srcs[k] : NULL;
        }
        TK_ASSERT(s != NULL); /* at most TK_IDP_MAX issuers, each once */
        drop_keys(s);
        s->used = true;
        s->inflight = false;
        s->gen = ++j->next_gen; /* an answer for the old entry is now stale */
        memcpy(s->issuer, is->issuer, is->issuer_len + 1);
        s->issuer_len = is->issuer_len;
        memcpy(s->uri, is->jwks_uri, is->jwks_uri_len + 1);
        s->algs = is->algs;
        s->due_ms = now; /* fetched at once */
        s->last_ms = 0;
        keep[s - j->srcs] = true;
    }
    for (unsigned k = 0; k < TK_IDP_MAX; k++) {
        if (j->srcs[k].used && !keep[k]) {
            drop_keys(&j->srcs[k]);
            memset(&j->srcs[k], 0, sizeof j->srcs[k]);
        }
    }
}

void tk_idp_jwks_set_base(tk_idp_jwks *j, tk_idp_trust *base)
{
    pthread_mutex_lock(&j->mu);
    tk_idp_trust *old = j->base;
    j->base = base;
    reconcile(j, tk_mono_ms());
    publish(j);
    pthread_cond_signal(&j->cv); /* the timer starts the new fetches */
    pthread_mutex_unlock(&j->mu);
    tk_idp_unref(old);
}

bool tk_idp_jwks_kid_miss(tk_idp_jwks *j, tk_slice iss)
{
    if (j == NULL) {
        return false;
    }
    bool started = false;
    pthread_mutex_lock(&j->mu);
    src *s = j->stopping ? NULL : find_src(j, iss);
    uint64_t now = tk_mono_ms();
    uint64_t interval = (uint64_t)j->cfg.kid_interval_s * 1000u;
    if (s != NULL && !s->inflight && (s->last_ms == 0 || now - s->last_ms >= interval)) {
        started = fetch(j, s, now, "unknown_kid");
    } else if (s != NULL) {
        tk_log_debug("jwks_kid_miss_limited", "iss=\"%s\" inflight=%s", s->issuer,
                     s->inflight ? "yes" : "no");
    }
    pthread_mutex_unlock(&j->mu);
    return started;
}

void tk_idp_jwks_stop(tk_idp_jwks *j)
{
    if (j == NULL || !j->started) {
        return;
    }
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    j->started = false;
}

void tk_idp_jwks_free(tk_idp_jwks *j)
{
    if (j == NULL) {
        return;
    }
    tk_idp_jwks_stop(j);
    for (unsigned i = 0; i < TK_IDP_MAX; i++) {
        drop_keys(&j->srcs[i]);
    }
    tk_idp_unref(j->base);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}
