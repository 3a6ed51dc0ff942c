"""The outbound thread (src/outbound) against real loopback HTTP(S) servers,
through tests/unit/outbound_probe.c: each result class (ok, HTTP error,
timeout, connection refused, garbage, a body over the cap, a redirect not
followed, queue full, TLS verification), both delivery paths (a worker's
completion list + eventfd, and a callback on the outbound thread), and the
statistics /metrics prints."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_fixture as fx  # noqa: E402

PROBE = os.environ.get("OUTBOUND_PROBE", "")


def probe(*args, timeout=60):
    p = subprocess.run([PROBE] + [str(a) for a in args], capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("probe failed (%d): %s" % (p.returncode, p.stderr.decode()))
    lines = [json.loads(x) for x in p.stdout.decode().splitlines() if x.strip()]
    stats = lines[-1]
    assert "stats" in stats, lines
    by_i = {}
    for x in lines[:-1]:
        assert x["i"] not in by_i, "request %d completed twice" % x["i"]
        by_i[x["i"]] = x
    return by_i, stats, p.stderr.decode()


class OutboundCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not PROBE or not os.access(PROBE, os.X_OK):
            raise unittest.SkipTest("OUTBOUND_PROBE not set")
        cls.dir = tempfile.mkdtemp(prefix="tokend-outbound-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.srv = fx.FixtureServer()
        cls.addClassCleanup(cls.srv.close)
        s = cls.srv
        s.set("/ok", fx.Route(200, b'{"hello": "world"}',
                              {"Content-Type": "application/json",
                               "Cache-Control": "public, max-age=123"}))
        s.set("/slow", fx.Route(200, b"late", kind="slow", delay=3.0))
        s.set("/garbage", fx.Route(kind="garbage"))
        s.set("/close", fx.Route(kind="close"))
        s.set("/huge", fx.Route(kind="huge", size=2 * 1024 * 1024))
        s.set("/huge-nolength", fx.Route(kind="huge", size=2 * 1024 * 1024, length=False))
        s.set("/fits", fx.Route(kind="huge", size=60000))
        s.set("/redirect", fx.Route(302, b"", {"Location": "/ok"}))
        s.set("/loop", fx.Route(302, b"", {"Location": "/loop"}))
        s.set("/echo", fx.Route(kind="echo"))
        s.set("/500", fx.Route(500, b"oops"))

    def run_one(self, path_or_url, *opts):
        url = path_or_url if "://" in path_or_url else self.srv.url(path_or_url)
        by_i, stats, err = probe(*opts, url)
        self.assertEqual(list(by_i), [0])
        return by_i[0], stats, err


class TestResults(OutboundCase):
    def test_success_both_delivery_paths(self):
        for mode in ((), ("--callback",)):
            r, stats, _ = self.run_one("/ok", *mode)
            self.assertEqual(r["result"], "ok", r)
            self.assertEqual(r["status"], 200)
            self.assertEqual(json.loads(r["body"]), {"hello": "world"})
            self.assertEqual(r["cache_control"], "public, max-age=123")
            self.assertEqual(stats["stats"], {"other/ok": 1})
            self.assertEqual(stats["count"], 1)

    def test_many_requests_spread_over_workers(self):
        urls = [self.srv.url("/ok") for _ in range(40)]
        by_i, stats, _ = probe("--workers", 4, "--transfers", 3, "--queue", 64, *urls)
        self.assertEqual(sorted(by_i), list(range(40)))
        self.assertTrue(all(r["result"] == "ok" for r in by_i.values()))
        self.assertEqual(stats["stats"], {"other/ok": 40})

    def test_http_errors(self):
        r, stats, err = self.run_one("/missing")
        self.assertEqual((r["result"], r["status"], r["body"]), ("http_error", 404, ""))
        self.assertEqual(stats["stats"], {"other/http_error": 1})
        self.assertIn("result=http_error status=404", err)
        r, _, _ = self.run_one("/500")
        self.assertEqual((r["result"], r["status"]), ("http_error", 500))

    def test_timeout(self):
        t0 = time.monotonic()
        r, stats, err = self.run_one("/slow", "--timeout", 500, "--connect-timeout", 200)
        self.assertEqual(r["result"], "timeout", r)
        self.assertLess(time.monotonic() - t0, 2.5)
        self.assertEqual(stats["stats"], {"other/timeout": 1})
        self.assertIn("result=timeout", err)

    def test_connection_refused(self):
        r, stats, err = self.run_one("http://127.0.0.1:%d/x" % fx.closed_port())
        self.assertEqual((r["result"], r["status"]), ("connect", 0))
        self.assertEqual(stats["stats"], {"other/connect": 1})
        self.assertIn("result=connect", err)

    def test_unresolvable_name(self):
        r, _, _ = self.run_one("https://no-such-host.invalid/jwks")
        self.assertEqual(r["result"], "connect", r)

    def test_garbage_and_nothing(self):
        for path in ("/garbage", "/close"):
            r, stats, _ = self.run_one(path)
            self.assertEqual(r["result"], "protocol", (path, r))
            self.assertEqual(r["body"], "")

    def test_body_over_the_cap(self):
        for path in ("/huge", "/huge-nolength"):
            t0 = time.monotonic()
            r, stats, err = self.run_one(path, "--max-bytes", 65536)
            self.assertEqual(r["result"], "too_big", (path, r))
            self.assertEqual((r["len"], r["body"]), (0, ""))
            self.assertEqual(stats["stats"], {"other/too_big": 1})
            self.assertIn("result=too_big", err)
            self.assertLess(time.monotonic() - t0, 10)
        r, _, _ = self.run_one("/fits", "--max-bytes", 65536)
        self.assertEqual((r["result"], r["len"]), ("ok", 60000))

    def test_redirect_not_followed_unless_asked(self):
        before = self.srv.count("/ok")
        r, stats, err = self.run_one("/redirect")
        self.assertEqual((r["result"], r["status"]), ("redirect", 302))
        self.assertEqual(self.srv.count("/ok"), before)  # never fetched
        self.assertEqual(stats["stats"], {"other/redirect": 1})
        self.assertIn("redirect not followed", err)
        r, _, _ = self.run_one("/redirect", "--follow")
        self.assertEqual((r["result"], r["status"]), ("ok", 200))
        r, _, _ = self.run_one("/loop", "--follow")
        self.assertEqual(r["result"], "redirect")
        self.assertLessEqual(self.srv.count("/loop"), 8)

    def test_post(self):
        r, _, _ = self.run_one("/echo", "--post", "grant_type=authorization_code&code=abc")
        self.assertEqual((r["result"], r["body"]), ("ok", "grant_type=authorization_code&code=abc"))
        _, _, hdrs, body = self.srv.requests[-1]
        self.assertEqual(hdrs.get("Content-Type"), "application/x-www-form-urlencoded")

    def test_only_http_and_https(self):
        for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "dict://127.0.0.1:1/"):
            by_i, stats, _ = probe(url)
            self.assertEqual(by_i[0], {"i": 0, "submit": tk_strerror_invalid()}, url)
            self.assertEqual(stats["count"], 0)

    def test_queue_full_is_immediate(self):
        urls = [self.srv.url("/slow")] * 5
        t0 = time.monotonic()
        by_i, stats, err = probe("--queue", 2, "--transfers", 1, "--timeout", 400,
                                 "--connect-timeout", 200, *urls)
        refused = [i for i, r in by_i.items() if "submit" in r]
        self.assertEqual(refused, [2, 3, 4])
        for i in (0, 1):
            self.assertEqual(by_i[i]["result"], "timeout")
        self.assertEqual(stats["stats"], {"other/queue_full": 3, "other/timeout": 2})
        self.assertIn("outbound_queue_full", err)
        self.assertLess(time.monotonic() - t0, 3.0)  # nobody waited for a slot

    def test_bounded_concurrency(self):
        """transfers=2: four 1 s answers take about two seconds, not one."""
        self.srv.set("/second", fx.Route(200, b"x", kind="slow", delay=1.0))
        t0 = time.monotonic()
        by_i, _, _ = probe("--transfers", 2, *([self.srv.url("/second")] * 4))
        took = time.monotonic() - t0
        self.assertTrue(all(r["result"] == "ok" for r in by_i.values()))
        self.assertGreaterEqual(took, 1.9)


def tk_strerror_invalid():
    return "invalid request"


class TestTls(OutboundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = fx.TestCA(cls.dir, "ca")
        cls.other_ca = fx.TestCA(cls.dir, "other")
        cls.tls = fx.FixtureServer(cls.ca.context("idp"))
        cls.addClassCleanup(cls.tls.close)
        cls.tls.set("/jwks", fx.Route(200, b'{"keys": []}', {"Content-Type": "application/json"}))
        cls.wrong_name = fx.FixtureServer(cls.ca.context("wrong", san="DNS:elsewhere.test"))
        cls.addClassCleanup(cls.wrong_name.close)
        cls.wrong_name.set("/jwks", fx.Route(200, b"{}"))

    def test_unknown_ca_refused(self):
        r, stats, err = self.run_one(self.tls.url("/jwks"))
        self.assertEqual((r["result"], r["status"], r["body"]), ("tls", 0, ""))
        self.assertEqual(stats["stats"], {"other/tls": 1})
        self.assertIn("result=tls", err)

    def test_configured_ca_accepted(self):
        r, _, _ = self.run_one(self.tls.url("/jwks"), "--ca", self.ca.cert)
        self.assertEqual((r["result"], r["body"]), ("ok", '{"keys": []}'))

    def test_another_ca_refused(self):
        r, _, _ = self.run_one(self.tls.url("/jwks"), "--ca", self.other_ca.cert)
        self.assertEqual(r["result"], "tls")

    def test_wrong_host_name_refused(self):
        r, _, _ = self.run_one(self.wrong_name.url("/jwks"), "--ca", self.ca.cert)
        self.assertEqual(r["result"], "tls")


if __name__ == "__main__":
    unittest.main()
