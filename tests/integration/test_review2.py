"""Review 2 findings, black-box against the real tokend.

- SSRF through connection reuse: every outbound transfer shares one libcurl
  multi handle, so a keep-alive connection a trusted transfer (an IdP's
  jwks_uri on a private address) left open was handed to a later public_only
  fetch of a Client ID Metadata Document naming the same host and port: no
  socket was opened, so the public-address guard never ran and the private
  server got the request. A public_only transfer now always opens its own
  connections (and never leaves one behind for another transfer)."""

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


def wait_until(fn, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


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
        wait_until(lambda: srv.count(JWKS) >= 1 and
                   re.search(r"event=jwks_fetched ", d.stderr()),
                   what="the jwks fetch\n" + d.stderr()[-2000:])
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


if __name__ == "__main__":
    unittest.main()
