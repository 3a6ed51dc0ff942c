"""Sign-in upstream (login = oidc) against a real OpenID provider.

"The company IdP" is the certified Node OP, npm oidc-provider
(tests/interop/idp.mjs), started once per suite on a loopback port with
tokend registered at it (redirect URI /login/callback, back-channel logout
to /backchannel-logout with sid required). End to end: an agent registers
at tokend, the user is sent to oidc-provider, signs in on its interaction
pages (driven over HTTP), consents at tokend, the agent gets a token and
delegates it; the user logs out at oidc-provider, which posts a logout token
to tokend; the agent's token and the delegated one are inactive at the very
next introspection.

Negative cases run against a second, tiny IdP written here (discovery,
JWKS, token endpoint) that signs with keys from idp_util.py: ID tokens with a
wrong nonce, aud, iss, azp, an expired one, one signed by a key not in the
JWKS; a wrong RFC 9207 iss, a replayed state, a callback in another browser;
the IdP answering garbage or too slowly (introspection keeps answering).
Every refusal is an HTML error page and signs no one in.

Needs node and tests/interop/node_modules/oidc-provider (`npm ci` in
tests/interop); skipped (exit 77) when they are missing."""

import http.server
import json
import os
import secrets
import signal
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness as h
import idp_util as iu
from as_http import CookieBrowser, Page, new_verifier, s256
from harness import free_port
from idp_util import IdpBrowser, start_op

h.require_binaries()
iu.require_op()

RESOURCE = "https://mcp.test/mcp"
REDIRECT = "http://127.0.0.1:8765/cb"
SECRET = "tokend-at-the-company-idp-" + secrets.token_hex(8)
TE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"


def tokend_path(url, d):
    p = urllib.parse.urlsplit(url)
    assert (p.scheme, p.netloc) == ("http", "127.0.0.1:%d" % d.port), url
    return urllib.parse.urlunsplit(("", "", p.path, p.query, ""))


# ---- A tiny IdP for the negative cases ----------------------------------------------


class FakeIdp:
    """Discovery, JWKS and a token endpoint. The test reads state and nonce
    from tokend's redirect and calls /login/callback itself; the token
    endpoint answers per self.mode with an ID token built from the nonce
    registered for the code."""

    def __init__(self, folder):
        self.port = free_port()
        self.issuer = "http://127.0.0.1:%d" % self.port
        self.key = iu.Key(folder, "fake-idp", "rsa", kid="fake-1")
        self.rogue = iu.Key(folder, "rogue", "rsa", kid="fake-1")  # same kid, other key
        self.codes = {}
        self.mode = "good"
        self.extra = {}  # more claims in every ID token
        self.requests = []
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def send_json(self, obj, ctype="application/json"):
                b = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    self.send_json({"issuer": fake.issuer,
                                    "authorization_endpoint": fake.issuer + "/auth",
                                    "token_endpoint": fake.issuer + "/token",
                                    "jwks_uri": fake.issuer + "/jwks"})
                elif self.path == "/jwks":
                    self.send_json({"keys": [fake.key.jwk()]}, "application/jwk-set+json")
                else:
                    self.send_error(404)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
                fake.requests.append((dict(self.headers), body))
                if fake.mode == "garbage":
                    self.wfile.write(b"this is not HTTP\r\n\r\n")
                    self.close_connection = True
                    return
                if fake.mode == "slow":
                    time.sleep(4)
                nonce = fake.codes.pop(body.get("code"), None)
                if nonce is None:
                    self.send_response(400)
                    b = b'{"error":"invalid_grant"}'
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(b)))
                    self.end_headers()
                    self.wfile.write(b)
                    return
                self.send_json({"access_token": "x", "token_type": "Bearer",
                                "id_token": fake.id_token(nonce)})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def id_token(self, nonce):
        now = int(time.time())
        c = {"iss": self.issuer, "aud": "tokend-fake", "sub": "mallory-%s" % self.mode,
             "iat": now, "exp": now + 300, "nonce": nonce, "sid": "fake-sid"}
        c.update(self.extra)
        key = self.key
        m = self.mode
        if m == "nonce":
            c["nonce"] = "A" * 43
        elif m == "aud":
            c["aud"] = "someone-else"
        elif m == "iss":
            c["iss"] = "http://127.0.0.1:1"
        elif m == "azp":
            c["aud"], c["azp"] = ["tokend-fake", "other"], "other"
        elif m == "expired":
            c["iat"], c["exp"] = now - 900, now - 600
        elif m == "no-nonce":
            del c["nonce"]
        kid = key.kid
        if m in ("key", "kid"):  # a key not in the JWKS: under its kid, or under a new one
            key = self.rogue
            kid = "rogue-2" if m == "kid" else key.kid
        return iu.jws({"alg": "RS256", "kid": kid, "typ": "JWT"}, c, key)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- The suite ----------------------------------------------------------------------


class Flow(iu.OpSteps):
    """The browser's and the agent's steps, shared by the suites below
    (self.d is the tokend under test)."""

    def register(self, **extra):
        doc = {"redirect_uris": [REDIRECT], "client_name": "agent",
               "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code", "refresh_token"]}
        doc.update(extra)
        r = self.d.request("POST", "/register", json.dumps(doc).encode(),
                           content_type="application/json")
        self.assertEqual(r.status, 201, r)
        return r.json()

    def start(self, tb, cid, idp_index):
        """/authorize → /login → (chooser) → the IdP. Returns (verifier,
        state, the IdP authorization URL's query dict)."""
        verifier = new_verifier()
        state = secrets.token_urlsafe(8)
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
            "code_challenge": s256(verifier), "code_challenge_method": "S256",
            "state": state, "scope": "mcp:read", "resource": RESOURCE})
        r = tb.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        login = r.header("Location")
        self.assertTrue(login.startswith("/login?request="), login)
        r = tb.request("GET", login)
        if idp_index is not None:  # two IdPs: the chooser
            self.assertEqual(r.status, 200, r)
            links = [a["href"] for a in Page(r.body).tags("a") if a.get("class") == "idp"]
            self.assertEqual(len(links), 2, r.body)
            r = tb.request("GET", links[idp_index])
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-login=", r.header("Set-Cookie"))
        loc = r.header("Location")
        p = urllib.parse.urlsplit(loc)
        aq = dict(urllib.parse.parse_qsl(p.query))
        self.assertEqual(aq["code_challenge_method"], "S256")
        self.assertEqual(len(aq["code_challenge"]), 43)
        self.assertGreaterEqual(len(aq["state"]), 43)
        self.assertGreaterEqual(len(aq["nonce"]), 43)
        self.assertEqual(aq["redirect_uri"], "http://127.0.0.1:%d/login/callback" % self.d.port)
        return verifier, state, loc, aq

    def consent(self, tb, r, state):
        """From /authorize/continue on: consent, return the agent's code."""
        self.assertEqual(r.status, 303, r)
        loc = r.header("Location")
        self.assertTrue(loc.startswith("/authorize/continue?request="), loc)
        r = tb.request("GET", loc)
        self.assertEqual(r.status, 303, r)
        loc = r.header("Location")
        if loc.startswith("/consent"):
            r = tb.request("GET", loc)
            self.assertEqual(r.status, 200, r)
            f = Page(r.body).hidden()
            r = tb.request("POST", "/consent", h.form([("request", f["request"]),
                                                       ("csrf", f["csrf"]),
                                                       ("decision", "approve")]), h.FORM)
            self.assertEqual(r.status, 303, r)
            loc = r.header("Location")
        self.assertTrue(loc.startswith(REDIRECT + "?"), loc)
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        self.assertEqual(params["state"], state)
        return params["code"]

    def redeem(self, cid, code, verifier):
        r = self.d.request("POST", "/token", h.form([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT),
            ("code_verifier", verifier), ("client_id", cid)]), content_type=h.FORM)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def no_session_for(self, sub):
        log = self.d.stderr()
        self.assertNotIn("sub=%s " % sub, "\n".join(l for l in log.splitlines()
                                                   if "sign_in" in l and "method=oidc" in l))



class OidcLogin(Flow, h.TokenAsserts, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tokend-oidc-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        port = free_port()
        cls.iss = start_op(cls, cls.dir, "http://127.0.0.1:%d" % port, SECRET)
        cls.fake = FakeIdp(cls.dir)
        cls.addClassCleanup(cls.fake.stop)
        trust = os.path.join(cls.dir, "idp.json")
        with open(trust, "w") as f:
            json.dump({"issuers": [
                {"issuer": cls.iss, "audience": "tokend", "client_id": "tokend",
                 "client_secret": SECRET, "scopes": "openid email", "end_session": True},
                {"issuer": cls.fake.issuer, "audience": "tokend-fake",
                 "client_id": "tokend-fake", "client_secret": "fake-secret",
                 "token_endpoint_auth_method": "client_secret_post"},
            ]}, f)
        res = os.path.join(cls.dir, "resources.json")
        with open(res, "w") as f:
            json.dump({"resources": [{"resource": RESOURCE, "name": "MCP test server",
                                      "scopes_supported": ["mcp:read", "mcp:write"]}]}, f)
        cls.d = h.start_daemon(("--listen", "127.0.0.1:%d" % port, "--login", "oidc",
                                "--registration", "open", "--resources", res,
                                "--idp-config", trust, "--outbound-timeout", "2500",
                                "--outbound-connect-timeout", "1000", "--jwks-kid-interval", "1",
                                "--register-burst", "0"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.rs = cls.d.add_client("resource_server", "rs", resource=RESOURCE)
        cls.admin = cls.d.add_client("admin", "admin")
        cls.d.default_auth = cls.rs

    # -- tests --

    def test_end_to_end_with_oidc_provider(self):
        agent = self.register()
        sub_agent = self.register(grant_types=[TE], redirect_uris=[])
        self.d.ctl("client", "set", agent["client_id"], "--delegate-to", sub_agent["client_id"])
        tb, ib = CookieBrowser(self.d), IdpBrowser()
        verifier, state, auth_url, aq = self.start(tb, agent["client_id"], 0)
        self.assertTrue(auth_url.startswith(self.iss + "/auth?"), auth_url)
        self.assertEqual(aq["client_id"], "tokend")
        self.assertEqual(aq["scope"], "openid email")
        cb = self.sign_in_at_op(ib, auth_url, "alice")
        cq = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(cb).query))
        self.assertEqual(cq["iss"], self.iss)  # RFC 9207, as oidc-provider sends it
        r = tb.request("GET", tokend_path(cb, self.d))
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie") or "", r)
        code = self.consent(tb, r, state)
        t = self.redeem(agent["client_id"], code, verifier)
        j = self.assertActive(t["access_token"])
        self.assertEqual(j["sub"], "alice")
        line = [l for l in self.d.stderr().splitlines() if "method=oidc" in l][-1]
        self.assertIn('iss="%s"' % self.iss, line)
        self.assertIn("bound_by=sid", line)
        # oidc-provider sends auth_time (the client requires it): kept on the
        # session, shown by tokenctl, in the audit line and introspection.
        self.assertIsInstance(j["auth_time"], int)
        self.assertLessEqual(abs(j["auth_time"] - time.time()), 120)
        self.assertNotIn("acr", j)  # its development interactions set none
        self.assertNotIn("amr", j)
        s = self.d.ctl("session", "show", j["sid"])
        self.assertEqual(s["auth_time"], j["auth_time"])
        self.assertEqual(s["issuer"], self.iss)
        self.assertIn("auth_time=%d " % j["auth_time"], line)
        # The callback is single use: the same answer again signs no one in.
        r = tb.request("GET", tokend_path(cb, self.d))
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"already used", r.body)
        # A delegated token under it.
        r = self.d.request("POST", "/token", h.form([
            ("grant_type", TE), ("subject_token", t["access_token"]), ("subject_token_type", AT),
            ("scope", "mcp:read"), ("client_id", sub_agent["client_id"])]), content_type=h.FORM)
        self.assertEqual(r.status, 200, r)
        child = r.json()["access_token"]
        self.assertActive(child)
        # The user logs out at oidc-provider, which posts a logout token to
        # tokend's /backchannel-logout before it answers.
        self.log_out_at_op(ib, self.iss + "/session/end")
        self.assertInactive(t["access_token"])
        self.assertInactive(child)
        self.assertInactive(t["refresh_token"])
        self.assertIn("applied=yes", "\n".join(
            l for l in self.d.stderr().splitlines() if "idp_event_done" in l))

    def test_logout_at_tokend_goes_on_to_the_idp(self):
        agent = self.register()
        tb, ib = CookieBrowser(self.d), IdpBrowser()
        verifier, state, auth_url, _ = self.start(tb, agent["client_id"], 0)
        cb = self.sign_in_at_op(ib, auth_url, "bob")
        code = self.consent(tb, tb.request("GET", tokend_path(cb, self.d)), state)
        t = self.redeem(agent["client_id"], code, verifier)
        self.assertActive(t["access_token"])
        r = tb.request("GET", "/logout")
        self.assertEqual(r.status, 200, r)
        f = Page(r.body).hidden()
        self.assertIn("csrf", f)
        # Without the form's CSRF token (a cross-site post): nothing happens.
        r = tb.request("POST", "/logout", h.form([("csrf", "A" * 43)]), h.FORM)
        self.assertEqual(r.status, 400, r)
        self.assertActive(t["access_token"])
        r = tb.request("POST", "/logout", h.form([("csrf", f["csrf"])]), h.FORM)
        self.assertEqual(r.status, 303, r)
        self.assertIn("Max-Age=0", r.header("Set-Cookie"))
        end = r.header("Location")
        self.assertEqual(end, self.iss + "/session/end?client_id=tokend")
        self.assertInactive(t["access_token"])
        self.assertInactive(t["refresh_token"])
        r = tb.request("GET", "/logout")  # signed out: the page says so
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"signed out", r.body)
        # At the IdP: its end-session confirmation, then its own back-channel
        # logout to tokend (the session is already over: still accepted).
        self.log_out_at_op(ib, end)
        self.assertInactive(t["access_token"])

    def test_missing_iss_refused_when_the_op_advertises_it(self):
        """oidc-provider's discovery says authorization_response_iss_parameter_
        supported: an answer without iss is refused (RFC 9207 §2.4)."""
        agent = self.register()
        tb, ib = CookieBrowser(self.d), IdpBrowser()
        _, _, auth_url, _ = self.start(tb, agent["client_id"], 0)
        cb = self.sign_in_at_op(ib, auth_url, "carol")
        p = urllib.parse.urlsplit(cb)
        q = [(k, v) for k, v in urllib.parse.parse_qsl(p.query) if k != "iss"]
        r = tb.request("GET", "/login/callback?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"lacks the iss", r.body)
        self.assertNotIn("__Host-tokend-session=", r.header("Set-Cookie") or "")
        self.no_session_for("carol")

    def fake_callback(self, tb, cid, mutate=None):
        """/authorize for client cid, sent to the fake IdP, then the
        callback it would answer with (a code registered with the sign-in's
        nonce; mutate(query, tb) may change it first). Returns (tokend's
        answer to the callback, verifier, state)."""
        verifier, state, auth_url, aq = self.start(tb, cid, 1)
        self.assertTrue(auth_url.startswith(self.fake.issuer + "/auth?"), auth_url)
        code = secrets.token_urlsafe(24)
        self.fake.codes[code] = aq["nonce"]
        q = {"code": code, "state": aq["state"], "iss": self.fake.issuer}
        if mutate:
            mutate(q, tb)
        return tb.request("GET", "/login/callback?" + urllib.parse.urlencode(q)), verifier, state

    def fake_round(self, mode, tb=None, mutate=None):
        """One sign-in at the fake IdP in the given mode; returns tokend's
        answer to the callback."""
        self.fake.mode = mode
        agent = self.register()
        return self.fake_callback(tb or CookieBrowser(self.d), agent["client_id"], mutate)[0]

    def test_fake_idp_good_then_every_refusal(self):
        r = self.fake_round("good")
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie"))
        hdrs, body = self.fake.requests[-1]
        self.assertEqual(body["client_secret"], "fake-secret")  # client_secret_post
        self.assertEqual(len(body["code_verifier"]), 43)
        self.assertEqual(body["grant_type"], "authorization_code")
        for mode, text in (("nonce", b"nonce"), ("no-nonce", b"nonce"),
                           ("aud", b"not issued to this server"), ("iss", b"another issuer"),
                           ("azp", b"authorized party"), ("expired", b"expired"),
                           ("key", b"signature does not verify"),
                           ("kid", b"does not publish")):
            with self.subTest(mode=mode):
                r = self.fake_round(mode)
                self.assertEqual(r.status, 403, r)
                self.assertIn(b"No one was signed in", r.body)
                self.assertIn(text, r.body)
                self.assertNotIn("__Host-tokend-session=", r.header("Set-Cookie") or "")
                self.no_session_for("mallory-" + mode)

    def test_auth_time_acr_amr_kept(self):
        """The ID token's auth_time, acr and amr are kept on the session:
        tokenctl session show, the sign_in audit line and the introspection
        answer (RFC 9068 §2.2.1) show them; values that are not tokens are
        left out (and counted), never a reason to refuse the sign-in."""
        self.fake.mode = "good"
        at = int(time.time()) - 42
        self.fake.extra = {"auth_time": at, "acr": "urn:okta:loa:2fa:any",
                           "amr": ["pwd", "mfa", "not a token", 7, "hwk"]}
        self.addCleanup(setattr, self.fake, "extra", {})
        agent = self.register()
        tb = CookieBrowser(self.d)
        r, verifier, state = self.fake_callback(tb, agent["client_id"])
        t = self.redeem(agent["client_id"], self.consent(tb, r, state), verifier)
        j = self.assertActive(t["access_token"])
        self.assertEqual((j["auth_time"], j["acr"], j["amr"]),
                         (at, "urn:okta:loa:2fa:any", ["pwd", "mfa", "hwk"]))
        s = self.d.ctl("session", "show", j["sid"])
        self.assertEqual((s["auth_time"], s["acr"], s["amr"]),
                         (at, "urn:okta:loa:2fa:any", ["pwd", "mfa", "hwk"]))
        line = [l for l in self.d.stderr().splitlines()
                if "method=oidc" in l and "sid=%s " % j["sid"] in l][-1]
        self.assertIn('auth_time=%d acr="urn:okta:loa:2fa:any" amr="pwd mfa hwk" '
                      'claims_dropped=2' % at, line)
        # A refresh keeps the session, so the new token shows them too.
        r = self.d.request("POST", "/token", h.form([
            ("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"]),
            ("client_id", agent["client_id"])]), content_type=h.FORM)
        self.assertEqual(r.status, 200, r)
        j2 = self.assertActive(r.json()["access_token"])
        self.assertEqual((j2["auth_time"], j2["acr"], j2["amr"]), (j["auth_time"], j["acr"],
                                                                   j["amr"]))
        # An acr that is not a token, an amr that is not an array, an
        # auth_time that is not a number: the sign-in works, nothing is kept.
        self.fake.extra = {"auth_time": "yesterday", "acr": "two words", "amr": "pwd"}
        agent = self.register()
        tb = CookieBrowser(self.d)
        r, verifier, state = self.fake_callback(tb, agent["client_id"])
        t = self.redeem(agent["client_id"], self.consent(tb, r, state), verifier)
        j = self.assertActive(t["access_token"])
        for k in ("auth_time", "acr", "amr"):
            self.assertNotIn(k, j)
        s = self.d.ctl("session", "show", j["sid"])
        for k in ("auth_time", "acr", "amr"):
            self.assertNotIn(k, s)

    def test_reloading_the_sign_in_link_takes_no_more_slots(self):
        # Review finding: every GET of the IdP link took a new slot of the
        # 1024 pending sign-ins for authorize-ttl, so ~1,025 reloads of one
        # authorization request locked every user out (503). One sign-in per
        # request now, and a full table evicts the oldest instead of refusing.
        self.fake.mode = "good"
        agent = self.register()
        tb = CookieBrowser(self.d)
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": agent["client_id"], "redirect_uri": REDIRECT,
            "code_challenge": s256(new_verifier()), "code_challenge_method": "S256",
            "state": "s", "scope": "mcp:read", "resource": RESOURCE})
        login = tb.request("GET", "/authorize?" + q).header("Location")
        r = tb.request("GET", login)
        link = [a["href"] for a in Page(r.body).tags("a") if a.get("class") == "idp"][1]
        statuses = set()
        for _ in range(1100):
            statuses.add(tb.request("GET", link).status)
        self.assertEqual(statuses, {303})
        r = self.fake_round("good")  # another user's sign-in still works
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie"))

    def test_callback_refusals(self):
        # RFC 9207: an iss other than the IdP the sign-in was sent to.
        r = self.fake_round("good", mutate=lambda q, tb: q.update(iss=self.iss))
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"RFC 9207", r.body)
        # Another browser (no binder cookie) cannot complete the sign-in.
        r = self.fake_round("good", mutate=lambda q, tb: tb.cookies.clear())
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"another browser", r.body)
        # An unknown state.
        r = self.fake_round("good", mutate=lambda q, tb: q.update(state="x" * 43))
        self.assertEqual(r.status, 400, r)
        # The IdP's error answer.
        r = self.fake_round("good", mutate=lambda q, tb: (q.pop("code"), q.update(
            error="access_denied")))
        self.assertEqual(r.status, 400, r)
        for resp in (r,):
            self.assertNotIn("__Host-tokend-session=", resp.header("Set-Cookie") or "")

    def test_callback_from_another_browser_leaves_the_sign_in(self):
        # Review finding: a failed callback consumed the pending sign-in before
        # the binder cookie was checked, so whoever learnt the state (a log, a
        # Referer, a shoulder) could cancel the user's sign-in. Only the
        # browser holding the binder consumes it now; every other answer from
        # elsewhere (no cookie, a forged one, another sign-in's real one, an
        # IdP error, another iss, no code) leaves it for the user.
        self.fake.mode = "good"
        agent = self.register()
        user = CookieBrowser(self.d)
        _, _, _, aq = self.start(user, agent["client_id"], 1)
        code = secrets.token_urlsafe(24)
        self.fake.codes[code] = aq["nonce"]
        good = {"code": code, "state": aq["state"], "iss": self.fake.issuer}
        other = CookieBrowser(self.d)  # a sign-in of its own: a real binder, not the user's
        self.start(other, self.register()["client_id"], 1)
        forged = CookieBrowser(self.d)
        forged.cookies["__Host-tokend-login"] = secrets.token_urlsafe(32)
        attempts = [(CookieBrowser(self.d), good), (forged, good), (other, good),
                    (other, {"state": aq["state"], "error": "access_denied",
                             "iss": self.fake.issuer}),
                    (other, dict(good, iss=self.iss)), (other, {"state": aq["state"]})]
        for tb, q in attempts:
            r = tb.request("GET", "/login/callback?" + urllib.parse.urlencode(q))
            self.assertEqual(r.status, 400, r)
            self.assertIn(b"another browser", r.body)
            self.assertNotIn("__Host-tokend-session=", r.header("Set-Cookie") or "")
        # The user's own browser still completes the sign-in, once.
        r = user.request("GET", "/login/callback?" + urllib.parse.urlencode(good))
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie"))
        r = user.request("GET", "/login/callback?" + urllib.parse.urlencode(good))
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"already used", r.body)

    def test_another_browser_cannot_start_or_replace_the_sign_in(self):
        # Review finding: the pending sign-in was kept per authorization
        # request and any browser could (re)start it with /login?request=ID:
        # whoever learnt the id replaced the user's sign-in (the user's
        # callback then failed, "unknown state") and could finish it at the
        # IdP as themselves, binding the user's request (its client, state and
        # PKCE challenge) to their own browser and account. Only the browser
        # that made the request (its pre-login cookie, set at /authorize)
        # starts or replaces its sign-in now; reloading from it still works.
        agent = self.register()
        user, ib = CookieBrowser(self.d), IdpBrowser()
        verifier, state = new_verifier(), secrets.token_urlsafe(8)
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": agent["client_id"], "redirect_uri": REDIRECT,
            "code_challenge": s256(verifier), "code_challenge_method": "S256",
            "state": state, "scope": "mcp:read", "resource": RESOURCE})
        r = user.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        prelogin = r.header("Set-Cookie") or ""
        login = r.header("Location")
        r = user.request("GET", login)
        self.assertEqual(r.status, 200, r)  # the chooser
        link = [a["href"] for a in Page(r.body).tags("a") if a.get("class") == "idp"][0]
        self.assertIn("idp=", link)
        r = user.request("GET", link)
        self.assertEqual(r.status, 303, r)
        first = r.header("Location")
        r = user.request("GET", link)  # a reload in the user's browser: a fresh sign-in
        self.assertEqual(r.status, 303, r)
        auth_url = r.header("Location")
        self.assertTrue(auth_url.startswith(self.iss + "/auth?"), auth_url)
        self.assertNotEqual(first, auth_url)
        # Other browsers: none, a forged pre-login cookie, their own real one.
        forged = CookieBrowser(self.d)
        forged.cookies["__Host-tokend-authz"] = secrets.token_urlsafe(32)
        other = CookieBrowser(self.d)
        self.start(other, self.register()["client_id"], 0)
        for tb in (CookieBrowser(self.d), forged, other):
            for path in (login, link):
                r = tb.request("GET", path)
                self.assertEqual(r.status, 403, r)
                self.assertIn(b"another browser", r.body)
                self.assertIsNone(r.header("Location"), r)
                self.assertNotIn("__Host-tokend-login=", r.header("Set-Cookie") or "")
        # The user's own (latest) sign-in is intact and completes.
        cb = self.sign_in_at_op(ib, auth_url, "erin")
        r = user.request("GET", tokend_path(cb, self.d))
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie") or "", r)
        code = self.consent(user, r, state)
        t = self.redeem(agent["client_id"], code, verifier)
        self.assertEqual(self.assertActive(t["access_token"])["sub"], "erin")
        # What bound the request to the user's browser: its pre-login cookie.
        self.assertIn("__Host-tokend-authz=", prelogin)
        self.assertIn("HttpOnly", prelogin)
        self.assertIn("__Host-tokend-authz", other.cookies)

    def test_callback_needs_the_requests_browser(self):
        # The callback checks the pre-login cookie too (while the request is
        # pending): the binder cookie alone does not finish the sign-in.
        def drop(q, tb):
            tb.cookies.pop("__Host-tokend-authz", None)
        r = self.fake_round("good", mutate=drop)
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"another browser", r.body)
        self.assertNotIn("__Host-tokend-session=", r.header("Set-Cookie") or "")
        r = self.fake_round("good")  # the control
        self.assertEqual(r.status, 303, r)

    def test_key_rotated_at_the_idp(self):
        """The IdP rotates to a key with a new kid: the first ID token under
        it is refused (and makes tokend fetch the JWKS again), the next sign-in
        works, without a restart."""
        self.fake.key = iu.Key(self.dir, "fake-idp-2", "rsa", kid="fake-2")
        r = self.fake_round("good")
        self.assertEqual(r.status, 403, r)
        self.assertIn(b"does not publish", r.body)
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.5)
            r = self.fake_round("good")
            if r.status == 303 or time.monotonic() > deadline:
                break
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie"))

    def test_idp_garbage_or_slow(self):
        agent = self.register()
        _ = agent
        r = self.fake_round("garbage")
        self.assertEqual(r.status, 502, r)
        self.assertIn(b"answer was not understood", r.body)
        # Slow beyond the outbound timeout: introspection keeps answering meanwhile.
        t = self.d.add_client("agent", "slow-check")
        _ = t
        out = {}

        def callback():
            out["r"] = self.fake_round("slow")

        th = threading.Thread(target=callback)
        before = len(self.fake.requests)
        th.start()
        deadline = time.monotonic() + 10
        while len(self.fake.requests) == before:  # the redemption reached the IdP
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        for i in range(20):
            r = self.d.introspect("tkd_at_" + "A" * 43)
            self.assertEqual(r.status, 200, r)
            if i == 0:  # answered while the redemption was still pending
                self.assertTrue(th.is_alive())
        th.join(30)
        self.assertEqual(out["r"].status, 502, out["r"])
        self.assertIn(b"did not answer in time", out["r"].body)


class OidcPrivateKeyJwt(Flow, h.TokenAsserts, unittest.TestCase):
    """tokend authenticates at oidc-provider's token endpoint with
    private_key_jwt (RFC 7523 §2.2): the client is registered there with
    token_endpoint_auth_method private_key_jwt and tokend's public keys (an
    EC P-256 and an RSA key). Sign-in works with either key (ES256, RS256;
    aud the issuer or the token endpoint); a key the IdP does not know is
    refused by the IdP, and the user gets a clear error page and no session."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tokend-pkjwt-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.ec = iu.Key(cls.dir, "rp-ec", "p256", kid="rp-ec")
        cls.rsa = iu.Key(cls.dir, "rp-rsa", "rsa", kid="rp-rsa")
        cls.rogue = iu.Key(cls.dir, "rogue", "p256", kid="rp-ec")  # the right kid, another key
        for k in (cls.ec, cls.rsa, cls.rogue):
            os.chmod(k.path, 0o600)
        jwks = os.path.join(cls.dir, "client.jwks.json")
        with open(jwks, "w") as f:
            json.dump({"keys": [cls.ec.jwk(), cls.rsa.jwk()]}, f)
        port = free_port()
        cls.iss = start_op(cls, cls.dir, "http://127.0.0.1:%d" % port, "unused",
                           "example.test", "", jwks)
        cls.trust = os.path.join(cls.dir, "idp.json")
        cls.write_trust(cls.ec)
        res = os.path.join(cls.dir, "resources.json")
        with open(res, "w") as f:
            json.dump({"resources": [{"resource": RESOURCE, "name": "MCP test server",
                                      "scopes_supported": ["mcp:read"]}]}, f)
        cls.d = h.start_daemon(("--listen", "127.0.0.1:%d" % port, "--login", "oidc",
                                "--registration", "open", "--resources", res,
                                "--idp-config", cls.trust, "--register-burst", "0"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("resource_server", "rs", resource=RESOURCE)

    @classmethod
    def write_trust(cls, key, aud=None):
        entry = {"issuer": cls.iss, "audience": "tokend", "client_id": "tokend",
                 "token_endpoint_auth_method": "private_key_jwt",
                 "client_key_file": os.path.basename(key.path), "client_key_kid": key.kid}
        if aud is not None:
            entry["client_assertion_aud"] = aud
        with open(cls.trust, "w") as f:
            json.dump({"issuers": [entry]}, f)

    def reload_with(self, key, aud=None):
        before = self.d.stderr(10 ** 7).count("IdP configuration reloaded")
        self.write_trust(key, aud)
        self.d.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while self.d.stderr(10 ** 7).count("IdP configuration reloaded") == before:
            self.assertLess(time.monotonic(), deadline, "no reload")
            time.sleep(0.05)

    def sign_in(self, user):
        """The whole flow; returns (tokend's answer to the callback, the
        browser, state, verifier, agent)."""
        agent = self.register()
        tb, ib = CookieBrowser(self.d), IdpBrowser()
        verifier, state, auth_url, aq = self.start(tb, agent["client_id"], None)
        self.assertTrue(auth_url.startswith(self.iss + "/auth?"), auth_url)
        cb = self.sign_in_at_op(ib, auth_url, user)
        return tb.request("GET", tokend_path(cb, self.d)), tb, state, verifier, agent

    def test_keys_in_turn(self):
        # EC P-256 (ES256), aud the issuer (the default).
        r, tb, state, verifier, agent = self.sign_in("dora")
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie") or "", r)
        code = self.consent(tb, r, state)
        t = self.redeem(agent["client_id"], code, verifier)
        self.assertEqual(self.assertActive(t["access_token"])["sub"], "dora")
        # RSA (RS256), aud the token endpoint.
        self.reload_with(self.rsa, "token_endpoint")
        r, tb, state, verifier, agent = self.sign_in("erin")
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie") or "", r)
        code = self.consent(tb, r, state)
        t = self.redeem(agent["client_id"], code, verifier)
        self.assertEqual(self.assertActive(t["access_token"])["sub"], "erin")
        # A key the IdP does not know under a kid it knows: the IdP refuses
        # the redemption (invalid_client); the user is told, nobody signed in.
        self.reload_with(self.rogue)
        r, tb, _, _, _ = self.sign_in("frank")
        self.assertEqual(r.status, 502, r)
        self.assertIn(b"did not accept this server&#39;s client credentials", r.body)
        self.assertIn(b"No one was signed in", r.body)
        self.assertNotIn("__Host-tokend-session=", r.header("Set-Cookie") or "")
        log = self.d.stderr(10 ** 7)
        self.assertIn("oidc_redeem_refused", log)
        self.assertIn("status=401", log)
        self.assertNotIn("sub=frank ", "\n".join(l for l in log.splitlines() if "sign_in" in l))
        # The assertion never reaches the log (its signature part, in any line).
        self.assertNotIn("client_assertion=", log)
        self.assertNotIn("eyJ", log)
        self.reload_with(self.ec)
        r, _, _, _, _ = self.sign_in("gina")
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie") or "", r)


class OidcIdpDown(h.TokenAsserts, unittest.TestCase):
    """The only sign-in IdP is down when tokend starts: tokend starts and
    answers introspection; a sign-in is an error page (discovery is retried
    every minute, without a SIGHUP)."""

    def test_idp_down_at_start(self):
        folder = tempfile.mkdtemp(prefix="tokend-oidc-down-")
        self.addCleanup(shutil.rmtree, folder, True)
        dead = "http://127.0.0.1:%d" % free_port()  # nothing listens there
        trust = os.path.join(folder, "idp.json")
        with open(trust, "w") as f:
            json.dump({"issuers": [{"issuer": dead, "audience": "tokend", "client_id": "tokend",
                                    "client_secret": "s"}]}, f)
        res = os.path.join(folder, "resources.json")
        with open(res, "w") as f:
            json.dump({"resources": [{"resource": RESOURCE, "name": "MCP",
                                      "scopes_supported": ["mcp:read"]}]}, f)
        self.d = h.start_daemon(("--login", "oidc", "--registration", "open", "--resources", res,
                                 "--idp-config", trust))
        self.addCleanup(h.destroy_daemon, self.d)
        self.d.default_auth = self.d.add_client("resource_server", "rs", resource=RESOURCE)
        self.assertIn("oidc_discovery_failed", self.d.stderr())
        r = self.d.request("POST", "/register", json.dumps({
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"]}).encode(), content_type="application/json")
        cid = r.json()["client_id"]
        tb = CookieBrowser(self.d)
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
            "code_challenge": s256(new_verifier()), "code_challenge_method": "S256",
            "scope": "mcp:read", "resource": RESOURCE})
        r = tb.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        r = tb.request("GET", r.header("Location"))
        self.assertEqual(r.status, 503, r)
        self.assertIn(b"could not be reached", r.body)
        self.assertNotIn("__Host-tokend", r.header("Set-Cookie") or "")
        self.assertInactive("tkd_at_" + "B" * 43)
        # The dev login's form post is not a way around the upstream sign-in.
        r = tb.request("POST", "/login", h.form([("request", "x"), ("csrf", "y"),
                                                 ("subject", "root")]), h.FORM)
        self.assertEqual(r.status, 405, r)

    def test_oidc_needs_a_signin_idp(self):
        folder = tempfile.mkdtemp(prefix="tokend-oidc-none-")
        self.addCleanup(shutil.rmtree, folder, True)
        for doc, why in (
                (None, "idp-config"),
                ({"issuers": [{"issuer": "https://idp.test", "audience": "a",
                               "jwks_uri": "https://idp.test/jwks"}]}, "names a client_id"),
                ({"issuers": [{"issuer": "https://idp.test", "audience": "a",
                               "client_id": "c"}]}, "client_secret"),
                ({"issuers": [{"issuer": "http://idp.test", "audience": "a", "client_id": "c",
                               "client_secret": "s"}]}, "https"),
                ({"issuers": [{"issuer": "https://idp.test", "audience": "a", "client_id": "c",
                               "client_secret": "s",
                               "token_endpoint_auth_method": "none"}]}, "client_secret_basic")):
            with self.subTest(why=why):
                args = ["--data", folder, "--listen", "127.0.0.1:0", "--login", "oidc"]
                if doc is not None:
                    trust = os.path.join(folder, "idp.json")
                    with open(trust, "w") as f:
                        json.dump(doc, f)
                    args += ["--idp-config", trust]
                p = subprocess.run([h.TOKEND_BIN] + args, capture_output=True, text=True,
                                   timeout=60, env=h._env())
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(why, p.stderr)


if __name__ == "__main__":
    unittest.main()
