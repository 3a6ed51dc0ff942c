/*
 * The names of the records' enumerations (roles, client statuses, session
 * states, token kinds, event sources, holds) as tokenctl, the logs and the
 * JSON answers spell them, and their parsers.
 */
#include <string.h>

#include "tokend/record.h"

static const char *const role_names[] = {NULL, "agent", "resource_server", "admin"};
static const char *const status_names[] = {NULL, "pending", "approved", "disabled"};
static const char *const state_names[] = {NULL, "active", "suspended", "terminated"};
static const char *const kind_names[] = {NULL, "access_token", "refresh_token"};
static const char *const source_names[] = {NULL, "backchannel_logout", "ssf", "webhook", "admin"};
static const char *const hold_names[] = {NULL, "admin", "device", "credential"};
_Static_assert(TK_ARRAY_LEN(hold_names) == TK_HOLD_LAST + 1, "a name for every hold");

static const char *name_of(const char *const *names, size_t n, uint8_t v)
{
    return (v > 0 && v < n) ? names[v] : "unknown";
}

static int parse_name(const char *const *names, size_t n, const char *s, uint8_t *out)
{
    for (size_t i = 1; s != NULL && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    }
    return TK_E_BADINPUT;
}

const char *tk_role_name(uint8_t role)
{
    return name_of(role_names, TK_ARRAY_LEN(role_names), role);
}

int tk_role_parse(const char *s, uint8_t *out)
{
    return parse_name(role_names, TK_ARRAY_LEN(role_names), s, out);
}

const char *tk_client_status_name(uint8_t status)
{
    return name_of(status_names, TK_ARRAY_LEN(status_names), status);
}

int tk_client_status_parse(const char *s, uint8_t *out)
{
    return parse_name(status_names, TK_ARRAY_LEN(status_names), s, out);
}

const char *tk_session_state_name(uint8_t state)
{
    return name_of(state_names, TK_ARRAY_LEN(state_names), state);
}

const char *tk_token_kind_name(uint8_t kind)
{
    return name_of(kind_names, TK_ARRAY_LEN(kind_names), kind);
}

const char *tk_event_source_name(uint8_t source)
{
    return name_of(source_names, TK_ARRAY_LEN(source_names), source);
}

const char *tk_hold_name(uint8_t hold)
{
    return name_of(hold_names, TK_ARRAY_LEN(hold_names), hold);
}

int tk_hold_parse(const char *s, uint8_t *out)
{
    return parse_name(hold_names, TK_ARRAY_LEN(hold_names), s, out);
}
