/*
 * Unit tests for the /authorize query and the /token form: the happy path
 * of each grant, then every refusal with its RFC error code, whether an
 * /authorize error may be redirected, the one-resource rule, and the
 * bounds of every parameter.
 */
#include "check.h"

#include "tokend/oauth_pkce.h"
#include "tokend/oauth_request.h"

#include <stdio.h>
#include <stdlib.h>

static tk_oauth_authz_req a;
static tk_oauth_token_req t;
static tk_oauth_err e;

#define CH   "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
#define VER  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define PKCE "&code_challenge=" CH "&code_challenge_method=S256"
#define BASE "response_type=code&client_id=tkc_1&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcb"

static void check_desc(void)
{
    CHECK(e.description != NULL && e.description[0] != '\0');
    for (const char *p = e.description; p != NULL && *p != '\0'; p++) {
        CHECK(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
    }
}

static int authz(const char *q)
{
    e = (tk_oauth_err){0};
    memset(&a, 0x5a, sizeof a);
    return tk_oauth_authz_parse(q, strlen(q), &a, &e);
}

static int token(const char *b)
{
    e = (tk_oauth_err){0};
    memset(&t, 0x5a, sizeof t);
    return tk_oauth_token_parse(b, strlen(b), &t, &e);
}

#define A_REFUSED(q, want, redirect)                                                               \
    do {                                                                                           \
        int rc_ = authz(q);                                                                        \
        if (rc_ != TK_E_INVALID || e.code != (want) || a.redirectable != (redirect)) {             \
            fprintf(stderr, "%s:%d: %s: rc %d code %d redirectable %d\n", __FILE__, __LINE__, q,   \
                    rc_, e.code, a.redirectable);                                                  \
        }                                                                                          \
        CHECK_EQ_INT(rc_, TK_E_INVALID);                                                           \
        CHECK_EQ_INT(e.code, want);                                                                \
        CHECK(a.redirectable == (redirect));                                                       \
        check_desc();                                                                              \
    } while (0)

#define T_REFUSED(b, want)                                                                         \
    do {                                                                                           \
        int rc_ = token(b);                                                                        \
        if (rc_ != TK_E_INVALID || e.code != (want)) {                                             \
            fprintf(stderr, "%s:%d: %s: rc %d code %d\n", __FILE__, __LINE__, b, rc_, e.code);     \
        }                                                                                          \
        CHECK_EQ_INT(rc_, TK_E_INVALID);                                                           \
        CHECK_EQ_INT(e.code, want);                                                                \
        check_desc();                                                                              \
    } while (0)

/* ---- /authorize ------------------------------------------------------------ */

static void test_authz_ok(void)
{
    CHECK_EQ_INT(authz(BASE PKCE "&state=xyz%20123&scope=mcp%3Atools+read"
                                 "&resource=https%3A%2F%2Fmcp.example%2Fmcp&prompt=consent"
                                 "&nonce=n&extra=1"),
                 0);
    CHECK(a.redirectable);
    CHECK_EQ_STR(a.client_id, "tkc_1");
    CHECK(a.has_redirect_uri);
    CHECK_EQ_STR(a.redirect_uri, "http://127.0.0.1:5/cb");
    CHECK(a.has_state);
    CHECK_EQ_STR(a.state, "xyz 123");
    CHECK(a.has_scope);
    CHECK_EQ_STR(a.scope, "mcp:tools read");
    CHECK(a.has_resource);
    CHECK_EQ_STR(a.resource, "https://mcp.example/mcp");
    CHECK_EQ_INT(a.prompt, TK_OAUTH_PROMPT_CONSENT);
    uint8_t want[TK_HASH_LEN];
    tk_oauth_err e2;
    CHECK_EQ_INT(tk_oauth_pkce_challenge_parse(tk_slice_from_str(CH), want, &e2), 0);
    CHECK(memcmp(a.challenge, want, TK_HASH_LEN) == 0);
    CHECK_EQ_INT(tk_oauth_pkce_verify(tk_slice_from_str(VER), a.challenge, &e2), 0);

    /* minimal: no redirect_uri, state, scope, resource, prompt */
    CHECK_EQ_INT(authz("client_id=c&response_type=code" PKCE), 0);
    CHECK(a.redirectable && !a.has_redirect_uri && !a.has_state && !a.has_scope && !a.has_resource);
    CHECK_EQ_INT(a.prompt, 0);
    CHECK_EQ_STR(a.redirect_uri, "");
    /* scope= is absent (the resource's default) */
    CHECK_EQ_INT(authz(BASE PKCE "&scope="), 0);
    CHECK(!a.has_scope);
    /* prompt sets */
    CHECK_EQ_INT(authz(BASE PKCE "&prompt=login+consent"), 0);
    CHECK_EQ_INT(a.prompt, TK_OAUTH_PROMPT_LOGIN | TK_OAUTH_PROMPT_CONSENT);
    CHECK_EQ_INT(authz(BASE PKCE "&prompt=none"), 0);
    CHECK_EQ_INT(a.prompt, TK_OAUTH_PROMPT_NONE);
    /* login_hint: kept as given (routes the sign-in to an IdP) */
    CHECK_EQ_INT(authz(BASE PKCE), 0);
    CHECK(!a.has_login_hint && a.login_hint[0] == '\0');
    CHECK_EQ_INT(authz(BASE PKCE "&login_hint=Bob%40Partner.Example"), 0);
    CHECK(a.has_login_hint);
    CHECK_EQ_STR(a.login_hint, "Bob@Partner.Example");
    CHECK_EQ_INT(authz(BASE PKCE "&login_hint=J.+Doe"), 0); /* spaces are printable */
    CHECK_EQ_STR(a.login_hint, "J. Doe");
}

/* A login_hint is refused when empty, repeated, too long, or carrying a
 * control or non-ASCII byte: it is forwarded to an IdP as it is. */
static void test_authz_login_hint(void)
{
    static const char *const bad[] = {"", "a%0Ab", "a%09b", "caf%C3%A9@x.example", "%7F", "a%00b"};
    for (size_t i = 0; i < TK_ARRAY_LEN(bad); i++) {
        char q[512];
        snprintf(q, sizeof q, "%s%s&login_hint=%s", BASE, PKCE, bad[i]);
        CHECK_EQ_INT(authz(q), TK_E_INVALID);
        CHECK(a.redirectable || i == 5); /* a NUL byte spoils the whole form */
        CHECK(!a.has_login_hint);
    }
    CHECK_EQ_INT(authz(BASE PKCE "&login_hint=a%40b&login_hint=a%40b"), TK_E_INVALID);
    char q[1024];
    int n = snprintf(q, sizeof q, "%s%s&login_hint=", BASE, PKCE);
    memset(q + n, 'x', TK_LOGIN_HINT_MAX);
    q[n + TK_LOGIN_HINT_MAX] = '\0';
    CHECK_EQ_INT(authz(q), 0);
    CHECK_EQ_INT(strlen(a.login_hint), TK_LOGIN_HINT_MAX);
    q[n + TK_LOGIN_HINT_MAX] = 'x';
    q[n + TK_LOGIN_HINT_MAX + 1] = '\0';
    CHECK_EQ_INT(authz(q), TK_E_INVALID);
}

static void test_authz_page_errors(void)
{
    /* nothing is known about the client: an error page, never a redirect */
    A_REFUSED("", TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED("response_type=code" PKCE, TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED("client_id=" PKCE, TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED("client_id=a%0Ab&response_type=code" PKCE, TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED("client_id=%C3%A9&response_type=code" PKCE, TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED(BASE PKCE "&client_id=tkc_2", TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED(BASE PKCE "&redirect_uri=https%3A%2F%2Fevil%2F", TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED(BASE PKCE "&state=a&state=b", TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED(BASE PKCE "&response_type=code", TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED(BASE PKCE "&x=%zz", TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED(BASE PKCE "&x=%00", TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED("client_id=c&redirect_uri=%2Fcb&response_type=code" PKCE, TK_OAUTH_INVALID_REQUEST,
              false);
    A_REFUSED("client_id=c&redirect_uri=https%3A%2F%2Fa%2Fcb%23f&response_type=code" PKCE,
              TK_OAUTH_INVALID_REQUEST, false);
    A_REFUSED("client_id=c&redirect_uri=&response_type=code" PKCE, TK_OAUTH_INVALID_REQUEST, false);
    /* repeated resource and a repeated client_id together: invalid_request */
    A_REFUSED(BASE PKCE "&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&client_id=x",
              TK_OAUTH_INVALID_REQUEST, false);
    /* a value over its limit: the whole form is dropped */
    char q[4096];
    char big[TK_OAUTH_STATE_MAX + 2];
    memset(big, 's', sizeof big);
    big[TK_OAUTH_STATE_MAX + 1] = '\0';
    snprintf(q, sizeof q, "%s&state=%s", BASE PKCE, big);
    A_REFUSED(q, TK_OAUTH_INVALID_REQUEST, false);
    big[TK_OAUTH_STATE_MAX] = '\0';
    snprintf(q, sizeof q, "%s&state=%s", BASE PKCE, big);
    CHECK_EQ_INT(authz(q), 0);
    CHECK_EQ_INT(strlen(a.state), TK_OAUTH_STATE_MAX);
    /* client_id at its limit and one over */
    char id[TK_ID_MAX + 2];
    memset(id, 'i', sizeof id);
    id[TK_ID_MAX] = '\0';
    snprintf(q, sizeof q, "response_type=code&client_id=%s" PKCE, id);
    CHECK_EQ_INT(authz(q), 0);
    id[TK_ID_MAX] = 'i';
    id[TK_ID_MAX + 1] = '\0';
    snprintf(q, sizeof q, "response_type=code&client_id=%s" PKCE, id);
    A_REFUSED(q, TK_OAUTH_INVALID_REQUEST, false);
    /* more than 64 parameters */
    size_t n = (size_t)snprintf(q, sizeof q, "%s", BASE PKCE);
    for (int i = 0; i < 64; i++) {
        n += (size_t)snprintf(q + n, sizeof q - n, "&p%d=1", i);
    }
    A_REFUSED(q, TK_OAUTH_INVALID_REQUEST, false);
}

static void test_authz_redirect_errors(void)
{
    /* client and redirect_uri well-formed: these may go to the redirect URI */
    A_REFUSED("client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb" PKCE, TK_OAUTH_INVALID_REQUEST,
              true);
    A_REFUSED("client_id=c&response_type=token" PKCE, TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE, true);
    A_REFUSED("client_id=c&response_type=code+id_token" PKCE, TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE,
              true);
    A_REFUSED("client_id=c&response_type=" PKCE, TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE, true);
    /* PKCE: missing challenge, missing method, plain, unknown method, bad challenge */
    A_REFUSED(BASE, TK_OAUTH_INVALID_REQUEST, true);
    A_REFUSED(BASE "&code_challenge_method=S256", TK_OAUTH_INVALID_REQUEST, true);
    A_REFUSED(BASE "&code_challenge=" CH, TK_OAUTH_INVALID_REQUEST, true);
    CHECK(strstr(e.description, "S256") != NULL);
    A_REFUSED(BASE "&code_challenge=" VER "&code_challenge_method=plain", TK_OAUTH_INVALID_REQUEST,
              true);
    CHECK(strstr(e.description, "plain") != NULL);
    A_REFUSED(BASE "&code_challenge=" CH "&code_challenge_method=s256", TK_OAUTH_INVALID_REQUEST,
              true);
    A_REFUSED(BASE "&code_challenge=" CH "&code_challenge_method=S512", TK_OAUTH_INVALID_REQUEST,
              true);
    A_REFUSED(BASE "&code_challenge=abc&code_challenge_method=S256", TK_OAUTH_INVALID_REQUEST,
              true);
    A_REFUSED(BASE "&code_challenge=&code_challenge_method=S256", TK_OAUTH_INVALID_REQUEST, true);
    /* state: present but empty or not VSCHAR; not echoed then */
    A_REFUSED(BASE PKCE "&state=", TK_OAUTH_INVALID_REQUEST, true);
    CHECK(!a.has_state);
    A_REFUSED(BASE PKCE "&state=a%0Db", TK_OAUTH_INVALID_REQUEST, true);
    CHECK(!a.has_state);
    A_REFUSED(BASE PKCE "&state=%C3%A9", TK_OAUTH_INVALID_REQUEST, true);
    /* state is kept for the redirect whichever later check fails */
    A_REFUSED("client_id=c&state=s0&response_type=token" PKCE, TK_OAUTH_UNSUPPORTED_RESPONSE_TYPE,
              true);
    CHECK(a.has_state);
    CHECK_EQ_STR(a.state, "s0");
    A_REFUSED("client_id=c&state=s0" PKCE, TK_OAUTH_INVALID_REQUEST, true);
    CHECK(a.has_state);
    A_REFUSED(BASE PKCE "&state=s0&resource=x", TK_OAUTH_INVALID_TARGET, true);
    CHECK(a.has_state);
    A_REFUSED(BASE PKCE "&state=s0&scope=+", TK_OAUTH_INVALID_SCOPE, true);
    CHECK(a.has_state);
    A_REFUSED(BASE PKCE "&state=s0&prompt=x", TK_OAUTH_INVALID_REQUEST, true);
    CHECK(a.has_state);
    A_REFUSED(BASE "&state=s1&code_challenge_method=plain&code_challenge=" VER,
              TK_OAUTH_INVALID_REQUEST, true);
    CHECK(a.has_state);
    CHECK_EQ_STR(a.state, "s1");
    /* scope */
    A_REFUSED(BASE PKCE "&scope=+read", TK_OAUTH_INVALID_SCOPE, true);
    A_REFUSED(BASE PKCE "&scope=a++b", TK_OAUTH_INVALID_SCOPE, true);
    A_REFUSED(BASE PKCE "&scope=a%22b", TK_OAUTH_INVALID_SCOPE, true);
    /* resource: one, absolute, no fragment */
    A_REFUSED(BASE PKCE "&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb",
              TK_OAUTH_INVALID_TARGET, true);
    CHECK(!a.has_resource);
    CHECK_EQ_STR(a.client_id, "tkc_1"); /* the rest was read */
    A_REFUSED(BASE PKCE "&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fa",
              TK_OAUTH_INVALID_TARGET, true);
    A_REFUSED(BASE PKCE "&resource=mcp", TK_OAUTH_INVALID_TARGET, true);
    A_REFUSED(BASE PKCE "&resource=", TK_OAUTH_INVALID_TARGET, true);
    A_REFUSED(BASE PKCE "&resource=https%3A%2F%2Fa%2F%23x", TK_OAUTH_INVALID_TARGET, true);
    /* prompt */
    A_REFUSED(BASE PKCE "&prompt=", TK_OAUTH_INVALID_REQUEST, true);
    A_REFUSED(BASE PKCE "&prompt=none+consent", TK_OAUTH_INVALID_REQUEST, true);
    A_REFUSED(BASE PKCE "&prompt=select_account", TK_OAUTH_INVALID_REQUEST, true);
    A_REFUSED(BASE PKCE "&prompt=login++consent", TK_OAUTH_INVALID_REQUEST, true);
    A_REFUSED(BASE PKCE "&prompt=consent+", TK_OAUTH_INVALID_REQUEST, true);
}

/* ---- /token ---------------------------------------------------------------- */

#define TE   "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
#define AT   "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
#define SUBJ "&subject_token=tkd_at_x&subject_token_type=" AT

static void test_token_code(void)
{
    CHECK_EQ_INT(token("grant_type=authorization_code&code=tkd_ac_abc&code_verifier=" VER
                       "&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcb&client_id=tkc_1"
                       "&resource=https%3A%2F%2Fmcp.example%2F&scope=ignored&x=y"),
                 0);
    CHECK_EQ_INT(t.grant, TK_OAUTH_GRANT_AUTHORIZATION_CODE);
    CHECK_EQ_INT(t.code_len, 10);
    CHECK(memcmp(t.code, "tkd_ac_abc", 10) == 0);
    CHECK_EQ_STR(t.code_verifier, VER);
    CHECK(t.has_redirect_uri && t.has_client_id && t.has_resource && !t.has_scope);
    CHECK_EQ_STR(t.redirect_uri, "http://127.0.0.1:5/cb");
    CHECK_EQ_STR(t.client_id, "tkc_1");
    CHECK_EQ_STR(t.resource, "https://mcp.example/");
    /* a code may hold any byte: it is only hashed */
    CHECK_EQ_INT(token("grant_type=authorization_code&code=a%00b&code_verifier=" VER), 0);
    CHECK_EQ_INT(t.code_len, 3);
    CHECK(!t.has_client_id && !t.has_redirect_uri && !t.has_resource);

    T_REFUSED("grant_type=authorization_code&code_verifier=" VER, TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=authorization_code&code=&code_verifier=" VER, TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=authorization_code&code=c", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=authorization_code&code=c&code_verifier=", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=authorization_code&code=c&code_verifier=short", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=authorization_code&code=c&code_verifier=" VER "%2B",
              TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=authorization_code&code=c&code_verifier=" VER "&client_id=a%0Ab",
              TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=authorization_code&code=c&code_verifier=" VER "&resource=x",
              TK_OAUTH_INVALID_TARGET);
    T_REFUSED("grant_type=authorization_code&code=c&code=d&code_verifier=" VER,
              TK_OAUTH_INVALID_REQUEST);
    /* a verifier over 128 characters does not fit its buffer */
    char b[512], v[TK_OAUTH_VERIFIER_MAX + 2];
    memset(v, 'v', sizeof v);
    v[TK_OAUTH_VERIFIER_MAX] = '\0';
    snprintf(b, sizeof b, "grant_type=authorization_code&code=c&code_verifier=%s", v);
    CHECK_EQ_INT(token(b), 0);
    v[TK_OAUTH_VERIFIER_MAX] = 'v';
    v[TK_OAUTH_VERIFIER_MAX + 1] = '\0';
    snprintf(b, sizeof b, "grant_type=authorization_code&code=c&code_verifier=%s", v);
    T_REFUSED(b, TK_OAUTH_INVALID_REQUEST);
}

static void test_token_refresh(void)
{
    CHECK_EQ_INT(token("grant_type=refresh_token&refresh_token=tkd_rt_1&scope=read"
                       "&resource=https%3A%2F%2Fa%2F&client_id=c"),
                 0);
    CHECK_EQ_INT(t.grant, TK_OAUTH_GRANT_REFRESH_TOKEN);
    CHECK_EQ_INT(t.refresh_token_len, 8);
    CHECK(t.has_scope && t.has_resource && t.has_client_id);
    CHECK_EQ_STR(t.scope, "read");
    CHECK_EQ_INT(token("grant_type=refresh_token&refresh_token=r&scope="), 0);
    CHECK(!t.has_scope);

    T_REFUSED("grant_type=refresh_token", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=refresh_token&refresh_token=", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=refresh_token&refresh_token=r&scope=a++b", TK_OAUTH_INVALID_SCOPE);
    T_REFUSED("grant_type=refresh_token&refresh_token=r&scope=%C3%A9", TK_OAUTH_INVALID_SCOPE);
    T_REFUSED("grant_type=refresh_token&refresh_token=r&resource=https%3A%2F%2Fa%23",
              TK_OAUTH_INVALID_TARGET);
    T_REFUSED("grant_type=refresh_token&refresh_token=r&resource=https%3A%2F%2Fa"
              "&resource=https%3A%2F%2Fb",
              TK_OAUTH_INVALID_TARGET);
    T_REFUSED("grant_type=refresh_token&refresh_token=r&refresh_token=s", TK_OAUTH_INVALID_REQUEST);
    /* a token longer than any we issue does not fit */
    char b[1024], tok[TK_TOKEN_IN_MAX + 2];
    memset(tok, 't', sizeof tok);
    tok[TK_TOKEN_IN_MAX] = '\0';
    snprintf(b, sizeof b, "grant_type=refresh_token&refresh_token=%s", tok);
    CHECK_EQ_INT(token(b), 0);
    CHECK_EQ_INT(t.refresh_token_len, TK_TOKEN_IN_MAX);
    tok[TK_TOKEN_IN_MAX] = 't';
    tok[TK_TOKEN_IN_MAX + 1] = '\0';
    snprintf(b, sizeof b, "grant_type=refresh_token&refresh_token=%s", tok);
    T_REFUSED(b, TK_OAUTH_INVALID_REQUEST);
}

static void test_token_exchange(void)
{
    CHECK_EQ_INT(token(TE SUBJ "&actor_token=tkd_at_y&actor_token_type=" AT
                               "&requested_token_type=" AT "&scope=read&audience=mcp-b"
                               "&resource=https%3A%2F%2Fb%2F"),
                 0);
    CHECK_EQ_INT(t.grant, TK_OAUTH_GRANT_TOKEN_EXCHANGE);
    CHECK_EQ_INT(t.subject_token_len, 8);
    CHECK(memcmp(t.subject_token, "tkd_at_x", 8) == 0);
    CHECK(t.has_actor_token);
    CHECK_EQ_INT(t.actor_token_len, 8);
    CHECK(t.has_audience && t.has_scope && t.has_resource);
    CHECK_EQ_STR(t.audience, "mcp-b");
    CHECK_EQ_INT(token(TE SUBJ), 0);
    CHECK(!t.has_actor_token && !t.has_audience && !t.has_scope && !t.has_resource);
    CHECK_EQ_INT(t.actor_token_len, 0);

    T_REFUSED(TE, TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE "&subject_token=x", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE "&subject_token_type=" AT, TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE "&subject_token=&subject_token_type=" AT, TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE "&subject_token=x&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type"
                 "%3Arefresh_token",
              TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE "&subject_token=x&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type"
                 "%3Aid_token",
              TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE SUBJ "&actor_token=y", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE SUBJ "&actor_token_type=" AT, TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE SUBJ "&actor_token=&actor_token_type=" AT, TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE SUBJ "&actor_token=y&actor_token_type=urn%3Ax", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE SUBJ "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type"
                      "%3Arefresh_token",
              TK_OAUTH_INVALID_REQUEST);
    T_REFUSED(TE SUBJ "&audience=", TK_OAUTH_INVALID_TARGET);
    T_REFUSED(TE SUBJ "&audience=a%0Ab", TK_OAUTH_INVALID_TARGET);
    T_REFUSED(TE SUBJ "&audience=a&audience=b", TK_OAUTH_INVALID_TARGET);
    T_REFUSED(TE SUBJ "&audience=a&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb",
              TK_OAUTH_INVALID_TARGET);
    T_REFUSED(TE SUBJ "&scope=%20", TK_OAUTH_INVALID_SCOPE);
    T_REFUSED(TE SUBJ "&resource=b", TK_OAUTH_INVALID_TARGET);
}

static void test_token_grant_types(void)
{
    T_REFUSED("", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("code=c", TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=client_credentials", TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
    CHECK(strstr(e.description, "agents act for a person, never as service accounts") != NULL);
    T_REFUSED("grant_type=password&username=u&password=p", TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
    CHECK(strstr(e.description, "password") != NULL);
    T_REFUSED("grant_type=implicit", TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
    T_REFUSED("grant_type=", TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
    T_REFUSED("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
              TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
    T_REFUSED("grant_type=refresh_token&grant_type=refresh_token&refresh_token=r",
              TK_OAUTH_INVALID_REQUEST);
    T_REFUSED("grant_type=refresh%ZZ", TK_OAUTH_INVALID_REQUEST);
    /* a grant_type longer than any we know does not fit its buffer */
    char b[256], g[TK_OAUTH_WORD_MAX + 2];
    memset(g, 'g', sizeof g);
    g[TK_OAUTH_WORD_MAX + 1] = '\0';
    snprintf(b, sizeof b, "grant_type=%s", g);
    T_REFUSED(b, TK_OAUTH_INVALID_REQUEST);
    g[TK_OAUTH_WORD_MAX] = '\0';
    snprintf(b, sizeof b, "grant_type=%s", g);
    T_REFUSED(b, TK_OAUTH_UNSUPPORTED_GRANT_TYPE);
    /* the parameters of other grants are ignored, even when malformed */
    CHECK_EQ_INT(token("grant_type=refresh_token&refresh_token=r&code_verifier=x&audience=&"
                       "actor_token=y"),
                 0);
    CHECK(!t.has_actor_token && !t.has_audience);
    CHECK_EQ_INT(token("grant_type=authorization_code&code=c&code_verifier=" VER
                       "&scope=%20bad&subject_token_type=x"),
                 0);
    CHECK(!t.has_scope);
    /* NULL body with length 0 */
    e = (tk_oauth_err){0};
    CHECK_EQ_INT(tk_oauth_token_parse(NULL, 0, &t, &e), TK_E_INVALID);
    CHECK_EQ_INT(e.code, TK_OAUTH_INVALID_REQUEST);
    CHECK_EQ_INT(tk_oauth_authz_parse(NULL, 0, &a, &e), TK_E_INVALID);
    CHECK(!a.redirectable);
}

int main(void)
{
    RUN(test_authz_ok);
    RUN(test_authz_page_errors);
    RUN(test_authz_redirect_errors);
    RUN(test_authz_login_hint);
    RUN(test_token_code);
    RUN(test_token_refresh);
    RUN(test_token_exchange);
    RUN(test_token_grant_types);
    return check_report();
}
