"""Several organisations side by side (login = oidc with two sign-in IdPs).

Two real OpenID providers (npm oidc-provider, tests/interop/idp.mjs), each
with its own users, started once for the suite: "home" (domain home.test,
users alice and carol) and "partner" (domain partner.test, users bob and
dave). The trust file restricts the partner: its users may grant only the
shared resource, and only mcp:read; the home IdP restricts nothing.

Checked end to end, driving the IdPs' interaction pages over HTTP:
- a login_hint routes the sign-in to the IdP that lists its domain (the
  redirect goes to that issuer, carrying the hint), any case; a hint of no
  listed domain, or none, shows the chooser; the chooser's choice is an
  exact configured sign-in issuer (anything else: 400), and a hint is never
  forwarded to an IdP it does not name;
- the partner's user cannot obtain a token for the home-only resource, nor a
  scope beyond mcp:read: at /authorize (signed in), after sign-in
  (/authorize/continue), at the consent approval, by refresh with a wider
  scope, by exchange to the home resource; and once the trust file tightens
  the partner's limits (SIGHUP), neither refresh nor exchange nor code
  redemption nor consent mints a token past them; the home user can;
- introspection names the IdP issuer (idp_iss); sign-in, consent and token
  log lines name it;
- a back-channel logout from the partner IdP ends only the partner user's
  tokens.

Needs node and tests/interop/node_modules/oidc-provider; skipped (77)
without them."""

import json
import os
import secrets
import shutil
import signal
import tempfile
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

HOME_RES = "https://home.test/mcp"
SHARED_RES = "https://shared.test/mcp"
REDIRECT = "http://127.0.0.1:8765/cb"
TE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"


class OidcOrgs(iu.OpSteps, h.TokenAsserts, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tokend-orgs-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        port = free_port()
        tokend = "http://127.0.0.1:%d" % port
        cls.secret = {"home": "home-secret-" + secrets.token_hex(8),
                      "partner": "partner-secret-" + secrets.token_hex(8)}
        cls.home = start_op(cls, cls.dir, tokend, cls.secret["home"], "home.test", "alice,carol",
                            name="home")
        cls.partner = start_op(cls, cls.dir, tokend, cls.secret["partner"], "partner.test",
                               "bob,dave", name="partner")
        cls.trust = os.path.join(cls.dir, "idp.json")
        cls.write_trust()
        res = os.path.join(cls.dir, "resources.json")
        with open(res, "w") as f:
            json.dump({"resources": [
                {"resource": HOME_RES, "name": "Home MCP", "path_prefix": "/home",
                 "scopes_supported": ["mcp:read", "mcp:write"]},
                {"resource": SHARED_RES, "name": "Shared MCP", "path_prefix": "/shared",
                 "scopes_supported": ["mcp:read", "mcp:write"]}]}, f)
        cls.d = h.start_daemon(("--listen", "127.0.0.1:%d" % port, "--login", "oidc",
                                "--registration", "open", "--resources", res,
                                "--idp-config", cls.trust, "--register-burst", "0"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")

    @classmethod
    def write_trust(cls, partner_resources=(SHARED_RES,), partner_scopes=("mcp:read",)):
        with open(cls.trust, "w") as f:
            json.dump({"issuers": [
                {"issuer": cls.home, "audience": "tokend", "client_id": "tokend",
                 "client_secret": cls.secret["home"], "domains": ["home.test"]},
                {"issuer": cls.partner, "audience": "tokend", "client_id": "tokend",
                 "client_secret": cls.secret["partner"], "domains": ["Partner.Test"],
                 "allowed_resources": list(partner_resources),
                 "allowed_scopes": list(partner_scopes)},
            ]}, f)

    def reload_trust(self, **limits):
        before = self.d.stderr().count("IdP configuration reloaded")
        self.write_trust(**limits)
        self.d.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while self.d.stderr().count("IdP configuration reloaded") == before:
            self.assertLess(time.monotonic(), deadline, "no reload: " + self.d.stderr()[-2000:])
            time.sleep(0.05)

    # -- helpers --

    def register(self, grant_types=("authorization_code", "refresh_token")):
        r = self.d.request("POST", "/register", json.dumps({
            "redirect_uris": [REDIRECT] if "authorization_code" in grant_types else [],
            "client_name": "agent", "token_endpoint_auth_method": "none",
            "grant_types": list(grant_types)}).encode(), content_type="application/json")
        self.assertEqual(r.status, 201, r)
        return r.json()["client_id"]

    def authorize(self, tb, cid, resource, scope, hint=None):
        """GET /authorize; returns (response, verifier, state)."""
        verifier = new_verifier()
        state = secrets.token_urlsafe(8)
        q = {"response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
             "code_challenge": s256(verifier), "code_challenge_method": "S256",
             "state": state, "scope": scope, "resource": resource}
        if hint is not None:
            q["login_hint"] = hint
        r = tb.request("GET", "/authorize?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 303, r)
        return r, verifier, state

    def to_idp(self, tb, login_path, iss):
        """/login (routed without a page) → the IdP's authorization URL."""
        self.assertTrue(login_path.startswith("/login?request="), login_path)
        r = tb.request("GET", login_path)
        self.assertEqual(r.status, 303, r)
        loc = r.header("Location")
        self.assertTrue(loc.startswith(iss + "/auth?"), (iss, loc))
        return loc, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))

    def callback(self, tb, cb):
        p = urllib.parse.urlsplit(cb)
        r = tb.request("GET", p.path + "?" + p.query)
        self.assertEqual(r.status, 303, r)
        self.assertIn("__Host-tokend-session=", r.header("Set-Cookie") or "")
        loc = r.header("Location")
        self.assertTrue(loc.startswith("/authorize/continue?request="), loc)
        return loc

    def approve(self, tb, loc):
        """From /authorize/continue (or /consent) on, approving; returns the
        final redirect's query (code, or error)."""
        for _ in range(4):
            if loc.startswith(REDIRECT + "?"):
                return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
            r = tb.request("GET", loc)
            if r.status == 200:  # the consent page
                f = Page(r.body).hidden()
                r = tb.request("POST", "/consent", h.form([
                    ("request", f["request"]), ("csrf", f["csrf"]), ("decision", "approve")]),
                    h.FORM)
            self.assertEqual(r.status, 303, r)
            loc = r.header("Location")
        raise AssertionError("no redirect to the client: " + loc)

    def redeem(self, cid, code, verifier):
        r = self.d.request("POST", "/token", h.form([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT),
            ("code_verifier", verifier), ("client_id", cid)]), content_type=h.FORM)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def token(self, pairs):
        return self.d.request("POST", "/token", h.form(pairs), content_type=h.FORM)

    def sign_in(self, user, iss, resource=SHARED_RES, scope="mcp:read", cid=None):
        """A whole sign-in routed by login_hint; returns (browser at tokend,
        browser at the IdP, client id, the final redirect's query, verifier)."""
        cid = cid or self.register()
        domain = "home.test" if iss == self.home else "partner.test"
        tb, ib = CookieBrowser(self.d), IdpBrowser()
        r, verifier, state = self.authorize(tb, cid, resource, scope, "%s@%s" % (user, domain))
        auth_url, _ = self.to_idp(tb, r.header("Location"), iss)
        q = self.approve(tb, self.callback(tb, self.sign_in_at_op(ib, auth_url, user)))
        self.assertEqual(q["state"], state)
        return tb, ib, cid, q, verifier

    def forward_auth_identity(self, token):
        """(X-Auth-Subject, every X-Auth-Issuer) of /auth for the shared resource."""
        r = self.d.request("GET", "/auth", headers={
            "Authorization": "Bearer " + token, "X-Forwarded-Host": "shared.test",
            "X-Forwarded-Uri": "/shared/tools", "X-Forwarded-Method": "GET"})
        self.assertEqual(r.status, 200, r)
        return r.header("x-auth-subject"), r.header_all("x-auth-issuer")

    def assertDenied(self, q, why):
        self.assertEqual(q.get("error"), "access_denied", q)
        self.assertNotIn("code", q)
        self.assertIn(why, q["error_description"])
        self.assertEqual(q["iss"], "http://127.0.0.1:%d" % self.d.port)

    # -- routing --

    def test_login_hint_routes_each_user_to_their_idp(self):
        for user, hint, iss, other in (("alice", "alice@home.test", self.home, self.partner),
                                       ("bob", "Bob@PARTNER.test", self.partner, self.home)):
            with self.subTest(user=user):
                cid = self.register()
                tb, ib = CookieBrowser(self.d), IdpBrowser()
                r, verifier, state = self.authorize(tb, cid, SHARED_RES, "mcp:read", hint)
                auth_url, aq = self.to_idp(tb, r.header("Location"), iss)
                self.assertFalse(auth_url.startswith(other), auth_url)
                self.assertEqual(aq["login_hint"], hint)  # forwarded as given, to this IdP
                self.assertEqual(aq["client_id"], "tokend")
                cb = self.sign_in_at_op(ib, auth_url, user)
                self.assertEqual(dict(urllib.parse.parse_qsl(
                    urllib.parse.urlsplit(cb).query))["iss"], iss)
                q = self.approve(tb, self.callback(tb, cb))
                self.assertEqual(q["state"], state)
                t = self.redeem(cid, q["code"], verifier)
                j = self.assertActive(t["access_token"])
                self.assertEqual(j["sub"], user)
                self.assertEqual(j["idp_iss"], iss)
                self.assertEqual(j["aud"], SHARED_RES)
                j = self.assertActive(t["refresh_token"])
                self.assertEqual(j["idp_iss"], iss)
                # The app behind forward-auth learns the IdP too: a sub alone
                # does not tell one organisation's user from another's.
                self.assertEqual(self.forward_auth_identity(t["access_token"]), (user, [iss]))
                log = self.d.stderr().splitlines()
                self.assertIn('routed=login_hint', [l for l in log if "oidc_redirect" in l][-1])
                sign_in = [l for l in log if "method=oidc" in l and "sub=%s " % user in l]
                self.assertIn('iss="%s"' % iss, sign_in[-1])
                consent = [l for l in log if "event=consent " in l]
                self.assertIn('iss="%s"' % iss, consent[-1])
                tok = [l for l in log if "event=token " in l and "grant=code" in l]
                self.assertIn('iss="%s"' % iss, tok[-1])
        # A session without an issuer (tokenctl) has no idp_iss at all.
        sid = self.d.new_session("nobody")
        c = self.d.add_client("agent", "plain")
        t = self.d.issue(sid, c, aud=SHARED_RES)["access_token"]
        self.assertNotIn("idp_iss", self.assertActive(t))
        self.assertEqual(self.forward_auth_identity(t), ("nobody", [""]))  # sent empty

    def test_chooser_when_no_hint_routes(self):
        cid = self.register()
        for hint in (None, "carol@elsewhere.test", "home.test", "carol@home.test.evil",
                     "carol@sub.home.test"):
            with self.subTest(hint=hint):
                tb = CookieBrowser(self.d)
                r, _, _ = self.authorize(tb, cid, SHARED_RES, "mcp:read", hint)
                login = r.header("Location")
                r = tb.request("GET", login)
                self.assertEqual(r.status, 200, r)
                links = [a["href"] for a in Page(r.body).tags("a") if a.get("class") == "idp"]
                self.assertEqual(len(links), 2, r.body)
                for link, iss in zip(links, (self.home, self.partner)):
                    self.assertEqual(dict(urllib.parse.parse_qsl(
                        urllib.parse.urlsplit(link).query))["idp"], iss)
                    loc, aq = self.to_idp(tb, link, iss)
                    self.assertNotIn("login_hint", aq)  # it names neither IdP
        # A hint routes; the chooser's explicit choice still wins, and the hint
        # goes only to the IdP it names.
        tb = CookieBrowser(self.d)
        r, _, _ = self.authorize(tb, cid, SHARED_RES, "mcp:read", "alice@home.test")
        request = dict(urllib.parse.parse_qsl(
            urllib.parse.urlsplit(r.header("Location")).query))["request"]
        base = "/login?" + urllib.parse.urlencode({"request": request})
        _, aq = self.to_idp(tb, base + "&" + urllib.parse.urlencode({"idp": self.partner}),
                            self.partner)
        self.assertNotIn("login_hint", aq)
        _, aq = self.to_idp(tb, base + "&" + urllib.parse.urlencode({"idp": self.home}),
                            self.home)
        self.assertEqual(aq["login_hint"], "alice@home.test")
        # The choice must be a configured sign-in issuer, exactly.
        for bad in ("0", "1", "", self.home + "/", self.home.upper(), self.home + "x",
                    "http://127.0.0.1:1", self.home + "%00"):
            with self.subTest(idp=bad):
                r = tb.request("GET", base + "&idp=" + urllib.parse.quote(bad, safe="%"))
                self.assertEqual(r.status, 400, r)
                self.assertIsNone(r.header("Location"))
        r = tb.request("GET", base + "&" + urllib.parse.urlencode({"idp": self.home}) +
                       "&" + urllib.parse.urlencode({"idp": self.home}))
        self.assertEqual(r.status, 400, r)  # repeated

    def test_each_user_signs_in_through_the_chooser(self):
        for user, index, iss in (("carol", 0, self.home), ("dave", 1, self.partner)):
            with self.subTest(user=user):
                cid = self.register()
                tb, ib = CookieBrowser(self.d), IdpBrowser()
                r, verifier, state = self.authorize(tb, cid, SHARED_RES, "mcp:read")
                r = tb.request("GET", r.header("Location"))
                self.assertEqual(r.status, 200, r)
                links = [a["href"] for a in Page(r.body).tags("a") if a.get("class") == "idp"]
                auth_url, aq = self.to_idp(tb, links[index], iss)
                self.assertNotIn("login_hint", aq)
                q = self.approve(tb, self.callback(tb, self.sign_in_at_op(ib, auth_url, user)))
                self.assertEqual(q["state"], state)
                j = self.assertActive(self.redeem(cid, q["code"], verifier)["access_token"])
                self.assertEqual((j["sub"], j["idp_iss"]), (user, iss))
                self.assertIn("routed=choice", [l for l in self.d.stderr().splitlines()
                                                if "oidc_redirect" in l][-1])

    def test_bad_login_hint_is_refused_at_authorize(self):
        cid = self.register()
        tb = CookieBrowser(self.d)
        q = {"response_type": "code", "client_id": cid, "redirect_uri": REDIRECT,
             "code_challenge": s256(new_verifier()), "code_challenge_method": "S256",
             "state": "s1", "scope": "mcp:read", "resource": SHARED_RES,
             "login_hint": "b\u00f6b@partner.test"}
        r = tb.request("GET", "/authorize?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 303, r)
        loc = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("Location")).query))
        self.assertEqual(loc["error"], "invalid_request")
        self.assertIn("login_hint", loc["error_description"])

    # -- what a partner's user can reach --

    def test_partner_user_cannot_reach_the_home_resource(self):
        cid = self.register()
        # After sign-in: /authorize/continue refuses before any consent page.
        tb, ib = CookieBrowser(self.d), IdpBrowser()
        r, verifier, state = self.authorize(tb, cid, HOME_RES, "mcp:read", "bob@partner.test")
        auth_url, _ = self.to_idp(tb, r.header("Location"), self.partner)
        cont = self.callback(tb, self.sign_in_at_op(ib, auth_url, "bob"))
        r = tb.request("GET", cont)
        self.assertEqual(r.status, 303, r)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("Location")).query))
        self.assertDenied(q, "may not grant access to this resource")
        self.assertEqual(q["state"], state)
        line = [l for l in self.d.stderr().splitlines() if "org_refused" in l][-1]
        self.assertIn('iss="%s"' % self.partner, line)
        self.assertIn("why=resource", line)
        # Signed in already: /authorize itself refuses (the home resource, or
        # a scope beyond mcp:read on the shared one).
        for resource, scope, why in ((HOME_RES, "mcp:read", "resource"),
                                     (HOME_RES, "", "resource"),
                                     (SHARED_RES, "mcp:read mcp:write", "scope"),
                                     (SHARED_RES, "", "scope")):  # the default: every scope
            with self.subTest(resource=resource, scope=scope):
                r, _, state = self.authorize(tb, cid, resource, scope)
                loc = r.header("Location")
                self.assertTrue(loc.startswith(REDIRECT + "?"), loc)
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
                self.assertDenied(q, "may not grant " + ("access" if why == "resource" else "a"))
                self.assertEqual(q["state"], state)
        # What the partner allows works, for the same user in the same browser.
        r, verifier, state = self.authorize(tb, cid, SHARED_RES, "mcp:read")
        q = self.approve(tb, r.header("Location"))
        t = self.redeem(cid, q["code"], verifier)
        j = self.assertActive(t["access_token"])
        self.assertEqual((j["sub"], j["aud"], j["scope"], j["idp_iss"]),
                         ("bob", SHARED_RES, "mcp:read", self.partner))
        # The home user reaches the home resource with every scope.
        _, _, hcid, q, hver = self.sign_in("alice", self.home, HOME_RES, "mcp:read mcp:write")
        t = self.redeem(hcid, q["code"], hver)
        j = self.assertActive(t["access_token"])
        self.assertEqual((j["sub"], j["aud"], j["scope"], j["idp_iss"]),
                         ("alice", HOME_RES, "mcp:read mcp:write", self.home))

    def test_refresh_and_exchange_never_widen_past_the_partner(self):
        sub_agent = self.register([TE])
        tb, ib, cid, q, verifier = self.sign_in("dave", self.partner)
        self.d.ctl("client", "set", cid, "--delegate-to", sub_agent)
        t = self.redeem(cid, q["code"], verifier)
        self.assertEqual(t["scope"], "mcp:read")
        # Refresh with a wider scope, exchange to the home resource or a wider scope.
        r = self.token([("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"]),
                        ("client_id", cid), ("scope", "mcp:read mcp:write")])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_scope"), r)
        for extra, err in (([("audience", HOME_RES)], "invalid_target"),
                           ([("resource", HOME_RES)], "invalid_target"),
                           ([("scope", "mcp:write")], "invalid_scope")):
            with self.subTest(extra=extra):
                r = self.token([("grant_type", TE), ("subject_token", t["access_token"]),
                                ("subject_token_type", AT), ("client_id", sub_agent)] + extra)
                self.assertEqual((r.status, r.json()["error"]), (400, err), r)
        # Within the limits both work, and name the issuer.
        r = self.token([("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"]),
                        ("client_id", cid)])
        self.assertEqual(r.status, 200, r)
        t = r.json()
        r = self.token([("grant_type", TE), ("subject_token", t["access_token"]),
                        ("subject_token_type", AT), ("client_id", sub_agent)])
        self.assertEqual(r.status, 200, r)
        child = r.json()["access_token"]
        self.assertEqual(self.assertActive(child)["idp_iss"], self.partner)
        for g in ("refresh", "exchange"):
            line = [l for l in self.d.stderr().splitlines()
                    if "event=token " in l and "grant=%s " % g in l][-1]
            self.assertIn('iss="%s"' % self.partner, line)

    def test_tightened_limits_hold_for_existing_grants(self):
        """The partner's limits are read at every durable decision, so a
        trust file that tightens them (SIGHUP) stops refresh, exchange, code
        redemption and a consent page already shown; the home user is not
        affected; loosening again lets the same refresh token through."""
        sub_agent = self.register([TE])
        _, _, cid, q, verifier = self.sign_in("bob", self.partner)
        self.d.ctl("client", "set", cid, "--delegate-to", sub_agent)
        t = self.redeem(cid, q["code"], verifier)
        _, _, pcid, pending_code, pver = self.sign_in("dave", self.partner)  # not redeemed yet
        _, _, hcid, hq, hver = self.sign_in("carol", self.home, SHARED_RES, "mcp:read")
        ht = self.redeem(hcid, hq["code"], hver)
        # A consent page shown before the change, approved after it.
        ptb, pib = CookieBrowser(self.d), IdpBrowser()
        pcid2 = self.register()
        r, _, pstate = self.authorize(ptb, pcid2, SHARED_RES, "mcp:read", "bob@partner.test")
        auth_url, _ = self.to_idp(ptb, r.header("Location"), self.partner)
        cont = self.callback(ptb, self.sign_in_at_op(pib, auth_url, "bob"))
        r = ptb.request("GET", cont)
        self.assertTrue(r.header("Location").startswith("/consent?"), r)
        page = ptb.request("GET", r.header("Location"))
        self.assertEqual(page.status, 200, page)
        form = Page(page.body).hidden()
        try:
            self.reload_trust(partner_scopes=("tickets:read",))
            r = self.token([("grant_type", "refresh_token"),
                            ("refresh_token", t["refresh_token"]), ("client_id", cid)])
            self.assertEqual((r.status, r.json()["error"]), (400, "invalid_scope"), r)
            self.assertIn("may not grant", r.json()["error_description"])
            r = self.token([("grant_type", TE), ("subject_token", t["access_token"]),
                            ("subject_token_type", AT), ("client_id", sub_agent)])
            self.assertEqual((r.status, r.json()["error"]), (400, "invalid_scope"), r)
            r = self.token([("grant_type", "authorization_code"), ("code", pending_code["code"]),
                            ("redirect_uri", REDIRECT), ("code_verifier", pver),
                            ("client_id", pcid)])
            self.assertEqual((r.status, r.json()["error"]), (400, "invalid_scope"), r)
            # The consent page again: no longer offered; its approval: refused.
            r = ptb.request("GET", "/consent?request=" + form["request"])
            self.assertEqual(r.status, 303, r)
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("Location")).query))
            self.assertDenied(q, "may not grant a requested scope")
            r = ptb.request("POST", "/consent", h.form([
                ("request", form["request"]), ("csrf", form["csrf"]), ("decision", "approve")]),
                h.FORM)
            self.assertEqual(r.status, 303, r)
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("Location")).query))
            self.assertDenied(q, "may not grant a requested scope")
            self.assertEqual(q["state"], pstate)
            self.reload_trust(partner_resources=())  # [] : nothing at all
            r = self.token([("grant_type", "refresh_token"),
                            ("refresh_token", t["refresh_token"]), ("client_id", cid)])
            self.assertEqual((r.status, r.json()["error"]), (400, "invalid_target"), r)
            # The home user's refresh is not the partner's business.
            r = self.token([("grant_type", "refresh_token"),
                            ("refresh_token", ht["refresh_token"]), ("client_id", hcid)])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.assertActive(r.json()["access_token"])["idp_iss"], self.home)
        finally:
            self.reload_trust()
        # Nothing was stored by the refusals: the same refresh token works now.
        r = self.token([("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"]),
                        ("client_id", cid)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.assertActive(r.json()["access_token"])["sub"], "bob")

    # -- back-channel logout --

    def test_partner_logout_ends_only_the_partner_users_tokens(self):
        _, hib, hcid, hq, hver = self.sign_in("alice", self.home, HOME_RES, "mcp:write")
        home_t = self.redeem(hcid, hq["code"], hver)
        _, pib, pcid, pq, pver = self.sign_in("bob", self.partner)
        partner_t = self.redeem(pcid, pq["code"], pver)
        self.assertActive(home_t["access_token"])
        self.assertActive(partner_t["access_token"])
        self.log_out_at_op(pib, self.partner + "/session/end")  # the partner IdP posts its logout token
        self.assertInactive(partner_t["access_token"])
        self.assertInactive(partner_t["refresh_token"])
        self.assertEqual(self.assertActive(home_t["access_token"])["idp_iss"], self.home)
        self.assertActive(home_t["refresh_token"])
        event = [l for l in self.d.stderr().splitlines() if "event=idp_event " in l]
        self.assertIn("iss=%s " % self.partner, event[-1])
        self.log_out_at_op(hib, self.home + "/session/end")
        self.assertInactive(home_t["access_token"])


if __name__ == "__main__":
    unittest.main()
