"""The authorization server end to end against the real tokend, playing the
browser over HTTP: register (RFC 7591) -> GET /authorize -> 303 /login ->
POST /login (dev login, cookie) -> consent page -> POST approve -> 303 to
the redirect URI with code, state and iss -> POST /token with PKCE ->
introspection active with aud = the resource -> refresh rotation -> replay
of the old refresh token after the reuse window revokes the family ->
token exchange to a second client allowed to receive delegation ->
revoking the parent kills the child -> tokenctl session terminate kills
everything and refreshing fails. Plus the metadata members, the code used
twice, a wrong PKCE verifier and a pending client."""

import base64
import hashlib
import html.parser
import json
import os
import secrets
import shutil
import tempfile
import time
import unittest
import urllib.parse

import harness as h

h.require_binaries()

RESOURCE = "https://mcp.test/mcp"
REDIRECT = "http://127.0.0.1:9/callback"


class Inputs(html.parser.HTMLParser):
    """The <input>/<button> names and values of a page, and links by id."""

    def __init__(self):
        super().__init__()
        self.values = {}
        self.links = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and "name" in a:
            self.values[a["name"]] = a.get("value", "")
        if tag == "a" and "id" in a:
            self.links[a["id"]] = a.get("href", "")


def parse_page(body):
    p = Inputs()
    p.feed(body.decode())
    return p


def pkce():
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Browser:
    """Cookies of one browser (only ours matters) and redirects by hand."""

    def __init__(self, d):
        self.d = d
        self.cookie = None

    def request(self, method, path, body=b"", ctype=None):
        headers = {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        r = self.d.request(method, path, body, headers=headers, content_type=ctype)
        sc = r.header("Set-Cookie")
        if sc:
            self.cookie = sc.split(";")[0]
        return r

    def post_form(self, path, pairs):
        return self.request("POST", path, h.form(pairs), "application/x-www-form-urlencoded")


class ASBase(h.TokenAsserts, unittest.TestCase):
    """One tokend with a resource, dev login and open registration; the browser helpers."""

    @classmethod
    def setUpClass(cls):
        cls.res_dir = tempfile.mkdtemp(prefix="tokend-as-")
        cls.addClassCleanup(shutil.rmtree, cls.res_dir, True)
        path = os.path.join(cls.res_dir, "resources.json")
        with open(path, "w") as f:
            json.dump({"resources": [{"resource": RESOURCE, "name": "MCP test server",
                                      "scopes_supported": ["mcp:read", "mcp:write"]}]}, f)
        cls.d = h.start_daemon(("--resources", path, "--login", "dev", "--registration", "open",
                                "--refresh-reuse-window", "2"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.rs = cls.d.add_client("resource_server", "rs", resource=RESOURCE)
        cls.admin = cls.d.add_client("admin", "admin")
        cls.d.default_auth = cls.rs

    # -- helpers --

    def register(self, **extra):
        doc = {"redirect_uris": [REDIRECT], "client_name": "test agent",
               "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code", "refresh_token"]}
        doc.update(extra)
        r = self.d.request("POST", "/register", json.dumps(doc).encode(),
                           content_type="application/json")
        self.assertEqual(r.status, 201, r)
        return r.json()

    def authorize(self, client_id, browser=None, scope="mcp:read mcp:write", subject="alice"):
        """Run the browser through sign-in and consent; returns (code, verifier, browser)."""
        b = browser or Browser(self.d)
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(8)
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
            "scope": scope, "resource": RESOURCE})
        r = b.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        loc = r.header("Location")
        if loc.startswith("/login"):
            r = b.request("GET", loc)
            self.assertEqual(r.status, 200, r)
            self.assertIn("frame-ancestors 'none'", r.header("Content-Security-Policy"))
            self.assertEqual(r.header("X-Frame-Options"), "DENY")
            form = parse_page(r.body).values
            r = b.post_form("/login", [("request", form["request"]), ("csrf", form["csrf"]),
                                       ("subject", subject)])
            self.assertEqual(r.status, 303, r)
            self.assertIn("__Host-tokend-session=", r.header("Set-Cookie"))
            self.assertIn("HttpOnly", r.header("Set-Cookie"))
            r = b.request("GET", r.header("Location"))
            self.assertEqual(r.status, 303, r)
            loc = r.header("Location")
        if loc.startswith("/consent"):
            r = b.request("GET", loc)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Referrer-Policy"), "no-referrer")
            self.assertNotIn(b"<script", r.body)
            form = parse_page(r.body).values
            r = b.post_form("/consent", [("request", form["request"]), ("csrf", form["csrf"]),
                                         ("decision", "approve")])
            self.assertEqual(r.status, 303, r)
            loc = r.header("Location")
        self.assertTrue(loc.startswith(REDIRECT + "?"), loc)
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        self.assertEqual(params["state"], state)
        self.assertEqual(params["iss"], "http://127.0.0.1:%d" % self.d.port)
        return params["code"], verifier, b

    def token(self, pairs):
        return self.d.request("POST", "/token", h.form(pairs),
                              content_type="application/x-www-form-urlencoded")

    def redeem(self, client_id, code, verifier):
        return self.token([("grant_type", "authorization_code"), ("code", code),
                           ("redirect_uri", REDIRECT), ("code_verifier", verifier),
                           ("client_id", client_id)])

    def refresh(self, client_id, rt, scope=None):
        pairs = [("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", client_id)]
        if scope:
            pairs.append(("scope", scope))
        return self.token(pairs)


class ASFlow(ASBase):


    def test_metadata(self):
        m = self.d.request("GET", "/.well-known/oauth-authorization-server").json()
        for k in ("authorization_endpoint", "token_endpoint", "registration_endpoint"):
            self.assertTrue(m[k].startswith("http://127.0.0.1:%d/" % self.d.port), m)
        self.assertEqual(m["code_challenge_methods_supported"], ["S256"])
        self.assertIn("none", m["token_endpoint_auth_methods_supported"])
        self.assertEqual(m["response_types_supported"], ["code"])
        self.assertIs(m["authorization_response_iss_parameter_supported"], True)
        self.assertEqual(sorted(m["scopes_supported"]), ["mcp:read", "mcp:write"])

    def test_full_flow(self):
        agent = self.register()
        self.assertNotIn("client_secret", agent)
        self.assertEqual(agent["redirect_uris"], [REDIRECT])
        cid = agent["client_id"]
        code, verifier, browser = self.authorize(cid)

        # A wrong verifier is refused and does not burn the code.
        r = self.redeem(cid, code, pkce()[0])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"), r)
        r = self.redeem(cid, code, verifier)
        self.assertEqual(r.status, 200, r)
        t = r.json()
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(r.header("Pragma"), "no-cache")
        self.assertEqual(t["token_type"], "Bearer")
        self.assertEqual(t["scope"], "mcp:read mcp:write")
        j = self.assertActive(t["access_token"])
        self.assertEqual(j["aud"], RESOURCE)
        self.assertEqual(j["sub"], "alice")
        self.assertEqual(j["client_id"], cid)

        # Rotation: the new pair works, the old refresh token within the
        # window gets a sibling, after it the family dies.
        r = self.refresh(cid, t["refresh_token"], scope="mcp:read")
        self.assertEqual(r.status, 200, r)
        t2 = r.json()
        self.assertEqual(t2["scope"], "mcp:read")
        self.assertActive(t2["access_token"])
        r = self.refresh(cid, t2["refresh_token"], scope="mcp:read mcp:write")
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_scope"), r)
        r = self.refresh(cid, t["refresh_token"])
        self.assertEqual(r.status, 200, r)  # within the reuse window: a sibling
        time.sleep(3.2)
        r = self.refresh(cid, t["refresh_token"])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"), r)
        self.assertInactive(t["access_token"])
        self.assertInactive(t2["access_token"])
        r = self.refresh(cid, t2["refresh_token"])
        self.assertEqual(r.status, 400, r)

        # The same user authorizes again: consent is needed again (the grant was revoked).
        code, verifier, _ = self.authorize(cid, browser)
        t = self.redeem(cid, code, verifier).json()
        self.assertActive(t["access_token"])

        # Token exchange to a sub-agent the agent may delegate to.
        sub = self.register(grant_types=["urn:ietf:params:oauth:grant-type:token-exchange"],
                            redirect_uris=[])
        exchange = [("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    ("subject_token", t["access_token"]),
                    ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                    ("scope", "mcp:read"), ("client_id", sub["client_id"])]
        r = self.token(exchange)
        self.assertEqual((r.status, r.json()["error"]), (400, "unauthorized_client"), r)
        self.assertNotIn("may_act", self.assertActive(t["access_token"]))
        self.d.ctl("client", "set", cid, "--delegate-to", sub["client_id"])
        self.assertEqual(self.assertActive(t["access_token"])["may_act"],
                         {"sub": sub["client_id"]})
        r = self.token(exchange)
        self.assertEqual(r.status, 200, r)
        x = r.json()
        self.assertEqual(x["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token")
        j = self.assertActive(x["access_token"])
        self.assertEqual(j["act"]["sub"], sub["client_id"])
        self.assertEqual(j["scope"], "mcp:read")
        r = self.d.revoke(t["access_token"], auth=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertInactive(x["access_token"])

        # Session end: everything of the user dies and refreshing fails.
        code, verifier, _ = self.authorize(cid, browser)
        t = self.redeem(cid, code, verifier).json()
        self.assertActive(t["access_token"])
        j = self.d.introspect(t["access_token"], self.admin).json()
        self.d.ctl("session", "terminate", j["sid"])
        self.assertInactive(t["access_token"])
        r = self.refresh(cid, t["refresh_token"])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"), r)

    def test_auth_challenge_names_scopes(self):
        r = self.d.request("GET", "/auth", headers={"X-Forwarded-Host": "mcp.test",
                                                    "X-Forwarded-Uri": "/mcp"})
        self.assertEqual(r.status, 401, r)
        self.assertIn('scope="mcp:read mcp:write"', r.header("WWW-Authenticate"))

    def test_grant_list_and_revoke(self):
        cid = self.register()["client_id"]
        code, verifier, _ = self.authorize(cid, subject="gina")
        t = self.redeem(cid, code, verifier).json()
        grants = self.d.ctl("grant", "list", "--sub", "gina")
        self.assertEqual(len(grants), 1, grants)
        g = grants[0]
        self.assertEqual((g["client_id"], g["resource"], g["state"]), (cid, RESOURCE, "active"))
        self.d.ctl("grant", "revoke", g["grant_id"])
        self.assertInactive(t["access_token"])
        r = self.refresh(cid, t["refresh_token"])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"), r)
        self.assertEqual(self.d.ctl("grant", "list", "--sub", "gina")[0]["state"], "revoked")

    def test_tokenctl_public_agent(self):
        a = self.d.ctl("client", "add", "--name", "cli agent", "--role", "agent", "--public",
                       "--redirect-uri", REDIRECT, "--redirect-uri", "http://127.0.0.1/other")
        self.assertNotIn("client_secret", a)
        code, verifier, _ = self.authorize(a["client_id"], subject="hank")
        r = self.redeem(a["client_id"], code, verifier)
        self.assertEqual(r.status, 200, r)
        self.assertIn("refresh_token", r.json())

    def test_code_twice_revokes(self):
        cid = self.register()["client_id"]
        code, verifier, _ = self.authorize(cid, subject="bob")
        t = self.redeem(cid, code, verifier).json()
        self.assertActive(t["access_token"])
        r = self.redeem(cid, code, verifier)
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"), r)
        self.assertInactive(t["access_token"])

    def test_unsupported_grants(self):
        for g in ("client_credentials", "password"):
            r = self.token([("grant_type", g), ("client_id", "x")])
            self.assertEqual((r.status, r.json()["error"]), (400, "unsupported_grant_type"), r)
        r = self.d.request("POST", "/register", json.dumps(
            {"grant_types": ["client_credentials"], "redirect_uris": []}).encode(),
            content_type="application/json")
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_client_metadata"), r)

    def test_redirect_mismatch_is_a_page(self):
        cid = self.register()["client_id"]
        _, challenge = pkce()
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": cid, "redirect_uri": "https://evil.test/cb",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        r = self.d.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 400, r)
        self.assertIsNone(r.header("Location"))
        # PKCE missing after the redirect is verified: an error redirect.
        q = urllib.parse.urlencode({"response_type": "code", "client_id": cid,
                                    "redirect_uri": REDIRECT, "state": "s1"})
        r = self.d.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        self.assertIn("error=invalid_request", r.header("Location"))
        self.assertIn("state=s1", r.header("Location"))


class Refusals(ASBase):
    """Each refusal answers the RFC's error and leaves the store unchanged."""

    def stats(self):
        return self.d.ctl("stats")

    def start(self, cid, browser, scope="mcp:read"):
        """GET /authorize with a signed-in browser; returns the consent form values."""
        verifier, challenge = pkce()
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "s",
            "scope": scope, "prompt": "consent"})
        r = browser.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        r = browser.request("GET", r.header("Location"))
        self.assertEqual(r.status, 200, r)
        return parse_page(r.body).values

    def signed_in(self, cid, subject):
        code, verifier, b = self.authorize(cid, subject=subject)
        self.redeem(cid, code, verifier)
        return b

    def test_csrf(self):
        cid = self.register()["client_id"]
        alice = self.signed_in(cid, "csrf-alice")
        mallory = self.signed_in(cid, "csrf-mallory")
        form = self.start(cid, alice)
        before = self.stats()
        cases = [
            (alice, [("request", form["request"]), ("decision", "approve")]),  # no csrf
            (alice, [("request", form["request"]), ("csrf", "x" * 43), ("decision", "approve")]),
            (mallory, [("request", form["request"]), ("csrf", form["csrf"]),
                       ("decision", "approve")]),  # another session
            (Browser(self.d), [("request", form["request"]), ("csrf", form["csrf"]),
                               ("decision", "approve")]),  # no session at all
            (alice, [("request", form["request"]), ("csrf", form["csrf"]),
                     ("decision", "approve"), ("decision", "approve")]),  # duplicate
        ]
        for browser, pairs in cases:
            r = browser.post_form("/consent", pairs)
            self.assertEqual(r.status, 400, (pairs, r))
            self.assertIsNone(r.header("Location"))
        self.assertEqual(self.stats(), before)
        r = alice.post_form("/consent", [("request", form["request"]), ("csrf", form["csrf"]),
                                         ("decision", "deny")])
        self.assertEqual(r.status, 303, r)
        self.assertIn("error=access_denied", r.header("Location"))
        r = alice.post_form("/consent", [("request", form["request"]), ("csrf", form["csrf"]),
                                         ("decision", "approve")])  # reused
        self.assertEqual(r.status, 400, r)

    def test_confidential_client(self):
        reg = self.register(token_endpoint_auth_method="client_secret_basic")
        cid, secret = reg["client_id"], reg["client_secret"]
        self.assertEqual(reg["client_secret_expires_at"], 0)
        code, verifier, _ = self.authorize(cid, subject="conf")
        pairs = [("grant_type", "authorization_code"), ("code", code),
                 ("redirect_uri", REDIRECT), ("code_verifier", verifier)]
        before = self.stats()
        r = self.d.request("POST", "/token", h.form(pairs),
                           headers={"Authorization": h.basic(cid, "wrong")},
                           content_type="application/x-www-form-urlencoded")
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_client"), r)
        self.assertIn("Basic", r.header("WWW-Authenticate"))
        r = self.token(pairs + [("client_id", cid)])  # a confidential client without its secret
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_client"), r)
        self.assertIsNone(r.header("WWW-Authenticate"))
        self.assertEqual(self.stats(), before)
        r = self.d.request("POST", "/token", h.form(pairs),
                           headers={"Authorization": h.basic(cid, secret)},
                           content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 200, r)
        self.assertActive(r.json()["access_token"])

    def test_code_of_another_client(self):
        a = self.register()["client_id"]
        b = self.register()["client_id"]
        code, verifier, _ = self.authorize(a, subject="other-client")
        before = self.stats()
        r = self.redeem(b, code, verifier)
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"), r)
        self.assertEqual(self.stats(), before)
        self.assertEqual(self.redeem(a, code, verifier).status, 200)

    def test_exchange_never_widens(self):
        cid = self.register()["client_id"]
        sub = self.register(grant_types=["urn:ietf:params:oauth:grant-type:token-exchange"],
                            redirect_uris=[])["client_id"]
        self.d.ctl("client", "set", cid, "--delegate-to", "*")
        code, verifier, _ = self.authorize(cid, subject="narrow", scope="mcp:read")
        t = self.redeem(cid, code, verifier).json()
        base = [("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", t["access_token"]),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                ("client_id", sub)]
        before = self.stats()
        for extra, err in (([("scope", "mcp:read mcp:write")], "invalid_scope"),
                           ([("resource", "https://other.test/")], "invalid_target"),
                           ([("audience", "https://other.test/")], "invalid_target")):
            r = self.token(base + extra)
            self.assertEqual((r.status, r.json()["error"]), (400, err), r)
        r = self.token([p if p[0] != "subject_token" else ("subject_token", "tkd_at_nope")
                        for p in base])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"), r)
        self.assertEqual(self.stats(), before)
        self.assertEqual(self.token(base).status, 200)

    def test_prompt_none_and_disabled(self):
        cid = self.register()["client_id"]
        _, challenge = pkce()
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "p",
            "prompt": "none"})
        r = self.d.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 303, r)
        self.assertIn("error=login_required", r.header("Location"))
        self.d.ctl("client", "disable", cid)
        r = self.d.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 400, r)
        self.assertIsNone(r.header("Location"))
        r = self.d.request("GET", "/authorize?" + q + "&state=again")
        self.assertEqual(r.status, 400, r)  # duplicate state, disabled: a page either way

    def test_duplicate_and_unknown(self):
        _, challenge = pkce()
        q = ("response_type=code&client_id=nobody&redirect_uri=" + urllib.parse.quote(REDIRECT, "")
             + "&code_challenge=" + challenge + "&code_challenge_method=S256")
        r = self.d.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 400, r)
        self.assertIsNone(r.header("Location"))
        r = self.token([("grant_type", "refresh_token"), ("refresh_token", "a"),
                        ("refresh_token", "b"), ("client_id", "x")])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_request"), r)


class Policies(h.FreshCase):

    def test_closed_and_burst(self):
        d = self.daemon(("--registration", "closed"))
        doc = json.dumps({"redirect_uris": [REDIRECT]}).encode()
        r = d.request("POST", "/register", doc, content_type="application/json")
        self.assertEqual((r.status, r.json()["error"]), (403, "access_denied"), r)
        d = self.daemon(("--registration", "open", "--register-burst", "2"))
        codes = [d.request("POST", "/register", doc, content_type="application/json").status
                 for _ in range(3)]
        self.assertEqual(codes, [201, 201, 429])

    def test_dev_login_needs_loopback(self):
        p = h.ctl_run  # keep flake8 quiet about the helper module
        del p
        import subprocess
        r = subprocess.run([h.TOKEND_BIN, "--login", "dev", "--listen", "0.0.0.0:0",
                            "--data", self.tmpdir()], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("loopback", r.stderr)

    def test_identity_approval(self):
        d = self.daemon(("--registration", "approval"))
        doc = json.dumps({"redirect_uris": [REDIRECT], "client_name": "same agent",
                          "software_id": "sw-1", "token_endpoint_auth_method": "none"}).encode()
        first = d.request("POST", "/register", doc, content_type="application/json").json()
        pending = [c["client_id"] for c in d.ctl("client", "list", "--pending")]
        self.assertIn(first["client_id"], pending)
        d.ctl("client", "approve", first["client_id"])
        second = d.request("POST", "/register", doc, content_type="application/json").json()
        pending = [c["client_id"] for c in d.ctl("client", "list", "--pending")]
        self.assertNotIn(second["client_id"], pending)


class Resources(h.FreshCase):
    """RFC 8707 at /authorize with two resources, and the RFC 8252 loopback port rule."""

    def test_resource_rules_and_loopback_port(self):
        d_dir = self.tmpdir()
        path = os.path.join(d_dir, "resources.json")
        with open(path, "w") as f:
            json.dump({"resources": [
                {"resource": "https://a.test/mcp", "scopes_supported": ["a:read"]},
                {"resource": "https://b.test/mcp", "scopes_supported": ["b:read"]}]}, f)
        d = self.daemon(("--resources", path, "--login", "dev", "--registration", "open"))
        doc = {"redirect_uris": ["http://localhost/cb"], "token_endpoint_auth_method": "none"}
        r = d.request("POST", "/register", json.dumps(doc).encode(),
                      content_type="application/json")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["application_type"], "native")
        cid = r.json()["client_id"]
        _, challenge = pkce()

        def go(**extra):
            q = {"response_type": "code", "client_id": cid, "code_challenge": challenge,
                 "code_challenge_method": "S256", "state": "s"}
            q.update(extra)
            return d.request("GET", "/authorize?" + urllib.parse.urlencode(q))

        # Another port on the registered loopback host: accepted (RFC 8252 §7.3).
        r = go(redirect_uri="http://localhost:53117/cb")
        self.assertEqual(r.status, 303, r)
        loc = r.header("Location")
        self.assertIn("error=invalid_target", loc)  # two resources, none named
        self.assertTrue(loc.startswith("http://localhost:53117/cb?"), loc)
        # Another host or path: never a redirect.
        for bad in ("http://127.0.0.1:53117/cb", "http://localhost:53117/cb2"):
            r = go(redirect_uri=bad)
            self.assertEqual(r.status, 400, r)
            self.assertIsNone(r.header("Location"))
        r = go(redirect_uri="http://localhost:1/cb", resource="https://c.test/mcp")
        self.assertIn("error=invalid_target", r.header("Location"))
        r = go(redirect_uri="http://localhost:1/cb", resource="https://b.test/mcp",
               scope="a:read")
        self.assertIn("error=invalid_scope", r.header("Location"))
        r = go(redirect_uri="http://localhost:1/cb", resource="https://b.test/mcp")
        self.assertEqual(r.status, 303, r)
        self.assertTrue(r.header("Location").startswith("/login?request=tka_"), r)
        r = go(redirect_uri="http://localhost:1/cb", resource="https://b.test/mcp",
               code_challenge_method="plain")
        self.assertIn("error=invalid_request", r.header("Location"))


class PendingClient(h.FreshCase):

    def test_pending_client_gets_a_page(self):
        d = self.daemon(("--login", "dev", "--registration", "approval"))
        doc = {"redirect_uris": [REDIRECT], "client_name": "<img src=x onerror=alert(1)>",
               "token_endpoint_auth_method": "none"}
        r = d.request("POST", "/register", json.dumps(doc).encode(),
                      content_type="application/json")
        self.assertEqual(r.status, 201, r)
        cid = r.json()["client_id"]
        pending = [c["client_id"] for c in d.ctl("client", "list", "--pending")]
        self.assertIn(cid, pending)
        _, challenge = pkce()
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "st"})
        r = d.request("GET", "/authorize?" + q)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(b"<img", r.body)
        self.assertIn(b"&lt;img", r.body)
        link = parse_page(r.body).links["return"]
        self.assertTrue(link.startswith(REDIRECT + "?error=access_denied"), link)
        self.assertIn("state=st", link)


if __name__ == "__main__":
    unittest.main()
