"""Loopback HTTP(S) servers the outbound tests talk to: the far side of
tokend's outbound thread (an IdP's JWKS endpoint, a slow or broken peer).

FixtureServer answers each path with what its `routes` dict says, counts
requests per path, and can misbehave on purpose (slow, garbage, huge, close
without answering). TestCA makes a CA and server certificates with the
openssl CLI. Python standard library plus the openssl binary only."""

import http.server
import os
import socket
import ssl
import subprocess
import threading
import time


class Route:
    """What one path answers. kind: "ok" (status, body, headers), "slow"
    (sleep delay seconds first), "garbage" (bytes that are not HTTP),
    "close" (close without a byte), "huge" (body of size bytes, with or
    without a Content-Length)."""

    def __init__(self, status=200, body=b"", headers=None, kind="ok", delay=0.0, size=0,
                 length=True):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode()
        self.headers = dict(headers or {})
        self.kind = kind
        self.delay = delay
        self.size = size
        self.length = length


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self):
        srv = self.server.fixture
        path = self.path.split("?", 1)[0]
        n = int(self.headers.get("Content-Length") or 0)
        body_in = self.rfile.read(n) if n else b""
        with srv.lock:
            srv.counts[path] = srv.counts.get(path, 0) + 1
            srv.requests.append((self.command, path, dict(self.headers), body_in))
            route = srv.routes.get(path)
        if route is None:
            route = Route(404, b"not found")
        if route.kind == "slow":
            time.sleep(route.delay)
        if route.kind == "garbage":
            self.wfile.write(b"this is not HTTP at all\r\n\r\n" * 4)
            self.close_connection = True
            return
        if route.kind == "close":
            self.close_connection = True
            return
        if route.kind == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if route.length:
                self.send_header("Content-Length", str(route.size))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            chunk = b"x" * 65536
            left = route.size
            try:
                while left > 0:
                    self.wfile.write(chunk[:left])
                    left -= min(left, len(chunk))
            except OSError:
                pass  # the client aborted: expected
            return
        body = route.body if route.kind != "echo" else body_in
        self.send_response(route.status)
        for k, v in route.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        # One request per connection: a server closed by a test is down at
        # once, not still answering on a kept-alive connection.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()


class _Server(http.server.ThreadingHTTPServer):
    # Many connections at once (tokend's discovery of a dozen IdPs): the
    # default backlog of 5 drops SYNs, and a retransmitted SYN comes a second
    # later, past a short connect timeout.
    request_queue_size = 64

    def handle_error(self, request, client_address):
        pass  # aborted transfers (the cap, timeouts) are what the tests provoke


class FixtureServer:
    def __init__(self, tls_context=None):
        self.routes = {}
        self.counts = {}
        self.requests = []
        self.lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fixture = self
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls_context is not None else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def set(self, path, route):
        with self.lock:
            self.routes[path] = route

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port():
    """A loopback port nothing listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run(argv):
    p = subprocess.run(argv, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(argv), p.stderr.decode(errors="replace")))


class TestCA:
    """A CA (ca.pem) and certificates it signs, in folder."""

    def __init__(self, folder, name="ca"):
        self.folder = folder
        self.key = os.path.join(folder, name + ".key")
        self.cert = os.path.join(folder, name + ".pem")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
              "-subj", "/CN=tokend test CA " + name,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def server_cert(self, name, san="IP:127.0.0.1"):
        key = os.path.join(self.folder, name + ".key")
        csr = os.path.join(self.folder, name + ".csr")
        crt = os.path.join(self.folder, name + ".pem")
        ext = os.path.join(self.folder, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n" % san)
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name])
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
              "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
        return crt, key

    def context(self, name, san="IP:127.0.0.1"):
        crt, key = self.server_cert(name, san)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        return ctx
