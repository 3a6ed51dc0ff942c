"""Fixes of the independent reviews of the landed tree (one class per
finding; each test fails on the code before its fix, as noted).

AuthorizeLimits: /authorize stored a ~1.2 KB pending request (tka_…) for
authorize-ttl for anyone, without limit (18 k in 5 s). Requests that would
store one now take a token from a per-address bucket (authorize-burst, 429
with Retry-After), and all of them count against authorize-pending-max per
authorize-ttl (503 and an authorize_pending_full log line).

DpopReplayCache: /token remembered a DPoP proof's jti in the process-wide
replay cache (65 536 slots) before any grant check, so failing requests from
a public client could fill it and make every DPoP request fail for a minute.
The jti is now remembered only once the request is otherwise valid: a proof
sent with a failing request is still good for a valid one (old code: "the
proof's jti was used before"), and a replayed proof is still refused.

ExchangeKeyBinding: token exchange (RFC 8693) of a DPoP-bound subject token
took a proof by any key, and of a certificate-bound one any client
certificate: whoever stole the token and knew a public delegate re-bound it to
a key of theirs. The proof must now be by the subject token's key (cnf.jkt),
the certificate the subject token's (cnf.x5t#S256).

RedirectUriAtToken: RFC 6749 §4.1.3: redirect_uri is REQUIRED at /token when
the authorization request included it. A code whose /authorize named one was
redeemed without it.
"""

import base64
import hashlib
import json
import secrets
import shutil
import time
import unittest

import harness as h

h.require_binaries()
if shutil.which("openssl") is None:
    import sys
    sys.stderr.write("skipped: the openssl CLI is needed for keys and certificates\n")
    sys.exit(77)

import as_http as a  # noqa: E402  (after the skips above)
import hardening as hd  # noqa: E402
import idp_util as iu  # noqa: E402
import mtls_util as mu  # noqa: E402

if not a.engine_present():
    import sys
    sys.stderr.write("skipped: tokend has no authorization server yet (no `login` setting)\n")
    sys.exit(77)


# ---- DPoP proofs made here (ES256 with the openssl CLI) ---------------------------


class DpopKey:
    def __init__(self, folder, name):
        self.key = iu.Key(folder, name, "p256")
        self.jwk = self.key.jwk()
        canon = json.dumps({k: self.jwk[k] for k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
        self.jkt = base64.urlsafe_b64encode(
            hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()

    def proof(self, htu, htm="POST"):
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu,
                  "iat": int(time.time())}
        return iu.jws(header, claims, self.key)


def token_with(d, pairs, proof=None):
    hdrs = {"DPoP": proof} if proof is not None else None
    return d.raw(h.build_request("POST", "/token", h.form(pairs), hdrs, h.FORM))


def code_pairs(cid, code, verifier, redirect=a.REDIRECT):
    pairs = [("grant_type", "authorization_code"), ("code", code),
             ("code_verifier", verifier), ("client_id", cid)]
    if redirect is not None:
        pairs.append(("redirect_uri", redirect))
    return pairs


def exchange_pairs(sub, at, extra=()):
    return [("grant_type", a.TOKEN_EXCHANGE), ("subject_token", at),
            ("subject_token_type", a.AT_TYPE), ("client_id", sub)] + list(extra)


def authorize_request(d, cid, src):
    """One /authorize that stores a pending request (not signed in: 303 to
    /login) from source address src."""
    q = a.authorize_query(cid, challenge=a.s256(a.new_verifier()), state="s")
    with hd.conn_from(d.port, src) as c:
        c.send(h.build_request("GET", q))
        return c.read_response()


# ---- 1. /authorize limits ---------------------------------------------------------


class AuthorizeLimits(h.FreshCase):

    def start(self, *extra):
        folder = a.tmpfolder()
        self.addCleanup(shutil.rmtree, folder, True)
        d = self.daemon(a.as_daemon_args(folder, extra=["--register-burst", 0] + list(extra)))
        return d, a.public_client(d)["client_id"]

    def test_per_address_bucket(self):
        d, cid = self.start("--authorize-burst", 5)
        for i in range(5):
            r = authorize_request(d, cid, "127.0.0.2")
            self.assertEqual(r.status, 303, (i, r))
            self.assertTrue(r.header("location").startswith("/login?request=tka_"), r)
        r = authorize_request(d, cid, "127.0.0.2")
        self.assertEqual(r.status, 429, r)
        self.assertTrue((r.header("retry-after") or "").isdigit(), r)
        self.assertGreater(int(r.header("retry-after")), 0)
        self.assertIsNone(r.header("location"))
        self.assertIn(b"too_many_requests", r.body)
        # Another address has its own bucket.
        self.assertEqual(authorize_request(d, cid, "127.0.0.3").status, 303)
        # Requests that store nothing (refused before) take no token.
        for _ in range(20):
            with hd.conn_from(d.port, "127.0.0.4") as c:
                c.send(h.build_request("GET", a.authorize_query("tkc_nobody")))
                self.assertEqual(c.read_response().status, 400)
        self.assertEqual(authorize_request(d, cid, "127.0.0.4").status, 303)

    def test_default_lets_a_real_flow_through(self):
        # The default (60 a minute per address) is far from what one person's
        # browser or an agent retrying does; whole flows from one address pass.
        d, cid = self.start()
        for i in range(30):
            self.assertEqual(authorize_request(d, cid, "127.0.0.5").status, 303, i)
        code, verifier = a.authorize_code(d, a.Browser(d), cid)
        self.assertEqual(a.redeem(d, cid, code, verifier).status, 200)

    def test_global_bound_on_pending_requests(self):
        d, cid = self.start("--authorize-burst", 0, "--authorize-pending-max", 10)
        for i in range(10):  # from ten addresses: the per-address limit is off anyway
            r = authorize_request(d, cid, "127.0.1.%d" % (i + 1))
            self.assertEqual(r.status, 303, (i, r))
        for i in range(5):
            r = authorize_request(d, cid, "127.0.2.%d" % (i + 1))
            self.assertEqual(r.status, 503, r)
            self.assertIsNone(r.header("location"))
            self.assertIn(b"temporarily_unavailable", r.body)
        # A whole browser flow is refused too, before anything is stored.
        r = a.Browser(d).get(a.authorize_query(cid, challenge=a.s256(a.new_verifier())))
        self.assertEqual(r.status, 503, r)
        deadline = time.monotonic() + 5
        while "authorize_pending_full" not in d.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("event=authorize_pending_full max=10", d.stderr())
        # Everything else still works: the token endpoint, introspection.
        self.assertEqual(d.request("GET", "/healthz").status, 200)


# ---- 2. DPoP jti remembered only for valid requests -------------------------------


class DpopReplayCache(h.FreshCase):

    @classmethod
    def setUpClass(cls):
        cls.folder = a.tmpfolder()
        cls.addClassCleanup(shutil.rmtree, cls.folder, True)
        cls.d = h.start_daemon(a.as_daemon_args(
            cls.folder, extra=["--register-burst", 0, "--auth-fail-burst", 0,
                               "--authorize-burst", 0]))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")
        cls.htu = a.issuer(cls.d) + "/token"
        cls.key = DpopKey(cls.folder, "dpop1")
        cls.cid = a.public_client(cls.d, grants=("authorization_code", "refresh_token",
                                                 a.TOKEN_EXCHANGE))["client_id"]

    def code(self):
        return a.authorize_code(self.d, a.Browser(self.d), self.cid)

    def bound_tokens(self):
        code, verifier = self.code()
        r = token_with(self.d, code_pairs(self.cid, code, verifier), self.key.proof(self.htu))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def failing_requests(self):
        """(name, pairs) of /token requests by the same public client that
        fail after the proof is checked: every grant's refusals."""
        code, verifier = self.code()
        tokens = self.bound_tokens()
        other = a.public_client(self.d)["client_id"]
        ocode, overifier = a.authorize_code(self.d, a.Browser(self.d), other)
        return [
            ("unknown code", code_pairs(self.cid, "x" * 43, verifier)),
            ("another client's code", code_pairs(self.cid, ocode, overifier)),
            ("wrong PKCE verifier", code_pairs(self.cid, code, a.new_verifier())),
            ("wrong redirect_uri", code_pairs(self.cid, code, verifier,
                                              "http://127.0.0.1:8765/other")),
            ("wrong resource", code_pairs(self.cid, code, verifier)
             + [("resource", a.API)]),
            ("unknown refresh token", [("grant_type", "refresh_token"),
                                       ("refresh_token", "tkd_rt_" + "A" * 43),
                                       ("client_id", self.cid)]),
            ("refresh widening the scope", [("grant_type", "refresh_token"),
                                            ("refresh_token", tokens["refresh_token"]),
                                            ("client_id", self.cid),
                                            ("scope", "mcp:read mcp:write")]),
            ("unknown subject token", exchange_pairs(self.cid, "tkd_at_" + "B" * 43)),
            ("exchange widening the scope", exchange_pairs(
                self.cid, tokens["access_token"], [("scope", "mcp:write")])),
            ("exchange to another resource", exchange_pairs(
                self.cid, tokens["access_token"], [("resource", a.API)])),
        ]

    def test_failing_requests_do_not_spend_the_proof(self):
        for name, pairs in self.failing_requests():
            with self.subTest(failing=name):
                proof = self.key.proof(self.htu)
                r = token_with(self.d, pairs, proof)
                self.assertEqual(r.status, 400, r)
                self.assertNotEqual(r.json()["error"], "invalid_dpop_proof", r)
                # The same proof with a valid request: accepted (old code: replay).
                code, verifier = self.code()
                r = token_with(self.d, code_pairs(self.cid, code, verifier), proof)
                self.assertEqual(r.status, 200, (name, r))
                self.assertEqual(r.json()["token_type"], "DPoP")
                # And only once.
                code, verifier = self.code()
                r = token_with(self.d, code_pairs(self.cid, code, verifier), proof)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json(), {"error": "invalid_dpop_proof",
                                            "error_description":
                                                "the proof's jti was used before"})

    def test_a_flood_of_failing_requests_leaves_dpop_working(self):
        proofs = [self.key.proof(self.htu) for _ in range(200)]
        code, verifier = self.code()
        with h.Conn(self.d.port) as c:
            for p in proofs:
                c.send(h.build_request("POST", "/token", h.form(
                    code_pairs(self.cid, "x" * 43, verifier)), {"DPoP": p}, h.FORM))
                self.assertEqual(c.read_response().status, 400)
        # Every one of those proofs is still unspent: a valid request with any works.
        for p in (proofs[0], proofs[-1]):
            code, verifier = self.code()
            r = token_with(self.d, code_pairs(self.cid, code, verifier), p)
            self.assertEqual(r.status, 200, r)

    def test_replay_refused_for_every_grant(self):
        tokens = self.bound_tokens()
        proof = self.key.proof(self.htu)
        r = token_with(self.d, [("grant_type", "refresh_token"),
                                ("refresh_token", tokens["refresh_token"]),
                                ("client_id", self.cid)], proof)
        self.assertEqual(r.status, 200, r)
        rt = r.json()["refresh_token"]
        r = token_with(self.d, [("grant_type", "refresh_token"), ("refresh_token", rt),
                                ("client_id", self.cid)], proof)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "invalid_dpop_proof", r)
        self.d.ctl("client", "set", self.cid, "--delegate-to", self.cid)
        proof = self.key.proof(self.htu)
        r = token_with(self.d, exchange_pairs(self.cid, tokens["access_token"]), proof)
        self.assertEqual(r.status, 200, r)
        r = token_with(self.d, exchange_pairs(self.cid, tokens["access_token"]), proof)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "invalid_dpop_proof", r)


# ---- 3. Token exchange keeps the subject token's key ------------------------------


class ExchangeKeyBinding(h.FreshCase):

    @classmethod
    def setUpClass(cls):
        cls.m = mu.material()
        cls.folder = a.tmpfolder()
        cls.addClassCleanup(shutil.rmtree, cls.folder, True)
        cls.d = h.start_daemon(a.as_daemon_args(
            cls.folder, extra=["--register-burst", 0, "--auth-fail-burst", 0,
                               "--authorize-burst", 0, "--tls-ca", cls.m["ca"][0]]), tls=True)
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")
        cls.htu = a.issuer(cls.d) + "/token"
        cls.k1 = DpopKey(cls.folder, "holder")
        cls.k2 = DpopKey(cls.folder, "thief")

    def delegate_pair(self):
        cid = a.public_client(self.d)["client_id"]
        sub = a.public_client(self.d, grants=("authorization_code", a.TOKEN_EXCHANGE))
        self.d.ctl("client", "set", cid, "--delegate-to", sub["client_id"])
        return cid, sub["client_id"]

    def tokens(self):
        return int(self.d.ctl("stats")["tokens"])

    def assertRefused(self, r, before, error):
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], error, r)
        self.assertNotIn("access_token", r.json())
        self.assertEqual(self.tokens(), before)

    def dpop_bound(self):
        cid, sub = self.delegate_pair()
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), cid)
        r = token_with(self.d, code_pairs(cid, code, verifier), self.k1.proof(self.htu))
        self.assertEqual(r.status, 200, r)
        at = r.json()["access_token"]
        self.assertEqual(self.d.active(at)["cnf"], {"jkt": self.k1.jkt})
        return at, sub

    def test_dpop_bound_subject_with_another_key_refused(self):
        at, sub = self.dpop_bound()
        before = self.tokens()
        r = token_with(self.d, exchange_pairs(sub, at), self.k2.proof(self.htu))
        self.assertRefused(r, before, "invalid_dpop_proof")
        self.assertIn("cnf.jkt", r.json()["error_description"])

    def test_dpop_bound_subject_without_proof_refused(self):
        at, sub = self.dpop_bound()
        before = self.tokens()
        self.assertRefused(token_with(self.d, exchange_pairs(sub, at)), before,
                           "invalid_dpop_proof")

    def test_dpop_bound_subject_with_its_own_key(self):
        at, sub = self.dpop_bound()
        r = token_with(self.d, exchange_pairs(sub, at), self.k1.proof(self.htu))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["token_type"], "DPoP")
        child = self.d.active(r.json()["access_token"])
        self.assertEqual(child["cnf"], {"jkt": self.k1.jkt})  # bound to the same key

    def tls_post(self, cert, pairs):
        ctx = cert.context() if cert is not None else h.client_context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            return c.request("POST", "/token", h.form(pairs), content_type=h.FORM)

    def cert_bound(self):
        cid, sub = self.delegate_pair()
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), cid)
        r = self.tls_post(self.m["self"], code_pairs(cid, code, verifier))
        self.assertEqual(r.status, 200, r)
        at = r.json()["access_token"]
        self.assertEqual(self.d.active(at)["cnf"], {"x5t#S256": self.m["self"].x5t})
        return at, sub

    def test_cert_bound_subject_with_another_certificate_refused(self):
        at, sub = self.cert_bound()
        before = self.tokens()
        for cert in (self.m["self2"], self.m["rs"], self.m["other"]):
            self.assertRefused(self.tls_post(cert, exchange_pairs(sub, at)), before,
                               "invalid_grant")

    def test_cert_bound_subject_without_certificate_refused(self):
        at, sub = self.cert_bound()
        before = self.tokens()
        self.assertRefused(self.tls_post(None, exchange_pairs(sub, at)), before,
                           "invalid_grant")
        self.assertRefused(a.exchange(self.d, sub, at), before, "invalid_grant")

    def test_cert_bound_subject_with_its_own_certificate(self):
        at, sub = self.cert_bound()
        r = self.tls_post(self.m["self"], exchange_pairs(sub, at))
        self.assertEqual(r.status, 200, r)
        child = self.d.active(r.json()["access_token"])
        self.assertEqual(child["cnf"], {"x5t#S256": self.m["self"].x5t})

    def test_unbound_subject_any_key_or_none(self):
        cid, sub = self.delegate_pair()
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), cid)
        at = a.redeem(self.d, cid, code, verifier).json()["access_token"]
        self.assertEqual(a.exchange(self.d, sub, at).status, 200)
        r = token_with(self.d, exchange_pairs(sub, at), self.k2.proof(self.htu))
        self.assertEqual(r.status, 200, r)  # the delegate binds its child to its own key
        self.assertEqual(self.d.active(r.json()["access_token"])["cnf"], {"jkt": self.k2.jkt})


# ---- 6. redirect_uri at /token ----------------------------------------------------


class RedirectUriAtToken(h.FreshCase):

    @classmethod
    def setUpClass(cls):
        folder = a.tmpfolder()
        cls.addClassCleanup(shutil.rmtree, folder, True)
        cls.d = h.start_daemon(a.as_daemon_args(
            folder, extra=["--register-burst", 0, "--auth-fail-burst", 0,
                           "--authorize-burst", 0]))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")

    def code_without_redirect(self, cid):
        """An authorization whose request did not name redirect_uri (one is
        registered, so it is implied)."""
        f = a.Flow(a.Browser(self.d), cid, redirect=None)
        r = f.start()
        if r.status == 200:
            r = f.decide("approve")
        return a.code_from(r, a.REDIRECT)["code"][0], f.verifier

    def test_named_at_authorize_required_at_token(self):
        cid = a.public_client(self.d)["client_id"]
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), cid)
        for redirect in (None, "http://127.0.0.1:8765/cb/", "http://127.0.0.1:8765/CB",
                         "http://127.0.0.1:8766/cb", ""):
            with self.subTest(redirect=redirect):
                r = token_with(self.d, code_pairs(cid, code, verifier, redirect))
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["error"], "invalid_grant", r)
        # The refusals left the code unused: the identical redirect_uri redeems it.
        r = token_with(self.d, code_pairs(cid, code, verifier))
        self.assertEqual(r.status, 200, r)

    def test_confidential_client_too(self):
        meta = {"client_name": "conf", "redirect_uris": [a.REDIRECT],
                "grant_types": ["authorization_code"]}
        reg = a.register(self.d, meta).json()
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), reg["client_id"])
        basic = h.basic(reg["client_id"], reg["client_secret"])
        pairs = [p for p in code_pairs(reg["client_id"], code, verifier, None)
                 if p[0] != "client_id"]
        r = a.token(self.d, pairs, auth=basic)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "invalid_grant", r)
        r = a.token(self.d, pairs + [("redirect_uri", a.REDIRECT)], auth=basic)
        self.assertEqual(r.status, 200, r)

    def test_not_named_at_authorize_not_required(self):
        cid = a.public_client(self.d)["client_id"]
        code, verifier = self.code_without_redirect(cid)
        r = token_with(self.d, code_pairs(cid, code, verifier, None))
        self.assertEqual(r.status, 200, r)
        code, verifier = self.code_without_redirect(cid)
        r = token_with(self.d, code_pairs(cid, code, verifier, "http://127.0.0.1:8765/x"))
        self.assertEqual(r.status, 400, r)  # named at /token: still compared
        r = token_with(self.d, code_pairs(cid, code, verifier))
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
