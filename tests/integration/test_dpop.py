"""DPoP (RFC 9449) end to end (issue 16 item 4, "Done means"): oauth4webapi
obtains a DPoP-bound token through the real authorization flow and calls an
app behind nginx (tools/proxy/nginx.conf as shipped) auth_request -> tokend
/auth: accepted. The same token as a plain Bearer, without a proof, with
another key's proof, a replayed proof, a proof for another URL or method,
a wrong ath, an old iat, a jwk that did not sign: refused with 401 and a
`WWW-Authenticate: DPoP error=…, algs="ES256"` challenge
(tests/interop/as_dpop.mjs). The bound refresh token (a public client)
refreshes only with the same key; a proof is good once at the token endpoint
too; a bound token is not exchanged for a bearer child. Introspection shows
token_type DPoP and cnf.jkt equal to the key's RFC 7638 thumbprint. With
--dpop-nonce 1 the library meets use_dpop_nonce at both ends and retries. Needs node,
tests/interop/node_modules and nginx; skipped (exit 77) without them."""

import os
import shutil
import sys
import unittest

import harness as h
import proxies

h.require_binaries()

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
if NODE is None or not os.path.isdir(os.path.join(INTEROP, "node_modules", "oauth4webapi")):
    sys.stderr.write("skipped: node or tests/interop/node_modules missing\n")
    sys.exit(77)
if not shutil.which("nginx") and not os.access("/usr/sbin/nginx", os.X_OK):
    sys.stderr.write("skipped: nginx is not installed\n")
    sys.exit(77)

import test_as_clients as ac  # noqa: E402  (run_node, write_resources)


class DPoP(h.TokenAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        path = ac.write_resources(cls)
        cls.d = h.start_daemon(("--resources", path, "--login", "dev", "--registration", "open"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.issuer = "http://127.0.0.1:%d" % cls.d.port
        cls.app = proxies.Upstream()
        cls.addClassCleanup(cls.app.stop)
        cls.proxy = proxies.start_nginx(cls.d.port, cls.app.port, port=cls.nginx_port)
        cls.addClassCleanup(cls.proxy.stop)
        cls.rs = cls.d.add_client("resource_server", "dpop-rs")
        cls.d.default_auth = cls.rs

    def test_oauth4webapi_dpop_through_nginx(self):
        spec = {"issuer": self.issuer, "resource": self.app_resource,
                "scope": " ".join(ac.APP_SCOPES),
                "nginx_url": "http://127.0.0.1:%d" % self.nginx_port,
                "subject": "dpop-user@example.com"}
        try:
            out = ac.run_node("as_dpop.mjs", spec, lambda ev: self.fail("unexpected %r" % ev))
        except ac.NodeFailed as e:
            raise AssertionError("%s\ntokend log:\n%s\nnginx log:\n%s"
                                 % (e, self.d.stderr(6000), self.proxy.log())) from None
        for name in ("access_token", "refreshed"):
            r = self.d.introspect(out[name])
            self.assertEqual(r.status, 200, r)
            j = r.json()
            self.assertTrue(j["active"], j)
            self.assertEqual(j["token_type"], "DPoP", j)
            self.assertEqual(j["cnf"], {"jkt": out["jkt"]}, j)
        # Token exchange: a bound subject token is not turned into a bearer
        # child; without a proof the exchange is refused.
        import as_http
        second = as_http.public_client(self.d, grants=("authorization_code", "refresh_token",
                                                       as_http.TOKEN_EXCHANGE))["client_id"]
        self.d.ctl("client", "set", out["client"], "--delegate-to", second)
        r = as_http.exchange(self.d, second, out["access_token"])
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "invalid_dpop_proof", r)
        # The refusals were counted; no proof was refused for a full replay cache.
        text = self.d.metrics_text()
        self.assertRegex(text, r'tokend_forward_auth_total\{result="invalid_dpop_proof"\} [1-9]')
        self.assertRegex(text, r'tokend_forward_auth_total\{result="allowed"\} [1-9]')
        self.assertIn("tokend_dpop_replay_full_total 0\n", text)

    def test_metadata_lists_es256(self):
        j = self.d.request("GET", "/.well-known/oauth-authorization-server").json()
        self.assertEqual(j["dpop_signing_alg_values_supported"], ["ES256"])

    def test_bad_proof_at_the_token_endpoint(self):
        import as_http
        c = as_http.public_client(self.d)
        for proof in ("x", "a.b.c", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.", "A" * 5000):
            r = self.d.raw(h.build_request("POST", "/token", h.form([
                ("grant_type", "refresh_token"), ("refresh_token", "tkd_rt_x"),
                ("client_id", c["client_id"])]), {"DPoP": proof}, h.FORM))
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["error"], "invalid_dpop_proof", r)


class DPoPNonce(h.TokenAsserts, unittest.TestCase):
    """tokend --dpop-nonce 1: proofs must carry the server's nonce (RFC 9449
    §8, §9); oauth4webapi meets use_dpop_nonce at the token endpoint and at
    the resource behind nginx, retries with the nonce and succeeds."""

    @classmethod
    def setUpClass(cls):
        path = ac.write_resources(cls)
        cls.d = h.start_daemon(("--resources", path, "--login", "dev", "--registration", "open",
                                "--dpop-nonce", 1))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.issuer = "http://127.0.0.1:%d" % cls.d.port
        cls.app = proxies.Upstream()
        cls.addClassCleanup(cls.app.stop)
        cls.proxy = proxies.start_nginx(cls.d.port, cls.app.port, port=cls.nginx_port)
        cls.addClassCleanup(cls.proxy.stop)
        cls.rs = cls.d.add_client("resource_server", "dpop-nonce-rs")
        cls.d.default_auth = cls.rs

    def test_oauth4webapi_retries_with_the_nonce(self):
        spec = {"issuer": self.issuer, "resource": self.app_resource,
                "scope": " ".join(ac.APP_SCOPES),
                "nginx_url": "http://127.0.0.1:%d" % self.nginx_port,
                "subject": "dpop-nonce@example.com", "nonce": True}
        try:
            out = ac.run_node("as_dpop.mjs", spec, lambda ev: self.fail("unexpected %r" % ev))
        except ac.NodeFailed as e:
            raise AssertionError("%s\ntokend log:\n%s\nnginx log:\n%s"
                                 % (e, self.d.stderr(6000), self.proxy.log())) from None
        self.assertEqual(self.d.introspect(out["access_token"]).json()["token_type"], "DPoP")


if __name__ == "__main__":
    unittest.main()
