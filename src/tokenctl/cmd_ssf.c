/*
 * tokenctl ssf receiver add | list | remove: the receivers tokend pushes
 * security events to (SSF transmitter, include/tokend/ssf.h). They live in
 * the store (ssf DBI), so a change made by tokenctl queues its events for
 * them exactly as one made by tokend, and a running tokend picks up a new
 * receiver at its next queue scan. The bearer credential is read from a
 * file (never from the command line, where ps shows it) and never printed.
 */
#include "ctl.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"

#include <stdio.h>
#include <string.h>

/* "a,b,c" of kind names → the TK_SSF_BIT set. */
static int parse_events(const ctl *c, const char *s, uint8_t *want)
{
    *want = 0;
    const char *p = s;
    for (unsigned n = 0; n <= TK_SSF_KIND_LAST; n++) { /* bounded: one per kind */
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        uint8_t kind = 0;
        if (tk_ssf_kind_parse((tk_slice){p, len}, &kind) != 0 || kind == TK_SSF_OVERFLOW) {
            return ctl_usage(c, "--events: unknown event kind \"%.*s\"", (int)len, p);
        }
        *want |= TK_SSF_BIT(kind);
        if (comma == NULL) {
            return CTL_OK;
        }
        p = comma + 1;
    }
    return ctl_usage(c, "--events: too many kinds");
}

/* The first line of path, without its newline. */
static int read_bearer(const ctl *c, const char *path, char *out, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return ctl_fail(c, "--bearer-file %s: cannot open", path);
    }
    char *ok = fgets(out, (int)cap, f);
    fclose(f);
    size_t n = ok != NULL ? strcspn(out, "\r\n") : 0;
    out[n] = '\0';
    *len = n;
    if (n == 0 || n > TK_SSF_BEARER_MAX) {
        return ctl_usage(c, "--bearer-file: the first line must hold 1 to %d bytes",
                         TK_SSF_BEARER_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7f) {
            return ctl_usage(c, "--bearer-file: the credential must be printable ASCII");
        }
    }
    return CTL_OK;
}

static int add_options(ctl *c, tk_ssf_receiver_rec *r, char *bearer, size_t cap)
{
    const char *url = NULL, *aud = NULL, *file = NULL, *events = NULL;
    int rc = ctl_need_str(c, "url", TK_URL_MAX, &url);
    rc = rc == CTL_OK ? ctl_check_uri(c, "--url", url) : rc;
    if (rc == CTL_OK && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        rc = ctl_usage(c, "--url must be an http or https URL");
    }
    rc = rc == CTL_OK ? ctl_need_str(c, "audience", TK_AUD_MAX, &aud) : rc;
    rc = rc == CTL_OK ? ctl_want_str(c, "bearer-file", 4096, &file) : rc;
    rc = rc == CTL_OK ? ctl_want_str(c, "events", 256, &events) : rc;
    int64_t qmax = TK_SSF_QUEUE_DEFAULT;
    rc = rc == CTL_OK ? ctl_want_i64(c, "queue-max", 1, TK_SSF_QUEUE_MAX, qmax, &qmax) : rc;
    r->want = TK_SSF_WANT_ALL;
    rc = rc == CTL_OK && events != NULL ? parse_events(c, events, &r->want) : rc;
    size_t blen = 0;
    rc = rc == CTL_OK && file != NULL ? read_bearer(c, file, bearer, cap, &blen) : rc;
    r->url = tk_slice_from_str(url != NULL ? url : "");
    r->audience = tk_slice_from_str(aud != NULL ? aud : "");
    r->bearer = (tk_slice){bearer, blen};
    r->queue_max = qmax;
    r->created = tk_now();
    return rc;
}

int ctl_cmd_ssf_add(ctl *c)
{
    const char *id = c->pos[0];
    if (!tk_store_ssf_id_ok(tk_slice_from_str(id))) {
        return ctl_usage(c, "ID must be 1 to %d characters of [A-Za-z0-9._-]", TK_SSF_ID_MAX);
    }
    tk_ssf_receiver_rec r = {0};
    char bearer[TK_SSF_BEARER_MAX + 2];
    int rc = add_options(c, &r, bearer, sizeof bearer);
    rc = rc == CTL_OK ? ctl_open(c, false) : rc;
    if (rc != CTL_OK) {
        tk_cleanse(bearer, sizeof bearer);
        return rc;
    }
    tk_txn *txn = NULL;
    rc = tk_store_write_begin(c->store, &txn);
    if (rc == 0) {
        rc = tk_store_ssf_receiver_put(txn, tk_slice_from_str(id), &r);
        rc = rc == 0 ? tk_store_commit(txn) : (tk_store_txn_end(txn), rc);
    }
    tk_cleanse(bearer, sizeof bearer);
    if (rc == TK_E_TOOBIG) {
        return ctl_fail(c, "already %d receivers", TK_SSF_RECEIVERS_MAX);
    }
    if (rc != 0) {
        return ctl_fail_err(c, "adding the receiver", rc);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "receiver", id);
    tk_json_kv_str(&j, "url", r.url);
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}

static int list_one(void *arg, tk_slice id, const tk_ssf_receiver_rec *r)
{
    tk_json *j = arg;
    tk_json_obj_begin(j);
    tk_json_kv_str(j, "receiver", id);
    tk_json_kv_str(j, "url", r->url);
    tk_json_kv_str(j, "audience", r->audience);
    tk_json_kv_bool(j, "bearer", r->bearer.len > 0);
    tk_json_key(j, "events");
    tk_json_arr_begin(j);
    for (uint8_t k = 1; k < TK_SSF_OVERFLOW; k++) {
        if (r->want & TK_SSF_BIT(k)) {
            tk_json_cstr(j, tk_ssf_kind_name(k));
        }
    }
    tk_json_arr_end(j);
    tk_json_kv_int(j, "queue_max", r->queue_max);
    tk_json_kv_int(j, "depth", r->depth);
    tk_json_kv_int(j, "dropped", r->dropped);
    tk_json_kv_bool(j, "overflowed", r->overflowed != 0);
    tk_json_kv_int(j, "created", r->created);
    tk_json_obj_end(j);
    return 0;
}

int ctl_cmd_ssf_list(ctl *c)
{
    int rc = ctl_open(c, true);
    if (rc != CTL_OK) {
        return rc;
    }
    tk_txn *txn = NULL;
    rc = tk_store_read_begin(c->store, &txn);
    if (rc != 0) {
        return ctl_fail_err(c, "read transaction", rc);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_arr_begin(&j);
    rc = tk_store_ssf_each_receiver(txn, list_one, &j);
    tk_json_arr_end(&j);
    tk_store_txn_end(txn);
    if (rc != 0) {
        return ctl_fail_err(c, "listing receivers", rc);
    }
    return ctl_print_json(c, &j);
}

int ctl_cmd_ssf_remove(ctl *c)
{
    const char *id = c->pos[0];
    if (!tk_store_ssf_id_ok(tk_slice_from_str(id))) {
        return ctl_usage(c, "ID must be 1 to %d characters of [A-Za-z0-9._-]", TK_SSF_ID_MAX);
    }
    int rc = ctl_open(c, false);
    if (rc != CTL_OK) {
        return rc;
    }
    tk_txn *txn = NULL;
    uint64_t dropped = 0;
    rc = tk_store_write_begin(c->store, &txn);
    if (rc == 0) {
        rc = tk_store_ssf_receiver_remove(txn, tk_slice_from_str(id), &dropped);
        rc = rc == 0 ? tk_store_commit(txn) : (tk_store_txn_end(txn), rc);
    }
    if (rc == TK_E_NOTFOUND) {
        return ctl_fail(c, "no receiver %s", id);
    }
    if (rc != 0) {
        return ctl_fail_err(c, "removing the receiver", rc);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "receiver", id);
    tk_json_kv_int(&j, "events_dropped", (int64_t)dropped);
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}
