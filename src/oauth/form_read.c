/*
 * Reading a request's parameters for the authorization server: the form
 * decoder's errors become OAuth answers, and a repeated resource indicator
 * (legal in RFC 8707, not offered by tokend) is told apart from any other
 * repeated parameter by reading the form once more without it.
 */
#include "oauth_int.h"

#include <string.h>

static int form_refusal(int rc, tk_oauth_err *err)
{
    switch (rc) {
    case TK_E_TOOBIG:
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "a parameter is longer than its limit");
    case TK_E_DUPLICATE:
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "a parameter appears more than once (RFC 6749 3.1)");
    default:
        return tk_oauth_refuse(err, TK_OAUTH_INVALID_REQUEST,
                               "malformed parameters (a bad %-escape, a NUL byte or more "
                               "than 64 parameters)");
    }
}

int oauth_refuse_repeated_target(tk_oauth_err *err)
{
    return tk_oauth_refuse(err, TK_OAUTH_INVALID_TARGET,
                           "one resource and one audience per request: tokend issues each "
                           "token for a single audience");
}

int oauth_form_read(const char *body, size_t len, tk_form_field *f, size_t n, const bool *target,
                    bool *target_repeated, tk_oauth_err *err)
{
    TK_ASSERT(n <= OAUTH_FIELDS_MAX);
    *target_repeated = false;
    int rc = tk_form_parse(body, len, f, n);
    if (rc != TK_E_DUPLICATE) {
        return rc == 0 ? 0 : form_refusal(rc, err);
    }
    tk_form_field rest[OAUTH_FIELDS_MAX];
    size_t map[OAUTH_FIELDS_MAX], m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!target[i]) {
            map[m] = i;
            rest[m++] = f[i];
        }
    }
    rc = m < n ? tk_form_parse(body, len, rest, m) : TK_E_DUPLICATE;
    if (rc != 0) {
        return form_refusal(rc, err);
    }
    for (size_t k = 0; k < m; k++) {
        f[map[k]] = rest[k];
    }
    *target_repeated = true;
    return 0;
}
