/*
 * tokenctl token fanout: one root token in a session and K tokens delegated
 * from it, for the cascade benchmark (revoking the root must cost the same
 * whatever K is). Every token goes through the core's issuance, exactly as
 * `token issue --parent` would do it, but FANOUT_TXN_ISSUES of them share one
 * write transaction, so 100 000 children take seconds, not minutes.
 *
 * The tokens are written to --out, the root on the first line and one child
 * per line after it; only a summary is printed.
 */
#include "ctl.h"

#include "tokend/clock.h"
#include "tokend/crypto.h"
#include "tokend/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Issues per write txn: far below LMDB's dirty-page limit (3 puts each). */
#define FANOUT_TXN_ISSUES 10000
#define FANOUT_MAX        10000000LL

typedef struct fanout {
    const char *sid, *client, *scope, *out_path;
    int64_t children, ttl;
    char root[TK_TOKEN_LEN + 1];
    FILE *out;
} fanout;

static int fanout_args(ctl *c, fanout *f)
{
    int rc = ctl_need_str(c, "sid", TK_ID_MAX, &f->sid);
    if (rc == CTL_OK) {
        rc = ctl_need_str(c, "client", TK_ID_MAX, &f->client);
    }
    if (rc == CTL_OK) {
        rc = ctl_need_str(c, "scope", TK_SCOPE_MAX, &f->scope);
    }
    if (rc == CTL_OK) {
        rc = ctl_check_scope(c, "--scope", f->scope);
    }
    if (rc == CTL_OK) {
        rc = ctl_need_str(c, "out", 4096, &f->out_path);
    }
    if (rc == CTL_OK) {
        rc = ctl_opt_str(c, "children") ? CTL_OK : ctl_usage(c, "--children is required");
    }
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "children", 0, FANOUT_MAX, 0, &f->children);
    }
    if (rc == CTL_OK) {
        rc = ctl_want_i64(c, "ttl", 1, CTL_TTL_MAX, CTL_ACCESS_TTL_DEFAULT, &f->ttl);
    }
    return rc;
}

/* Issue one token (root when parent is NULL) in txn and write its line. */
static int issue_one(ctl *c, fanout *f, tk_txn *txn, const char *parent, int64_t now)
{
    tk_issue_req req = {.sid = tk_slice_from_str(f->sid),
                        .client_id = tk_slice_from_str(f->client),
                        .scope = tk_slice_from_str(f->scope),
                        .aud = TK_SLICE_LIT(""),
                        .parent_token = parent,
                        .ttl = f->ttl};
    tk_issued out;
    const char *why = NULL;
    int rc = tk_core_issue(txn, &c->core, &req, now, &out, &why);
    if (rc != 0) {
        return ctl_fail(c, "%s", why && why[0] ? why : tk_strerror(rc));
    }
    if (parent == NULL) {
        memcpy(f->root, out.access_token, sizeof f->root);
    }
    fprintf(f->out, "%s\n", out.access_token);
    tk_cleanse(&out, sizeof out);
    return CTL_OK;
}

/* The root, then the children, FANOUT_TXN_ISSUES per committed txn. */
static int fanout_run(ctl *c, fanout *f)
{
    int64_t now = tk_now();
    int64_t done = -1; /* -1: the root is next */
    int rc = CTL_OK;
    for (int64_t round = 0; rc == CTL_OK && done < f->children; round++) {
        TK_ASSERT(round <= f->children / FANOUT_TXN_ISSUES + 1);
        tk_txn *txn = NULL;
        int err = tk_store_write_begin(c->store, &txn);
        if (err != 0) {
            return ctl_fail_err(c, "write transaction", err);
        }
        for (int k = 0; rc == CTL_OK && k < FANOUT_TXN_ISSUES && done < f->children; k++) {
            rc = issue_one(c, f, txn, done < 0 ? NULL : f->root, now);
            done++;
        }
        if (rc != CTL_OK) {
            tk_store_txn_end(txn);
            return rc;
        }
        err = tk_store_commit(txn);
        if (err != 0) {
            return ctl_fail_err(c, "commit", err);
        }
    }
    return rc;
}

int ctl_cmd_token_fanout(ctl *c)
{
    fanout f;
    memset(&f, 0, sizeof f);
    int rc = fanout_args(c, &f);
    if (rc == CTL_OK) {
        rc = ctl_open(c, false);
    }
    if (rc != CTL_OK) {
        return rc;
    }
    int fd = open(f.out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    f.out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f.out == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return ctl_fail(c, "cannot create %s: %s", f.out_path, strerror(errno));
    }
    uint64_t t0 = tk_mono_ns();
    rc = fanout_run(c, &f);
    tk_cleanse(f.root, sizeof f.root);
    if (fclose(f.out) != 0 && rc == CTL_OK) {
        rc = ctl_fail(c, "writing %s: %s", f.out_path, strerror(errno));
    }
    if (rc != CTL_OK) {
        return rc;
    }
    char buf[1024];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "sid", f.sid);
    tk_json_kv_int(&j, "children", f.children);
    tk_json_kv_cstr(&j, "out", f.out_path);
    tk_json_kv_int(&j, "milliseconds", (int64_t)((tk_mono_ns() - t0) / 1000000));
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}
