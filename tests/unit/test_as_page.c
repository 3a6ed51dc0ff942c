/*
 * page.c: untrusted text is escaped in element content and attribute
 * values (the five characters HTML gives meaning to), trusted markup goes
 * through as written, and an overflowing page is refused rather than cut.
 */
#include "check.h"

#include "../../src/endpoints/endpoints_int.h"

static void test_escape(void)
{
    char buf[256];
    ep_html h = {.buf = buf, .cap = sizeof buf};
    ep_html_raw(&h, "<p title=\"");
    ep_html_text(&h, TK_SLICE_LIT("\"><script>alert('x')</script>&amp;"));
    ep_html_raw(&h, "\">");
    CHECK(!h.overflow);
    buf[h.len] = '\0';
    CHECK_EQ_STR(buf, "<p title=\"&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
                      "&amp;amp;\">");
    /* Every byte other than the five passes unchanged (UTF-8 included). */
    h = (ep_html){.buf = buf, .cap = sizeof buf};
    ep_html_text(&h, TK_SLICE_LIT("caf\xc3\xa9 a=b;c"));
    buf[h.len] = '\0';
    CHECK_EQ_STR(buf, "caf\xc3\xa9 a=b;c");
}

static void test_overflow(void)
{
    char buf[16];
    ep_html h;
    ep_html_begin(&h, buf, sizeof buf, "title"); /* the head alone is longer */
    CHECK(h.overflow);
    size_t len = h.len;
    ep_html_text(&h, TK_SLICE_LIT("x"));
    CHECK(h.overflow && h.len == len); /* sticky: nothing more is written */
    char big[8192];
    ep_html_begin(&h, big, sizeof big, "<t>");
    CHECK(!h.overflow);
    big[h.len] = '\0';
    CHECK(strstr(big, "<title>&lt;t&gt;</title>") != NULL);
    CHECK(strstr(big, "<script") == NULL);
}

int main(void)
{
    RUN(test_escape);
    RUN(test_overflow);
    return check_report();
}
