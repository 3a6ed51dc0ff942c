/*
 * Helpers shared by the request parsers of src/oauth (not exported).
 */
#ifndef TOKEND_OAUTH_INT_H
#define TOKEND_OAUTH_INT_H

#include "tokend/form.h"
#include "tokend/oauth.h"

/* Most fields one request parser wants. */
#define OAUTH_FIELDS_MAX 16

/*
 * tk_form_parse, with the RFC's answers for its errors (invalid_request).
 * When the only repeated parameters are the ones marked in target[]
 * (resource, audience), the fields are filled without them and
 * *target_repeated is set, so the caller can answer invalid_target at the
 * point of its checks where targets are looked at.
 * Returns 0 or TK_E_INVALID with *err set.
 */
int oauth_form_read(const char *body, size_t len, tk_form_field *f, size_t n, const bool *target,
                    bool *target_repeated, tk_oauth_err *err);

/* The answer for a repeated resource or audience. */
int oauth_refuse_repeated_target(tk_oauth_err *err);

#endif
