/*
 * tokenctl cluster snapshot: the bootstrap of a new cluster node
 * (docs/ARCHITECTURE.md §10). A consistent, compacted copy of a running
 * node's store (LMDB's mdb_env_copy2 inside one read txn, safe while tokend
 * writes) into a new folder; the copy carries the op-log sequence it
 * reflects, and a tokend started on it resumes the stream right after it.
 */
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int ctl_cmd_cluster_snapshot(ctl *c)
{
    const char *out = NULL;
    int rc = ctl_need_str(c, "out", PATH_MAX - 1, &out);
    rc = rc != CTL_OK ? rc : ctl_open(c, true);
    if (rc != CTL_OK) {
        return rc;
    }
    if (mkdir(out, 0700) != 0) {
        return ctl_fail(c, "cannot create %s: %s (it must not exist)", out, strerror(errno));
    }
    rc = tk_store_copy(c->store, out);
    if (rc != 0) {
        return ctl_fail_err(c, "copy", rc);
    }
    /* Read the sequence from the copy: the source may have moved on. */
    tk_store *copy = NULL;
    tk_store_opts o = {.dir = out, .read_only = true};
    tk_txn *txn = NULL;
    uint64_t seq = 0;
    char stream[TK_CLUSTER_NAME_MAX + 1] = "";
    rc = tk_store_open(&o, &copy);
    if (rc == 0 && (rc = tk_store_read_begin(copy, &txn)) == 0) {
        rc = tk_store_log_seq_get(txn, &seq);
        if (rc == 0 && tk_store_cluster_get(txn, stream, sizeof stream) != 0) {
            stream[0] = '\0';
        }
        tk_store_txn_end(txn);
    }
    tk_store_close(copy);
    if (rc != 0) {
        return ctl_fail_err(c, "reading the copy", rc);
    }
    char buf[PATH_MAX + 256];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "snapshot", out);
    tk_json_kv_int(&j, "log_seq", (int64_t)seq);
    if (stream[0] != '\0') {
        tk_json_kv_cstr(&j, "stream", stream);
    }
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}
