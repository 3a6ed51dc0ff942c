"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document)
against the real tokend: an https client_id URL whose document a small HTTPS
server (a test CA made here, passed as outbound-ca-file) serves.

- A valid document registers the client: pending (the browser sees the
  "awaits approval" page, never a redirect), tokenctl approves it by its
  URL, then a full code flow with PKCE gives tokens whose introspection
  shows the URL as client_id; a client_id longer than the 128 bytes of an
  ordinary id works the same; an allow-listed host is approved at once.
- Refused, each with an error page (no redirect to the document's
  redirect_uri) and nothing stored: a mismatched client_id, an oversized
  document, a wrong content type, a body that is not JSON, a shared-secret
  method, a redirect, an HTTP error, http://, userinfo, a fragment, dot
  segments; and (SSRF) the same server on loopback without the private-host
  allow-list, by address and by name: tokend never even connects.
- The cache: a second authorization within max-age does not fetch again
  (requests counted at the server); after expiry it does, and a changed
  document replaces the client's metadata while keeping its approval.
- The store key is never a client_id: /authorize and /token refuse it."""

import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import as_http as a  # noqa: E402
import harness as h  # noqa: E402
import http_fixture as fx  # noqa: E402

h.require_binaries()

DOC = "/clients/agent.json"


def doc(url, redirect=a.REDIRECT, **extra):
    d = {"client_id": url, "client_name": "CIMD agent", "redirect_uris": [redirect],
         "grant_types": ["authorization_code", "refresh_token"],
         "token_endpoint_auth_method": "none"}
    d.update(extra)
    return d


def route(body, ctype="application/json", status=200, cache="max-age=60", headers=None):
    hdrs = {"Content-Type": ctype}
    if cache is not None:
        hdrs["Cache-Control"] = cache
    hdrs.update(headers or {})
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return fx.Route(status, body, hdrs)


class CimdCase(h.FreshCase):
    @classmethod
    def setUpClass(cls):
        cls.cadir = tempfile.mkdtemp(prefix="tokend-cimd-ca-")
        cls.addClassCleanup(shutil.rmtree, cls.cadir, True)
        cls.ca = fx.TestCA(cls.cadir)
        cls.tls = cls.ca.context("docs", san="IP:127.0.0.1,DNS:localhost")

    def setUp(self):
        self.srv = fx.FixtureServer(tls_context=self.tls)
        self.addCleanup(self.srv.close)

    def start(self, registration="approval", private=True, approve=False, cache_min=1,
              extra=()):
        folder = self.tmpdir()
        extra = ["--outbound-ca-file", self.ca.cert, "--cimd-cache-min", cache_min,
                 "--cimd-cache-max", 3600] + list(extra)
        if private:
            extra += ["--cimd-private-hosts", "127.0.0.1 localhost"]
        if approve:
            extra += ["--cimd-approve-hosts", "127.0.0.1"]
        self.d = self.daemon(a.as_daemon_args(folder, registration, extra))
        self.addCleanup(self.d.stop)
        return self.d

    def serve(self, path, **kw):
        url = self.srv.url(path)
        self.srv.set(path, route(kw.pop("body", None) or doc(url), **kw))
        return url

    def clients(self, pending=False):
        return self.d.ctl("client", "list", *(["--pending"] if pending else []))

    def metadata_clients(self):
        return [c for c in self.clients() if c["client_id"].startswith("https://")]

    def assert_error_page(self, r, fragment, status=None):
        self.assertNotIn(r.status, (301, 302, 303, 307, 308), r)
        self.assertIsNone(r.header("location"), r)
        if status is not None:
            self.assertEqual(r.status, status, r)
        self.assertGreaterEqual(r.status, 400, r)
        text = a.Page(r.body).text
        self.assertIn(fragment, text)
        return text

    def authorize(self, client_id, browser=None):
        b = browser or a.Browser(self.d)
        q = a.authorize_query(client_id, challenge=a.s256(a.new_verifier()), state="s1")
        return b.get(q)


class TestRegistration(CimdCase):
    def test_pending_then_approved_full_flow(self):
        d = self.start()
        url = self.serve(DOC)
        meta = d.request("GET", "/.well-known/oauth-authorization-server").json()
        self.assertIs(meta["client_id_metadata_document_supported"], True)
        # First contact: fetched, stored pending; the browser sees the page, never a redirect.
        r = self.authorize(url)
        self.assertEqual(r.status, 200, r)
        self.assertIn("awaits approval", a.Page(r.body).text)
        self.assertIsNone(r.header("location"))
        self.assertEqual(self.srv.count(DOC), 1)
        pending = self.clients(pending=True)
        self.assertEqual([c["client_id"] for c in pending], [url])
        self.assertTrue(pending[0]["key"].startswith("tkm_"))
        self.assertEqual(pending[0]["redirect_uris"], [a.REDIRECT])
        self.assertTrue(pending[0]["public"])
        # The administrator approves it by its URL.
        self.assertEqual(d.ctl("client", "approve", url)["status"], "approved")
        # The consent page names the client by its URL.
        b = a.Browser(d)
        f = a.Flow(b, url)
        r = f.start()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(a.Page(r.body).by_id["client_id"][0], "code")
        self.assertIn(url, a.Page(r.body).text)
        r = f.decide("approve")
        q = a.code_from(r)
        self.assertEqual(q["state"], [f.state])
        t = a.redeem(d, url, q["code"][0], f.verifier)
        self.assertEqual(t.status, 200, t)
        tokens = t.json()
        admin = d.add_client("admin", "admin")
        j = d.introspect(tokens["access_token"], admin).json()
        self.assertIs(j["active"], True)
        self.assertEqual(j["client_id"], url)
        self.assertEqual(j["aud"], a.MCP)
        # Refresh names the client by its URL too.
        rr = a.refresh(d, url, tokens["refresh_token"])
        self.assertEqual(rr.status, 200, rr)
        self.assertEqual(d.introspect(rr.json()["access_token"], admin).json()["client_id"], url)
        # Every authorization above fell within max-age: one fetch in all.
        self.assertEqual(self.srv.count(DOC), 1)
        self.assertEqual(d.ctl("token", "show", tokens["access_token"])["client_id"], url)
        self.assertEqual([g["client_id"] for g in d.ctl("grant", "list")], [url])

    def test_posted_authorization_is_sent_back_as_a_get(self):
        d = self.start()
        url = self.serve(DOC)
        b = a.Browser(d)
        pairs = [("response_type", "code"), ("client_id", url), ("redirect_uri", a.REDIRECT),
                 ("code_challenge", a.s256(a.new_verifier())), ("code_challenge_method", "S256"),
                 ("state", "s1"), ("scope", "mcp:read")]
        body = h.form(pairs) + "&note=a raw\tvalue"  # raw bytes a Location may not carry
        r = b.request("POST", "/authorize", body, h.FORM)
        self.assertEqual(r.status, 303, r)
        loc = r.header("location")
        self.assertTrue(loc.startswith("/authorize?"), loc)
        self.assertNotIn(" ", loc)
        self.assertIn("note=a%20raw%09value", loc)
        r = b.follow(r)
        self.assertIn("awaits approval", a.Page(r.body).text)
        self.assertEqual(self.srv.count(DOC), 1)

    def test_allow_listed_host_approved_at_once_and_long_url(self):
        d = self.start(approve=True)
        path = "/clients/" + "x" * 300 + "/agent.json"  # client_id longer than TK_ID_MAX (128)
        url = self.serve(path)
        self.assertGreater(len(url), 300)
        b = a.Browser(d)
        code, verifier = a.authorize_code(d, b, url)
        t = a.redeem(d, url, code, verifier)
        self.assertEqual(t.status, 200, t)
        admin = d.add_client("admin", "admin")
        j = d.introspect(t.json()["access_token"], admin).json()
        self.assertEqual((j["active"], j["client_id"]), (True, url))
        self.assertEqual(self.clients(pending=True), [])
        self.assertEqual(self.metadata_clients()[0]["status"], "approved")
        # tokenctl names it by its URL (the delegation list itself holds client ids).
        self.assertEqual(d.ctl("client", "set", url, "--delegate-to", "*")["client_id"], url)
        self.assertEqual(self.metadata_clients()[0]["delegate_to"], "*")
        self.assertEqual(d.ctl("client", "disable", url)["status"], "disabled")
        self.assert_error_page(self.authorize(url), "disabled", 400)

    def test_registration_closed_refuses_new_documents_without_fetching(self):
        self.start(registration="closed")
        url = self.serve(DOC)
        self.assert_error_page(self.authorize(url), "accepts no new clients", 403)
        self.assertEqual(self.srv.count(DOC), 0)
        self.assertEqual(self.metadata_clients(), [])


class TestRefusals(CimdCase):
    def check_refused(self, path_or_url, fragment, fetched=True):
        url = path_or_url if "://" in path_or_url else self.srv.url(path_or_url)
        before = self.srv.count(path_or_url) if "://" not in path_or_url else None
        text = self.assert_error_page(self.authorize(url), fragment)
        if before is not None:
            self.assertEqual(self.srv.count(path_or_url), before + (1 if fetched else 0))
        self.assertEqual(self.metadata_clients(), [], text)
        return text

    def test_each_bad_document_is_refused_and_nothing_stored(self):
        self.start(extra=["--register-burst", 0])  # more new clients than a minute's burst
        other = self.srv.url("/clients/other.json")
        cases = [
            ("/mismatch.json", dict(body=doc(other)), "must equal the URL"),
            ("/case.json", dict(body=doc(self.srv.url("/CASE.json"))), "must equal the URL"),
            ("/big.json", dict(body=doc(self.srv.url("/big.json"), pad="p" * 6000)),
             "larger than"),
            ("/html.json", dict(ctype="text/html"), "not served as JSON"),
            ("/none-type.json", dict(ctype="application/octet-stream"), "not served as JSON"),
            ("/notjson.json", dict(body="hello, world"), "one JSON object"),
            ("/array.json", dict(body="[1]"), "one JSON object"),
            ("/secret.json", dict(body=doc(self.srv.url("/secret.json"),
                                           token_endpoint_auth_method="client_secret_basic")),
             "must be none"),
            ("/secret2.json", dict(body=doc(self.srv.url("/secret2.json"), client_secret="s")),
             "client secret"),
            ("/pkjwt.json", dict(body=doc(self.srv.url("/pkjwt.json"),
                                          token_endpoint_auth_method="private_key_jwt")),
             "private_key_jwt is not supported"),
            ("/badredirect.json",
             dict(body=doc(self.srv.url("/badredirect.json"), redirect="http://evil.test/cb")),
             "was refused"),
            ("/missing.json", dict(status=404), "did not answer 200"),
            ("/redirect.json", dict(status=302, headers={"Location": other}), "redirect"),
        ]
        for path, kw, fragment in cases:
            with self.subTest(path=path):
                body = kw.pop("body", None)
                if body is None:
                    body = doc(self.srv.url(path))
                self.srv.set(path, route(body, **kw))
                self.check_refused(path, fragment)
        # The redirect target was never fetched (no redirects are followed).
        self.assertEqual(self.srv.count("/clients/other.json"), 0)

    def test_bad_urls_are_refused_before_any_fetch(self):
        self.start()
        port = self.srv.port
        plain = fx.FixtureServer()  # http: would answer, but is never asked
        self.addCleanup(plain.close)
        plain.set(DOC, route(doc(plain.url(DOC))))
        cases = [
            (plain.url(DOC), "must use https"),
            ("https://user@127.0.0.1:%d%s" % (port, DOC), "user name or password"),
            ("https://user:pw@127.0.0.1:%d%s" % (port, DOC), "user name or password"),
            ("https://127.0.0.1:%d%s#frag" % (port, DOC), "fragment"),
            ("https://127.0.0.1:%d/clients/../agent.json" % port, "path segments"),
            ("https://127.0.0.1:%d/clients/%%2e/agent.json" % port, "path segments"),
            ("https://127.0.0.1:%d/" % port, "must have a path"),
            ("https://127.0.0.1:%d" % port, "must have a path"),
        ]
        for url, fragment in cases:
            with self.subTest(url=url):
                self.check_refused(url, fragment)
        self.assertEqual(plain.count(DOC), 0)
        self.assertEqual(sum(self.srv.counts.values()), 0)

    def test_ssrf_private_address_refused_without_allow_list(self):
        d = self.start(private=False, approve=True)
        for host in ("127.0.0.1", "localhost"):
            with self.subTest(host=host):
                url = "https://%s:%d%s" % (host, self.srv.port, DOC)
                self.srv.set(DOC, route(doc(url)))
                self.assert_error_page(self.authorize(url), "non-public address", 403)
        self.assertEqual(self.srv.count(DOC), 0)  # refused before connecting
        self.assertEqual(self.metadata_clients(), [])
        self.assertRegex(d.metrics_text(), r'tokend_outbound_requests_total\{purpose='
                         r'"client_metadata",result="refused_address"\} 2')

    def test_new_clients_count_against_register_burst(self):
        self.start(extra=["--register-burst", 2])
        urls = [self.serve("/c%d.json" % i) for i in range(3)]
        for url in urls[:2]:
            self.assertIn("awaits approval", a.Page(self.authorize(url).body).text)
        self.assert_error_page(self.authorize(urls[2]), "Too many new clients", 429)
        self.assertEqual(self.srv.count("/c2.json"), 0)
        self.assertEqual(len(self.metadata_clients()), 2)
        # A stored client is not a new one: no limit on its next authorization.
        self.assertIn("awaits approval", a.Page(self.authorize(urls[0]).body).text)

    def test_store_key_is_never_a_client_id(self):
        d = self.start(approve=True)
        url = self.serve(DOC)
        b = a.Browser(d)
        code, verifier = a.authorize_code(d, b, url)
        key = self.metadata_clients()[0]["key"]
        self.assert_error_page(self.authorize(key), "unknown client_id", 400)
        r = a.redeem(d, key, code, verifier)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(a.redeem(d, url, code, verifier).status, 200)


class TestCache(CimdCase):
    def test_cache_within_max_age_then_refetch_keeps_approval(self):
        d = self.start(cache_min=1)
        url = self.srv.url(DOC)
        self.srv.set(DOC, route(doc(url), cache="max-age=2"))
        t0 = time.monotonic()
        r = self.authorize(url)
        self.assertIn("awaits approval", a.Page(r.body).text)
        self.assertEqual(self.srv.count(DOC), 1)
        self.authorize(url)
        self.authorize(url)
        if time.monotonic() - t0 < 1.5:  # still within max-age: no fetch
            self.assertEqual(self.srv.count(DOC), 1)
        d.ctl("client", "approve", url)
        # The document changes its redirect URI; after expiry it is fetched again.
        new_redirect = "http://127.0.0.1:8766/cb2"  # loopback ports do not count (RFC 8252)
        self.srv.set(DOC, route(doc(url, redirect=new_redirect), cache="max-age=2"))
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
        b = a.Browser(d)
        code, verifier = a.authorize_code(d, b, url, redirect=new_redirect)
        self.assertEqual(self.srv.count(DOC), 2)
        c = self.metadata_clients()[0]
        self.assertEqual(c["status"], "approved")  # the refetch kept the approval
        self.assertEqual(c["redirect_uris"], [new_redirect])
        t = a.redeem(d, url, code, verifier, redirect=new_redirect)
        self.assertEqual(t.status, 200, t)
        # The old redirect URI is no longer the client's.
        r = a.Browser(d).get(a.authorize_query(url, challenge=a.s256(a.new_verifier())))
        self.assert_error_page(r, "redirect_uri", 400)

    def test_no_cache_header_uses_the_minimum(self):
        self.start(cache_min=1)
        url = self.srv.url(DOC)
        self.srv.set(DOC, route(doc(url), cache=None))
        self.authorize(url)
        self.assertEqual(self.srv.count(DOC), 1)
        time.sleep(1.2)
        self.authorize(url)
        self.assertEqual(self.srv.count(DOC), 2)
        until = self.metadata_clients()[0]["metadata_until"]
        self.assertLessEqual(until, int(time.time()) + 2)


if __name__ == "__main__":
    unittest.main()
