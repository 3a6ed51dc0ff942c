"""Findings of the adversarial review of the authorization server (one
class per finding; each test fails on the code before its fix).

CertBoundExchange: a certificate-bound access token (RFC 8705 §3) was
exchanged (RFC 8693) over plain HTTP, or over TLS without a client
certificate, for an unbound bearer child: whoever stole the bound token and
knew the id of a public client in its delegate_to list laundered it into a
bearer token. DPoP-bound tokens were already refused in that case.

PendingClientNoRedirect: under registration = approval (the default) a
client nobody approved was sent a 303 to its unapproved redirect URI by
every /authorize error found after the redirect URI matched (no
response_type, no PKCE, ...): tokend was an open redirector for anyone who
registered. A pending client now always gets the "awaits approval" page."""

import secrets
import shutil
import unittest

import harness as h

h.require_binaries()
if shutil.which("openssl") is None:
    import sys
    sys.stderr.write("skipped: the openssl CLI is needed to make test certificates\n")
    sys.exit(77)

import as_http as a  # noqa: E402  (after the skips above)
import mtls_util as mu  # noqa: E402

if not a.engine_present():
    import sys
    sys.stderr.write("skipped: tokend has no authorization server yet (no `login` setting)\n")
    sys.exit(77)


class CertBoundExchange(h.FreshCase):
    @classmethod
    def setUpClass(cls):
        cls.m = mu.material()
        folder = a.tmpfolder()
        cls.addClassCleanup(shutil.rmtree, folder, True)
        args = a.as_daemon_args(folder, extra=["--auth-fail-burst", 0,
                                               "--tls-ca", cls.m["ca"][0]])
        cls.d = h.start_daemon(args, tls=True)
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")

    def tls_post(self, cert, pairs):
        ctx = cert.context() if cert is not None else h.client_context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            return c.request("POST", "/token", h.form(pairs), content_type=h.FORM)

    def bound_token_and_delegate(self, cert):
        """An access token bound to cert, and a public sub-agent its client
        delegates to."""
        cid = a.public_client(self.d)["client_id"]
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), cid)
        r = self.tls_post(cert, [("grant_type", "authorization_code"), ("code", code),
                                 ("redirect_uri", a.REDIRECT), ("code_verifier", verifier),
                                 ("client_id", cid)])
        self.assertEqual(r.status, 200, r)
        at = r.json()["access_token"]
        self.assertEqual(self.d.active(at)["cnf"], {"x5t#S256": cert.x5t})
        sub = a.public_client(self.d, grants=("authorization_code", a.TOKEN_EXCHANGE))
        self.d.ctl("client", "set", cid, "--delegate-to", sub["client_id"])
        return at, sub["client_id"]

    def exchange_pairs(self, sub, at):
        return [("grant_type", a.TOKEN_EXCHANGE), ("subject_token", at),
                ("subject_token_type", a.AT_TYPE), ("client_id", sub)]

    def assertNoBearerChild(self, r, before):
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "invalid_grant", r)
        self.assertNotIn("access_token", r.json())
        self.assertEqual(self.d.ctl("stats")["tokens"], before)

    def test_plain_http_exchange_refused(self):
        at, sub = self.bound_token_and_delegate(self.m["self"])
        before = self.d.ctl("stats")["tokens"]
        self.assertNoBearerChild(a.exchange(self.d, sub, at), before)

    def test_tls_without_certificate_refused(self):
        at, sub = self.bound_token_and_delegate(self.m["self"])
        before = self.d.ctl("stats")["tokens"]
        self.assertNoBearerChild(self.tls_post(None, self.exchange_pairs(sub, at)), before)

    def test_with_a_certificate_the_child_is_bound(self):
        at, sub = self.bound_token_and_delegate(self.m["self"])
        # Only the subject token's own certificate (test_review_fixes.py:
        # ExchangeKeyBinding): another one would re-bind a stolen token.
        before = self.d.ctl("stats")["tokens"]
        self.assertNoBearerChild(self.tls_post(self.m["self2"], self.exchange_pairs(sub, at)),
                                 before)
        r = self.tls_post(self.m["self"], self.exchange_pairs(sub, at))
        self.assertEqual(r.status, 200, r)
        child = self.d.active(r.json()["access_token"])
        self.assertEqual(child["cnf"], {"x5t#S256": self.m["self"].x5t})

    def test_unbound_token_still_exchanged_over_plain_http(self):
        cid = a.public_client(self.d)["client_id"]
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), cid)
        at = a.redeem(self.d, cid, code, verifier).json()["access_token"]
        sub = a.public_client(self.d, grants=("authorization_code", a.TOKEN_EXCHANGE))
        self.d.ctl("client", "set", cid, "--delegate-to", sub["client_id"])
        r = a.exchange(self.d, sub["client_id"], at)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("cnf", self.d.active(r.json()["access_token"]))


class PendingClientNoRedirect(h.FreshCase):
    EVIL = "https://evil.test/cb"

    @classmethod
    def setUpClass(cls):
        folder = a.tmpfolder()
        cls.addClassCleanup(shutil.rmtree, folder, True)
        cls.d = h.start_daemon(a.as_daemon_args(folder, "approval"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")

    def queries(self, cid):
        ch = a.s256(a.new_verifier())
        q = lambda **kw: a.authorize_query(cid, redirect=self.EVIL, **kw)  # noqa: E731
        return [
            "/authorize?client_id=" + cid,  # no response_type, no PKCE
            "/authorize?client_id=%s&redirect_uri=%s" % (cid, self.EVIL),
            q(challenge=None, state="s"),
            q(challenge=ch, state="s", method="plain"),
            q(challenge=ch, state="s").replace("response_type=code", "response_type=token"),
            q(challenge="short", state="s"),
            q(challenge=ch, state="s", scope="a\"b"),
            q(challenge=ch, state="s", resource="not a uri"),
            q(challenge=ch, state="s", extra=[("prompt", "bogus")]),
            q(challenge=ch, state="\u00e9"),
            q(challenge=ch, state="s", scope="nope"),
            q(challenge=ch, state="s"),
        ]

    def register(self):
        r = a.register(self.d, {"client_name": "unapproved-" + secrets.token_hex(4),
                                "redirect_uris": [self.EVIL],
                                "token_endpoint_auth_method": "none"})
        self.assertEqual(r.status, 201, r)
        return r.json()["client_id"]

    def test_pending_client_never_redirected(self):
        cid = self.register()
        for path in self.queries(cid):
            with self.subTest(path=path):
                r = self.d.request("GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertIsNone(r.header("location"), r)
                page = a.Page(r.body)
                self.assertIn("awaits approval", page.text)
                # only a link the user may follow, carrying access_denied
                href = page.by_id["return"][1]["href"]
                self.assertTrue(href.startswith(self.EVIL + "?error=access_denied"), href)
                # POST /authorize too
                qs = path.split("?", 1)[1]
                r = self.d.request("POST", "/authorize", qs.encode(), None, h.FORM)
                self.assertEqual(r.status, 200, r)
                self.assertIsNone(r.header("location"), r)

    def test_approved_client_gets_its_error_redirects(self):
        cid = self.register()
        self.d.ctl("client", "approve", cid)
        r = self.d.request("GET", a.authorize_query(cid, redirect=self.EVIL, challenge=None,
                                                    state="s"))
        self.assertEqual(r.status, 303, r)
        base, q = a.location_params(r)
        self.assertEqual(base, self.EVIL)
        self.assertEqual(q["error"], ["invalid_request"])
        self.assertEqual(q["state"], ["s"])


if __name__ == "__main__":
    unittest.main()
