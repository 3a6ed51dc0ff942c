"""Review 2 findings, black-box against the real tokend.

- SSRF through connection reuse: every outbound transfer shares one libcurl
  multi handle, so a keep-alive connection a trusted transfer (an IdP's
  jwks_uri on a private address) left open was handed to a later public_only
  fetch of a Client ID Metadata Document naming the same host and port: no
  socket was opened, so the public-address guard never ran and the private
  server got the request. A public_only transfer now always opens its own
  connections (and never leaves one behind for another transfer).
- A remembered consent crossing organisations: consents were keyed by
  (sub, client, resource) alone, and each IdP chooses its own subs, so a
  partner IdP's user with a home user's sub ("alice" at both) who approved
  an agent left a consent that covered the home user: her browser got a
  code for that agent with no consent page, prompt=none included. A consent
  is now keyed by the session's IdP issuer too (unchanged for sessions
  without one).
- IdP event senders by certificate (no flaw found; kept as the class's
  black-box test): only a certificate under tls-ca naming the configured SAN
  authenticates a webhook; the same names self-signed or under another CA,
  another name, or no certificate are refused and end nothing."""

import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import as_http as a  # noqa: E402
import harness as h  # noqa: E402
import http_fixture as fx  # noqa: E402
import idp_util as u  # noqa: E402

h.require_binaries()

DOC = "/clients/agent.json"
JWKS = "/certs"


class KeepAliveServer:
    """A loopback HTTPS server that keeps connections open (HTTP/1.1, no
    Connection: close), as real IdPs do; counts requests per path."""

    def __init__(self, tls_context):
        import http.server
        import threading
        outer = self
        self.routes, self.counts, self.lock = {}, {}, threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with outer.lock:
                    outer.counts[path] = outer.counts.get(path, 0) + 1
                    status, body, hdrs = outer.routes.get(path, (404, b"no", {}))
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def set(self, path, status, body, ctype):
        with self.lock:
            self.routes[path] = (status, body.encode(), {"Content-Type": ctype})

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class TestCimdConnectionReuse(h.FreshCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tokend-review2-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.ca = fx.TestCA(cls.dir)
        cls.tls = cls.ca.context("srv", san="IP:127.0.0.1,DNS:localhost")
        cls.key = u.Key(cls.dir, "k1", "rsa", "k1")

    def start_with_jwks(self, srv, host="127.0.0.1"):
        """tokend whose trust file fetches its IdP's keys from srv (a
        trusted, non-public fetch that leaves a keep-alive connection)."""
        srv.set(JWKS, 200, json.dumps({"keys": [self.key.jwk()]}), "application/jwk-set+json")
        folder = self.tmpdir()
        config = os.path.join(folder, "idp.json")
        u.write_config(config, [{"issuer": u.ISS, "audience": u.AUD,
                                 "jwks_uri": "https://%s:%d%s" % (host, srv.port, JWKS),
                                 "algorithms": ["RS256"]}])
        extra = ["--outbound-ca-file", self.ca.cert, "--idp-config", config,
                 "--cimd-cache-min", 1, "--cimd-cache-max", 3600,
                 "--cimd-approve-hosts", "127.0.0.1 localhost"]
        d = self.daemon(a.as_daemon_args(folder, "approval", extra))
        self.addCleanup(d.stop)
        h.wait_until(lambda: srv.count(JWKS) >= 1 and
                     re.search(r"event=jwks_fetched ", d.stderr()),
                     timeout=15.0, what="the jwks fetch\n" + d.stderr()[-2000:])
        return d

    def authorize(self, d, url):
        q = a.authorize_query(url, challenge=a.s256(a.new_verifier()), state="s1")
        return a.Browser(d).get(q)

    def test_public_only_fetch_never_reuses_a_trusted_connection(self):
        for host in ("127.0.0.1", "localhost"):
            with self.subTest(host=host):
                srv = KeepAliveServer(self.tls)
                self.addCleanup(srv.close)
                d = self.start_with_jwks(srv, host)
                url = "https://%s:%d%s" % (host, srv.port, DOC)
                srv.set(DOC, 200, json.dumps(
                    {"client_id": url, "client_name": "x", "redirect_uris": [a.REDIRECT],
                     "grant_types": ["authorization_code"],
                     "token_endpoint_auth_method": "none"}), "application/json")
                r = self.authorize(d, url)
                self.assertEqual(r.status, 403, r)
                self.assertIn("non-public address", a.Page(r.body).text)
                self.assertEqual(srv.count(DOC), 0)  # the private server never asked
                clients = d.ctl("client", "list") + d.ctl("client", "list", "--pending")
                self.assertEqual([c for c in clients
                                  if c["client_id"].startswith("https://")], [])
                d.stop()


class TestWebhookSenderCertificate(h.FreshCase):
    """IdP event senders by certificate (trust-file sender_certificate), over
    a real TLS connection: only a certificate under tls-ca naming the SAN
    authenticates the IdP; a self-signed or another CA's certificate with the
    very same names, a certificate of another name, and no certificate are
    401, and nothing is ended."""

    def test_only_a_verified_certificate_with_the_name_sends(self):
        import mtls_util as mu
        m = mu.material()
        folder = self.tmpdir()
        config = os.path.join(folder, "idp.json")
        u.write_config(config, [{"issuer": u.ISS, "audience": u.AUD,
                                 "sender_certificate": {"san": "dns:RS.example.com"}}])
        d = self.daemon(("--idp-config", config, "--tls-ca", m["ca"][0]), tls=True)
        self.addCleanup(d.stop)
        d.default_auth = d.add_client("admin", "admin")
        self.d = d

        def post(cert, sid):
            body = json.dumps({"type": "session.terminated", "iss": u.ISS, "sid": sid}).encode()
            data = h.build_request("POST", "/webhooks/session-terminated", body,
                                   {"webhook-id": "msg_" + sid,
                                    "webhook-timestamp": str(int(time.time()))},
                                   "application/json")
            ctx = cert.context() if cert is not None else None
            with d.tls_conn(ctx=ctx) as c:
                c.send_tolerant(data)
                return c.read_response()

        for name in ("named_self", "named_rogue", "other", None):
            with self.subTest(cert=name):
                sid = u.session(d, "alice", idp_sid="cert-" + str(name))
                t = d.issue(sid, d.add_client("agent", "agent-%s" % name))["access_token"]
                r = post(m[name] if name else None, "cert-" + str(name))
                self.assertEqual(r.status, 400 if name is None else 401, r)
                self.assertActive(t)
        sid = u.session(d, "alice", idp_sid="cert-ok")
        t = d.issue(sid, d.add_client("agent", "agent-ok"))["access_token"]
        r = post(m["named"], "cert-ok")
        self.assertEqual(r.status, 200, r)
        self.assertInactive(t)


@unittest.skipUnless(u.HAVE_OP, "node or tests/interop/node_modules/oidc-provider missing")
class TestConsentAcrossOrganisations(u.OpSteps, h.TokenAsserts, unittest.TestCase):
    """Two sign-in IdPs that both have a user "alice" (the sub each asserts)."""

    @classmethod
    def setUpClass(cls):
        import secrets
        import test_oidc_orgs as orgs
        cls.orgs = orgs
        for name in ("register", "authorize", "to_idp", "callback", "approve", "redeem",
                     "sign_in"):
            setattr(cls, name, orgs.OidcOrgs.__dict__[name])
        cls.dir = tempfile.mkdtemp(prefix="tokend-review2-orgs-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        port = h.free_port()
        tokend = "http://127.0.0.1:%d" % port
        cls.secret = {"home": "home-" + secrets.token_hex(8),
                      "partner": "partner-" + secrets.token_hex(8)}
        cls.home = u.start_op(cls, cls.dir, tokend, cls.secret["home"], "home.test", "alice",
                              name="home")
        cls.partner = u.start_op(cls, cls.dir, tokend, cls.secret["partner"], "partner.test",
                                 "alice", name="partner")
        trust = os.path.join(cls.dir, "idp.json")
        with open(trust, "w") as f:
            json.dump({"issuers": [
                {"issuer": cls.home, "audience": "tokend", "client_id": "tokend",
                 "client_secret": cls.secret["home"], "domains": ["home.test"]},
                {"issuer": cls.partner, "audience": "tokend", "client_id": "tokend",
                 "client_secret": cls.secret["partner"], "domains": ["partner.test"],
                 "allowed_resources": [orgs.SHARED_RES], "allowed_scopes": ["mcp:read"]},
            ]}, f)
        res = os.path.join(cls.dir, "resources.json")
        with open(res, "w") as f:
            json.dump({"resources": [
                {"resource": orgs.HOME_RES, "name": "Home MCP", "path_prefix": "/home",
                 "scopes_supported": ["mcp:read", "mcp:write"]},
                {"resource": orgs.SHARED_RES, "name": "Shared MCP", "path_prefix": "/shared",
                 "scopes_supported": ["mcp:read", "mcp:write"]}]}, f)
        cls.d = h.start_daemon(("--listen", "127.0.0.1:%d" % port, "--login", "oidc",
                                "--registration", "open", "--resources", res,
                                "--idp-config", trust, "--register-burst", "0"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.d.default_auth = cls.d.add_client("admin", "admin")

    def authorize_signed_in(self, tb, cid, prompt=None):
        import urllib.parse
        verifier = a.new_verifier()
        q = {"response_type": "code", "client_id": cid, "redirect_uri": self.orgs.REDIRECT,
             "code_challenge": a.s256(verifier), "code_challenge_method": "S256",
             "state": "st", "scope": "mcp:read", "resource": self.orgs.SHARED_RES}
        if prompt is not None:
            q["prompt"] = prompt
        return tb.request("GET", "/authorize?" + urllib.parse.urlencode(q))

    def test_a_partner_users_consent_never_covers_a_home_user_of_the_same_sub(self):
        import urllib.parse
        orgs = self.orgs
        # The partner's "alice" approves the agent for the shared resource.
        agent = self.register()
        _, _, _, q, verifier = self.sign_in("alice", self.partner, cid=agent)
        t = self.redeem(agent, q["code"], verifier)
        self.assertEqual(self.assertActive(t["access_token"])["idp_iss"], self.partner)
        # The home "alice" signs in (for another client), never approving the agent.
        tb, _, _, q, _ = self.sign_in("alice", self.home)
        self.assertIn("code", q)
        # Her browser is sent to the agent's authorization: she must be asked.
        r = self.authorize_signed_in(tb, agent, prompt="none")
        self.assertEqual(r.status, 303, r)
        loc = r.header("Location")
        self.assertTrue(loc.startswith(orgs.REDIRECT + "?"), loc)
        got = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        self.assertNotIn("code", got)
        self.assertEqual(got.get("error"), "consent_required", got)
        r = self.authorize_signed_in(tb, agent)
        self.assertEqual(r.status, 303, r)
        self.assertTrue(r.header("Location").startswith("/consent"), r.header("Location"))
        # The partner's own consent still holds for the partner's alice.
        tb2, _, _, q, verifier = self.sign_in("alice", self.partner, cid=agent)
        r = self.authorize_signed_in(tb2, agent, prompt="none")
        got = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("Location")).query))
        self.assertIn("code", got)


if __name__ == "__main__":
    unittest.main()
