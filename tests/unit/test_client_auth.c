/*
 * Unit tests for client authentication at /introspect and /revoke (RFC 6749
 * §2.3.1, issue 9 items 5 and 6), over the whole class: every Authorization
 * header kind {none, Basic good, Basic bad, Basic malformed, Bearer, another
 * scheme, empty} times every form {no credentials, good, bad, client_id
 * only}, on both endpoints. Each case asserts the status, the error code,
 * the WWW-Authenticate header (the Basic challenge only when the client did
 * not authenticate in the form) and what the rate limiter was charged: the
 * worker's table is compared key for key with a table of the same seed
 * that was charged by hand with the expected source address and client id.
 *
 * The Basic credentials name FX_RS and the form's name FX_RS2, so a charge
 * to the wrong client id shows.
 */
#include "check.h"

#include "app_fixture.h"

enum hdr { H_NONE, H_BASIC_GOOD, H_BASIC_BAD, H_BASIC_MALFORMED, H_BEARER, H_OTHER, H_EMPTY, H_N };
enum frm { F_NONE, F_GOOD, F_BAD, F_ID_ONLY, F_N };

static const char *const hdr_name[H_N] = {"none",   "basic-good", "basic-bad", "basic-malformed",
                                          "bearer", "other",      "empty"};
static const char *const frm_name[F_N] = {"none", "good", "bad", "id-only"};

/* base64("tkc_rs:tkd_cs_rs_secret") and base64("tkc_rs:wrong") */
#define BASIC_GOOD "Basic dGtjX3JzOnRrZF9jc19yc19zZWNyZXQ="
#define BASIC_BAD  "Basic dGtjX3JzOndyb25n"

static const char *header_line(enum hdr h)
{
    switch (h) {
    case H_BASIC_GOOD:
        return "Authorization: " BASIC_GOOD "\r\n";
    case H_BASIC_BAD:
        return "Authorization: " BASIC_BAD "\r\n";
    case H_BASIC_MALFORMED:
        return "Authorization: Basic !!!notbase64\r\n";
    case H_BEARER:
        return "Authorization: Bearer tkd_at_someaccesstoken\r\n";
    case H_OTHER:
        return "Authorization: Digest username=\"tkc_rs\", realm=\"x\"\r\n";
    case H_EMPTY:
        return "Authorization: \r\n";
    default:
        return "";
    }
}

static const char *form_creds(enum frm f)
{
    switch (f) {
    case F_GOOD:
        return "&client_id=" FX_RS2 "&client_secret=" FX_RS2_SEC;
    case F_BAD:
        return "&client_id=" FX_RS2 "&client_secret=wrong";
    case F_ID_ONLY:
        return "&client_id=" FX_RS2;
    default:
        return "";
    }
}

typedef struct expect {
    int status;
    const char *error;  /* NULL: a 200 */
    bool challenge;     /* WWW-Authenticate: Basic … on the 401 */
    bool charge_peer;   /* the source address was charged a failure */
    const char *charge; /* and this client id (NULL: none) */
} expect;

#define CHALLENGE "Basic realm=\"" FX_ISSUER "\", error=\"invalid_client\""

/* The decided semantics, case by case. */
static expect expected(enum hdr h, enum frm f)
{
    bool basic = h == H_BASIC_GOOD || h == H_BASIC_BAD || h == H_BASIC_MALFORMED;
    if (basic && f != F_NONE) { /* two methods in one request (§2.3) */
        return (expect){400, "invalid_request", false, false, NULL};
    }
    switch (h) {
    case H_BASIC_GOOD:
        return (expect){200, NULL, false, false, NULL};
    case H_BASIC_BAD:
        return (expect){401, "invalid_client", true, true, FX_RS};
    case H_BASIC_MALFORMED:
        return (expect){401, "invalid_client", true, true, NULL};
    default:
        break;
    }
    /* No header, an empty one, or another scheme: not client
     * authentication; the form decides. */
    switch (f) {
    case F_GOOD:
        return (expect){200, NULL, false, false, NULL};
    case F_BAD:
        return (expect){401, "invalid_client", false, true, FX_RS2};
    case F_ID_ONLY:
        return (expect){401, "invalid_client", false, true, NULL};
    default: /* nothing at all: the challenge says how to authenticate */
        return (expect){401, "invalid_client", true, true, NULL};
    }
}

static const uint8_t PEER = 7;

/* The keys of a rate-limit table: which buckets were charged. */
static bool same_keys(const ep_ratelimit *a, const ep_ratelimit *b)
{
    for (size_t i = 0; i < TK_RL_SLOTS; i++) {
        if (a->e[i].key != b->e[i].key) {
            return false;
        }
    }
    return true;
}

static uint64_t fixed_ms(void)
{
    return 1000;
}

static unsigned used_keys(const ep_ratelimit *rl)
{
    unsigned n = 0;
    for (size_t i = 0; i < TK_RL_SLOTS; i++) {
        n += rl->e[i].key != 0;
    }
    return n;
}

static ep_ratelimit want_rl;

static void one_case(const char *path, enum hdr h, enum frm f, uint64_t cookie)
{
    static char raw[1024];
    char body[256];
    snprintf(body, sizeof body, "token=tkd_at_unknownunknownunknown%s", form_creds(f));
    snprintf(raw, sizeof raw,
             "POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, header_line(h), strlen(body), body);
    uint64_t seed = 0x5eed;
    ep_rl_init(&fx_w->rl, seed, 100);
    ep_rl_init(&want_rl, seed, 100);
    expect e = expected(h, f);
    int status = fx_request(raw, PEER, cookie);
    bool ok = status == e.status;
    if (e.error != NULL) {
        char want[64];
        snprintf(want, sizeof want, "{\"error\":\"%s\"}", e.error);
        ok = ok && strcmp(fx_body(), want) == 0;
    }
    ok = ok && strcmp(fx_header("WWW-Authenticate"), e.challenge ? CHALLENGE : "") == 0;
    if (e.charge_peer) {
        uint8_t peer[16] = {0};
        memcpy(peer, fx_req.peer, 16);
        tk_slice id = e.charge ? tk_slice_from_str(e.charge) : TK_SLICE_NULL;
        ep_rl_fail(&want_rl, peer, id, fx_w->now, fixed_ms);
    }
    bool charged_ok = same_keys(&fx_w->rl, &want_rl);
    CHECK_EQ_INT(used_keys(&want_rl), e.charge_peer ? (e.charge ? 2 : 1) : 0);
    if (!ok || !charged_ok) {
        fprintf(stderr, "%s header=%s form=%s: got %d %s [www: %s], charged %u keys%s\n", path,
                hdr_name[h], frm_name[f], status, fx_body(), fx_header("WWW-Authenticate"),
                used_keys(&fx_w->rl), charged_ok ? "" : " (not the expected ones)");
    }
    CHECK(ok);
    CHECK(charged_ok);
}

static void test_matrix(void)
{
    static const char *const paths[] = {"/introspect", "/revoke"};
    uint64_t cookie = 1;
    for (size_t p = 0; p < TK_ARRAY_LEN(paths); p++) {
        for (int h = 0; h < H_N; h++) {
            for (int f = 0; f < F_N; f++) {
                one_case(paths[p], (enum hdr)h, (enum frm)f, cookie++);
            }
        }
    }
}

/* The same header again on the same connection is answered from the
 * per-connection cache; form credentials next to it still make it a 400, and
 * a Bearer header never enters the cache. */
static void test_cache_keeps_the_rules(void)
{
    static char raw[1024];
    const uint64_t cookie = 77;
    for (int round = 0; round < 2; round++) {
        snprintf(raw, sizeof raw,
                 "POST /introspect HTTP/1.1\r\nHost: t\r\nAuthorization: " BASIC_GOOD
                 "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n"
                 "token=abc");
        CHECK_EQ_INT(fx_request(raw, PEER, cookie), 200);
    }
    snprintf(raw, sizeof raw,
             "POST /introspect HTTP/1.1\r\nHost: t\r\nAuthorization: " BASIC_GOOD
             "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\n"
             "token=abc&client_id=tkc_rs");
    CHECK_EQ_INT(fx_request(raw, PEER, cookie), 400);
    snprintf(raw, sizeof raw,
             "POST /introspect HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer abc\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n"
             "token=abc");
    CHECK_EQ_INT(fx_request(raw, PEER, cookie), 401);
    CHECK_EQ_STR(fx_header("WWW-Authenticate"), CHALLENGE);
}

/* The media type must be the form type exactly (either case), alone or
 * followed by a parameter, SP or HTAB; a longer or shorter type, or one
 * followed by any other byte, is a 400. */
static void test_content_type(void)
{
    static const struct {
        const char *type;
        int status;
    } cases[] = {
        {"application/x-www-form-urlencoded", 200},
        {"APPLICATION/X-WWW-FORM-URLENCODED", 200},
        {"application/x-www-form-urlencoded; charset=utf-8", 200},
        {"application/x-www-form-urlencoded ;charset=utf-8", 200},
        {"application/x-www-form-urlencoded\t", 200},
        {"application/x-www-form-urlencoded;", 200},
        {"application/x-www-form-urlencodedx", 400},
        {"application/x-www-form-urlencode", 400},
        {"application/x-www-form-urlencode;", 400},
        {"application/x-www-form-urlencoded,", 400},
        {"application/x-www-form_urlencoded", 400},
        {"application/x-www-form-urlencodeD", 200},
        {"application/x-www-form-urlencodedd; x", 400},
        {"text/plain", 400},
        {"", 400},
    };
    static char raw[1024];
    for (size_t i = 0; i < TK_ARRAY_LEN(cases); i++) {
        snprintf(raw, sizeof raw,
                 "POST /introspect HTTP/1.1\r\nHost: t\r\nAuthorization: " BASIC_GOOD
                 "\r\nContent-Type: %s\r\nContent-Length: 9\r\n\r\ntoken=abc",
                 cases[i].type);
        int status = fx_request(raw, PEER, 500 + i);
        if (status != cases[i].status) {
            fprintf(stderr, "Content-Type [%s]: got %d\n", cases[i].type, status);
        }
        CHECK_EQ_INT(status, cases[i].status);
    }
}

/* The server's closed hook wipes the connection's remembered header (it
 * holds the secret), and only that connection's: a later connection in the
 * same slot has another generation. */
static void test_cache_wiped_when_connection_closes(void)
{
    static char raw[1024];
    const uint32_t slot = 91;
    const uint64_t cookie = (5ull << 32) | slot;
    snprintf(raw, sizeof raw,
             "POST /introspect HTTP/1.1\r\nHost: t\r\nAuthorization: " BASIC_GOOD
             "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n"
             "token=abc");
    CHECK_EQ_INT(fx_request(raw, PEER, cookie), 200);
    const ep_auth_entry *e = &fx_w->auth_cache[slot % TK_AUTH_CACHE_SLOTS];
    CHECK(e->used && e->cookie == cookie && e->hdr_len == strlen(BASIC_GOOD));
    fx_hooks.closed(fx_w, (6ull << 32) | slot); /* another connection */
    CHECK(e->used);
    fx_hooks.closed(fx_w, cookie);
    CHECK(!e->used);
    unsigned char any = 0;
    for (size_t i = 0; i < sizeof e->hdr; i++) {
        any |= (unsigned char)e->hdr[i];
    }
    CHECK_EQ_INT(any, 0);
    CHECK_EQ_INT(e->hdr_len, 0);
    CHECK_EQ_INT(fx_request(raw, PEER, cookie), 200); /* the full path again */
    CHECK(e->used);
}

int main(void)
{
    fx_open(100, false);
    RUN(test_matrix);
    RUN(test_content_type);
    RUN(test_cache_wiped_when_connection_closes);
    RUN(test_cache_keeps_the_rules);
    fx_close();
    return check_report();
}
