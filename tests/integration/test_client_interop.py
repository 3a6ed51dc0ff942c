"""Interop: real OAuth client libraries (npm openid-client 6 and
oauth4webapi 3, driven by tests/interop/client_auth.mjs) discover tokend
through its RFC 8414 metadata and call /introspect and /revoke.

Issue 9 item 6: with client_secret_post and a wrong secret the libraries
must surface the error code, invalid_client (a ResponseBodyError), not a
challenge error: tokend sends the Basic challenge only to clients that
used the Authorization header. With client_secret_basic and a wrong secret
they surface the challenge (WWW-Authenticate: Basic realm=<issuer>,
error="invalid_client"), whose error parameter is invalid_client too.

Needs node and tests/interop/node_modules (tools/test runs `npm ci` there);
skipped (exit 77) with a message when they are missing."""

import json
import os
import shutil
import socket
import subprocess
import sys
import unittest

import harness as h

h.require_binaries()

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
MODULES = os.path.join(INTEROP, "node_modules")
if NODE is None or not all(os.path.isdir(os.path.join(MODULES, m))
                           for m in ("openid-client", "oauth4webapi")):
    sys.stderr.write("skipped: node or tests/interop/node_modules missing "
                     "(run `npm ci` in tests/interop; tools/test does)\n")
    sys.exit(77)

LIBS = ("openid-client", "oauth4webapi")
WRONG = "tkd_cs_" + "W" * 43


class ClientLibraries(h.DaemonCase):
    daemon_args = ("--auth-fail-burst", 0)
    https = False

    def issuer(self):
        return "http://127.0.0.1:%d" % self.d.port

    def run_client(self, lib, method, endpoint, client_id, secret, token):
        spec = {"issuer": self.issuer(), "lib": lib, "method": method,
                "endpoint": endpoint, "client_id": client_id, "client_secret": secret,
                "token": token, "https": self.https, "ca": h.tls_material()["ca"]}
        env = dict(os.environ)
        if self.https:
            env["NODE_EXTRA_CA_CERTS"] = h.tls_material()["ca"]
        p = subprocess.run([NODE, os.path.join(INTEROP, "client_auth.mjs")],
                           input=json.dumps(spec), capture_output=True, text=True,
                           timeout=120, cwd=INTEROP, env=env)
        if p.returncode != 0:
            raise AssertionError("client_auth.mjs failed: %s" % p.stderr)
        return json.loads(p.stdout)

    def token(self):
        sid = self.d.new_session("dora")
        return self.d.issue(sid, self.w.a, "read")["access_token"]

    def test_post_wrong_secret_surfaces_invalid_client(self):
        tok = self.token()
        for lib in LIBS:
            for endpoint, cid in (("introspect", self.w.rs.id), ("revoke", self.w.a.id)):
                with self.subTest(lib=lib, endpoint=endpoint):
                    out = self.run_client(lib, "client_secret_post", endpoint, cid, WRONG, tok)
                    self.assertFalse(out["ok"], out)
                    self.assertEqual(out["code"], "OAUTH_RESPONSE_BODY_ERROR", out)
                    self.assertEqual(out["error"], "invalid_client", out)
                    self.assertEqual(out["status"], 401, out)
        self.assertActive(tok)

    def test_basic_wrong_secret_surfaces_the_challenge(self):
        tok = self.token()
        issuer = self.issuer()
        for lib in LIBS:
            for endpoint, cid in (("introspect", self.w.rs.id), ("revoke", self.w.a.id)):
                with self.subTest(lib=lib, endpoint=endpoint):
                    out = self.run_client(lib, "client_secret_basic", endpoint, cid, WRONG, tok)
                    self.assertFalse(out["ok"], out)
                    self.assertEqual(out["code"], "OAUTH_WWW_AUTHENTICATE_CHALLENGE", out)
                    self.assertEqual(out["status"], 401, out)
                    self.assertEqual(len(out["challenges"]), 1, out)
                    ch = out["challenges"][0]
                    self.assertEqual(ch["scheme"], "basic", out)
                    self.assertEqual(ch["parameters"].get("realm"), issuer, out)
                    self.assertEqual(ch["parameters"].get("error"), "invalid_client", out)
        self.assertActive(tok)

    def test_good_secrets_work(self):
        for lib in LIBS:
            for method in ("client_secret_post", "client_secret_basic"):
                with self.subTest(lib=lib, method=method):
                    tok = self.token()
                    out = self.run_client(lib, method, "introspect", self.w.rs.id,
                                          self.w.rs.secret, tok)
                    self.assertTrue(out["ok"], out)
                    self.assertIs(out["result"]["active"], True, out)
                    self.assertEqual(out["result"]["client_id"], self.w.a.id, out)
                    out = self.run_client(lib, method, "revoke", self.w.a.id,
                                          self.w.a.secret, tok)
                    self.assertTrue(out["ok"], out)
                    self.assertInactive(tok)


def _tls_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TLS_PORT = _tls_port()


class ClientLibrariesTLS(ClientLibraries):
    """The same over https: the issuer is https://localhost:PORT (a TLS
    listener), no insecure-request option, the test CA trusted through
    NODE_EXTRA_CA_CERTS; and Node's own https module."""

    https = True
    daemon_args = ("--auth-fail-burst", 0, "--listen", "127.0.0.1:0",
                   "--listen", "127.0.0.1:%d tls" % TLS_PORT,
                   "--issuer", "https://localhost:%d" % TLS_PORT,
                   "--tls-cert", h.tls_material()["cert"], "--tls-key", h.tls_material()["key"])

    def issuer(self):
        return "https://localhost:%d" % TLS_PORT

    def test_node_https_introspects(self):
        tok = self.token()
        out = self.run_client("node-https", "client_secret_basic", "introspect", self.w.rs.id,
                              self.w.rs.secret, tok)
        self.assertTrue(out["ok"], out)
        self.assertIs(out["result"]["active"], True, out)
        self.assertIn(out["result"]["_tls"], ("TLSv1.2", "TLSv1.3"), out)
        out = self.run_client("node-https", "client_secret_basic", "introspect", self.w.rs.id,
                              WRONG, tok)
        self.assertFalse(out["ok"], out)
        self.assertEqual(out["status"], 401, out)


if __name__ == "__main__":
    unittest.main()
