/*
 * The endpoint table: every path tokend answers, one row each (the row type
 * is in endpoints_int.h). The dispatcher (app.c) matches rows, the metrics
 * and the log lines take their label from the row, and a deferred request
 * carries its row index to its completion. Adding an endpoint is one row
 * here plus its handler file.
 *
 * The order of the rows is the order of tokend_requests_total on /metrics;
 * new rows go before the last one, which takes every path no other row
 * takes. Labels are what dashboards select on: never rename one.
 */
#include "endpoints_int.h"

static void not_found(ep_req *r)
{
    ep_reply_error(r, 404, "not_found", NULL);
}

const ep_route ep_routes[] = {
    {.path = "/introspect",
     .body = true,
     .methods = EP_POST,
     .label = "introspect",
     .handle = ep_introspect},
    {.path = "/revoke",
     .body = true,
     .methods = EP_POST,
     .label = "revoke",
     .handle = ep_revoke,
     .complete = ep_revoke_done},
    {.path = "/.well-known/oauth-authorization-server",
     .methods = EP_GET,
     .label = "metadata",
     .handle = ep_metadata},
    {.path = "/healthz", .methods = EP_GET, .label = "healthz", .handle = ep_healthz},
    /* Only on the metrics listener (loopback by default): it names clients
     * and resources. */
    {.path = "/metrics",
     .methods = EP_GET,
     .label = "metrics",
     .listener = TK_APP_LISTENER_METRICS,
     .handle = ep_metrics_serve},
    /* The original request's path follows ("/auth/…", Envoy style), with any
     * method: forward-auth answers for the original request. */
    {.path = "/auth",
     .prefix = true,
     .methods = EP_ANY,
     .label = "forward_auth",
     .handle = ep_forward_auth},
    /* RFC 9728: the metadata of each resource path follows. */
    {.path = "/.well-known/oauth-protected-resource",
     .prefix = true,
     .methods = EP_GET,
     .label = "resource_metadata",
     .handle = ep_resource_metadata},
    {.path = "/backchannel-logout",
     .body = true,
     .methods = EP_POST,
     .label = "backchannel_logout",
     .handle = ep_backchannel_logout,
     .complete = ep_backchannel_logout_done},
    {.path = "/ssf/events",
     .body = true,
     .methods = EP_POST,
     .label = "ssf_events",
     .handle = ep_ssf_events,
     .complete = ep_ssf_events_done},
    {.path = "/webhooks/session-terminated",
     .body = true,
     .methods = EP_POST,
     .label = "webhook",
     .handle = ep_webhook,
     .complete = ep_webhook_done},
    /* The authorization server (issue 11). */
    {.path = "/register",
     .body = true,
     .methods = EP_POST,
     .label = "register",
     .handle = ep_register,
     .complete = ep_register_done},
    {.path = "/authorize",
     .prefix = true, /* and /authorize/continue */
     .body = true,
     .methods = EP_GET | EP_POST,
     .label = "authorize",
     .handle = ep_authorize,
     .complete = ep_authorize_done},
    {.path = "/login",
     .body = true,
     .methods = EP_GET | EP_POST,
     .label = "login",
     .handle = ep_login,
     .complete = ep_login_done},
    /* Back from the upstream OpenID provider (login = oidc: oidc.c). */
    {.path = "/login/callback",
     .methods = EP_GET,
     .label = "login_callback",
     .handle = ep_oidc_callback,
     .complete = ep_oidc_callback_done},
    /* Sign-out at tokend (logout.c), and on at the IdP when configured. */
    {.path = "/logout",
     .body = true,
     .methods = EP_GET | EP_POST,
     .label = "logout",
     .handle = ep_logout,
     .complete = ep_logout_done},
    {.path = "/consent",
     .body = true,
     .methods = EP_GET | EP_POST,
     .label = "consent",
     .handle = ep_consent,
     .complete = ep_consent_done},
    {.path = "/token",
     .body = true,
     .methods = EP_POST,
     .label = "token",
     .handle = ep_token,
     .complete = ep_token_done},
    /* tokend's own public keys (RFC 7517), for its signed answers. */
    {.path = "/jwks.json", .methods = EP_GET, .label = "jwks", .handle = ep_jwks},
    {.path = NULL, .methods = EP_ANY, .label = "other", .handle = not_found}, /* keep last */
};

const unsigned ep_nroutes = TK_ARRAY_LEN(ep_routes);

_Static_assert(TK_ARRAY_LEN(ep_routes) <= TK_ROUTES_MAX, "the table fits the counters and tag");
