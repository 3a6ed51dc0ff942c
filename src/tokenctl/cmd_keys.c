/*
 * tokenctl keys list | rotate | retire --now: tokend's own signing keys (DATA/keys, see
 * keys.h). A rotation writes a new current key and retires the old one; a
 * running tokend signs with the new key from its next SIGHUP on and keeps
 * the old one in /jwks.json for max(access-ttl, signing-key-overlap)
 * seconds after it last signed with it. No key material is ever printed.
 */
#include "ctl.h"

#include "tokend/clock.h"
#include "tokend/keys.h"

static void key_json(tk_json *j, const tk_key_info *in)
{
    tk_json_obj_begin(j);
    tk_json_kv_cstr(j, "kid", in->kid);
    tk_json_kv_cstr(j, "alg", "ES256");
    tk_json_kv_int(j, "created", in->created);
    if (in->retired != 0) {
        tk_json_kv_int(j, "retired", in->retired);
    }
    tk_json_kv_bool(j, "current", in->retired == 0);
    tk_json_obj_end(j);
}

int ctl_cmd_keys_list(ctl *c)
{
    char err[512];
    tk_keyset *ks = NULL;
    int rc = tk_keys_load(c->data_dir, false, tk_now(), &ks, err, sizeof err);
    if (rc != 0 && rc != TK_E_NOTFOUND) {
        return ctl_fail(c, "%s", err);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_key(&j, "keys");
    tk_json_arr_begin(&j);
    for (unsigned i = 0; ks != NULL && i < tk_keys_count(ks); i++) {
        key_json(&j, tk_keys_info(ks, i));
    }
    tk_json_arr_end(&j);
    tk_json_obj_end(&j);
    tk_keys_free(ks);
    return ctl_print_json(c, &j);
}

int ctl_cmd_keys_rotate(ctl *c)
{
    char err[512], kid[TK_KID_LEN + 1];
    unsigned dropped = 0;
    int rc = tk_keys_rotate(c->data_dir, tk_now(), kid, &dropped, err, sizeof err);
    if (rc != 0) {
        return ctl_fail(c, "%s", err);
    }
    tk_keyset *ks = NULL;
    rc = tk_keys_load(c->data_dir, false, tk_now(), &ks, err, sizeof err);
    if (rc != 0) {
        return ctl_fail(c, "the new key %s was written but does not load: %s", kid, err);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_kv_cstr(&j, "kid", kid);
    tk_json_kv_cstr(&j, "previous", tk_keys_count(ks) > 1 ? tk_keys_info(ks, 1)->kid : NULL);
    tk_json_kv_int(&j, "dropped", dropped);
    tk_json_kv_cstr(&j, "note", "send SIGHUP to tokend to sign with the new key");
    tk_json_obj_end(&j);
    tk_keys_free(ks);
    return ctl_print_json(c, &j);
}

/* A key that leaked must stop verifying now, not after the overlap. */
int ctl_cmd_keys_retire(ctl *c)
{
    if (!ctl_opt_flag(c, "now")) {
        return ctl_usage(c, "--now is required (retired keys leave the JWKS by themselves after "
                            "the overlap; --now drops them at once)");
    }
    char err[512], kids[TK_SIGNING_KEYS_MAX][TK_KID_LEN + 1];
    unsigned dropped = 0;
    int rc = tk_keys_retire_now(c->data_dir, kids, &dropped, err, sizeof err);
    if (rc != 0) {
        return ctl_fail(c, "%s", err);
    }
    char buf[CTL_JSON_MAX];
    tk_json j;
    tk_json_init(&j, buf, sizeof buf);
    tk_json_obj_begin(&j);
    tk_json_key(&j, "dropped");
    tk_json_arr_begin(&j);
    for (unsigned i = 0; i < dropped; i++) {
        tk_json_cstr(&j, kids[i]);
    }
    tk_json_arr_end(&j);
    tk_json_kv_cstr(&j, "note", "send SIGHUP to tokend to stop publishing them");
    tk_json_obj_end(&j);
    return ctl_print_json(c, &j);
}
