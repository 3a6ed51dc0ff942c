"""RFC 8705 client authentication by certificate at /introspect, /revoke and
/token (issue 15 item 2).

tokend listens in plain HTTP and with TLS (harness.tls_material), with
tls-ca set to a CA made for the test (mtls_util). A resource server
registered with --tls-subject (tls_client_auth) or --tls-thumbprint
(self_signed_tls_client_auth) authenticates with its certificate and its
client_id alone: curl --cert/--key and Python's ssl present the
certificates. Every wrong case - no certificate, another subject, the right
subject under another CA, another self-signed certificate, the plain port,
a secret for a certificate client - is a 401 invalid_client without a Basic
challenge, and counts toward the failed-authentication limiter.
"""

import json
import shutil
import unittest

import harness as h
import mtls_util as mu

h.require_binaries()
if shutil.which("openssl") is None:
    import sys
    sys.stderr.write("skipped: the openssl CLI is needed to make test certificates\n")
    sys.exit(77)


def form_request(path, pairs, headers=None):
    return h.build_request("POST", path, h.form(pairs), headers or {}, h.FORM)


class CertificateAuth(h.DaemonCase):
    tls = True

    @classmethod
    def setUpClass(cls):
        cls.m = mu.material()
        cls.daemon_args = ("--workers", 1, "--auth-fail-burst", 0, "--tls-ca", cls.m["ca"][0])
        super().setUpClass()
        d = cls.d
        cls.by_subject = d.ctl("client", "add", "--name", "rs-mtls", "--role", "resource_server",
                               "--tls-subject", "cn=RS  mtls, o=Example Org")
        cls.by_thumb = d.ctl("client", "add", "--name", "rs-self", "--role", "resource_server",
                             "--tls-thumbprint", cls.m["self"].hex)
        cls.sid = d.new_session("alice")

    def token(self):
        return self.d.issue(self.sid, self.w.a)["access_token"]

    def introspect_with(self, cert, client_id, token, pairs=(), headers=None):
        ctx = cert.context() if cert is not None else h.client_context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            c.send(form_request("/introspect", [("token", token), ("client_id", client_id)]
                                + list(pairs), headers))
            return c.read_response()

    def assertInvalidClient(self, r, challenge=False):
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"], "invalid_client", r)
        self.assertEqual(r.header("WWW-Authenticate") is not None, challenge, r)

    def test_registration_output(self):
        self.assertEqual(self.by_subject["auth_method"], "tls_client_auth")
        self.assertEqual(self.by_subject["tls_subject"], "CN=rs mtls,O=example org")
        self.assertNotIn("client_secret", self.by_subject)
        self.assertEqual(self.by_thumb["auth_method"], "self_signed_tls_client_auth")
        self.assertEqual(self.by_thumb["tls_thumbprint"], self.m["self"].x5t)
        listed = {c["client_id"]: c for c in self.d.ctl("client", "list")}
        self.assertEqual(listed[self.by_subject["client_id"]]["tls_subject"],
                         "CN=rs mtls,O=example org")

    def test_subject_client_introspects_with_curl(self):
        t = self.token()
        code, body = mu.curl_form(self.d.tls_port, "/introspect",
                                  [("token", t), ("client_id", self.by_subject["client_id"])],
                                  cert=self.m["rs"])
        self.assertEqual(code, 200, body)
        self.assertIs(json.loads(body)["active"], True)

    def test_thumbprint_client_introspects_with_python_ssl(self):
        t = self.token()
        r = self.introspect_with(self.m["self"], self.by_thumb["client_id"], t)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["active"], True)
        # a thumbprint given as base64url registers the same client
        c2 = self.d.ctl("client", "add", "--name", "rs-self-b64", "--role", "resource_server",
                        "--tls-thumbprint", self.m["self"].x5t)
        r = self.introspect_with(self.m["self"], c2["client_id"], t)
        self.assertEqual(r.status, 200, r)

    def test_resumed_session_keeps_the_certificate(self):
        """A resumed TLS 1.2 / 1.3 session carries the client certificate:
        the thumbprint client still authenticates, another still fails."""
        import ssl
        t = self.token()
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            for cert, cid, want in ((self.m["self"], self.by_thumb["client_id"], 200),
                                    (self.m["self2"], self.by_thumb["client_id"], 401)):
                ctx = cert.context()
                ctx.maximum_version = version
                with h.Conn(self.d.tls_port, ctx=ctx) as c:
                    self.assertEqual(c.request("GET", "/healthz").status, 200)
                    session = c.sock.session
                with h.Conn(self.d.tls_port, ctx=ctx, session=session) as c:
                    c.send(form_request("/introspect", [("token", t), ("client_id", cid)]))
                    r = c.read_response()
                    self.assertTrue(c.sock.session_reused, version)
                self.assertEqual(r.status, want, (version, r))

    def test_wrong_or_missing_certificate(self):
        t = self.token()
        sub, thumb = self.by_subject["client_id"], self.by_thumb["client_id"]
        cases = [
            ("no certificate", None, sub),
            ("another subject under tls-ca", self.m["other"], sub),
            ("the subject under another CA", self.m["rogue"], sub),
            ("a self-signed certificate for the subject client", self.m["self"], sub),
            ("no certificate, thumbprint client", None, thumb),
            ("another self-signed certificate", self.m["self2"], thumb),
            ("a CA-signed certificate for the thumbprint client", self.m["rs"], thumb),
            ("the right certificate, another client's id", self.m["rs"], self.w.rs.id),
            ("the right certificate, an unknown id", self.m["rs"], "tkc_nobody"),
        ]
        for what, cert, cid in cases:
            with self.subTest(what):
                self.assertInvalidClient(self.introspect_with(cert, cid, t))
        with self.subTest("curl without --cert"):
            code, body = mu.curl_form(self.d.tls_port, "/introspect",
                                      [("token", t), ("client_id", sub)])
            self.assertEqual(code, 401, body)
            self.assertEqual(json.loads(body)["error"], "invalid_client")

    def test_subject_alternative_names(self):
        """RFC 8705 §2.1.2: a client registered by one SAN (DNS, URI, IP,
        e-mail; given in any case / IPv6 spelling) authenticates with a
        certificate under tls-ca naming it; the same names under another
        CA, self-signed, past the eighth name, or another client's SAN do
        not."""
        t = self.token()
        names = ["dns:RS.Example.com", "uri:spiffe://example.org/ns/prod/rs", "ip:192.0.2.7",
                 "ip:2001:DB8:0::7", "email:ops@example.ORG"]
        for name in names:
            with self.subTest(name):
                c = self.d.ctl("client", "add", "--name", "rs-san", "--role", "resource_server",
                               "--tls-san", name)
                self.assertEqual(c["auth_method"], "tls_client_auth")
                self.assertNotIn("client_secret", c)
                r = self.introspect_with(self.m["named"], c["client_id"], t)
                self.assertEqual(r.status, 200, r)
                self.assertIs(r.json()["active"], True)
                for what in ("named_rogue", "named_self", "rs", "other"):
                    self.assertInvalidClient(self.introspect_with(self.m[what], c["client_id"], t))
        c = self.d.ctl("client", "add", "--name", "rs-san", "--role", "resource_server",
                       "--tls-san", "dns:RS.example.com")
        self.assertEqual(c["tls_san"], "dns:rs.example.com")
        self.assertInvalidClient(self.introspect_with(self.m["named_late"], c["client_id"], t))
        for near in ("dns:rs.example.org", "dns:s.example.com", "uri:spiffe://example.org/ns/prod",
                     "ip:192.0.2.8", "email:ops@example.com", "dns:*.example.com"):
            with self.subTest(near):
                c = self.d.ctl("client", "add", "--name", "rs-near", "--role", "resource_server",
                               "--tls-san", near)
                self.assertInvalidClient(self.introspect_with(self.m["named"], c["client_id"], t))

    def test_san_registration_is_strict(self):
        for args in (("--tls-san", "rs.example.com"), ("--tls-san", "dns:rs..example.com"),
                     ("--tls-san", "ip:192.0.2.300"), ("--tls-san", "uri:no-scheme"),
                     ("--tls-san", "dns:rs.example.com", "--tls-subject", "CN=rs"),
                     ("--tls-san", "dns:rs.example.com", "--tls-thumbprint",
                      self.m["self"].hex)):
            with self.subTest(args):
                r = self.d.ctl_run("client", "add", "--name", "x", "--role", "resource_server",
                                   *args)
                self.assertNotEqual(r.returncode, 0, r)
                self.assertIn("--tls-", r.stderr)

    def test_plain_port_has_no_certificate(self):
        with self.d.plain_conn() as c:
            c.send(form_request("/introspect", [("token", self.token()),
                                                ("client_id", self.by_subject["client_id"])]))
            self.assertInvalidClient(c.read_response())

    def test_certificate_client_never_uses_a_secret(self):
        """Its secret hash is random: any secret fails, with the certificate
        too; Basic gets the challenge, the form does not."""
        t = self.token()
        cid = self.by_thumb["client_id"]
        r = self.introspect_with(self.m["self"], cid, t, pairs=[("client_secret", "guess")])
        self.assertInvalidClient(r)
        ctx = self.m["self"].context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            c.send(form_request("/introspect", [("token", t)],
                                {"Authorization": h.basic(cid, "guess")}))
            self.assertInvalidClient(c.read_response(), challenge=True)

    def test_secret_clients_unchanged(self):
        """A secret client over TLS with a certificate it did not register:
        the secret still works, and its id without a secret still fails."""
        t = self.token()
        ctx = self.m["rs"].context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            c.send(h.auth_request("/introspect", t, self.w.rs))
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertIs(r.json()["active"], True)
            c.send(h.auth_request("/introspect", t, ("post", self.w.rs)))
            self.assertEqual(c.read_response().status, 200)
        r = self.introspect_with(self.m["rs"], self.w.rs.id, t)
        self.assertInvalidClient(r)

    def test_revoke_with_a_certificate(self):
        """An admin registered by subject revokes an agent's token."""
        admin = self.d.ctl("client", "add", "--name", "admin-mtls", "--role", "admin",
                           "--tls-subject", "CN=someone else,O=Example Org")["client_id"]
        t = self.token()
        with h.Conn(self.d.tls_port, ctx=self.m["other"].context()) as c:
            c.send(form_request("/revoke", [("token", t), ("client_id", admin)]))
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertInactive(t)
        t2 = self.token()
        for cert in (None, self.m["rs"]):
            ctx = cert.context() if cert else h.client_context()
            with h.Conn(self.d.tls_port, ctx=ctx) as c:
                c.send(form_request("/revoke", [("token", t2), ("client_id", admin)]))
                self.assertInvalidClient(c.read_response())
        self.assertActive(t2)

    def test_metadata_lists_the_methods(self):
        md = self.d.request("GET", "/.well-known/oauth-authorization-server").json()
        for key in ("introspection_endpoint_auth_methods_supported",
                    "revocation_endpoint_auth_methods_supported",
                    "token_endpoint_auth_methods_supported"):
            self.assertIn("tls_client_auth", md[key], key)
            self.assertIn("self_signed_tls_client_auth", md[key], key)
        self.assertIs(md["tls_client_certificate_bound_access_tokens"], True)


class PlainMetadata(h.DaemonCase):
    """Without a TLS listener nothing about certificates is offered."""
    with_world = False

    def test_no_tls_methods(self):
        md = self.d.request("GET", "/.well-known/oauth-authorization-server").json()
        self.assertEqual(md["introspection_endpoint_auth_methods_supported"],
                         ["client_secret_basic", "client_secret_post"])
        self.assertNotIn("tls_client_certificate_bound_access_tokens", md)


class CertificateFailuresAreLimited(h.FreshCase):
    """A wrong certificate is a failed authentication like a wrong secret:
    after the burst the address (and the client id) get 429."""

    def test_burst_then_429(self):
        m = mu.material()
        d = self.daemon(("--workers", 1, "--auth-fail-burst", 3, "--tls-ca", m["ca"][0]),
                        tls=True)
        cid = d.ctl("client", "add", "--name", "rs-mtls", "--role", "resource_server",
                    "--tls-subject", "CN=rs mtls,O=Example Org")["client_id"]
        codes = []
        for _ in range(5):
            with h.Conn(d.tls_port, ctx=m["other"].context()) as c:
                c.send(form_request("/introspect", [("token", "x"), ("client_id", cid)]))
                codes.append(c.read_response().status)
        self.assertEqual(codes[:3], [401, 401, 401], codes)
        self.assertEqual(codes[-1], 429, codes)
        with h.Conn(d.tls_port, ctx=m["rs"].context()) as c:  # the right one waits too
            c.send(form_request("/introspect", [("token", "x"), ("client_id", cid)]))
            self.assertEqual(c.read_response().status, 429)


class TlsCaConfig(h.FreshCase):
    def test_tls_ca_needs_a_tls_listener(self):
        import subprocess
        m = mu.material()
        r = subprocess.run([h.TOKEND_BIN, "--tls-ca", m["ca"][0], "--data", self.tmpdir(),
                            "--listen", "127.0.0.1:0"], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn(b"tls-ca", r.stderr)

    def test_tls_ca_unreadable_fails_start(self):
        with self.assertRaises(Exception):
            self.daemon(("--tls-ca", "/nonexistent/ca.pem"), tls=True)



# ---- IdP event senders by certificate ------------------------------------------

import idp_util as u  # noqa: E402

HOOKS_CERT = "https://hooks-cert.test"  # webhooks authenticated by a SAN alone
HOOKS_BOTH = "https://hooks-both.test"  # a subject and a webhook secret: both required
SSF_CERT = "https://ssf-cert.test"  # SSF pushes: a bearer and a thumbprint, both required


class SenderCertificate(u.IdpCase):
    """An IdP's webhook sender or SSF transmitter authenticated by its client
    certificate (trust-file sender_certificate): a certificate alone
    authenticates a webhook of an issuer without secrets; with secrets or an
    ssf_bearer both are required; another certificate, none, or the right
    one claiming another issuer change nothing."""

    tls = True

    @classmethod
    def setUpClass(cls):
        cls.m = mu.material()
        cls.extra_args = ("--tls-ca", cls.m["ca"][0])
        super().setUpClass()

    @classmethod
    def default_issuers(cls):
        cls.hook_secret = u.new_secret()
        cls.ssf_bearer = "ssf-" + u.uuid.uuid4().hex
        return super().default_issuers() + [
            {"issuer": HOOKS_CERT, "audience": u.AUD,
             "sender_certificate": {"san": "dns:RS.example.com"}},
            {"issuer": HOOKS_BOTH, "audience": u.AUD, "webhook_secrets": [cls.hook_secret],
             "sender_certificate": {"subject": "CN=rs mtls,O=Example Org"}},
            {"issuer": SSF_CERT, "audience": u.AUD, "ssf_bearer": cls.ssf_bearer,
             "jwks": {"keys": [cls.ec.jwk()]},
             "sender_certificate": {"thumbprint": cls.m["self"].x5t}},
        ]

    def send(self, cert, data):
        ctx = cert.context() if cert is not None else h.client_context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            c.send(data)
            return c.read_response()

    def hook(self, iss, sid, secrets=(), sigs=None):
        return u.webhook_request(list(secrets),
                                 {"type": "session.terminated", "iss": iss, "sid": sid},
                                 sigs=sigs)

    def test_webhook_by_san_alone(self):
        sid = u.session(self.d, "alice", iss=HOOKS_CERT, idp_sid="hc-1")
        toks = self.chain(sid)
        refused = [("no certificate", None, ""),
                   ("the name under another CA", self.m["named_rogue"], ""),
                   ("the name self-signed", self.m["named_self"], ""),
                   ("another certificate under tls-ca", self.m["rs"], ""),
                   ("a signature by another issuer's secret", self.m["rs"], None)]
        for what, cert, sigs in refused:
            with self.subTest(what):
                data = self.hook(HOOKS_CERT, "hc-1", secrets=self.secrets[:1],
                                 sigs=sigs if sigs == "" else None)
                r = self.send(cert, data)
                self.assertIn(r.status, (400, 401), r)
                for t in toks:
                    self.assertActive(t)
        r = self.send(self.m["named"], self.hook(HOOKS_CERT, "hc-1", sigs=""))
        self.assertEqual(r.status, 200, r)
        for t in toks:
            self.assertInactive(t)
        self.assertEqual(u.audit(self.d)[-1]["source"], "webhook")

    def test_certificate_does_not_speak_for_another_issuer(self):
        sid = u.session(self.d, "bob", idp_sid="wh-cert")  # an ISS session (secrets only)
        toks = self.chain(sid)
        r = self.send(self.m["named"], self.hook(u.ISS, "wh-cert", sigs=""))
        self.assertEqual(r.status, 400, r)  # authenticated as HOOKS_CERT, claiming ISS
        self.assertIn("iss is not an issuer", r.json()["error_description"])
        for t in toks:
            self.assertActive(t)
        # the ISS secret still works over TLS, with or without a certificate
        r = self.send(self.m["named"], self.hook(u.ISS, "wh-cert", secrets=self.secrets[:1]))
        self.assertEqual(r.status, 200, r)
        self.assertInactive(toks[0])

    def test_certificate_and_secret_both_required(self):
        sid = u.session(self.d, "carol", iss=HOOKS_BOTH, idp_sid="hb-1")
        toks = self.chain(sid)
        for what, cert, secrets in (("secret without certificate", None, [self.hook_secret]),
                                    ("certificate without secret", self.m["rs"], []),
                                    ("secret, other certificate", self.m["other"],
                                     [self.hook_secret])):
            with self.subTest(what):
                sigs = "" if not secrets else None
                r = self.send(cert, self.hook(HOOKS_BOTH, "hb-1", secrets, sigs=sigs))
                self.assertIn(r.status, (400, 401), r)
                self.assertActive(toks[0])
        r = self.send(self.m["rs"], self.hook(HOOKS_BOTH, "hb-1", [self.hook_secret]))
        self.assertEqual(r.status, 200, r)
        for t in toks:
            self.assertInactive(t)

    def test_ssf_push_needs_bearer_and_certificate(self):
        sid = u.session(self.d, "dave", iss=SSF_CERT, idp_sid="sc-1")
        toks = self.chain(sid)

        def push(cert, bearer):
            claims = u.set_claims("session-revoked", {},
                                  {"format": "opaque", "id": "dave"}, iss=SSF_CERT)
            headers = {"Authorization": "Bearer " + bearer} if bearer else None
            return self.send(cert, h.build_request("POST", "/ssf/events", self.set_token(claims),
                                                   headers, "application/secevent+jwt"))
        for what, cert, bearer in (("bearer, no certificate", None, self.ssf_bearer),
                                   ("bearer, another certificate", self.m["self2"],
                                    self.ssf_bearer),
                                   ("certificate, no bearer", self.m["self"], None)):
            with self.subTest(what):
                r = push(cert, bearer)  # RFC 8935 §2.4: 400 with an "err" code
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["err"], "authentication_failed", r)
                self.assertActive(toks[0])
        r = push(self.m["self"], self.ssf_bearer)
        self.assertEqual(r.status, 202, r)
        for t in toks:
            self.assertInactive(t)


# ---- Certificate-bound tokens (RFC 8705 §3) ------------------------------------

import as_http as ah  # noqa: E402  (after the skips above)
import hardening as hd  # noqa: E402

CERT_HEADER = "X-Client-Cert"


class BoundTokens(h.FreshCase):
    """A public agent redeems its code at /token over TLS presenting a
    certificate: the access token carries cnf.x5t#S256 (introspection shows
    it), and forward-auth lets it through only with the same certificate in
    the header nginx fills from $ssl_client_escaped_cert, sent by a trusted
    proxy address."""

    @classmethod
    def setUpClass(cls):
        cls.m = mu.material()
        folder = ah.tmpfolder()
        cls.addClassCleanup(shutil.rmtree, folder, True)
        args = ah.as_daemon_args(folder, extra=[
            "--auth-fail-burst", 0, "--tls-ca", cls.m["ca"][0],
            "--client-cert-header", CERT_HEADER, "--client-cert-proxies", "127.0.0.1 ::1"])
        cls.d = h.start_daemon(args, tls=True)
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.admin = cls.d.add_client("admin", "admin")
        cls.d.default_auth = cls.admin

    def tokens(self, cert, subject="alice"):
        """Authorize (browser over TLS, no certificate), then redeem over TLS
        presenting cert (None: none)."""
        cid = ah.public_client(self.d)["client_id"]
        code, verifier = ah.authorize_code(self.d, ah.Browser(self.d), cid, subject=subject)
        ctx = cert.context() if cert is not None else h.client_context()
        with h.Conn(self.d.tls_port, ctx=ctx) as c:
            r = c.request("POST", "/token", h.form([
                ("grant_type", "authorization_code"), ("code", code),
                ("redirect_uri", ah.REDIRECT), ("code_verifier", verifier),
                ("client_id", cid)]), content_type=h.FORM)
        self.assertEqual(r.status, 200, r)
        return cid, r.json()

    def forward(self, token, cert_value=None, source="127.0.0.1", extra=()):
        hdrs = [("Host", "tokend"), ("X-Forwarded-Host", "mcp.test"),
                ("X-Forwarded-Uri", "/mcp"), ("Authorization", "Bearer " + token)]
        if cert_value is not None:
            hdrs.append((CERT_HEADER, cert_value))
        hdrs += list(extra)
        head = "GET /auth HTTP/1.1\r\n" + "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
        with hd.conn_from(self.d.port, source) as c:
            c.send(head.encode())
            return c.read_response()

    def assertRefused(self, r):
        self.assertEqual(r.status, 401, r)
        self.assertIn('error="invalid_token"', r.header("WWW-Authenticate") or "", r)

    def test_bound_token_introspection_and_forward_auth(self):
        me, other = self.m["self"], self.m["self2"]
        _, t = self.tokens(me)
        at = t["access_token"]
        j = self.assertActive(at)
        self.assertEqual(j["cnf"], {"x5t#S256": me.x5t})
        # the refresh token is not bound (only access tokens are presented)
        self.assertNotIn("cnf", self.assertActive(t["refresh_token"]))
        self.assertEqual(self.forward(at, me.escaped).status, 200)
        self.assertEqual(self.forward(at, me.rfc9440).status, 200)
        self.assertEqual(self.forward(at, me.escaped, source="127.0.0.1").status, 200)
        self.assertRefused(self.forward(at, other.escaped))
        self.assertRefused(self.forward(at, self.m["rs"].escaped))
        self.assertRefused(self.forward(at))
        self.assertRefused(self.forward(at, ""))
        self.assertRefused(self.forward(at, me.escaped[:-30]))
        self.assertRefused(self.forward(at, me.escaped, extra=[(CERT_HEADER, me.escaped)]))
        self.assertRefused(self.forward(at, "%s" % me.pem.replace("\n", " ")))
        # the right certificate from an address that is not a trusted proxy
        self.assertRefused(self.forward(at, me.escaped, source="127.0.0.2"))

    def test_unbound_tokens_unaffected(self):
        _, t = self.tokens(None)
        at = t["access_token"]
        self.assertNotIn("cnf", self.assertActive(at))
        self.assertEqual(self.forward(at).status, 200)
        self.assertEqual(self.forward(at, self.m["self2"].escaped).status, 200)
        self.assertEqual(self.forward(at, source="127.0.0.2").status, 200)

    def test_refresh_over_mtls_binds_the_new_access_token(self):
        me = self.m["self"]
        cid, t = self.tokens(None)
        with h.Conn(self.d.tls_port, ctx=me.context()) as c:
            r = c.request("POST", "/token", h.form([
                ("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"]),
                ("client_id", cid)]), content_type=h.FORM)
        self.assertEqual(r.status, 200, r)
        at = r.json()["access_token"]
        self.assertEqual(self.assertActive(at)["cnf"], {"x5t#S256": me.x5t})
        self.assertRefused(self.forward(at))
        self.assertEqual(self.forward(at, me.escaped).status, 200)

    def test_certificate_client_at_the_token_endpoint(self):
        """A confidential agent registered by thumbprint redeems with its
        certificate and no secret; another certificate is invalid_client."""
        me = self.m["self"]
        a = self.d.ctl("client", "add", "--name", "mtls agent", "--role", "agent",
                       "--redirect-uri", ah.REDIRECT, "--tls-thumbprint", me.hex)
        cid = a["client_id"]
        for cert, want in ((self.m["self2"], 401), (None, 401), (me, 200)):
            code, verifier = ah.authorize_code(self.d, ah.Browser(self.d), cid)
            ctx = cert.context() if cert is not None else h.client_context()
            with h.Conn(self.d.tls_port, ctx=ctx) as c:
                r = c.request("POST", "/token", h.form([
                    ("grant_type", "authorization_code"), ("code", code),
                    ("redirect_uri", ah.REDIRECT), ("code_verifier", verifier),
                    ("client_id", cid)]), content_type=h.FORM)
            self.assertEqual(r.status, want, r)
            if want == 401:
                self.assertEqual(r.json()["error"], "invalid_client")
                self.assertIsNone(r.header("WWW-Authenticate"))
        self.assertEqual(self.assertActive(r.json()["access_token"])["cnf"]["x5t#S256"], me.x5t)


class BoundTokensFailClosed(h.FreshCase):
    """Without client-cert-header/-proxies a bound token is refused at
    forward-auth whatever the request carries."""

    def test_refused_without_configuration(self):
        m = mu.material()
        folder = self.tmpdir()
        d = self.daemon(ah.as_daemon_args(folder, extra=["--auth-fail-burst", 0]), tls=True)
        d.default_auth = d.add_client("admin", "admin")
        cid = ah.public_client(d)["client_id"]
        code, verifier = ah.authorize_code(d, ah.Browser(d), cid)
        with h.Conn(d.tls_port, ctx=m["self"].context()) as c:
            r = c.request("POST", "/token", h.form([
                ("grant_type", "authorization_code"), ("code", code),
                ("redirect_uri", ah.REDIRECT), ("code_verifier", verifier),
                ("client_id", cid)]), content_type=h.FORM)
        at = r.json()["access_token"]
        self.assertEqual(d.active(at)["cnf"]["x5t#S256"], m["self"].x5t)
        r = d.request("GET", "/auth", headers={"X-Forwarded-Host": "mcp.test",
                                               "X-Forwarded-Uri": "/mcp",
                                               "Authorization": "Bearer " + at,
                                               CERT_HEADER: m["self"].escaped})
        self.assertEqual(r.status, 401, r)

    def test_header_and_proxies_need_each_other(self):
        import subprocess
        for extra in (["--client-cert-header", CERT_HEADER],
                      ["--client-cert-proxies", "127.0.0.1"],
                      ["--client-cert-header", "bad header", "--client-cert-proxies", "127.0.0.1"],
                      ["--client-cert-header", CERT_HEADER, "--client-cert-proxies", "localhost"]):
            r = subprocess.run([h.TOKEND_BIN, "--data", self.tmpdir(), "--listen", "127.0.0.1:0"]
                               + extra, capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 2, (extra, r))
            self.assertIn(b"client-cert", r.stderr)


if __name__ == "__main__":
    unittest.main()
