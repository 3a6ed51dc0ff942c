"""Interop: logout tokens and SETs signed by the npm `jose` library (RS256 and
ES256, keys it generated and exported as a JWKS) and webhooks signed by the
npm `standardwebhooks` package are accepted by the real binary and end the
right sessions. Needs node and tests/interop/node_modules (tools/test runs
`npm ci` there); skipped (exit 77) with a message when they are missing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness as h
import idp_util as u

h.require_binaries()

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
if NODE is None or not os.path.isdir(os.path.join(INTEROP, "node_modules", "jose")):
    sys.stderr.write("skipped: node or tests/interop/node_modules missing "
                     "(run `npm ci` in tests/interop; tools/test does)\n")
    sys.exit(77)


def node_sign(spec):
    p = subprocess.run([NODE, os.path.join(INTEROP, "sign.mjs")], input=json.dumps(spec),
                       capture_output=True, text=True, timeout=120, cwd=INTEROP)
    if p.returncode != 0:
        raise AssertionError("sign.mjs failed: %s" % p.stderr)
    return json.loads(p.stdout)


class Interop(h.FreshCase):
    def test_jose_and_standardwebhooks(self):
        secret = u.new_secret()
        sids = {name: "jose-" + name for name in ("rs-logout", "es-logout")}
        spec = {
            "issuer": u.ISS, "audience": u.AUD,
            "logout": [{"alg": "RS256", "claims": {"sid": sids["rs-logout"],
                                                    "events": {u.BCL_EVENT: {}}}},
                       {"alg": "ES256", "claims": {"sid": sids["es-logout"], "sub": "amy",
                                                    "events": {u.BCL_EVENT: {}}}}],
            "sets": [{"alg": "RS256", "claims": {
                          "sub_id": u.complex_subject(u.ISS, session="jose-rs-set"),
                          "events": {u.CAEP + "session-revoked": {}}}},
                     {"alg": "ES256", "claims": {
                          "sub_id": {"format": "iss_sub", "iss": u.ISS, "sub": "ben"},
                          "events": {u.CAEP + "device-compliance-change": {
                              "previous_status": "compliant",
                              "current_status": "not-compliant"}}}}],
            "webhooks": [{"secret": secret, "id": "msg_jose_interop",
                          "payload": {"type": "session.terminated", "iss": u.ISS,
                                      "sub": "cat"}}],
        }
        out = node_sign(spec)
        folder = tempfile.mkdtemp(prefix="tokend-interop-")
        self.addCleanup(shutil.rmtree, folder, True)
        config = os.path.join(folder, "idp.json")
        with open(os.path.join(folder, "jwks.json"), "w") as f:
            json.dump(out["jwks"], f)
        u.write_config(config, [{"issuer": u.ISS, "audience": u.AUD, "jwks_file": "jwks.json",
                                 "algorithms": ["RS256", "ES256"],
                                 "webhook_secrets": [secret]}])
        self.d = self.daemon(["--idp-config", config])
        w = h.World(self.d)
        d = self.d

        def chain(sid):
            root = d.issue(sid, w.a)["access_token"]
            child = d.issue(sid, w.b, "read", parent=root)["access_token"]
            self.assertActive(child)
            return [root, child]

        s_rs = u.session(d, "amy", idp_sid=sids["rs-logout"])
        s_es = u.session(d, "amy", idp_sid=sids["es-logout"])
        s_set1 = u.session(d, "ann", idp_sid="jose-rs-set")
        s_set2 = u.session(d, "ben")
        s_hook = u.session(d, "cat")
        s_keep = u.session(d, "amy", idp_sid="untouched")
        toks = {s: chain(s) for s in (s_rs, s_es, s_set1, s_set2, s_hook, s_keep)}

        for token, sid in zip(out["logout"], (s_rs, s_es)):
            r = u.post_logout(d, token)
            self.assertEqual(r.status, 200, r)
            for t in toks[sid]:
                self.assertInactive(t)
        for token, sid in zip(out["sets"], (s_set1, s_set2)):
            r = u.post_set(d, token)
            self.assertEqual(r.status, 202, r)
            for t in toks[sid]:
                self.assertInactive(t)
        self.assertEqual(d.ctl("session", "show", s_set2)["state"], "suspended")
        hook = out["webhooks"][0]
        r = d.raw(h.build_request("POST", "/webhooks/session-terminated", hook["body"],
                                  hook["headers"], "application/json"))
        self.assertEqual(r.status, 200, r)
        for t in toks[s_hook]:
            self.assertInactive(t)
        for t in toks[s_keep]:
            self.assertActive(t)
        sources = sorted(a["source"] for a in u.audit(d))
        self.assertEqual(sources, ["backchannel_logout"] * 2 + ["ssf"] * 2 + ["webhook"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
