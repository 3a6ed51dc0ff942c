/*
 * Unit tests for the endpoint table (src/endpoints/routes.c), walked row by
 * row: the table is well formed (the last row, and only it, takes every
 * other path; paths unique and reachable; labels unique, plain and the ones
 * dashboards know; methods and body flags consistent; every row that defers
 * has a completion; every row index fits the deferred-request tag), and the
 * real app routes by it: each row's path reaches that row (counted under
 * its label on /metrics), a method it does not take gets 405 with the Allow
 * header its bits say, and a deferred revocation comes back through its
 * row's completion and is counted under its label.
 */
#include "check.h"

#include "app_fixture.h"

/* The metric labels of today's dashboards, in the order /metrics lists them. */
static const char *const known_labels[] = {
    "introspect",
    "revoke",
    "metadata",
    "healthz",
    "metrics",
    "forward_auth",
    "resource_metadata",
    "backchannel_logout",
    "ssf_events",
    "webhook",
    "register",
    "authorize",
    "login",
    "login_callback",
    "logout",
    "consent",
    "token",
    "jwks",
    "other",
};

/* Rows whose handler submits to the committer and defers its answer. */
static const char *const deferring[] = {"revoke",   "backchannel_logout", "ssf_events", "webhook",
                                        "register", "authorize",          "login",      "consent",
                                        "token",    "login_callback",     "logout"};

static const ep_route *by_label(const char *label)
{
    for (unsigned i = 0; i < ep_nroutes; i++) {
        if (strcmp(ep_routes[i].label, label) == 0) {
            return &ep_routes[i];
        }
    }
    return NULL;
}

static bool covers(const ep_route *pr, const char *path)
{
    size_t n = strlen(pr->path);
    return strncmp(path, pr->path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void test_table_shape(void)
{
    CHECK(ep_nroutes >= 1 && ep_nroutes <= TK_ROUTES_MAX);
    CHECK(ep_routes[ep_nroutes - 1].path == NULL);
    CHECK(ep_routes[ep_nroutes - 1].methods == EP_ANY);
    CHECK(ep_routes[ep_nroutes - 1].complete == NULL);
    for (unsigned i = 0; i < ep_nroutes; i++) {
        const ep_route *a = &ep_routes[i];
        CHECK(a->handle != NULL);
        CHECK(a->label != NULL && a->label[0] != '\0');
        CHECK(a->methods != 0);
        for (const char *c = a->label; *c; c++) { /* a label value that needs no escaping */
            CHECK((*c >= 'a' && *c <= 'z') || *c == '_');
        }
        if (i + 1 < ep_nroutes) {
            CHECK(a->path != NULL && a->path[0] == '/');
        }
        /* A body is read only by rows that take a method carrying one. */
        if (a->body) {
            CHECK(a->methods & EP_POST);
        }
        if (a->methods == EP_GET) {
            CHECK(!a->body);
        }
        for (unsigned k = i + 1; k < ep_nroutes; k++) {
            const ep_route *b = &ep_routes[k];
            CHECK(strcmp(a->label, b->label) != 0);
            if (a->path != NULL && b->path != NULL) {
                CHECK(strcmp(a->path, b->path) != 0);
                /* A prefix row inside another prefix row would never be reached. */
                if (a->prefix && b->prefix) {
                    CHECK(!covers(a, b->path) && !covers(b, a->path));
                }
            }
        }
    }
}

static void test_labels_are_todays(void)
{
    CHECK_EQ_INT(ep_nroutes, TK_ARRAY_LEN(known_labels));
    for (unsigned i = 0; i < ep_nroutes && i < TK_ARRAY_LEN(known_labels); i++) {
        CHECK_EQ_STR(ep_routes[i].label, known_labels[i]);
    }
}

static void test_deferring_rows_complete(void)
{
    for (size_t i = 0; i < TK_ARRAY_LEN(deferring); i++) {
        const ep_route *rt = by_label(deferring[i]);
        CHECK(rt != NULL && rt->complete != NULL);
    }
    /* And a completion only where a handler defers. */
    unsigned with_completion = 0;
    for (unsigned i = 0; i < ep_nroutes; i++) {
        with_completion += ep_routes[i].complete != NULL;
    }
    CHECK_EQ_INT(with_completion, TK_ARRAY_LEN(deferring));
}

static void test_tag_bound(void)
{
    CHECK(TK_ROUTES_MAX <= (1u << EP_TAG_ROW_BITS));
    static const uint64_t starts[] = {0, 1000, 123456789012ull, UINT64_MAX - 5000000000ull};
    for (unsigned row = 0; row < TK_ROUTES_MAX; row++) {
        for (size_t s = 0; s < TK_ARRAY_LEN(starts); s++) {
            uint32_t tag = ep_tag_make(row, starts[s]);
            CHECK_EQ_INT(ep_tag_row(tag), row);
            /* 1.5 ms later, also across the wrap of the time bits. */
            CHECK_EQ_INT(ep_tag_elapsed_ns(tag, starts[s] + 1500000), 1500000);
        }
    }
    uint32_t wrap = ep_tag_make(3, (uint64_t)EP_TAG_TIME_MASK * 1000);
    CHECK_EQ_INT(ep_tag_row(wrap), 3);
    CHECK_EQ_INT(ep_tag_elapsed_ns(wrap, ((uint64_t)EP_TAG_TIME_MASK + 2) * 1000), 2000);
}

/* ---- Routing through the real app ------------------------------------------------ */

static char raw[2048];

static const char *request(const char *method, const char *path, const char *body)
{
    snprintf(raw, sizeof raw,
             "%s %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             method, path, strlen(body), body);
    return raw;
}

static uint64_t count_of(unsigned row)
{
    uint64_t n = 0;
    for (size_t s = 0; s < EP_STATUSES; s++) {
        n += fx_w->m.requests[row][s];
    }
    return n;
}

/* A path the row answers: its own, or one below it for a prefix row. */
static const char *path_of(const ep_route *rt, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", rt->path ? rt->path : "/no/such/endpoint", rt->prefix ? "/x/y" : "");
    return buf;
}

static void test_every_row_is_reached(void)
{
    uint64_t cookie = 1;
    for (unsigned i = 0; i < ep_nroutes; i++) {
        const ep_route *rt = &ep_routes[i];
        char path[128];
        path_of(rt, path, sizeof path);
        const char *method = rt->methods & EP_METHOD(TK_HTTP_POST) ? "POST" : "GET";
        fx_listener = rt->listener;
        uint64_t before = count_of(i);
        uint32_t tag = 0;
        int status = fx_request_tagged(request(method, path, "token=x"), 1, cookie++, &tag);
        CHECK(status != 0); /* unknown tokens and unsigned events never defer */
        if (status == 405) {
            fprintf(stderr, "row %s: 405 for its own method\n", rt->label);
        }
        CHECK(status != 405);
        CHECK_EQ_INT(count_of(i), before + 1);
        if (rt->prefix) { /* the prefix itself, and nothing that only starts like it */
            before = count_of(i);
            fx_request(request(method, rt->path, ""), 1, cookie++);
            CHECK_EQ_INT(count_of(i), before + 1);
            snprintf(path, sizeof path, "%sx", rt->path);
            before = count_of(i);
            fx_request(request(method, path, ""), 1, cookie++);
            CHECK_EQ_INT(count_of(i), before);
        }
        /* On any other listener the row does not exist: 404, counted as other. */
        fx_listener =
            rt->listener == TK_APP_LISTENER_MAIN ? TK_APP_LISTENER_METRICS : TK_APP_LISTENER_MAIN;
        before = count_of(ep_nroutes - 1);
        if (rt->path != NULL) {
            CHECK_EQ_INT(fx_request_tagged(request(method, path, "token=x"), 1, cookie++, &tag),
                         404);
            CHECK_EQ_INT(count_of(ep_nroutes - 1), before + 1);
        }
        fx_listener = TK_APP_LISTENER_MAIN;
    }
}

static void test_methods_and_allow(void)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST", "PUT",
                                          "DELETE", "OPTIONS", "PATCH"};
    static const enum tk_http_method ids[] = {TK_HTTP_GET,  TK_HTTP_HEAD,   TK_HTTP_POST,
                                              TK_HTTP_PUT,  TK_HTTP_DELETE, TK_HTTP_OPTIONS,
                                              TK_HTTP_PATCH};
    uint64_t cookie = 1000;
    for (unsigned i = 0; i < ep_nroutes; i++) {
        const ep_route *rt = &ep_routes[i];
        char path[128];
        path_of(rt, path, sizeof path);
        fx_listener = rt->listener;
        for (size_t m = 0; m < TK_ARRAY_LEN(methods); m++) {
            uint32_t tag = 0;
            int status = fx_request_tagged(request(methods[m], path, ""), 2, cookie++, &tag);
            bool allowed = rt->methods & EP_METHOD(ids[m]);
            CHECK(allowed ? status != 405 : status == 405);
            if (!allowed && status == 405) {
                const char *want = rt->methods == EP_POST  ? "POST"
                                   : rt->methods == EP_GET ? "GET, HEAD"
                                                           : "GET, HEAD, POST";
                CHECK_EQ_STR(fx_header("Allow"), want);
                CHECK_EQ_STR(fx_body(), ids[m] == TK_HTTP_HEAD
                                            ? "" /* HEAD: the head only */
                                            : "{\"error\":\"method_not_allowed\"}");
            }
        }
        fx_listener = TK_APP_LISTENER_MAIN;
    }
}

static void test_metrics_list_every_label(void)
{
    /* test_every_row_is_reached counted one request on every row. */
    fx_listener = TK_APP_LISTENER_METRICS;
    CHECK_EQ_INT(fx_request(request("GET", "/metrics", ""), 3, 5000), 200);
    fx_listener = TK_APP_LISTENER_MAIN;
    const char *page = fx_body();
    const char *prev = page;
    for (unsigned i = 0; i < ep_nroutes; i++) {
        char series[96];
        snprintf(series, sizeof series, "tokend_requests_total{endpoint=\"%s\",",
                 ep_routes[i].label);
        const char *at = strstr(page, series);
        CHECK(at != NULL);
        CHECK(at == NULL || at >= prev); /* in table order */
        prev = at != NULL ? at : prev;
    }
}

/* A revocation waits for its commit: the tag names the revoke row, the
 * completion answers 200 and the request is counted under "revoke". */
static void test_deferred_completion(void)
{
    unsigned row = (unsigned)(by_label("revoke") - ep_routes);
    char body[256];
    snprintf(body, sizeof body, "token=%s&client_id=%s&client_secret=%s", FX_TOKEN, FX_AGENT,
             FX_AGENT_S);
    uint64_t before = count_of(row);
    uint32_t tag = 0;
    int status = fx_request_tagged(request("POST", "/revoke", body), 4, 6000, &tag);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(ep_tag_row(tag), row);
    CHECK_EQ_INT(count_of(row), before); /* not counted until answered */
    int fd = fx_hooks.wake_fd(fx_w);
    CHECK(fd >= 0);
    tk_server_done done[4];
    size_t n = 0;
    for (int tries = 0; tries < 200 && n == 0; tries++) { /* at most 2 s */
        uint64_t v;
        if (read(fd, &v, sizeof v) < 0) {
            usleep(10000);
        }
        n = fx_hooks.wake(fx_w, done, 4);
    }
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_INT(done[0].cookie, 6000);
        fx_out = (tk_outbuf){.buf = fx_outbuf, .cap = sizeof fx_outbuf};
        fx_hooks.respond(fx_w, tag, &done[0], &fx_out);
        CHECK(fx_out.len > 12 && memcmp(fx_out.buf, "HTTP/1.1 200", 12) == 0);
        CHECK_EQ_INT(count_of(row), before + 1);
        CHECK_EQ_INT(fx_w->m.revoke_revoked, 1);
    }
}

int main(void)
{
    RUN(test_table_shape);
    RUN(test_labels_are_todays);
    RUN(test_deferring_rows_complete);
    RUN(test_tag_bound);
    fx_open(0, true);
    RUN(test_every_row_is_reached);
    RUN(test_methods_and_allow);
    RUN(test_metrics_list_every_label);
    RUN(test_deferred_completion);
    fx_close();
    return check_report();
}
