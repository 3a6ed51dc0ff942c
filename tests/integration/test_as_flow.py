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


class ASFlow(h.TokenAsserts, unittest.TestCase):

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

    # -- tests --

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
