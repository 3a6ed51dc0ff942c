"""The outbound thread under faults, end to end through the upstream sign-in
(login = oidc; issue 12, "The outbound thread under faults").

One loopback server (http_fixture.FixtureServer) plays many IdPs side by
side, one per issuer path, each broken in one place: its discovery document,
its JWKS or its token endpoint is down (a closed port), slower than the
outbound timeout, garbage (not HTTP), a body over the outbound cap, an HTTP
error or not JSON; one IdP works, as the control. For every fault the user
gets an HTML error page that says what happened, no tokend session is
created (tokenctl session list is unchanged, no session cookie), and
introspection keeps answering. With a single worker, introspection is
answered while a code redemption hangs at a slow IdP: the worker that parked
the sign-in is not blocked by it."""

import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import http_fixture as fx  # noqa: E402
import idp_util as iu  # noqa: E402
from as_http import CookieBrowser, Page, new_verifier, s256  # noqa: E402

h.require_binaries()

RESOURCE = "https://mcp.test/mcp"
REDIRECT = "http://127.0.0.1:8765/cb"
TIMEOUT_MS = 2500   # --outbound-timeout
SLOW_S = 6.0        # a slow IdP answers after this: well past the timeout
CAP = 65536         # --outbound-max-bytes
HUGE = 4 * CAP      # a body over the cap

# name: (where it breaks, how). "ok" works end to end.
IDPS = {
    "ok": (None, None),
    "disc-garbage": ("discovery", "garbage"),
    "disc-huge": ("discovery", "huge"),
    "disc-slow": ("discovery", "slow"),
    "disc-500": ("discovery", "500"),
    "disc-notjson": ("discovery", "notjson"),
    "jwks-down": ("jwks", "down"),
    "jwks-garbage": ("jwks", "garbage"),
    "jwks-huge": ("jwks", "huge"),
    "jwks-slow": ("jwks", "slow"),
    "tok-down": ("token", "down"),
    "tok-garbage": ("token", "garbage"),
    "tok-huge": ("token", "huge"),
    "tok-slow": ("token", "slow"),
    "tok-500": ("token", "500"),
}


def broken(mode, ok_route):
    """The route of a broken endpoint (down is a URL, not a route)."""
    if mode == "garbage":
        return fx.Route(kind="garbage")
    if mode == "huge":
        return fx.Route(kind="huge", size=HUGE)
    if mode == "slow":
        return fx.Route(ok_route.status, ok_route.body, ok_route.headers, kind="slow",
                        delay=SLOW_S)
    if mode == "500":
        return fx.Route(500, b'{"error":"server_error"}', {"Content-Type": "application/json"})
    if mode == "notjson":
        return fx.Route(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})
    raise AssertionError(mode)


class UpstreamFaults(h.TokenAsserts, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tokend-oidc-faults-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.key = iu.Key(cls.dir, "idp", "rsa", kid="f1")
        cls.srv = fx.FixtureServer()
        cls.addClassCleanup(cls.srv.close)
        dead = "http://127.0.0.1:%d" % fx.closed_port()
        cls.iss = {}
        for name, (where, mode) in IDPS.items():
            iss = cls.srv.url("/" + name)
            cls.iss[name] = iss
            jwks = fx.Route(200, json.dumps({"keys": [cls.key.jwk()]}).encode(),
                            {"Content-Type": "application/jwk-set+json"})
            doc = {"issuer": iss, "authorization_endpoint": iss + "/auth",
                   "token_endpoint": (dead if (where, mode) == ("token", "down") else iss)
                   + "/token",
                   "jwks_uri": (dead if (where, mode) == ("jwks", "down") else iss) + "/jwks"}
            disc = fx.Route(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
            cls.srv.set("/%s/.well-known/openid-configuration" % name,
                        broken(mode, disc) if where == "discovery" else disc)
            cls.srv.set("/%s/jwks" % name,
                        broken(mode, jwks) if where == "jwks" and mode != "down" else jwks)
        trust = os.path.join(cls.dir, "idp.json")
        with open(trust, "w") as f:
            json.dump({"issuers": [{"issuer": cls.iss[n], "audience": "tokend-f",
                                    "client_id": "tokend-f", "client_secret": "s"}
                                   for n in IDPS]}, f)
        res = os.path.join(cls.dir, "resources.json")
        with open(res, "w") as f:
            json.dump({"resources": [{"resource": RESOURCE, "name": "MCP",
                                      "scopes_supported": ["mcp:read"]}]}, f)
        # One worker: the one that parks a hanging sign-in also answers the
        # introspections asked meanwhile.
        cls.d = h.start_daemon(("--login", "oidc", "--registration", "open", "--resources", res,
                                "--idp-config", trust, "--outbound-timeout", str(TIMEOUT_MS),
                                "--outbound-connect-timeout", "1000",
                                "--outbound-max-bytes", str(CAP), "--register-burst", "0"),
                               workers=1)
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("resource_server", "rs", resource=RESOURCE)
        # An active token to introspect throughout.
        agent = cls.d.add_client("agent", "probe")
        sid = cls.d.new_session("probe-user")
        cls.probe = cls.d.issue(sid, agent, scope="mcp:read", aud=RESOURCE)["access_token"]
        # The JWKS fetches at start have completed (or timed out) once every
        # jwks_uri was asked for and the slow one's timeout has passed.
        deadline = time.monotonic() + 30
        while cls.srv.count("/jwks-slow/jwks") == 0 or cls.srv.count("/ok/jwks") == 0:
            if time.monotonic() > deadline:
                raise AssertionError("the JWKS were never fetched:\n" + cls.d.stderr())
            time.sleep(0.05)
        time.sleep(TIMEOUT_MS / 1000 + 0.5)

    # -- helpers --

    def sessions(self):
        return len(self.d.ctl("session", "list"))

    def introspection_answers(self):
        j = self.assertActive(self.probe)
        self.assertEqual(j["sub"], "probe-user")
        self.assertInactive("tkd_at_" + "Z" * 43)

    def login_page(self, tb, name):
        """/authorize, the chooser, then the link of IdP name: tokend's
        answer to that link."""
        r = self.d.request("POST", "/register", json.dumps({
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"]}).encode(), content_type="application/json")
        self.assertEqual(r.status, 201, r)
        self.verifier = new_verifier()
        self.state = secrets.token_urlsafe(8)
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": r.json()["client_id"],
            "redirect_uri": REDIRECT, "code_challenge": s256(self.verifier),
            "code_challenge_method": "S256", "state": self.state, "scope": "mcp:read",
            "resource": RESOURCE})
        r = tb.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        r = tb.request("GET", r.header("Location"))
        self.assertEqual(r.status, 200, (r, r.body))
        page = r.body.decode()
        # The link whose text is this issuer (escaped as the page escapes it).
        marker = ">%s</a>" % self.iss[name]
        self.assertIn(marker, page)
        before = page[:page.index(marker)]
        href = before[before.rindex('href="') + 6:]
        href = href[:href.index('"')].replace("&amp;", "&")
        self.assertIn(href, [a["href"] for a in Page(r.body).tags("a") if a.get("class") == "idp"])
        return tb.request("GET", href)

    def callback(self, tb, name, r):
        """Follow tokend's redirect to IdP name: answer it as the IdP would
        (a code whose ID token carries the nonce) and return tokend's answer
        to the callback."""
        self.assertEqual(r.status, 303, (r, r.body, self.d.stderr()))
        aq = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("Location")).query))
        now = int(time.time())
        idt = iu.jws({"alg": "RS256", "kid": "f1", "typ": "JWT"},
                     {"iss": self.iss[name], "aud": "tokend-f", "sub": "victim-" + name,
                      "iat": now, "exp": now + 300, "nonce": aq["nonce"]}, self.key)
        ok = fx.Route(200, json.dumps({"access_token": "x", "token_type": "Bearer",
                                       "id_token": idt}).encode(),
                      {"Content-Type": "application/json"})
        where, mode = IDPS[name]
        self.srv.set("/%s/token" % name, broken(mode, ok) if where == "token" and mode != "down" else ok)
        q = {"code": secrets.token_urlsafe(16), "state": aq["state"], "iss": self.iss[name]}
        return tb.request("GET", "/login/callback?" + urllib.parse.urlencode(q))

    def refused(self, r, status, text):
        self.assertEqual(r.status, status, r)
        self.assertIn(b"text/html", (r.header("Content-Type") or "").encode())
        self.assertIn(text, r.body)
        self.assertNotIn("__Host-tokend-session=", r.header("Set-Cookie") or "")

    # -- tests --

    def test_control_idp_signs_in(self):
        n = self.sessions()
        tb = CookieBrowser(self.d)
        r = self.callback(tb, "ok", self.login_page(tb, "ok"))
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie"))
        self.assertEqual(self.sessions(), n + 1)

    def test_discovery_faults(self):
        log = self.d.stderr(10 ** 7)
        for name in ("disc-garbage", "disc-huge", "disc-slow", "disc-500", "disc-notjson"):
            with self.subTest(idp=name):
                n = self.sessions()
                self.assertIn('oidc_discovery_failed iss="%s"' % self.iss[name], log)
                tb = CookieBrowser(self.d)
                r = self.login_page(tb, name)
                self.refused(r, 503, b"discovery failed")
                self.assertNotIn("__Host-tokend-login=", r.header("Set-Cookie") or "")
                self.assertEqual(self.sessions(), n)
                self.introspection_answers()
        self.assertIn("result=too_big", log)
        self.assertIn("result=timeout", log)
        self.assertIn("result=protocol", log)

    def test_jwks_faults(self):
        for name in ("jwks-down", "jwks-garbage", "jwks-huge", "jwks-slow"):
            with self.subTest(idp=name):
                n = self.sessions()
                tb = CookieBrowser(self.d)
                r = self.callback(tb, name, self.login_page(tb, name))
                self.refused(r, 503, b"signing keys could not be fetched")
                self.assertIn(b"no one was signed in", r.body.lower())
                self.assertEqual(self.sessions(), n)
                self.introspection_answers()
        log = self.d.stderr(10 ** 7)
        for name in ("jwks-down", "jwks-garbage", "jwks-huge", "jwks-slow"):
            self.assertNotIn("sub=victim-%s " % name, log)

    def test_token_endpoint_faults(self):
        cases = (("tok-down", 502, b"could not be reached"),
                 ("tok-slow", 502, b"did not answer in time"),
                 ("tok-garbage", 502, b"answer was not understood"),
                 ("tok-huge", 502, b"answer was not understood"),
                 ("tok-500", 502, b"refused to redeem"))
        for name, status, text in cases:
            with self.subTest(idp=name):
                n = self.sessions()
                tb = CookieBrowser(self.d)
                r = self.callback(tb, name, self.login_page(tb, name))
                self.refused(r, status, text)
                self.assertIn(b"no one was signed in", r.body.lower())
                self.assertEqual(self.sessions(), n)
                self.introspection_answers()
        log = self.d.stderr(10 ** 7)
        for name, _, _ in cases:
            self.assertNotIn("sub=victim-%s " % name, log)

    def test_introspection_answered_while_the_redemption_hangs(self):
        """One worker parks the sign-in whose code redemption hangs at a slow
        IdP; introspection on that worker is answered while the redemption
        is still pending (no timing bound: only "before the IdP answered")."""
        tb = CookieBrowser(self.d)
        r = self.login_page(tb, "tok-slow")
        before = self.srv.count("/tok-slow/token")
        out = {}
        th = threading.Thread(target=lambda: out.setdefault("r", self.callback(tb, "tok-slow",
                                                                                 r)))
        th.start()
        deadline = time.monotonic() + 20
        while self.srv.count("/tok-slow/token") == before:  # the redemption is at the IdP
            self.assertLess(time.monotonic(), deadline, "the redemption never reached the IdP")
            time.sleep(0.01)
        answered_while_pending = 0
        for _ in range(10):
            self.introspection_answers()
            answered_while_pending += 1 if th.is_alive() else 0
        self.assertGreaterEqual(answered_while_pending, 1)
        th.join(SLOW_S + 30)
        self.assertFalse(th.is_alive())
        self.refused(out["r"], 502, b"did not answer in time")

    def test_metrics_count_the_faults(self):
        r = self.d.metrics_request()
        self.assertEqual(r.status, 200, r)
        text = r.body.decode()
        for purpose, result in (("discovery", "too_big"), ("discovery", "timeout"),
                                ("discovery", "protocol"), ("discovery", "http_error"),
                                ("jwks", "connect"), ("jwks", "too_big")):
            self.assertIn('tokend_outbound_requests_total{purpose="%s",result="%s"}'
                          % (purpose, result), text)


if __name__ == "__main__":
    unittest.main()
