/*
 * Fetched IdP keys: the key sets of the issuers whose trust entry names a
 * jwks_uri (idp.h), fetched through the outbound thread (outbound.h) and
 * merged into the trust snapshot the workers use. Implemented in
 * src/idp/jwks.c.
 *
 * The one idea: workers never see this module's state, only snapshots. The
 * refresher keeps the file's snapshot (the "base") and, per jwks_uri, the
 * last good key set; whenever either changes it builds a new snapshot (the
 * base's issuers, each followed by its fetched keys) and swaps it into the
 * holder, which the workers pick up at their next batch (idp.h, "Holder").
 * A failed fetch changes nothing: the last good key set stays in force.
 *
 * When a key set is fetched: at start (and when SIGHUP brings a new or
 * changed jwks_uri); again after its Cache-Control max-age clamped into
 * [refresh_min, refresh_max] (refresh_min without one, or after a failure);
 * and when a worker meets a kid the issuer has no key for, at most once per
 * kid_interval per issuer, counted from that issuer's latest fetch of any
 * kind, so a flood of bogus kids costs the IdP one request per interval.
 * The event carrying the unknown kid is refused; a retry after the fetch
 * finds the key.
 *
 * A fetched key set obeys the rules of a jwks_file: keys we cannot use are
 * skipped; a malformed or unsafe member (private parts, a short RSA key, a
 * duplicate kid) fails the whole fetch. A fetched key whose kid a file key
 * already has is skipped (the file wins). File keys and fetched keys share
 * the issuer's TK_IDP_KEYS_MAX; fetched keys past it are dropped (logged).
 */
#ifndef TOKEND_IDP_JWKS_H
#define TOKEND_IDP_JWKS_H

#include "tokend/idp.h"
#include "tokend/outbound.h"

typedef struct tk_idp_jwks tk_idp_jwks;

typedef struct tk_idp_jwks_cfg {
    int64_t refresh_min_s;  /* 0 = TK_JWKS_REFRESH_MIN_DEFAULT */
    int64_t refresh_max_s;  /* 0 = TK_JWKS_REFRESH_MAX_DEFAULT; at least the min */
    int64_t kid_interval_s; /* 0 = TK_JWKS_KID_INTERVAL_DEFAULT */
} tk_idp_jwks_cfg;

/* Start the refresher's timer thread. It fetches through ob (callbacks on
 * the outbound thread) and swaps snapshots into holder. Nothing is fetched
 * before tk_idp_jwks_set_base. Returns 0, -EINVAL (bounds out of order or
 * past TK_JWKS_REFRESH_CEILING / TK_JWKS_KID_INTERVAL_MAX), -ENOMEM, -errno. */
int tk_idp_jwks_start(const tk_idp_jwks_cfg *cfg, tk_outbound *ob, tk_idp_holder *holder,
                      tk_idp_jwks **out);

/* Install a freshly loaded trust file (takes the caller's reference; NULL
 * for none): key sets of unchanged (issuer, jwks_uri, algorithms) entries are
 * kept, new or changed ones are fetched at once, and the merged snapshot is
 * swapped into the holder before this returns. Main thread (start, SIGHUP). */
void tk_idp_jwks_set_base(tk_idp_jwks *j, tk_idp_trust *base);

/* A worker found no key for a token of issuer iss: fetch that issuer's key
 * set unless one is in flight or its latest fetch started less than
 * kid_interval ago. True when a fetch was started. Never waits on the
 * network (a short mutex); any thread. j may be NULL (false). */
bool tk_idp_jwks_kid_miss(tk_idp_jwks *j, tk_slice iss);

/* OpenID Connect discovery (src/idp/discovery.c): for every issuer of t
 * with a client_id (a sign-in IdP, login = oidc), fetch
 * issuer/.well-known/openid-configuration through ob and fill its
 * endpoints (and jwks_uri when the file gave none) into the entry. Call
 * before t is published (tk_idp_jwks_set_base): it writes into t. Waits
 * for the answers (each bounded by TK_OIDC_DISCOVERY_WAIT_MS); main thread.
 * Returns how many sign-in IdPs could not be discovered (logged). */
unsigned tk_idp_discover(tk_idp_trust *t, tk_outbound *ob);

/* Stop the timer thread; later kid misses fetch nothing. Then stop the
 * outbound thread (its callbacks may still arrive until then), then free. */
void tk_idp_jwks_stop(tk_idp_jwks *j);
void tk_idp_jwks_free(tk_idp_jwks *j);

#endif
