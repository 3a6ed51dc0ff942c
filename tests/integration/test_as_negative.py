"""The authorization server's refusals (issue 11, AS_CONTRACT.md), against the
real tokend: each case asserts the status and the RFC error code, and that
nothing changed where it must not — `tokenctl stats` counts, `client list`,
`grant list`, the earlier tokens' introspection, no code in any answer.

One tokend per class: Authorize (the /authorize checks and their order: HTML
page before the client and redirect URI are verified, an error redirect
after), Tokens (/token: PKCE, code binding and reuse, refresh rotation, scope
and resource narrowing, token exchange), Timing (short code-ttl and reuse
window), Consent (the CSRF token and the browser session), Approval (pending
clients, registration rate limit), Registration (refused metadata), Closed
(registration = closed), Strict (reuse window 0), ClientAuthAtToken (failed
client authentication)."""

import json
import secrets
import shutil
import time
import unittest
import urllib.parse

import harness as h
import as_http as a

h.require_binaries()

if not a.engine_present():
    import sys
    sys.stderr.write("skipped: tokend has no authorization server yet (no `login` setting)\n")
    sys.exit(77)

# `tokenctl stats` counts compared before/after a refusal (not the map size,
# nor records of pending requests and codes that expire on their own).
STATS = ("tokens", "sessions", "grants", "clients", "consents")
ALICE = "alice"
MALLORY = "mallory"


class ASCase(h.TokenAsserts, unittest.TestCase):
    registration = "open"
    extra = ("--register-burst", 1000)
    workers = 2

    @classmethod
    def setUpClass(cls):
        cls.folder = a.tmpfolder()
        cls.addClassCleanup(shutil.rmtree, cls.folder, True)
        cls.d = h.start_daemon(a.as_daemon_args(cls.folder, cls.registration, cls.extra),
                               workers=cls.workers)
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.admin = cls.d.add_client("admin", "admin")
        cls.d.default_auth = cls.admin  # admins see refresh tokens too

    # -- the store, for "nothing changed" --

    def snapshot(self, subs=(ALICE, MALLORY)):
        stats = {k: v for k, v in self.d.ctl("stats").items() if k in STATS}
        grants = {s: self.d.ctl("grant", "list", "--sub", s) for s in subs}
        return {"stats": stats, "clients": self.d.ctl("client", "list"), "grants": grants}

    def assertUnchanged(self, before, what=""):
        self.assertEqual(self.snapshot(tuple(before["grants"])), before,
                         "the store changed on a refused request %s" % what)

    # -- answers --

    def assertHtmlPage(self, r, status=400, code=None):
        """An HTML answer that sends the browser nowhere (no open redirector)."""
        self.assertEqual(r.status, status, r)
        self.assertIsNone(r.header("location"), r)
        self.assertEqual(r.header("content-type"), "text/html; charset=utf-8", r)
        self.assertEqual((r.header("x-frame-options") or "").upper(), "DENY", r)
        self.assertIn("frame-ancestors 'none'", r.header("content-security-policy") or "", r)
        self.assertIn("no-store", r.header("cache-control") or "", r)
        if code is not None:
            self.assertIn(code, r.body.decode("utf-8", "replace"), r)
        for link in a.Page(r.body).tags("a"):
            self.assertNotIn("code=", link.get("href", ""), r)
        return a.Page(r.body)

    def assertErrorRedirect(self, r, error, state=None, redirect=a.REDIRECT):
        self.assertEqual(r.status, 303, r)
        base, q = a.location_params(r)
        self.assertEqual(base, redirect, r)
        self.assertEqual(q.get("error"), [error], q)
        self.assertNotIn("code", q)
        self.assertEqual(q.get("iss"), [self.d.issuer()], q)
        if state is not None:
            self.assertEqual(q.get("state"), [state], q)
        return q

    def assertJsonError(self, r, error, status=400):
        self.assertEqual(r.status, status, r)
        self.assertIn("no-store", r.header("cache-control") or "", r)
        j = r.json()
        self.assertEqual(j.get("error"), error, j)
        for k in ("access_token", "refresh_token", "client_id"):
            self.assertNotIn(k, j)
        return j

    # -- fixtures --

    def client(self, **kw):
        return a.public_client(self.d, **kw)["client_id"]

    def browser(self):
        return a.Browser(self.d)

    def tokens(self, client_id, browser=None, scope="mcp:read", subject=ALICE):
        b = browser or self.browser()
        code, verifier = a.authorize_code(self.d, b, client_id, scope=scope, subject=subject)
        r = a.redeem(self.d, client_id, code, verifier)
        self.assertEqual(r.status, 200, r)
        return r.json()


class Authorize(ASCase):
    """Everything refused at /authorize."""

    def get(self, query, browser=None):
        return (browser or self.browser()).request("GET", query)

    def test_pkce_missing_or_plain(self):
        cid = self.client()
        before = self.snapshot()
        cases = {
            "no challenge": a.authorize_query(cid, challenge=None, state="s1"),
            "no method": a.authorize_query(cid, challenge=a.s256(a.new_verifier()), state="s1",
                                           method=None),
            "plain": a.authorize_query(cid, challenge=a.new_verifier(), state="s1",
                                       method="plain"),
            "S512": a.authorize_query(cid, challenge=a.s256(a.new_verifier()), state="s1",
                                      method="S512"),
            "bad challenge": a.authorize_query(cid, challenge="short", state="s1"),
        }
        for what, q in cases.items():
            with self.subTest(what):
                self.assertErrorRedirect(self.get(q), "invalid_request", state="s1")
        self.assertUnchanged(before)

    def test_redirect_uri_mismatch_is_a_page(self):
        cid = self.client()
        before = self.snapshot()
        for uri in ("http://127.0.0.1:8765/other", "http://127.0.0.1:8765/cb/",
                    "http://127.0.0.1:8765/cb?x=1", "https://evil.test/cb",
                    "http://127.0.0.2:8765/cb", "http://127.0.0.1:8765/CB"):
            with self.subTest(uri):
                q = a.authorize_query(cid, redirect=uri, challenge=a.s256(a.new_verifier()),
                                      state="s2")
                self.assertHtmlPage(self.get(q))
        # Even with every other error present, the page wins (no redirect).
        q = a.authorize_query(cid, redirect="https://evil.test/cb", challenge=None,
                              state="s2", method="plain")
        self.assertHtmlPage(self.get(q))
        self.assertUnchanged(before)

    def test_loopback_port_may_differ(self):
        """The control for the mismatch cases: RFC 8252 §7.3 lets the port
        of a loopback redirect differ; the path may not."""
        cid = self.client()
        q = a.authorize_query(cid, redirect="http://127.0.0.1:9999/cb",
                              challenge=a.s256(a.new_verifier()), state="s3", method="plain")
        self.assertErrorRedirect(self.get(q), "invalid_request", state="s3",
                                 redirect="http://127.0.0.1:9999/cb")

    def test_unknown_client_is_a_page(self):
        rs = self.d.add_client("resource_server", "rs-x")
        before = self.snapshot()
        for cid in ("tkc_nosuchclient0000000000", "x", "tkc_" + "A" * 22):
            with self.subTest(cid):
                q = a.authorize_query(cid, challenge=a.s256(a.new_verifier()), state="s4")
                self.assertHtmlPage(self.get(q))
        # An admin-made confidential client without redirect URIs is no
        # redirect target either.
        self.assertHtmlPage(self.get(a.authorize_query(rs.id, challenge=a.s256("x" * 43))))
        self.assertUnchanged(before)

    def test_disabled_client_is_a_page(self):
        cid = self.client()
        self.tokens(cid)  # works while approved (the control)
        self.d.ctl("client", "disable", cid)
        before = self.snapshot()
        b = self.browser()
        q = a.authorize_query(cid, challenge=a.s256(a.new_verifier()), state="s5")
        self.assertHtmlPage(self.get(q, b), code="unauthorized_client")
        self.assertUnchanged(before)

    def test_duplicate_parameters(self):
        cid = self.client()
        ch = a.s256(a.new_verifier())
        base = [("response_type", "code"), ("client_id", cid), ("redirect_uri", a.REDIRECT),
                ("code_challenge", ch), ("code_challenge_method", "S256"), ("state", "s6"),
                ("scope", "mcp:read"), ("resource", a.MCP)]
        before = self.snapshot()
        b = self.browser()
        for i, (k, v) in enumerate(base):
            with self.subTest(k):
                pairs = base[:i + 1] + [(k, v)] + base[i + 1:]  # the same value twice
                for r in (b.request("GET", "/authorize?" + h.form(pairs)),
                          b.request("POST", "/authorize", h.form(pairs), h.FORM)):
                    self.assertRefusedDuplicate(r, k)
        # A second resource is a different value: still refused, never a code.
        r = b.request("GET", "/authorize?" + h.form(base + [("resource", a.API)]))
        self.assertRefusedDuplicate(r, "resource")
        self.assertUnchanged(before)

    def assertRefusedDuplicate(self, r, name):
        """A repeated client_id or redirect_uri is a page (neither is
        verified); any other repeated parameter is a page too, or — the
        client and redirect URI being verified — an error redirect (RFC 6749
        §4.1.2.1): invalid_target for resource, invalid_request otherwise."""
        if name in ("client_id", "redirect_uri") or r.status != 303:
            self.assertHtmlPage(r)
        else:
            self.assertErrorRedirect(r, "invalid_target" if name == "resource"
                                     else "invalid_request")

    def test_oversized_parameters(self):
        cid = self.client()
        ch = a.s256(a.new_verifier())
        before = self.snapshot()
        b = self.browser()
        # Before the redirect URI is verified: a page.
        for q in (a.authorize_query("c" * 129, challenge=ch),
                  a.authorize_query(cid, redirect="http://127.0.0.1:8765/" + "p" * 600,
                                    challenge=ch)):
            self.assertHtmlPage(b.request("GET", q))
        # After: an error redirect without the state that was too long, or
        # (tokend's choice: a state it cannot echo) a page.
        q = a.authorize_query(cid, challenge=ch, state="s" * 513)
        r = b.request("GET", q)
        if r.status == 303:
            self.assertNotIn("state", self.assertErrorRedirect(r, "invalid_request"))
        else:
            self.assertHtmlPage(r, code="invalid_request")
        q = a.authorize_query(cid, challenge=ch, state="s7", scope=" ".join(["mcp:read"] * 120))
        self.assertOversized(b.request("GET", q), "invalid_scope")
        q = a.authorize_query(cid, challenge=ch, state="s7",
                              resource="https://mcp.test/" + "r" * 600)
        self.assertOversized(b.request("GET", q), "invalid_target")
        q = a.authorize_query(cid, challenge=ch + "A" * 200, state="s7")
        self.assertOversized(b.request("GET", q), "invalid_request")
        # A request line beyond the HTTP limit never reaches /authorize.
        r = b.request("GET", a.authorize_query(cid, challenge=ch, state="s7",
                                               extra=[("nonce", "n" * 9000)]))
        self.assertIn(r.status, (400, 414), r)
        self.assertIsNone(r.header("location"), r)
        self.assertUnchanged(before)

    def assertOversized(self, r, code):
        """A value beyond its limit: the error redirect with its code, or —
        refused by the form reader before any field was looked at — the page
        with invalid_request. Never a code."""
        if r.status == 303:
            self.assertErrorRedirect(r, code, state="s7")
        else:
            self.assertHtmlPage(r, code="invalid_request")

    def test_scope_and_resource_outside_the_configured_ones(self):
        cid = self.client()
        before = self.snapshot()
        ch = a.s256(a.new_verifier())
        b = self.browser()
        q = a.authorize_query(cid, challenge=ch, state="s8", scope="mcp:admin")
        self.assertErrorRedirect(b.request("GET", q), "invalid_scope", state="s8")
        q = a.authorize_query(cid, challenge=ch, state="s8", scope="api:read")  # other resource's
        self.assertErrorRedirect(b.request("GET", q), "invalid_scope", state="s8")
        q = a.authorize_query(cid, challenge=ch, state="s8", resource="https://nope.test/")
        self.assertErrorRedirect(b.request("GET", q), "invalid_target", state="s8")
        # Two resources are configured: none named is ambiguous.
        q = a.authorize_query(cid, challenge=ch, state="s8", resource=None)
        self.assertErrorRedirect(b.request("GET", q), "invalid_target", state="s8")
        self.assertUnchanged(before)


    def test_prompt_none_never_shows_a_page(self):
        cid = self.client()
        before = self.snapshot()
        q = a.authorize_query(cid, challenge=a.s256(a.new_verifier()), state="s9",
                              extra=[("prompt", "none")])
        self.assertErrorRedirect(self.get(q), "login_required", state="s9")
        self.assertUnchanged(before)
        # Signed in, but no grant covers the request: consent_required.
        b = self.browser()
        a.authorize_code(self.d, b, self.client())  # signs alice in (another client)
        before = self.snapshot()
        self.assertErrorRedirect(self.get(q, b), "consent_required", state="s9")
        # prompt=none with another prompt value is malformed.
        q2 = a.authorize_query(cid, challenge=a.s256(a.new_verifier()), state="s9",
                               extra=[("prompt", "none consent")])
        self.assertErrorRedirect(self.get(q2, b), "invalid_request", state="s9")
        self.assertUnchanged(before)


class Closed(ASCase):
    """registration = closed: 403 access_denied, nothing stored."""
    registration = "closed"

    def test_registration_closed(self):
        before = self.snapshot()
        r = a.register(self.d, {"client_name": "x", "redirect_uris": [a.REDIRECT]})
        self.assertJsonError(r, "access_denied", 403)
        self.assertUnchanged(before)


class Tokens(ASCase):
    """Everything refused at /token."""

    def fresh_code(self, cid, scope="mcp:read", browser=None):
        return a.authorize_code(self.d, browser or self.browser(), cid, scope=scope)

    def test_verifier_syntax_then_wrong_then_right(self):
        cid = self.client()
        code, verifier = self.fresh_code(cid)
        before = self.snapshot()
        for bad in ("", verifier[:42], verifier + "x" * 86, verifier[:42] + "+",
                    verifier[:42] + "%"):
            with self.subTest(bad=bad):
                self.assertJsonError(a.redeem(self.d, cid, code, bad), "invalid_request")
        r = a.token(self.d, [("grant_type", "authorization_code"), ("code", code),
                             ("redirect_uri", a.REDIRECT), ("client_id", cid)])
        self.assertJsonError(r, "invalid_request")  # no code_verifier at all
        self.assertUnchanged(before)
        # Refused on syntax: the code was never looked at, it still works.
        r = a.redeem(self.d, cid, code, verifier)
        self.assertEqual(r.status, 200, r)
        # A well-formed but wrong verifier: invalid_grant, no token.
        code, verifier = self.fresh_code(cid)
        before = self.snapshot()
        self.assertJsonError(a.redeem(self.d, cid, code, a.new_verifier()), "invalid_grant")
        self.assertJsonError(a.redeem(self.d, cid, code, verifier.swapcase()), "invalid_grant")
        self.assertUnchanged(before)

    def test_redirect_uri_must_match_the_codes(self):
        cid = self.client()
        code, verifier = self.fresh_code(cid)
        before = self.snapshot()
        r = a.redeem(self.d, cid, code, verifier, redirect="http://127.0.0.1:8765/other")
        self.assertJsonError(r, "invalid_grant")
        self.assertUnchanged(before)

    def test_code_reused_revokes_its_grant(self):
        cid = self.client()
        code, verifier = self.fresh_code(cid)
        r = a.redeem(self.d, cid, code, verifier)
        self.assertEqual(r.status, 200, r)
        first = r.json()
        self.assertIn("refresh_token", first)
        self.assertActive(first["access_token"])
        self.assertActive(first["refresh_token"])
        other = self.tokens(self.client())  # someone else's grant: untouched
        self.assertJsonError(a.redeem(self.d, cid, code, verifier), "invalid_grant")
        self.assertInactive(first["access_token"])
        self.assertInactive(first["refresh_token"])
        self.assertJsonError(a.refresh(self.d, cid, first["refresh_token"]), "invalid_grant")
        self.assertJsonError(a.redeem(self.d, cid, code, verifier), "invalid_grant")
        self.assertActive(other["access_token"])

    def test_code_of_another_client(self):
        a_id, b_id = self.client(), self.client()
        code, verifier = self.fresh_code(a_id)
        before = self.snapshot()
        self.assertJsonError(a.redeem(self.d, b_id, code, verifier), "invalid_grant")
        self.assertUnchanged(before)

    def test_unknown_and_oversized_codes(self):
        cid = self.client()
        v = a.new_verifier()
        before = self.snapshot()
        for code in ("tkd_cd_" + "A" * 43, "x", "c" * 600):
            with self.subTest(len(code)):
                r = a.redeem(self.d, cid, code, v)
                self.assertJsonError(r, "invalid_request" if len(code) > 512 else "invalid_grant")
        r = a.token(self.d, [("grant_type", "authorization_code"), ("code", "x"),
                             ("code_verifier", v), ("client_id", cid),
                             ("padding", "p" * 70000)])
        self.assertEqual(r.status, 413, r)
        self.assertUnchanged(before)

    def test_duplicate_token_parameters(self):
        cid = self.client()
        code, verifier = self.fresh_code(cid)
        base = [("grant_type", "authorization_code"), ("code", code),
                ("redirect_uri", a.REDIRECT), ("code_verifier", verifier), ("client_id", cid)]
        before = self.snapshot()
        for i, (k, v) in enumerate(base):
            with self.subTest(k):
                pairs = base[:i + 1] + [(k, v)] + base[i + 1:]
                self.assertJsonError(a.token(self.d, pairs), "invalid_request")
        self.assertJsonError(a.token(self.d, base + [("resource", a.MCP), ("resource", a.MCP)]),
                             "invalid_target")
        self.assertUnchanged(before)
        r = a.token(self.d, base)  # none of them consumed the code
        self.assertEqual(r.status, 200, r)

    def test_unsupported_grant_types(self):
        cid = self.client()
        r = a.register(self.d, {"client_name": "confidential", "redirect_uris":
                                ["https://app.test/cb"], "token_endpoint_auth_method":
                                "client_secret_basic"})
        self.assertEqual(r.status, 201, r)
        conf = r.json()
        before = self.snapshot()
        for grant, extra in (("client_credentials", []),
                             ("password", [("username", ALICE), ("password", "pw")]),
                             ("implicit", []),
                             ("urn:ietf:params:oauth:grant-type:jwt-bearer", [("assertion", "x")]),
                             ("authorization_code2", [])):
            with self.subTest(grant):
                j = self.assertJsonError(
                    a.token(self.d, [("grant_type", grant), ("client_id", cid)] + extra),
                    "unsupported_grant_type")
                self.assertTrue(j.get("error_description"), j)
                r = a.token(self.d, [("grant_type", grant), ("scope", "mcp:read")] + extra,
                            auth=h.basic(conf["client_id"], conf["client_secret"]))
                self.assertJsonError(r, "unsupported_grant_type")
        j = a.token(self.d, [("grant_type", "client_credentials"), ("client_id", cid)]).json()
        self.assertIn("person", j["error_description"])
        self.assertUnchanged(before)

    def test_refresh_reuse_within_the_window(self):
        cid = self.client()
        t0 = self.tokens(cid)
        r1 = a.refresh(self.d, cid, t0["refresh_token"])
        self.assertEqual(r1.status, 200, r1)
        r2 = a.refresh(self.d, cid, t0["refresh_token"])  # a parallel refresh (default 5 s)
        self.assertEqual(r2.status, 200, r2)
        t1, t2 = r1.json(), r2.json()
        self.assertNotEqual(t1["refresh_token"], t0["refresh_token"])
        for t in (t1, t2):
            self.assertActive(t["access_token"])
            self.assertActive(t["refresh_token"])
        r3 = a.refresh(self.d, cid, t2["refresh_token"])
        self.assertEqual(r3.status, 200, r3)

    def test_refresh_may_narrow_never_widen(self):
        cid = self.client()
        t0 = self.tokens(cid, scope="mcp:read")
        stranger = self.client()
        before = self.snapshot()
        for extra, err in (([("scope", "mcp:read mcp:write")], "invalid_scope"),
                           ([("scope", "mcp:write")], "invalid_scope"),
                           ([("scope", "api:read")], "invalid_scope"),
                           ([("resource", a.API)], "invalid_target"),
                           ([("resource", "https://nope.test/")], "invalid_target"),
                           ([("resource", a.MCP), ("resource", a.API)], "invalid_target")):
            with self.subTest(extra):
                self.assertJsonError(a.refresh(self.d, cid, t0["refresh_token"], extra), err)
        # A refresh token is bound to its client.
        self.assertJsonError(a.refresh(self.d, stranger, t0["refresh_token"]), "invalid_grant")
        self.assertActive(t0["access_token"])
        self.assertActive(t0["refresh_token"])
        self.assertUnchanged(before)
        # Nothing was rotated by the refusals; the same scope and resource work.
        r = a.refresh(self.d, cid, t0["refresh_token"], [("scope", "mcp:read"),
                                                        ("resource", a.MCP)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["scope"], "mcp:read")
        # Narrowing a two-scope grant works (the control for invalid_scope).
        t = self.tokens(self.client(), scope="mcp:read mcp:write")
        r = a.refresh(self.d, self.last_client, t["refresh_token"], [("scope", "mcp:write")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["scope"], "mcp:write")
        j = self.assertActive(r.json()["access_token"])
        self.assertEqual(j["scope"], "mcp:write")

    def client(self, **kw):
        self.last_client = super().client(**kw)
        return self.last_client

    def delegation(self):
        """A sub-agent (token exchange only), a parent client allowed to
        delegate to it (tokenctl … --delegate-to), a stranger, and the
        parent's access token (mcp:read, for the MCP resource)."""
        sub = a.public_client(self.d, grants=[a.TOKEN_EXCHANGE], redirect=None)
        stranger = a.public_client(self.d, grants=[a.TOKEN_EXCHANGE], redirect=None)
        parent = self.d.ctl("client", "add", "--name", "parent", "--role", "agent",
                            "--redirect-uri", a.REDIRECT, "--public", "--delegate-to",
                            sub["client_id"])
        t = self.tokens(parent["client_id"], scope="mcp:read")
        return sub["client_id"], stranger["client_id"], parent["client_id"], t

    def test_exchange_refusals(self):
        sub, stranger, parent, t = self.delegation()
        at = t["access_token"]
        before = self.snapshot()
        self.assertJsonError(a.exchange(self.d, sub, at, [("scope", "mcp:read mcp:write")]),
                             "invalid_scope")
        self.assertJsonError(a.exchange(self.d, sub, at, [("scope", "mcp:write")]),
                             "invalid_scope")
        self.assertJsonError(a.exchange(self.d, sub, at, [("resource", a.API)]),
                             "invalid_target")
        self.assertJsonError(a.exchange(self.d, sub, at, [("audience", a.API)]),
                             "invalid_target")
        # Not listed in the parent's delegate_to; the parent itself neither
        # (AS_CONTRACT.md deviation 4: unauthorized_client).
        for caller in (stranger, parent):
            self.assertJsonError(a.exchange(self.d, caller, at), "unauthorized_client")
        # The caller is the actor: an actor_token is refused.
        self.assertJsonError(a.exchange(self.d, sub, at, [("actor_token", at), (
            "actor_token_type", a.AT_TYPE)]), "invalid_request")
        # A refresh token is not a subject token; neither is garbage.
        self.assertJsonError(a.exchange(self.d, sub, t["refresh_token"]), "invalid_grant")
        self.assertJsonError(a.exchange(self.d, sub, "tkd_at_" + "A" * 43), "invalid_grant")
        r = a.token(self.d, [("grant_type", a.TOKEN_EXCHANGE), ("subject_token", at),
                             ("subject_token_type",
                              "urn:ietf:params:oauth:token-type:refresh_token"),
                             ("client_id", sub)])
        self.assertJsonError(r, "invalid_request")
        self.assertActive(at)
        self.assertUnchanged(before)
        # The control: the permitted sub-agent gets a delegated child.
        r = a.exchange(self.d, sub, at, [("scope", "mcp:read"), ("resource", a.MCP)])
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["issued_token_type"], a.AT_TYPE)
        child = self.assertActive(j["access_token"])
        self.assertEqual(child["act"]["sub"] if "sub" in child.get("act", {}) else
                         child.get("act", {}).get("client_id"), sub, child)
        self.assertEqual(self.d.revoke(at).status, 200)
        self.assertInactive(j["access_token"])


class ClientAuthAtToken(ASCase):
    """Client authentication failures at /token: 401 invalid_client (Basic
    challenge only when the Authorization header was used), nothing issued,
    the code still good for its client. Its own tokend: the first version of
    the engine (h-as bfbd146) crashed on the first failure here (a NULL clock
    function passed to the failed-authentication limiter; fixed in fcbc050)."""

    def test_failed_client_authentication(self):
        cid = self.client()
        r = a.register(self.d, {"client_name": "confidential", "redirect_uris":
                                ["https://app.test/cb"], "token_endpoint_auth_method":
                                "client_secret_post"})
        self.assertEqual(r.status, 201, r)
        conf = r.json()
        code, verifier = a.authorize_code(self.d, self.browser(), cid)
        before = self.snapshot()
        # An unknown client, a public client sending a secret, a wrong secret.
        for extra, client_id in (([], "tkc_nosuchclient0000000000"),
                                 ([("client_secret", "s" * 43)], cid),
                                 ([("client_secret", "s" * 43)], conf["client_id"])):
            if True:  # no subTest: after a crash the rest would only repeat it
                r = a.token(self.d, [("grant_type", "authorization_code"), ("code", code),
                                     ("redirect_uri", a.REDIRECT), ("code_verifier", verifier),
                                     ("client_id", client_id)] + extra)
                self.assertJsonError(r, "invalid_client", 401)
                self.assertIsNone(r.header("www-authenticate"), r)
        r = a.token(self.d, [("grant_type", "authorization_code"), ("code", code),
                             ("redirect_uri", a.REDIRECT), ("code_verifier", verifier)],
                    auth=h.basic(conf["client_id"], "wrong"))
        self.assertJsonError(r, "invalid_client", 401)
        self.assertIn("Basic", r.header("www-authenticate") or "", r)
        self.assertUnchanged(before)
        self.assertEqual(a.redeem(self.d, cid, code, verifier).status, 200)


class Timing(ASCase):
    """Short code-ttl and reuse window (one tokend for both)."""
    extra = ("--register-burst", 1000, "--code-ttl", 2, "--refresh-reuse-window", 1)

    def test_expired_code(self):
        cid = self.client()
        code, verifier = a.authorize_code(self.d, self.browser(), cid)
        before = self.snapshot()
        time.sleep(3.2)
        self.assertJsonError(a.redeem(self.d, cid, code, verifier), "invalid_grant")
        self.assertUnchanged(before)

    def test_refresh_replay_after_the_window_revokes_the_family(self):
        cid = self.client()
        b = self.browser()
        t0 = self.tokens(cid, browser=b)
        other = self.tokens(cid, browser=self.browser(), subject=MALLORY)  # another family
        r = a.refresh(self.d, cid, t0["refresh_token"])
        self.assertEqual(r.status, 200, r)
        t1 = r.json()
        self.assertActive(t1["access_token"])
        # Past the 1 s window whatever the clock: the store compares whole
        # seconds (now - rotated_at > window), so 1 s can last almost 2 s.
        time.sleep(2.1)
        self.assertJsonError(a.refresh(self.d, cid, t0["refresh_token"]), "invalid_grant")
        for tok in (t0["access_token"], t0["refresh_token"], t1["access_token"],
                    t1["refresh_token"]):
            self.assertInactive(tok)
        self.assertJsonError(a.refresh(self.d, cid, t1["refresh_token"]), "invalid_grant")
        self.assertActive(other["access_token"])
        self.assertActive(other["refresh_token"])


class Strict(ASCase):
    """refresh-reuse-window 0 means strict (AS_CONTRACT.md): a rotated-away
    refresh token presented again at once — in the same second — is a
    replay, not a parallel refresh."""
    extra = ("--register-burst", 1000, "--refresh-reuse-window", 0)

    # Regression: the committer once took a replay for one only when
    # `now - rotated_at > window` in whole seconds, so with window 0 a replay
    # within the same second got a sibling pair.
    def test_immediate_replay_revokes_the_family(self):
        cid = self.client()
        t0 = self.tokens(cid)
        r = a.refresh(self.d, cid, t0["refresh_token"])
        self.assertEqual(r.status, 200, r)
        t1 = r.json()
        self.assertJsonError(a.refresh(self.d, cid, t0["refresh_token"]), "invalid_grant")
        for tok in (t1["access_token"], t1["refresh_token"]):
            self.assertInactive(tok)


class Consent(ASCase):
    """The CSRF token of the consent form and the browser session."""

    def at_consent(self, browser, cid, subject=ALICE):
        f = a.Flow(browser, cid, subject=subject)
        r = f.start()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(browser.last_path.startswith("/consent"), browser.last_path)
        return f

    def assertRefused(self, r):
        self.assertHtmlPage(r, 400)

    def approve_works(self, f, fields=None):
        r = f.decide("approve", fields)
        q = a.code_from(r)
        self.assertEqual(q.get("state"), [f.state])
        return q["code"][0]

    def test_csrf_missing_or_wrong(self):
        b = self.browser()
        f = self.at_consent(b, self.client())
        fields = f.consent_fields()
        before = self.snapshot()
        for what, change in (("missing", lambda x: x.pop("csrf")),
                             ("empty", lambda x: x.__setitem__("csrf", "")),
                             ("altered", lambda x: x.__setitem__("csrf", x["csrf"][:-1] +
                                                                 ("A" if x["csrf"][-1] != "A"
                                                                  else "B"))),
                             ("doubled", lambda x: x.__setitem__("csrf", x["csrf"] * 2))):
            with self.subTest(what):
                bad = dict(fields)
                change(bad)
                bad["decision"] = "approve"
                self.assertRefused(b.post_form("/consent", list(bad.items()), follow=False))
        dup = list(fields.items()) + [("csrf", fields["csrf"]), ("decision", "approve")]
        self.assertRefused(b.post_form("/consent", dup, follow=False))
        for decision in (None, "", "yes", "APPROVE"):
            bad = dict(fields)
            if decision is not None:
                bad["decision"] = decision
            r = b.post_form("/consent", list(bad.items()), follow=False)
            self.assertEqual(r.status, 400, r)
            self.assertIsNone(r.header("location"), r)
        self.assertUnchanged(before)
        self.approve_works(f, fields)  # the control

    def test_csrf_of_another_browser_session(self):
        alice, mallory = self.browser(), self.browser()
        cid = self.client()
        fa = self.at_consent(alice, cid)
        fm = self.at_consent(mallory, cid, subject=MALLORY)
        a_fields, m_fields = fa.consent_fields(), fm.consent_fields()
        self.assertNotEqual(a_fields["csrf"], m_fields["csrf"])
        before = self.snapshot()
        # Alice's browser, her request, Mallory's token.
        bad = dict(a_fields, csrf=m_fields["csrf"], decision="approve")
        self.assertRefused(alice.post_form("/consent", list(bad.items()), follow=False))
        # Mallory's browser replaying Alice's whole form.
        bad = dict(a_fields, decision="approve")
        self.assertRefused(mallory.post_form("/consent", list(bad.items()), follow=False))
        self.assertUnchanged(before)
        self.approve_works(fa, a_fields)
        self.approve_works(fm, m_fields)

    def test_csrf_reused(self):
        b = self.browser()
        f = self.at_consent(b, self.client())
        fields = f.consent_fields()
        code = self.approve_works(f, fields)
        before = self.snapshot()
        for decision in ("approve", "deny"):
            bad = dict(fields, decision=decision)
            self.assertRefused(b.post_form("/consent", list(bad.items()), follow=False))
        self.assertUnchanged(before)
        r = a.redeem(self.d, f.client_id, code, f.verifier)
        self.assertEqual(r.status, 200, r)

    def test_csrf_for_another_request(self):
        b = self.browser()
        cid, cid2 = self.client(), self.client()
        fx = self.at_consent(b, cid)
        fy = self.at_consent(b, cid2)
        x, y = fx.consent_fields(), fy.consent_fields()
        self.assertNotEqual(x["request"], y["request"])
        before = self.snapshot()
        for bad in (dict(x, csrf=y["csrf"]), dict(y, csrf=x["csrf"])):
            bad["decision"] = "approve"
            self.assertRefused(b.post_form("/consent", list(bad.items()), follow=False))
        bad = dict(x, request="tka_" + "A" * 43, decision="approve")
        self.assertRefused(b.post_form("/consent", list(bad.items()), follow=False))
        self.assertUnchanged(before)
        self.approve_works(fx, x)
        self.approve_works(fy, y)

    def test_consent_without_a_session(self):
        b = self.browser()
        f = self.at_consent(b, self.client())
        fields = dict(f.consent_fields(), decision="approve")
        before = self.snapshot()
        nobody = self.browser()
        r = nobody.post_form("/consent", list(fields.items()), follow=False)
        self.assertIn(r.status, (400, 303), r)
        if r.status == 303:  # sent to sign in, never to the agent
            self.assertTrue(r.header("location").startswith("/login"), r)
        else:
            self.assertHtmlPage(r)
        # A cookie that is well-formed but no session's.
        nobody.cookie = "A" * 43
        r = nobody.post_form("/consent", list(fields.items()), follow=False)
        self.assertIn(r.status, (400, 303), r)
        self.assertNotIn("code=", r.header("location") or "")
        r = nobody.request("GET", "/consent?" + h.form([("request", fields["request"])]))
        self.assertEqual(r.status, 303, r)
        self.assertTrue(r.header("location").startswith("/login"), r)
        self.assertUnchanged(before)
        self.approve_works(f, {k: v for k, v in fields.items() if k != "decision"})

    def test_session_cookie_attributes(self):
        b = self.browser()
        f = a.Flow(b, self.client())
        r = b.get(f.query)
        self.assertTrue(b.last_path.startswith("/login"), b.last_path)
        fields = dict(a.Page(r.body).hidden(), subject=ALICE)
        r = b.post_form("/login", list(fields.items()), follow=False)
        self.assertEqual(r.status, 303, r)
        cookies = r.header_all("set-cookie")
        self.assertEqual(len(cookies), 1, cookies)
        name, _, rest = cookies[0].partition("=")
        self.assertEqual(name, "__Host-tokend-session")
        value, *attrs = [x.strip() for x in rest.split(";")]
        self.assertRegex(value, r"^[A-Za-z0-9_-]{43}$")  # 256 bits, base64url
        attrs = {x.split("=")[0].lower(): x for x in attrs}
        self.assertEqual(attrs.get("path"), "Path=/", cookies)
        for flag in ("secure", "httponly"):
            self.assertIn(flag, attrs, cookies)
        self.assertEqual(attrs.get("samesite", "").lower(), "samesite=lax", cookies)
        self.assertNotIn("domain", attrs, cookies)  # __Host-: never a Domain
        self.assertGreater(int(attrs["max-age"].split("=")[1]), 0, cookies)
        # A login form posted without its CSRF token signs nobody in.
        other = self.browser()
        r = other.get(a.Flow(other, self.client()).query)
        fields = {k: v for k, v in a.Page(r.body).hidden().items() if k != "csrf"}
        fields["subject"] = ALICE
        r = other.post_form("/login", list(fields.items()), follow=False)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.header_all("set-cookie"), [], r)

    def test_terminated_session_signs_the_browser_out(self):
        b = self.browser()
        cid = self.client()
        f = self.at_consent(b, cid)
        fields = f.consent_fields()
        sessions = [s for s in self.d.ctl("session", "list") if s.get("sub") == ALICE
                    and s.get("state", "active") == "active"]
        for s in sessions:
            self.d.ctl("session", "terminate", s["sid"])
        r = b.post_form("/consent", list(dict(fields, decision="approve").items()),
                        follow=False)
        self.assertIn(r.status, (400, 303), r)
        self.assertNotIn("code=", r.header("location") or "")


class LoginBrowser(ASCase):
    """Review finding: a pending authorization request could be signed in
    for from any browser that learnt its id (GET /login?request=ID gave the
    form and its CSRF token to anyone), binding the user's request to the
    other browser's session. Only the browser that made the request (its
    pre-login cookie, set at /authorize) may sign in for it now."""

    def at_login(self, browser, cid):
        f = a.Flow(browser, cid)
        r = browser.request("GET", f.query)
        self.assertEqual(r.status, 303, r)
        login = r.header("location")
        self.assertTrue(login.startswith("/login?request="), login)
        return f, login

    def test_another_browser_neither_gets_the_form_nor_signs_in(self):
        cid = self.client()
        alice = self.browser()
        f, login = self.at_login(alice, cid)
        r = alice.request("GET", login)
        self.assertEqual(r.status, 200, r)
        fields = a.Page(r.body).hidden()
        nobody = self.browser()  # no pre-login cookie at all
        forged = self.browser()  # a well-formed one that is no request's
        forged.others["__Host-tokend-authz"] = secrets.token_urlsafe(32)
        other = self.browser()  # one of its own, from a request of its own
        self.at_login(other, cid)
        before = self.snapshot()
        for who, b in (("nobody", nobody), ("forged", forged), ("other", other)):
            with self.subTest(who):
                self.assertHtmlPage(b.request("GET", login), 403, "another browser")
                post = dict(fields, subject=MALLORY)
                r = b.post_form("/login", list(post.items()), follow=False)
                self.assertHtmlPage(r, 403, "another browser")
                self.assertNotIn("__Host-tokend-session=", r.header("set-cookie") or "")
        self.assertUnchanged(before)
        self.assertEqual([x for x in self.d.ctl("session", "list") if x.get("sub") == MALLORY],
                         [])
        # Alice's own browser: the form again (a reload), then her sign-in.
        r = alice.request("GET", login)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(a.Page(r.body).hidden(), fields)
        r = alice.post_form("/login", list(dict(fields, subject=ALICE).items()))
        self.assertEqual(r.status, 200, r)  # the consent page
        f.resp = r
        q = a.code_from(f.decide("approve"))
        self.assertEqual(q.get("state"), [f.state])
        r = a.redeem(self.d, cid, q["code"][0], f.verifier)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.assertActive(r.json()["access_token"])["sub"], ALICE)

    def test_signed_out_at_consent_starts_again(self):
        # A request made while signed in is bound to that browser session (a
        # sign-in never rebinds it): when the session ends before the user
        # decides, /login says to start again, in any browser.
        b = self.browser()
        cid, cid2 = self.client(), self.client()
        a.authorize_code(self.d, b, cid, subject=MALLORY)  # signed in, a grant for cid
        f = a.Flow(b, cid2, subject=MALLORY)
        r = f.start()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(b.last_path.startswith("/consent"), b.last_path)
        request = f.consent_fields()["request"]
        for s in self.d.ctl("session", "list"):
            if s.get("sub") == MALLORY and s.get("state", "active") == "active":
                self.d.ctl("session", "terminate", s["sid"])
        login = "/login?" + h.form([("request", request)])
        for who in (b, self.browser()):
            self.assertHtmlPage(who.request("GET", login), 400, "start again")
        self.assertEqual(a.Flow(b, cid2, subject=MALLORY).start().status, 200)  # a new one

    def test_parallel_requests_share_the_browsers_cookie(self):
        cid = self.client()
        b = self.browser()
        f1, login1 = self.at_login(b, cid)
        self.assertIn("__Host-tokend-authz=", b.last.header("set-cookie") or "")
        self.assertIn("Secure; HttpOnly; SameSite=Lax", b.last.header("set-cookie"))
        first = b.others["__Host-tokend-authz"]
        f2, login2 = self.at_login(b, cid)
        self.assertEqual(b.others["__Host-tokend-authz"], first)  # kept, not replaced
        pages = []
        for login in (login1, login2):
            r = b.request("GET", login)
            self.assertEqual(r.status, 200, r)
            pages.append(a.Page(r.body).hidden())
        r = b.post_form("/login", list(dict(pages[0], subject=ALICE).items()))
        self.assertEqual(r.status, 200, r)  # signed in for the first: its consent page
        f1.resp = r
        self.assertEqual(a.code_from(f1.decide("approve")).get("state"), [f1.state])


class Approval(ASCase):
    """registration = approval; at most 3 registrations per address."""
    registration = "approval"
    extra = ("--register-burst", 3)
    workers = 4

    def meta(self, name):
        return {"client_name": name, "redirect_uris": [a.REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"]}

    def status_of(self, cid):
        return {c["client_id"]: c["status"] for c in self.d.ctl("client", "list")}[cid]

    def test_pending_client_gets_the_waiting_page(self):
        r = a.register(self.d, self.meta("waiting agent"), source="127.0.0.5")
        self.assertEqual(r.status, 201, r)
        cid = r.json()["client_id"]
        self.assertEqual(self.status_of(cid), "pending")
        self.assertIn(cid, [c["client_id"] for c in self.d.ctl("client", "list", "--pending")])
        for signed_in in (False, True):
            b = self.browser()
            if signed_in:  # a signed-in browser sees the same page
                other = self.d.ctl("client", "add", "--name", "signin-helper", "--role",
                                   "agent", "--redirect-uri", a.REDIRECT, "--public")
                a.authorize_code(self.d, b, other["client_id"])
            before = self.snapshot()
            f = a.Flow(b, cid)
            r = b.request("GET", f.query)
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.header("location"), r)
            page = self.assertHtmlPage(r, 200)
            self.assertIn("approv", page.text.lower())
            tag, attrs = page.by_id["return"]
            self.assertEqual(tag, "a")
            p = urllib.parse.urlsplit(attrs["href"])
            self.assertEqual(urllib.parse.urlunsplit((p.scheme, p.netloc, p.path, "", "")),
                             a.REDIRECT)
            q = urllib.parse.parse_qs(p.query)
            self.assertEqual(q.get("error"), ["access_denied"], q)
            self.assertTrue(q.get("error_description"), q)
            self.assertEqual(q.get("state"), [f.state], q)
            self.assertEqual(q.get("iss"), [self.d.issuer()], q)
            self.assertNotIn("code", q)
            self.assertUnchanged(before)
        # Approval per identity: the same name and redirect URIs again are
        # approved at once after the first is; another name waits.
        self.d.ctl("client", "approve", cid)
        a.authorize_code(self.d, self.browser(), cid)  # the control: now it works
        r = a.register(self.d, self.meta("waiting agent"), source="127.0.0.5")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.status_of(r.json()["client_id"]), "approved")
        r = a.register(self.d, self.meta("another agent"), source="127.0.0.5")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.status_of(r.json()["client_id"]), "pending")

    # The count is per address across workers (the engine's first version
    # counted per worker: N workers let N x burst through). Four workers and
    # eight attempts on fresh connections: a per-worker count lets more
    # than three through.
    def test_registration_rate_limit(self):
        # Counted per minute: keep the burst inside one (a count that restarts
        # at the minute would let a burst straddling it through twice).
        if time.time() % 60 > 50:
            time.sleep(61 - time.time() % 60)
        n0 = len(self.d.ctl("client", "list"))
        for i in range(3):
            r = a.register(self.d, self.meta("burst %d" % i), source="127.0.0.9")
            self.assertEqual(r.status, 201, r)
        before = self.snapshot()
        for i in range(3, 8):
            r = a.register(self.d, self.meta("burst %d" % i), source="127.0.0.9")
            self.assertEqual(r.status, 429, r)
            self.assertTrue((r.header("retry-after") or "").isdigit(), r)
            self.assertGreater(int(r.header("retry-after")), 0)
            self.assertEqual(r.json().get("error"), "too_many_requests", r)
        self.assertUnchanged(before)
        self.assertEqual(len(self.d.ctl("client", "list")), n0 + 3)
        # Per source address: another one still registers.
        r = a.register(self.d, self.meta("elsewhere"), source="127.0.0.10")
        self.assertEqual(r.status, 201, r)


class Registration(ASCase):
    """Refused metadata: 400 with the RFC 7591 code, no client stored."""

    def refuse(self, body, error, status=400):
        before = self.snapshot()
        r = a.register(self.d, body)
        self.assertJsonError(r, error, status)
        self.assertUnchanged(before)
        return r.json()

    def test_refused_metadata(self):
        ok = {"client_name": "x", "redirect_uris": ["https://app.test/cb"]}
        cases = [
            ({"redirect_uris": ["http://app.test/cb"]}, "invalid_redirect_uri"),
            ({"redirect_uris": ["http://app.test/cb"], "application_type": "web"},
             "invalid_redirect_uri"),
            ({"redirect_uris": ["https://app.test/cb#frag"]}, "invalid_redirect_uri"),
            ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
            ({"redirect_uris": ["data:text/html,hi"]}, "invalid_redirect_uri"),
            ({"redirect_uris": ["http://127.0.0.1:8765/cb"], "application_type": "web"},
             "invalid_redirect_uri"),
            ({"redirect_uris": ["https://app.test/%d" % i for i in range(9)]},
             "invalid_redirect_uri"),
            ({"redirect_uris": []}, "invalid_redirect_uri"),
            ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
            ({"grant_types": ["authorization_code", "client_credentials"]},
             "invalid_client_metadata"),
            ({"grant_types": ["password"]}, "invalid_client_metadata"),
            ({"grant_types": ["implicit"], "response_types": ["token"]},
             "invalid_client_metadata"),
            ({"response_types": ["token"]}, "invalid_client_metadata"),
            ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
            ({"client_name": "n" * 129}, "invalid_client_metadata"),
            ({"client_name": "evil\u202ename"}, "invalid_client_metadata"),
            ({"application_type": "desktop"}, "invalid_client_metadata"),
        ]
        for change, error in cases:
            with self.subTest(change):
                body = dict(ok)
                body.update(change)
                j = self.refuse(body, error)
                if "client_credentials" in change.get("grant_types", []):
                    self.assertIn("person", j.get("error_description", ""), j)
        r = a.register(self.d, ok)  # the control
        self.assertEqual(r.status, 201, r)

    def test_duplicate_members_and_malformed_bodies(self):
        self.refuse('{"client_name":"a","client_name":"b","redirect_uris":["https://app.test/cb"]}',
                    "invalid_client_metadata")
        self.refuse('{"redirect_uris":["https://app.test/cb"],"redirect_uris":'
                    '["https://evil.test/cb"]}', "invalid_client_metadata")
        for body in ("", "[]", "null", '"x"', "{", '{"redirect_uris":["https://app.test/cb"]} x',
                     '{"redirect_uris":"https://app.test/cb"}'):
            with self.subTest(body):
                r = a.register(self.d, body)
                self.assertEqual(r.status, 400, r)
                self.assertIn(r.json().get("error"),
                              ("invalid_client_metadata", "invalid_redirect_uri"), r)

    def test_oversized_body(self):
        before = self.snapshot()
        body = json.dumps({"redirect_uris": ["https://app.test/cb"], "client_name": "big",
                           "contacts": ["x" * 17000]})
        r = a.register(self.d, body)
        self.assertIn(r.status, (400, 413), r)
        if r.status == 400:
            self.assertEqual(r.json().get("error"), "invalid_client_metadata", r)
        body = json.dumps({"redirect_uris": ["https://app.test/cb"], "contacts": ["x" * 70000]})
        r = a.register(self.d, body)
        self.assertIn(r.status, (400, 413), r)
        self.assertUnchanged(before)

    def test_wrong_content_type_and_method(self):
        before = self.snapshot()
        r = self.d.raw(h.build_request("POST", "/register",
                                       json.dumps({"redirect_uris": ["https://app.test/cb"]}),
                                       None, h.FORM))
        self.assertIn(r.status, (400, 415), r)
        r = self.d.request("GET", "/register")
        self.assertEqual(r.status, 405, r)
        self.assertUnchanged(before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
