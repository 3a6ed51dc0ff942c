"""/metrics access (issue 9 item 8): /metrics lists client and resource ids,
so it is served only on its own listener (metrics-listen, by default
loopback only) and, with metrics-token set, only to a scrape that carries
that bearer credential. The API listener answers /metrics like any unknown
path, and the metrics listener serves nothing but /metrics."""

import os
import socket
import subprocess
import unittest

import harness as h

h.require_binaries()

TOKEN = "m3trics-Scrape-T0ken_0123456789"
# Every other route of the API, exact and prefix ones, with a method it allows.
API_ROUTES = [("GET", "/healthz"), ("POST", "/introspect"), ("POST", "/revoke"),
              ("GET", "/.well-known/oauth-authorization-server"),
              ("GET", "/.well-known/oauth-protected-resource"),
              ("GET", "/.well-known/oauth-protected-resource/x"), ("GET", "/auth"),
              ("GET", "/auth/x"), ("POST", "/backchannel-logout"), ("POST", "/ssf/events"),
              ("POST", "/webhooks/session-terminated")]


def listening(port):
    """Local addresses (hex, as /proc/net/tcp{,6} writes them) listening on port."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            addr, hexport = cols[1].split(":")
            if cols[3] == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.append(addr)
    return found


class MainListener(h.FreshCase):
    def test_metrics_not_on_the_api_port(self):
        d = self.daemon()
        self.assertTrue(d.metrics_port and d.metrics_port != d.port)
        for method in ("GET", "HEAD"):
            for path in ("/metrics", "/metrics?x=1", "/metrics/"):
                r = d.request(method, path)
                self.assertEqual(r.status, 404, (method, path, r))
        # Exactly what an unknown path gets, byte for byte.
        self.assertEqual(d.request("GET", "/metrics").body, d.request("GET", "/nope").body)
        # A metrics token does not open the API port either.
        d2 = self.daemon(["--metrics-token", TOKEN])
        r = d2.request("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(d.request("GET", "/healthz").status, 200)


class MetricsListener(h.FreshCase):
    def test_serves_metrics(self):
        d = self.daemon()
        r = d.metrics_request()
        self.assertEqual(r.status, 200, r)
        self.assertTrue((r.header("content-type") or "").startswith("text/plain"))
        self.assertIn("# TYPE tokend_requests_total counter", r.body.decode())
        r = d.metrics_request("HEAD")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(d.metrics_request("GET", "/metrics?x=1").status, 200)
        r = d.metrics_request("POST")
        self.assertEqual(r.status, 405, r)

    def test_serves_nothing_else(self):
        d = self.daemon()
        for method, path in API_ROUTES + [("GET", "/"), ("GET", "/metricsx"),
                                          ("GET", "/metrics/x")]:
            r = d.metrics_request(method, path)
            self.assertEqual(r.status, 404, (method, path, r))
        # The API is untouched by the second listener.
        self.assertEqual(d.request("GET", "/healthz").status, 200)

    def test_counts_its_own_requests(self):
        d = self.daemon()
        d.metrics_text()
        text = d.metrics_text()
        self.assertIn('tokend_requests_total{endpoint="metrics",status="200"}', text)

    def test_off(self):
        d = self.daemon(metrics_listen="off")
        self.assertIsNone(d.metrics_port)
        self.assertFalse(os.path.exists(d.metrics_port_file))
        self.assertEqual(d.request("GET", "/metrics").status, 404)
        self.assertEqual(d.request("GET", "/healthz").status, 200)

    def test_loopback_by_default(self):
        # The API on every address; metrics-listen left at its default.
        d = self.daemon(["--listen", "0.0.0.0:0"], metrics_listen=None)
        self.assertTrue(d.metrics_port and d.metrics_port != d.port)
        self.assertEqual(set(listening(d.port)), {"00000000"})
        self.assertEqual(set(listening(d.metrics_port)), {"0100007F"})  # 127.0.0.1 only
        self.assertEqual(d.metrics_request().status, 200)
        self.assertIn("metrics_listening", d.stderr())

    def test_explicit_address(self):
        d = self.daemon(metrics_listen="[::1]:0")
        if not d.metrics_port:
            self.skipTest("no IPv6 loopback")
        self.assertEqual(set(listening(d.metrics_port)), {"0" * 24 + "01000000"})  # ::1
        with socket.create_connection(("::1", d.metrics_port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 200"))


class Token(h.FreshCase):
    def check_refused(self, d, headers, with_error):
        r = d.metrics_request(headers=headers)
        self.assertEqual(r.status, 401, (headers, r))
        www = r.header("www-authenticate") or ""
        self.assertTrue(www.startswith('Bearer realm="metrics"'), www)
        self.assertEqual('error="invalid_token"' in www, with_error, (headers, www))
        self.assertEqual(r.json(), {"error": "invalid_token"})
        self.assertNotIn(b"tokend_", r.body)

    def test_bearer_required(self):
        d = self.daemon(["--metrics-token", TOKEN])
        self.check_refused(d, None, False)
        wrong = [TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "x" + TOKEN[1:], TOKEN[:-1] + "0",
                 "", " " + TOKEN]
        for w in wrong:
            self.check_refused(d, {"Authorization": "Bearer " + w}, True)
        for v in ("Basic " + TOKEN, TOKEN, "Bearer  " + TOKEN, "Token " + TOKEN,
                  "Bearer " + TOKEN + " x"):
            self.check_refused(d, {"Authorization": v}, True)
        ok = d.metrics_request(headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(ok.status, 200, ok)
        # The auth scheme is case-insensitive (RFC 9110 §11.1).
        ok = d.metrics_request(headers={"Authorization": "bearer " + TOKEN})
        self.assertEqual(ok.status, 200, ok)
        text = d.metrics_text({"Authorization": "Bearer " + TOKEN})
        self.assertIn('tokend_requests_total{endpoint="metrics",status="401"}', text)
        self.assertNotIn(TOKEN, d.stderr())

    def test_token_from_config_file(self):
        tmp = self.tmpdir()
        conf = os.path.join(tmp, "tokend.conf")
        with open(conf, "w") as f:
            f.write("metrics-token = %s  # scrape credential\n" % TOKEN)
        d = self.daemon(["--config", conf])
        self.check_refused(d, None, False)
        r = d.metrics_request(headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 200, r)


class BadConfig(h.FreshCase):
    def test_refused_at_start(self):
        tmp = self.tmpdir()
        cases = [["--metrics-listen", "localhost:9100"], ["--metrics-listen", "127.0.0.1"],
                 ["--metrics-token", "short"], ["--metrics-token", "has space in the token"],
                 ["--metrics-listen", "off", "--metrics-token", TOKEN],
                 ["--listen", "127.0.0.1:65535"]]
        for args in cases:
            p = subprocess.run([h.TOKEND_BIN, "--data", tmp] + args, capture_output=True,
                               timeout=30)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(b"metrics-", p.stderr, args)


if __name__ == "__main__":
    unittest.main()
