"""Interop: certificate-bound tokens (RFC 8705 §3) through Debian's nginx.

nginx terminates the agents' TLS with `ssl_verify_client optional_no_ca` and
forwards the client certificate to tokend's forward-auth as
`$ssl_client_escaped_cert` (tools/proxy/nginx.conf plus those lines, as the
README shows). tokend believes that header from nginx's address only
(client-cert-proxies). A token the agent obtained at /token over mTLS with its
certificate passes with that certificate and is refused with another, with
none, and with a certificate header the agent sends itself.
"""

import os
import shutil
import sys
import unittest

import harness as h
import mtls_util as mu
import proxies

h.require_binaries()
if not shutil.which("nginx") and not os.access("/usr/sbin/nginx", os.X_OK):
    sys.stderr.write("skipped: nginx is not installed (tools/test installs it)\n")
    sys.exit(77)
if shutil.which("openssl") is None:
    sys.stderr.write("skipped: the openssl CLI is needed to make test certificates\n")
    sys.exit(77)

import as_http as ah  # noqa: E402

HEADER = "X-Client-Cert"


def nginx_conf(tls):
    conf = proxies.shipped("nginx.conf")
    assert conf.count("    listen 80;\n") == 1
    conf = conf.replace("    listen 80;\n", """    listen 127.0.0.1:@LISTEN@ ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_verify_client optional_no_ca;
""" % (tls["cert"], tls["key"]))
    anchor = "        proxy_set_header X-Original-Method \"\";\n"
    assert conf.count(anchor) == 1
    return conf.replace(anchor, anchor + "        proxy_set_header %s $ssl_client_escaped_cert;\n"
                        % HEADER)


class NginxBoundTokens(h.TokenAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = mu.material()
        args = ["--login", "dev", "--registration", "open", "--resources", proxies.RESOURCES,
                "--auth-fail-burst", 0, "--tls-ca", cls.m["ca"][0],
                "--client-cert-header", HEADER, "--client-cert-proxies", "127.0.0.1"]
        cls.d = h.start_daemon(args, tls=True)
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")
        cls.app = proxies.Upstream()
        cls.addClassCleanup(cls.app.stop)
        cls.proxy = proxies.start_nginx(cls.d.port, cls.app.port,
                                        conf_text=nginx_conf(h.tls_material()))
        cls.addClassCleanup(cls.proxy.stop)

    def bound_token(self, cert):
        cid = ah.public_client(self.d)["client_id"]
        code, verifier = ah.authorize_code(self.d, ah.Browser(self.d), cid, scope="wiki:read",
                                           resource=proxies.RESOURCE)
        ctx = cert.context() if cert is not None else h.client_context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            r = c.request("POST", "/token", h.form([
                ("grant_type", "authorization_code"), ("code", code),
                ("redirect_uri", ah.REDIRECT), ("code_verifier", verifier),
                ("client_id", cid)]), content_type=h.FORM)
        self.assertEqual(r.status, 200, r)
        return r.json()["access_token"]

    def get(self, token, cert, headers=None):
        ctx = cert.context() if cert is not None else h.client_context()
        hdrs = {"Host": "%s:%d" % (proxies.SITE, self.proxy.port),
                "Authorization": "Bearer " + token}
        hdrs.update(headers or {})
        lines = ["GET /page HTTP/1.1"] + ["%s: %s" % kv for kv in hdrs.items()]
        with h.Conn(self.proxy.port, ctx=ctx) as c:
            c.send(("\r\n".join(lines) + "\r\n\r\n").encode())
            return c.read_response()

    def test_bound_token_through_nginx(self):
        me, other = self.m["self"], self.m["self2"]
        at = self.bound_token(me)
        self.assertEqual(self.assertActive(at)["cnf"], {"x5t#S256": me.x5t})
        r = self.get(at, me)
        self.assertEqual(r.status, 200, (r, self.proxy.log()))
        hd = proxies.headers_of(r.json())
        self.assertEqual(hd.get("x-auth-subject"), ["alice"], hd)
        self.assertNotIn(HEADER.lower(), hd)  # the certificate went to tokend only
        for what, cert, extra in (("another certificate", other, None),
                                  ("a CA-signed certificate", self.m["rs"], None),
                                  ("no certificate", None, None),
                                  ("no certificate, the header sent by the agent", None,
                                   {HEADER: me.escaped}),
                                  ("another certificate, the header sent by the agent", other,
                                   {HEADER: me.escaped})):
            with self.subTest(what):
                r = self.get(at, cert, extra)
                self.assertEqual(r.status, 401, r)
                self.assertIn('error="invalid_token"', r.header("WWW-Authenticate") or "")

    def test_unbound_token_with_or_without_a_certificate(self):
        at = self.bound_token(None)
        self.assertNotIn("cnf", self.assertActive(at))
        self.assertEqual(self.get(at, None).status, 200)
        self.assertEqual(self.get(at, self.m["self2"]).status, 200)


if __name__ == "__main__":
    unittest.main()
