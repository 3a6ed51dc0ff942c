"""Interop: tokend's RFC 9701 signed introspection answers checked by
third-party code (tests/interop/verify_introspection.mjs): npm `jose`
verifies them against /jwks.json (typ, alg, iss, aud) and recomputes each
kid as an RFC 7638 thumbprint; oauth4webapi asks for a signed answer,
processes it (processIntrospectionResponse) and verifies its signature
(validateApplicationLevelSignature). After `tokenctl keys rotate` and
SIGHUP, answers signed before and after the rotation both verify until the
old key's overlap ends, then only the new ones do. Needs node and
tests/interop/node_modules (tools/test runs `npm ci` there); skipped (exit
77) with a message when they are missing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import unittest

import harness as h
import signed_util as s

h.require_binaries()

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
if NODE is None or not os.path.isdir(os.path.join(INTEROP, "node_modules", "oauth4webapi")):
    sys.stderr.write("skipped: node or tests/interop/node_modules missing "
                     "(run `npm ci` in tests/interop; tools/test does)\n")
    sys.exit(77)


def verify(spec):
    p = subprocess.run([NODE, os.path.join(INTEROP, "verify_introspection.mjs")],
                       input=json.dumps(spec), capture_output=True, text=True, timeout=120,
                       cwd=INTEROP)
    if p.returncode != 0:
        raise AssertionError("verify_introspection.mjs failed: %s" % p.stderr)
    return json.loads(p.stdout)


class Interop(h.FreshCase):
    def start(self, args=()):
        self.d = self.daemon(list(args))
        self.w = h.World(self.d)
        self.issuer = self.d.request("GET", "/.well-known/oauth-authorization-server").json()[
            "issuer"]
        sid = self.d.new_session("alice")
        self.token = self.d.issue(sid, self.w.a, "read write")["access_token"]

    def signed(self, token):
        r = self.d.raw(s.introspect_request(token, self.w.rs))
        self.assertEqual(r.header("content-type"), s.JWT_TYPE, r)
        return r.body.decode("ascii")

    def spec(self, jwts, token=None):
        return {"issuer": self.issuer, "client_id": self.w.rs.id,
                "client_secret": self.w.rs.secret, "token": token, "jwts": jwts}

    def test_jose_and_oauth4webapi_accept_answers(self):
        self.start()
        unknown = "tkd_at_" + "Q" * 43
        jwts = [self.signed(self.token), self.signed(unknown)]
        # Enough answers that a short r or s (1 in 128 each) shows up.
        jwts += [self.signed(self.token) for _ in range(150)]
        out = verify(self.spec(jwts, self.token))
        self.assertTrue(out["thumbprints_ok"], out["jwks"])
        bad = [r for r in out["jose"] if not r["ok"]]
        self.assertEqual(bad, [])
        plain = self.d.active(self.token)
        self.assertEqual(out["jose"][0]["payload"]["token_introspection"], plain)
        self.assertEqual(out["jose"][1]["payload"]["token_introspection"], {"active": False})
        o4 = out["oauth4webapi"]
        self.assertTrue(o4["ok"], o4)
        self.assertEqual(o4["content_type"], s.JWT_TYPE)
        self.assertEqual(o4["result"], plain)
        self.assertEqual(o4["kid"], out["jwks"][0])
        # Inactive answers go through oauth4webapi too.
        o4 = verify(self.spec([], unknown))["oauth4webapi"]
        self.assertTrue(o4["ok"], o4)
        self.assertEqual(o4["result"], {"active": False})

    def test_forgeries_refused(self):
        self.start()
        jws = self.signed(self.token)
        head, payload, sig = jws.split(".")
        claims = json.loads(s.b64d(payload))
        claims["token_introspection"]["scope"] = "admin"
        forged = ".".join([head, s.b64e(json.dumps(claims).encode()), sig])
        other_aud = verify({**self.spec([jws]), "client_id": "someone-else"})["jose"][0]
        out = verify(self.spec([forged]))["jose"]
        self.assertFalse(out[0]["ok"])
        self.assertEqual(out[0]["code"], "ERR_JWS_SIGNATURE_VERIFICATION_FAILED")
        self.assertFalse(other_aud["ok"])
        self.assertEqual(other_aud["code"], "ERR_JWT_CLAIM_VALIDATION_FAILED")

    def test_rotation_old_and_new_verify_until_the_overlap_ends(self):
        self.start(["--access-ttl", "1", "--signing-key-overlap", "4"])
        old_kid = s.kids(self.d)[0]
        before = self.signed(self.token)
        new_kid = self.d.ctl("keys", "rotate")["kid"]
        self.d.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_for(lambda: "signing key rotated" in self.d.stderr()))
        after = self.signed(self.token)
        out = verify(self.spec([before, after], self.token))
        self.assertEqual(out["jwks"], [new_kid, old_kid])
        self.assertEqual([(r["ok"], r.get("kid")) for r in out["jose"]],
                         [(True, old_kid), (True, new_kid)])
        self.assertTrue(out["oauth4webapi"]["ok"], out["oauth4webapi"])
        self.assertEqual(out["oauth4webapi"]["kid"], new_kid)
        # After the overlap the old key is gone: its answers no longer verify.
        self.assertTrue(h.wait_for(lambda: s.kids(self.d) == [new_kid], timeout=10.0))
        out = verify(self.spec([before, after]))
        self.assertEqual(out["jwks"], [new_kid])
        self.assertFalse(out["jose"][0]["ok"])
        self.assertEqual(out["jose"][0]["code"], "ERR_JWKS_NO_MATCHING_KEY")
        self.assertTrue(out["jose"][1]["ok"])


if __name__ == "__main__":
    unittest.main()
