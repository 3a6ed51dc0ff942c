"""RFC 9701 signed introspection answers and tokend's own signing keys,
against the real binaries: the key folder made at first start, /jwks.json
and the RFC 8414 metadata, signed answers that wrap exactly the plain RFC
7662 answer (active and inactive), which Accept values ask for them and
which do not, errors staying plain JSON, `tokenctl keys rotate` + SIGHUP
(with its log line), and the retired key leaving the JWKS after the
overlap. The signatures themselves are checked by third-party verifiers in
test_signed_interop.py (npm jose and oauth4webapi)."""

import os
import signal
import stat
import time
import unittest

import harness as h
import signed_util as s

h.require_binaries()

JSON_ACCEPTS = [
    (),  # no Accept at all
    ("*/*",),
    ("application/json",),
    ("application/*",),
    ("application/jwt",),
    ("application/token-introspection",),
    ("application/token-introspection+jwtx",),
    ("xapplication/token-introspection+jwt",),
    ("application/token-introspection+jwt;q=0",),
    ("application/token-introspection+jwt; q=0.000, application/json",),
    ("text/html, application/json;q=0.9",),
    ('application/json; x="application/token-introspection+jwt"',),
    ("application/token-introspection+json",),
]
JWT_ACCEPTS = [
    (s.JWT_TYPE,),
    ("APPLICATION/Token-Introspection+JWT",),
    ("application/json;q=0.5, application/token-introspection+jwt",),
    ("application/token-introspection+jwt; charset=utf-8; q=0.1",),
    ("  application/token-introspection+jwt  ,*/*",),
    ('text/plain; x="a,b", application/token-introspection+jwt',),
    ("application/json", s.JWT_TYPE),  # the second Accept header
]


class Signed(h.FreshCase):
    def setUp(self):
        self.d = self.daemon()
        self.w = h.World(self.d)
        sid = self.d.new_session("alice")
        self.token = self.d.issue(sid, self.w.a, "read write", aud="https://api.example")[
            "access_token"]
        self.issuer = self.d.request("GET", "/.well-known/oauth-authorization-server").json()[
            "issuer"]

    def signed(self, token, accepts=(s.JWT_TYPE,), client=None):
        return self.d.raw(s.introspect_request(token, client or self.w.rs, accepts))

    def check_signed(self, r, plain):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), s.JWT_TYPE)
        self.assertEqual(r.header("cache-control"), "no-store")
        header, payload, sig = s.decode(r.body.decode("ascii"))
        self.assertEqual(header, {"alg": "ES256", "kid": s.kids(self.d)[0],
                                  "typ": "token-introspection+jwt"})
        self.assertEqual(len(sig), 64)
        self.assertEqual(sorted(payload), ["aud", "iat", "iss", "token_introspection"])
        self.assertEqual(payload["iss"], self.issuer)
        self.assertEqual(payload["aud"], self.w.rs.id)
        self.assertLessEqual(abs(payload["iat"] - time.time()), 5)
        self.assertEqual(payload["token_introspection"], plain)
        return header, payload

    def test_first_start_made_a_key(self):
        folder = os.path.join(self.d.data_dir, "keys")
        self.assertEqual(stat.S_IMODE(os.stat(folder).st_mode), 0o700)
        listed = self.d.ctl("keys", "list")["keys"]
        self.assertEqual(len(listed), 1)
        self.assertTrue(listed[0]["current"])
        self.assertEqual(listed[0]["alg"], "ES256")
        kid = listed[0]["kid"]
        pem = os.path.join(folder, kid + ".pem")
        self.assertEqual(stat.S_IMODE(os.stat(pem).st_mode), 0o600)
        with open(pem) as f:
            self.assertIn("BEGIN PRIVATE KEY", f.read())
        self.assertNotIn("PRIVATE", self.d.stderr())  # never logged
        self.assertIn("current=" + kid, self.d.stderr())

    def test_jwks_and_metadata(self):
        r = self.d.request("GET", "/jwks.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/jwk-set+json")
        keys = r.json()["keys"]
        self.assertEqual(len(keys), 1)
        k = keys[0]
        self.assertEqual(sorted(k), ["alg", "crv", "kid", "kty", "use", "x", "y"])  # no "d"
        self.assertEqual((k["kty"], k["crv"], k["use"], k["alg"]), ("EC", "P-256", "sig", "ES256"))
        self.assertEqual(len(s.b64d(k["x"])), 32)
        self.assertEqual(len(s.b64d(k["y"])), 32)
        self.assertEqual(k["kid"], s.thumbprint(k))
        head = self.d.request("HEAD", "/jwks.json")
        self.assertEqual((head.status, head.body), (200, b""))
        self.assertEqual(self.d.request("POST", "/jwks.json").status, 405)
        m = self.d.request("GET", "/.well-known/oauth-authorization-server").json()
        self.assertEqual(m["jwks_uri"], self.issuer + "/jwks.json")
        self.assertEqual(m["introspection_signing_alg_values_supported"], ["ES256"])

    def test_active_answer_signed(self):
        plain = self.d.active(self.token)
        self.assertTrue(plain["active"])
        self.check_signed(self.signed(self.token), plain)

    def test_inactive_answers_signed(self):
        sid = self.d.new_session("bob")
        revoked = self.d.issue(sid, self.w.b, "read")["access_token"]
        self.assertEqual(self.d.revoke(revoked, self.w.b).status, 200)
        for token in ("tkd_at_" + "A" * 43, revoked, "x" * 600):
            with self.subTest(token=token[:12]):
                self.assertEqual(self.d.active(token), h.INACTIVE)
                self.check_signed(self.signed(token), {"active": False})

    def test_accept_values(self):
        plain = self.d.introspect(self.token)
        for accepts in JSON_ACCEPTS:
            with self.subTest(accepts=accepts):
                r = self.signed(self.token, accepts)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("content-type"), "application/json")
                self.assertEqual(r.body, plain.body)  # byte for byte the plain answer
        for accepts in JWT_ACCEPTS:
            with self.subTest(accepts=accepts):
                self.check_signed(self.signed(self.token, accepts), plain.json())

    def test_errors_stay_json(self):
        wrong = h.Client({"client_id": self.w.rs.id, "client_secret": "tkd_cs_" + "B" * 43})
        r = self.signed(self.token, client=wrong)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("content-type"), "application/json")
        r = self.signed(self.token, client=self.w.a)  # an agent may not introspect
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("content-type"), "application/json")
        data = s.introspect_request(self.token, self.w.rs).replace(b"token=", b"tokem=")
        r = self.d.raw(data)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("content-type"), "application/json")

    def test_aud_is_the_caller(self):
        other = self.d.add_client("resource_server", "rs2")
        r = self.signed(self.token, client=other)
        _, payload, _ = s.decode(r.body.decode("ascii"))
        self.assertEqual(payload["aud"], other.id)
        self.assertTrue(payload["token_introspection"]["active"])

    def test_rotate_then_sighup(self):
        old = s.kids(self.d)
        self.assertEqual(len(old), 1)
        before = self.signed(self.token)
        out = self.d.ctl("keys", "rotate")
        self.assertEqual(out["previous"], old[0])
        self.assertEqual(out["dropped"], 0)
        new = out["kid"]
        self.assertNotEqual(new, old[0])
        listed = self.d.ctl("keys", "list")["keys"]
        self.assertEqual([k["kid"] for k in listed], [new, old[0]])
        self.assertEqual([k["current"] for k in listed], [True, False])
        self.assertIn("retired", listed[1])
        # Until the SIGHUP, tokend signs and publishes as before.
        self.assertEqual(s.kids(self.d), old)
        self.assertEqual(s.decode(self.signed(self.token).body.decode())[0]["kid"], old[0])
        self.d.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_for(lambda: "signing key rotated" in self.d.stderr()),
                        self.d.stderr())
        self.assertIn("current=%s previous=%s" % (new, old[0]), self.d.stderr())
        self.assertEqual(s.kids(self.d), [new, old[0]])  # the old key stays published
        after = self.signed(self.token)
        self.assertEqual(s.decode(after.body.decode())[0]["kid"], new)
        self.assertEqual(s.decode(before.body.decode())[0]["kid"], old[0])
        # A bad folder keeps the keys in use.
        manifest = os.path.join(self.d.data_dir, "keys", "keys.json")
        with open(manifest) as f:
            good = f.read()
        with open(manifest, "w") as f:
            f.write("{")
        self.d.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_for(lambda: "signing keys unchanged" in self.d.stderr()))
        self.assertEqual(s.decode(self.signed(self.token).body.decode())[0]["kid"], new)
        with open(manifest, "w") as f:
            f.write(good)


class Overlap(h.FreshCase):
    def test_retired_key_leaves_after_the_overlap(self):
        # Published for max(access-ttl, signing-key-overlap) = 3 s after
        # tokend last signed with it.
        d = self.daemon(["--access-ttl", "1", "--signing-key-overlap", "3"])
        old = s.kids(d)
        new = d.ctl("keys", "rotate")["kid"]
        d.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_for(lambda: "signing key rotated" in d.stderr()))
        self.assertEqual(s.kids(d), [new] + old)
        self.assertTrue(h.wait_for(lambda: s.kids(d) == [new], timeout=8.0), s.kids(d))
        self.assertEqual(d.ctl("keys", "list")["keys"][1]["kid"], old[0])  # still on disk

    def test_retire_now_drops_a_leaked_key_at_once(self):
        d = self.daemon(["--signing-key-overlap", "3600"])
        old = s.kids(d)
        new = d.ctl("keys", "rotate")["kid"]
        d.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_for(lambda: "signing key rotated" in d.stderr()))
        self.assertEqual(s.kids(d), [new] + old)  # published for the hour
        r = d.ctl_run("keys", "retire")
        self.assertEqual(r.returncode, 2, r)  # --now is required
        out = d.ctl("keys", "retire", "--now")
        self.assertEqual(out["dropped"], old)
        self.assertEqual([k["kid"] for k in d.ctl("keys", "list")["keys"]], [new])
        self.assertFalse(os.path.exists(os.path.join(d.data_dir, "keys", old[0] + ".pem")))
        d.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_for(lambda: s.kids(d) == [new], timeout=8.0), s.kids(d))
        self.assertEqual(d.ctl("keys", "retire", "--now")["dropped"], [])

    def test_restart_keeps_the_keys(self):
        d = self.daemon()
        first = s.kids(d)
        d.restart()
        self.assertEqual(s.kids(d), first)


if __name__ == "__main__":
    unittest.main()
