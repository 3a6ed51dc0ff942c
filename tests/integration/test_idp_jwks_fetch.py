"""IdP keys fetched from a jwks_uri (src/idp/jwks.c over src/outbound): a
logout token signed by a fetched key is accepted; a rotated key is picked up
without restart on first use; a flood of unknown kids costs the IdP at most
one fetch per interval; a JWKS server that is down, slow, answers an error,
garbage, a huge or an invalid key set leaves the last good keys in force,
with clear log lines and outbound metrics; Cache-Control max-age is obeyed
within the configured bounds; SIGHUP moves to a new jwks_uri.

The JWKS servers are plain http on loopback, which the trust file allows
for loopback hosts only (production jwks_uri values must be https)."""

import os
import re
import signal
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import http_fixture as fx  # noqa: E402
import idp_util as u  # noqa: E402

JWKS = "/realms/acme/protocol/openid-connect/certs"


def jwks_route(*keys, headers=None):
    hdrs = {"Content-Type": "application/jwk-set+json"}
    hdrs.update(headers or {})
    return fx.Route(200, u.json.dumps({"keys": [k.jwk() for k in keys]}), hdrs)


class JwksCase(h.FreshCase):
    @classmethod
    def setUpClass(cls):
        import shutil
        import tempfile
        cls.keydir = tempfile.mkdtemp(prefix="tokend-jwks-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.k1 = u.Key(cls.keydir, "k1", "rsa", "k1")
        cls.k2 = u.Key(cls.keydir, "k2", "p256", "k2")
        cls.file_key = u.Key(cls.keydir, "file", "rsa", "file-1")

    def setUp(self):
        self.srv = fx.FixtureServer()
        self.addCleanup(self.srv.close)
        self.srv.set(JWKS, jwks_route(self.k1))

    def start(self, *args, uri=None, extra_issuer=None, others=()):
        self.config = os.path.join(self.tmpdir(), "idp.json")
        self.issuer = {"issuer": u.ISS, "audience": u.AUD,
                       "jwks_uri": uri or self.srv.url(JWKS),
                       "jwks": {"keys": [self.file_key.jwk()]},
                       "algorithms": ["RS256", "ES256"]}
        if extra_issuer:
            self.issuer.update(extra_issuer)
        u.write_config(self.config, [self.issuer] + list(others))
        self.d = self.daemon(("--idp-config", self.config) + tuple(str(a) for a in args))
        # Runs before the harness's kill: a clean exit (0) with fetches in
        # flight, and no sanitizer abort along the way.
        self.addCleanup(self.d.stop)
        self.w = h.World(self.d)
        return self.d

    def fetched(self, n=1):
        """Wait for the n-th good fetch (its log line)."""
        h.wait_until(lambda: len(re.findall(r"event=jwks_fetched ", self.d.stderr())) >= n,
                     what="jwks_fetched x%d\n%s" % (n, self.d.stderr()[-3000:]))

    def failed(self, n=1):
        h.wait_until(lambda: len(re.findall(r"event=jwks_fetch_failed ", self.d.stderr())) >= n,
                     what="jwks_fetch_failed x%d\n%s" % (n, self.d.stderr()[-3000:]))

    def fail_lines(self, pattern):
        return len(re.findall(r"event=jwks_fetch_failed iss=\"%s\" " % re.escape(u.ISS) + pattern,
                              self.d.stderr()))

    def fails_again(self, pattern, before):
        h.wait_until(lambda: self.fail_lines(pattern) > before,
                     what="a new jwks_fetch_failed %s\n%s" % (pattern, self.d.stderr()[-3000:]))
        return True

    def logout(self, key, sid, alg=None, kid=None):
        alg = alg or ("RS256" if key.kind == "rsa" else "ES256")
        header = {"alg": alg, "typ": "logout+jwt", "kid": kid or key.kid}
        token = u.jws(header, u.logout_claims(sid=sid, sub="alice"), key)
        return token, u.post_logout(self.d, token)

    def session_with_token(self, sid):
        s = u.session(self.d, "alice", idp_sid=sid)
        tok = self.d.issue(s, self.w.a, "read")["access_token"]
        self.assertActive(tok)
        return tok

    def metric(self, name_and_labels):
        m = re.search(re.escape(name_and_labels) + r" (\d+)", self.d.metrics_text())
        return int(m.group(1)) if m else 0


class TestFetchedKeys(JwksCase):
    def test_fetched_key_verifies_and_file_keys_still_do(self):
        self.start()
        self.fetched()
        self.assertEqual(self.srv.count(JWKS), 1)
        method, _, headers, _ = self.srv.requests[0]
        self.assertEqual(method, "GET")
        self.assertIn("application/jwk-set+json", headers.get("Accept", ""))
        tok = self.session_with_token("sid-fetched")
        _, r = self.logout(self.k1, "sid-fetched")
        self.assertEqual(r.status, 200, r)
        self.assertInactive(tok)
        tok = self.session_with_token("sid-file")
        _, r = self.logout(self.file_key, "sid-file")
        self.assertEqual(r.status, 200, r)
        self.assertInactive(tok)
        self.assertEqual(self.metric('tokend_outbound_requests_total{purpose="jwks",result="ok"}'), 1)
        self.assertEqual(
            self.metric('tokend_outbound_request_duration_seconds_count{purpose="jwks"}'), 1)
        self.assertIn('tokend_outbound_request_duration_seconds_bucket{purpose="jwks",le="+Inf"} 1',
                      self.d.metrics_text())
        self.assertTrue(u.grep_log(self.d, r"event=jwks_fetched iss=\"%s\" keys=1" % re.escape(u.ISS)))

    def test_rotated_key_picked_up_on_first_use(self):
        self.start("--jwks-kid-interval", 1)
        self.fetched()
        tok = self.session_with_token("sid-rot")
        self.srv.set(JWKS, jwks_route(self.k2))  # k1 withdrawn, k2 published
        time.sleep(1.1)  # past the kid interval since the start-up fetch
        token, r = self.logout(self.k2, "sid-rot")
        self.assertEqual(r.status, 400, r)  # refused now ...
        self.assertIn(b"being fetched, retry", r.body)
        self.fetched(2)  # ... fetched because of that kid ...
        self.assertEqual(self.srv.count(JWKS), 2)
        r = u.post_logout(self.d, token)  # ... and the retry succeeds
        self.assertEqual(r.status, 200, r)
        self.assertInactive(tok)
        self.session_with_token("sid-old")
        _, r = self.logout(self.k1, "sid-old")  # the withdrawn key no longer verifies
        self.assertEqual(r.status, 400, r)

    def test_flood_of_unknown_kids_is_rate_limited(self):
        interval = 2
        self.start("--jwks-kid-interval", interval)
        self.fetched()
        time.sleep(interval + 0.1)
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 5.0:
            _, r = self.logout(self.k1, "sid-x", kid="bogus-" + uuid.uuid4().hex)
            self.assertEqual(r.status, 400, r)
            sent += 1
        elapsed = time.monotonic() - t0
        time.sleep(0.3)  # the last fetch's answer
        fetches = self.srv.count(JWKS) - 1
        self.assertGreater(sent, 20)
        self.assertGreaterEqual(fetches, 1)  # the first unknown kid did fetch
        self.assertLessEqual(fetches, int(elapsed / interval) + 1, (fetches, elapsed))
        # Introspection kept answering meanwhile.
        self.session_with_token("sid-still")

    def test_unknown_kid_of_a_file_only_issuer_fetches_nothing(self):
        self.start("--jwks-kid-interval", 1,
                   others=[{"issuer": u.HYDRA, "audience": u.AUD,
                            "jwks": {"keys": [self.file_key.jwk()]}}])
        self.fetched()
        time.sleep(1.1)
        token = u.jws({"alg": "RS256", "kid": "nope"},
                      u.logout_claims(sid="s", sub="a", iss=u.HYDRA), self.k1)
        r = u.post_logout(self.d, token)
        self.assertEqual(r.status, 400)
        time.sleep(0.3)
        self.assertEqual(self.srv.count(JWKS), 1)


class TestFaults(JwksCase):
    """Every 1 s a refresh; each fault must leave k1 in force."""

    def check_still_good(self, sid):
        tok = self.session_with_token(sid)
        t0 = time.monotonic()
        for _ in range(20):
            self.assertActive(tok)
        self.assertLess(time.monotonic() - t0, 5.0)
        _, r = self.logout(self.k1, sid)
        self.assertEqual(r.status, 200, r)
        self.assertInactive(tok)

    def test_server_faults_keep_the_last_good_keys(self):
        self.start("--jwks-refresh-min", 1, "--jwks-refresh-max", 1, "--outbound-timeout", 800,
                   "--outbound-connect-timeout", 500)
        self.fetched()
        faults = [
            (r"result=http_error status=500 ", fx.Route(500, b"oops")),
            (r"result=protocol ", fx.Route(kind="garbage")),
            (r"result=timeout ", fx.Route(200, b"{}", kind="slow", delay=3.0)),
            (r"result=too_big ", fx.Route(kind="huge", size=1024 * 1024)),
            (r"result=ok status=200 why=\"[^\"]*not JSON",
             fx.Route(200, b"this is not json", {"Content-Type": "application/json"})),
            (r"result=ok status=200 why=\"[^\"]*public key object",
             fx.Route(200, u.json.dumps({"keys": [dict(self.k1.jwk(), d="AQAB")]}))),
            (r"result=ok status=200 why=\"[^\"]*no key we can use",
             fx.Route(200, b'{"keys": []}')),
            (r"result=redirect status=302 ",
             fx.Route(302, b"", {"Location": "https://elsewhere.test/certs"})),
        ]
        for i, (pattern, route) in enumerate(faults):
            before = self.fail_lines(pattern)
            self.srv.set(JWKS, route)
            self.fails_again(pattern + r".*keeping=1 ", before)
            self.check_still_good("sid-fault-%d" % i)
        for result in ("http_error", "protocol", "timeout", "too_big", "redirect"):
            self.assertGreaterEqual(
                self.metric('tokend_outbound_requests_total{purpose="jwks",result="%s"}' % result),
                1, result)
        # The server goes away altogether.
        self.srv.close()
        self.fails_again(r"result=connect .*keeping=1 ", 0)
        self.check_still_good("sid-down")
        self.assertGreaterEqual(
            self.metric('tokend_outbound_requests_total{purpose="jwks",result="connect"}'), 1)

    def test_nothing_fetched_yet_refuses_cleanly(self):
        """The IdP is down from the start: file keys work, fetched kids are
        refused (400), introspection answers."""
        self.start("--jwks-refresh-min", 1, uri="http://127.0.0.1:%d/certs" % fx.closed_port())
        self.failed()
        tok = self.session_with_token("sid-down")
        _, r = self.logout(self.k1, "sid-down")
        self.assertEqual(r.status, 400, r)
        self.assertActive(tok)
        _, r = self.logout(self.file_key, "sid-down")
        self.assertEqual(r.status, 200, r)
        self.assertInactive(tok)


class TestSchedule(JwksCase):
    def test_max_age_is_obeyed(self):
        self.srv.set(JWKS, jwks_route(self.k1, headers={"Cache-Control": "max-age=1"}))
        self.start("--jwks-refresh-min", 1, "--jwks-refresh-max", 3600)
        self.fetched()
        time.sleep(3.5)
        n = self.srv.count(JWKS)
        self.assertGreaterEqual(n, 3)
        self.assertLessEqual(n, 5)

    def test_max_age_clamped_to_the_bounds(self):
        self.srv.set(JWKS, jwks_route(self.k1, headers={"Cache-Control": "max-age=100000"}))
        self.start("--jwks-refresh-min", 1, "--jwks-refresh-max", 2)
        self.fetched()
        self.assertTrue(u.grep_log(self.d, r"event=jwks_fetched .* next_s=2\b"))
        time.sleep(4.5)
        self.assertIn(self.srv.count(JWKS), (3, 4))
        # And a long max-age with a high max bound: no refetch.
        srv = fx.FixtureServer()
        self.addCleanup(srv.close)
        srv.set(JWKS, jwks_route(self.k1, headers={"Cache-Control": "public, max-age=100000"}))
        self.start("--jwks-refresh-min", 1, "--jwks-refresh-max", 86400, uri=srv.url(JWKS))
        self.fetched()
        self.assertTrue(u.grep_log(self.d, r"event=jwks_fetched .* next_s=86400\b"))
        time.sleep(1.5)
        self.assertEqual(srv.count(JWKS), 1)

    def test_sighup_moves_to_a_new_jwks_uri(self):
        self.start()
        self.fetched()
        srv2 = fx.FixtureServer()
        self.addCleanup(srv2.close)
        srv2.set("/certs", jwks_route(self.k2))
        self.issuer["jwks_uri"] = srv2.url("/certs")
        u.write_config(self.config, [self.issuer])
        self.d.send_signal(signal.SIGHUP)
        self.fetched(2)
        self.assertEqual(srv2.count("/certs"), 1)
        tok = self.session_with_token("sid-hup")
        _, r = self.logout(self.k1, "sid-hup")  # the old uri's key left with it
        self.assertEqual(r.status, 400, r)
        _, r = self.logout(self.k2, "sid-hup")
        self.assertEqual(r.status, 200, r)
        self.assertInactive(tok)


class TestTls(JwksCase):
    """An https jwks_uri signed by a private CA: fetched only with
    outbound-ca-file naming that CA; without it, a tls failure (logged,
    counted) and the file keys alone."""

    def test_private_ca(self):
        ca = fx.TestCA(self.keydir, "idp-ca")
        tls = fx.FixtureServer(ca.context("idp"))
        self.addCleanup(tls.close)
        tls.set("/certs", jwks_route(self.k1))
        self.start("--outbound-ca-file", ca.cert, uri=tls.url("/certs"))
        self.fetched()
        tok = self.session_with_token("sid-tls")
        _, r = self.logout(self.k1, "sid-tls")
        self.assertEqual(r.status, 200, r)
        self.assertInactive(tok)
        self.start("--jwks-refresh-min", 1, uri=tls.url("/certs"))  # no CA file
        self.fails_again(r"result=tls .*keeping=0 ", 0)
        self.assertGreaterEqual(
            self.metric('tokend_outbound_requests_total{purpose="jwks",result="tls"}'), 1)
        tok = self.session_with_token("sid-tls-2")
        _, r = self.logout(self.k1, "sid-tls-2")
        self.assertEqual(r.status, 400, r)
        self.assertActive(tok)


class TestTrustFile(h.FreshCase):
    def test_jwks_uri_must_be_https_except_on_loopback(self):
        d = self.tmpdir()
        for uri, ok in (("http://idp.example/certs", False),
                        ("ftp://idp.example/certs", False),
                        ("https://user@idp.example/certs", False),
                        ("https://idp.example/certs#x", False),
                        ("http://127.0.0.1:1/certs", True),
                        ("http://[::1]:1/certs", True),
                        ("https://idp.example/certs", True)):
            config = os.path.join(d, "idp.json")
            u.write_config(config, [{"issuer": u.ISS, "audience": u.AUD, "jwks_uri": uri}])
            t = h.Tokend(d + "/data", ("--idp-config", config))
            if ok:
                t.start()
                t.stop()
                t.cleanup()
                continue
            with self.assertRaises(AssertionError) as cm:
                t.start()
            t.cleanup()
            self.assertIn("jwks_uri", str(cm.exception), uri)


if __name__ == "__main__":
    unittest.main()
