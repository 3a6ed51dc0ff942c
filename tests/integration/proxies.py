"""Interop fixtures: a real edge proxy (Debian's nginx or Caddy) between a test
client and a small upstream, asking the real tokend through forward-auth.

The proxy configurations are the ones shipped in tools/proxy/, with only the
addresses rewritten to ephemeral ports, so the tests prove the documented
configs. Every process runs from a temporary folder on 127.0.0.1 and is
stopped by the test (never the system service). The upstream is a Python
http.server thread that answers every request with what it received.
"""

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness as h

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY_DIR = os.path.join(ROOT, "tools", "proxy")
RESOURCES = os.path.join(PROXY_DIR, "resources.example.json")
SITE = "wiki.example.com"
RESOURCE = "https://wiki.example.com/"
MD_URL = "https://wiki.example.com/.well-known/oauth-protected-resource"
# The IdP the test user signed in at (tokenctl session create --idp-iss).
IDP_ISS = "https://sso.example.com/realms/staff"


def wait_port(port, proc, what, log_path, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited %s:\n%s" % (what, proc.returncode, read(log_path)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("%s did not listen on %d:\n%s" % (what, port, read(log_path)))


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()[-8000:].decode("utf-8", "replace")
    except OSError:
        return ""


# ---- The upstream application ---------------------------------------------------


class Upstream:
    """Echoes each request (method, path, headers) as JSON and keeps a log."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                rec = {"method": self.command, "path": self.path,
                       "headers": [[k.lower(), v] for k, v in self.headers.items()]}
                seen.append(rec)
                body = json.dumps(rec).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def headers_of(rec):
    out = {}
    for k, v in rec["headers"]:
        out.setdefault(k, []).append(v)
    return out


# ---- Proxies ---------------------------------------------------------------------------


class Proxy:
    """A proxy process in its own temporary folder."""

    def __init__(self, argv, tmp, port, log_path, env=None, name="proxy"):
        self.tmp, self.port, self.log_path, self.name = tmp, port, log_path, name
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, env=env, cwd=tmp,
                                     preexec_fn=h._die_with_parent)
        try:
            wait_port(port, self.proc, name, log_path)
        except BaseException:
            self.stop()
            raise

    def log(self):
        return read(self.log_path)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def shipped(name):
    with open(os.path.join(PROXY_DIR, name)) as f:
        return f.read()


def render(text, listen_port, tokend_port, app_port):
    """The shipped config with the addresses replaced."""
    text = text.replace("127.0.0.1:7662", "127.0.0.1:%d" % tokend_port)
    text = text.replace("127.0.0.1:8080", "127.0.0.1:%d" % app_port)
    return text.replace("@LISTEN@", str(listen_port))


def start_nginx(tokend_port, app_port, port=None, conf_text=None, tls_ca=None):
    """nginx with the shipped config (or conf_text, a variant of it) on
    port (default: a free one). tls_ca: tokend_port is a TLS listener; nginx
    talks https to it and verifies its certificate against tls_ca
    (proxy_ssl_verify on)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = tempfile.mkdtemp(prefix="tokend-nginx-")
    port = port or h.free_port()
    snippet = (conf_text or shipped("nginx.conf")).replace("listen 80;",
                                                          "listen 127.0.0.1:@LISTEN@;")
    snippet = render(snippet, port, tokend_port, app_port)
    if tls_ca is not None:
        snippet = snippet.replace("proxy_pass http://tokend", "proxy_pass https://tokend")
        snippet = snippet.replace("    server_name wiki.example.com;\n", """    server_name wiki.example.com;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate %s;
    proxy_ssl_name localhost;
    proxy_ssl_server_name on;
    proxy_ssl_session_reuse on;
    proxy_ssl_protocols TLSv1.2 TLSv1.3;
""" % tls_ca)
        assert snippet.count("https://tokend") == 2 and "proxy_ssl_verify on" in snippet
    conf = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{snippet}
}}
""".format(tmp=tmp, snippet=snippet)
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    log = os.path.join(tmp, "stderr.log")
    return Proxy([nginx, "-p", tmp, "-c", path, "-e", os.path.join(tmp, "error.log")],
                 tmp, port, log, name="nginx")


def start_caddy(tokend_port, app_port, port=None, site_host=SITE):
    """Caddy with the shipped Caddyfile on port (default: a free one), its
    site renamed to http://site_host:port."""
    caddy = shutil.which("caddy")
    tmp = tempfile.mkdtemp(prefix="tokend-caddy-")
    port = port or h.free_port()
    site = shipped("Caddyfile").replace(SITE + " {", "http://%s:@LISTEN@ {" % site_host)
    site = render(site, port, tokend_port, app_port)
    conf = "{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n\n" + site
    path = os.path.join(tmp, "Caddyfile")
    with open(path, "w") as f:
        f.write(conf)
    env = dict(os.environ, HOME=tmp, XDG_DATA_HOME=tmp, XDG_CONFIG_HOME=tmp)
    log = os.path.join(tmp, "stderr.log")
    return Proxy([caddy, "run", "--config", path, "--adapter", "caddyfile"], tmp, port, log,
                 env=env, name="caddy")


# ---- The shared test ----------------------------------------------------------------------


class ProxyFlow(h.TokenAsserts):
    """Mixed into a unittest.TestCase with start_proxy(tokend_port, app_port)."""

    start_proxy = None
    tls = False  # the proxy reaches tokend over TLS, verifying its certificate

    @classmethod
    def setUpClass(cls):
        # The batch prefetch on (auto walks only large stores), so the real
        # proxy's subrequests go through the hint and the walker too.
        cls.d = h.start_daemon(("--resources", RESOURCES, "--prefetch", "on"), tls=cls.tls)
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.app = Upstream()
        cls.addClassCleanup(cls.app.stop)
        if cls.tls:
            cls.proxy = cls.start_proxy(cls.d.tls_port, cls.app.port,
                                        tls_ca=h.tls_material()["ca"])
        else:
            cls.proxy = cls.start_proxy(cls.d.port, cls.app.port)
        cls.addClassCleanup(cls.proxy.stop)
        d = cls.d
        cls.agent = d.add_client("agent", "interop-agent", scope="wiki:read wiki:write")
        # alice signed in at an IdP: the app learns which one (X-Auth-Issuer).
        cls.sid = d.ctl("session", "create", "--sub", "alice@example.com", "--idp-iss",
                        IDP_ISS)["sid"]
        cls.token = d.issue(cls.sid, cls.agent, "wiki:read", aud=RESOURCE)["access_token"]

    def send(self, method, path, token=None, headers=None):
        hdrs = {"Host": "%s:%d" % (SITE, self.proxy.port)}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % kv for kv in hdrs.items()]
        if method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        with h.Conn(self.proxy.port) as c:
            c.send(data)
            return c.read_response(head_request=(method == "HEAD"))

    def challenge(self, error=None, scope=None):
        if scope is None and error != "insufficient_scope":
            scope = "wiki:read wiki:write"  # a 401 names the scopes the resource offers
        parts = ['Bearer realm="wiki"']
        if error:
            parts.append('error="%s"' % error)
        if scope:
            parts.append('scope="%s"' % scope)
        parts.append('resource_metadata="%s"' % MD_URL)
        return ", ".join(parts)

    def assertDenied(self, r, status, **kw):
        msg = "%r\nproxy log:\n%s" % (r, self.proxy.log())
        self.assertEqual(r.status, status, msg)
        self.assertEqual(r.header_all("www-authenticate"), [self.challenge(**kw)], msg)

    def test_1_no_token_gets_tokend_challenge(self):
        before = len(self.app.seen)
        self.assertDenied(self.send("GET", "/"), 401)
        self.assertDenied(self.send("GET", "/page", headers={"X-Auth-Subject": "mallory"}), 401)
        self.assertEqual(len(self.app.seen), before, "the app must not be reached")

    def test_2_good_token_reaches_upstream_with_identity(self):
        r = self.send("GET", "/page?x=1", self.token,
                      headers={"X-Auth-Subject": "mallory", "X-Auth-Actor": "tkc_evil",
                               "X-Auth-Issuer": "https://evil.test"})
        self.assertEqual(r.status, 200, "%r\n%s" % (r, self.proxy.log()))
        self.assertIsNone(r.header("www-authenticate"))
        rec = r.json()
        self.assertEqual(rec["path"], "/page?x=1")
        hd = headers_of(rec)
        self.assertEqual(hd.get("x-auth-subject"), ["alice@example.com"], rec)
        self.assertEqual(hd.get("x-auth-client"), [self.agent.id], rec)
        self.assertEqual(hd.get("x-auth-scope"), ["wiki:read"], rec)
        self.assertEqual(hd.get("x-auth-session"), [self.sid], rec)
        self.assertEqual(hd.get("x-auth-issuer"), [IDP_ISS], rec)
        # Not delegated: no actor, and the agent's forged one never arrives.
        self.assertIn(hd.get("x-auth-actor"), (None, [""]), rec)
        self.assertNotIn("authorization", hd.get("x-auth-subject", [""])[0])

    def test_3_insufficient_scope(self):
        before = len(self.app.seen)
        self.assertDenied(self.send("POST", "/page", self.token), 403,
                          error="insufficient_scope", scope="wiki:write")
        self.assertEqual(len(self.app.seen), before)

    def test_4_metadata_through_the_proxy(self):
        r = self.send("GET", "/.well-known/oauth-protected-resource")
        self.assertEqual(r.status, 200, "%r\n%s" % (r, self.proxy.log()))
        j = r.json()
        self.assertEqual(j["resource"], RESOURCE)
        self.assertEqual(j["bearer_methods_supported"], ["header"])
        self.assertEqual(j["scopes_supported"], ["wiki:read", "wiki:write"])

    def test_5_session_end_denies_the_very_next_request(self):
        sid = self.d.new_session("bob@example.com")
        t = self.d.issue(sid, self.agent, "wiki:read", aud=RESOURCE)["access_token"]
        r = self.send("GET", "/", t, headers={"X-Auth-Issuer": IDP_ISS})
        self.assertEqual(r.status, 200)
        # A session without an IdP: no issuer reaches the app, not even a forged one.
        self.assertIn(headers_of(r.json()).get("x-auth-issuer"), (None, [""]), r.json())
        self.d.ctl("session", "terminate", sid, "--reason", "idp logout")
        self.assertDenied(self.send("GET", "/", t), 401, error="invalid_token")
        self.assertEqual(self.send("GET", "/", self.token).status, 200)  # alice is untouched

    def test_6_audit_sees_the_agent(self):
        self.assertEqual(self.send("GET", "/audit", self.token).status, 200)
        deadline = time.monotonic() + 10
        rows = []
        while time.monotonic() < deadline:
            rows = self.d.ctl("audit", "agents", "--client", self.agent.id)
            if rows and rows[0]["allowed"] >= 1:
                break
            time.sleep(0.2)
        self.assertEqual([r["resource"] for r in rows], [RESOURCE], rows)
        self.assertGreaterEqual(rows[0]["allowed"], 1)


    def test_6b_prefetch_walked_the_proxys_requests(self):
        """The proxy's own auth subrequests (its header order, its
        X-Forwarded-* set) are recognised by the batch hint over plain HTTP:
        their tokens are found in their leaves by the walker, and the
        answers are the ones the flows above assert."""
        self.assertEqual(self.send("GET", "/", self.token).status, 200)
        m = re.search(r'^tokend_prefetch_tokens_total\{result="found"\} (\d+)$',
                      self.d.metrics_text(), re.M)
        self.assertIsNotNone(m)
        if self.tls:
            self.assertEqual(int(m.group(1)), 0)  # TLS receives are never hinted
        else:
            self.assertGreater(int(m.group(1)), 0)

    def test_7_agent_cannot_choose_the_original_request(self):
        # A token for another resource, and headers naming that resource: the
        # proxy sets (or blanks) every original-request header itself.
        mcp = self.d.issue(self.sid, self.agent, "wiki:read",
                           aud="https://tools.example.com/mcp")["access_token"]
        forged = {"X-Forwarded-Host": "tools.example.com", "X-Forwarded-Uri": "/mcp",
                  "X-Original-URI": "/mcp", "X-Original-URL": "https://tools.example.com/mcp",
                  "X-Forwarded-Method": "GET"}
        before = len(self.app.seen)
        r = self.send("GET", "/page", mcp, headers=forged)
        self.assertEqual(r.status, 401, "%r\n%s" % (r, self.proxy.log()))
        self.assertEqual(len(self.app.seen), before)

    def test_8_delegated_token_actor_chain(self):
        helper = self.d.add_client("agent", "interop-helper", scope="wiki:read")
        child = self.d.issue(self.sid, helper, "wiki:read", parent=self.token)["access_token"]
        r = self.send("GET", "/delegated", child)
        self.assertEqual(r.status, 200, "%r\n%s" % (r, self.proxy.log()))
        hd = headers_of(r.json())
        self.assertEqual(hd.get("x-auth-client"), [helper.id])
        self.assertEqual(hd.get("x-auth-actor"), ["%s %s" % (helper.id, self.agent.id)])

    def test_9_client_identity_headers_never_reach_the_app(self):
        # Every spelling an app may read as an identity header: case, and '_'
        # for '-' (CGI/PHP/WSGI/Rack map both to HTTP_X_AUTH_SUBJECT).
        forged = {}
        for name in ("Subject", "Client", "Scope", "Session", "Actor", "Issuer"):
            for spelling in ("X_Auth_%s", "x-auth-%s", "X-AUTH-%s", "X_Auth-%s", "X-Auth_%s",
                             "x_auth_%s"):
                forged[spelling % (name.lower() if spelling[0] == "x" else name)] = "mallory"
        r = self.send("GET", "/forged", self.token, headers=forged)
        self.assertEqual(r.status, 200, "%r\n%s" % (r, self.proxy.log()))
        rec = r.json()
        seen = {}
        for k, v in rec["headers"]:
            norm = k.lower().replace("_", "-")
            if norm.startswith("x-auth-"):
                seen.setdefault(norm, []).append(v)
        self.assertNotIn("mallory", json.dumps(seen), rec)
        self.assertEqual(seen.get("x-auth-subject"), ["alice@example.com"], rec)
        self.assertEqual(seen.get("x-auth-client"), [self.agent.id], rec)
        self.assertEqual(seen.get("x-auth-scope"), ["wiki:read"], rec)
        self.assertEqual(seen.get("x-auth-session"), [self.sid], rec)
        self.assertIn(seen.get("x-auth-actor"), (None, [""]), rec)
        self.assertEqual(seen.get("x-auth-issuer"), [IDP_ISS], rec)
        self.assertEqual(set(seen) - {"x-auth-subject", "x-auth-client", "x-auth-scope",
                                      "x-auth-session", "x-auth-actor", "x-auth-issuer"}, set(),
                         rec)
        # Without a token nothing reaches the app at all.
        before = len(self.app.seen)
        self.assertDenied(self.send("GET", "/forged", headers=forged), 401)
        self.assertEqual(len(self.app.seen), before)

    def test_10_ambiguous_paths_never_reach_the_app(self):
        # tokend answers 400; Caddy passes it on, nginx's auth_request turns
        # any status but 2xx/401/403 into 500. Either way the app never sees it.
        before = len(self.app.seen)
        for uri in ("/page;jsessionid=x", "/x;y/../page", "/page%3bx", "/x%2F..%2Fpage",
                    "/x%5C..%5Cpage", "/%252e%252e/page", "/%C0%AE%C0%AE/page"):
            r = self.send("GET", uri, self.token)
            self.assertIn(r.status, (400, 500), "%s %r\n%s" % (uri, r, self.proxy.log()))
        self.assertEqual(len(self.app.seen), before)
        self.assertEqual(self.send("GET", "/page", self.token).status, 200)


# ---- A non-default port ------------------------------------------------------------------

WK = "/.well-known/oauth-protected-resource"


def challenge_params(value):
    """The auth-params of one Bearer challenge as a dict (quoted values)."""
    if not value or not value.startswith("Bearer "):
        raise AssertionError("not a Bearer challenge: %r" % value)
    return dict(re.findall(r'([A-Za-z_]+)="([^"]*)"', value))


class PortFlow(h.TokenAsserts):
    """A proxy on a non-default port in front of a resource whose identifier
    carries that port (issue 11 §7). tokend matches an identifier with a port
    only on that port, a request without one counting as 443: a proxy that
    drops the port from X-Forwarded-Host (nginx's $host) makes tokend look up
    127.0.0.1:443, which here is the decoy resource https://127.0.0.1/ (wrong
    challenge, wrong metadata, a token for the real resource refused). Mixed
    into a unittest.TestCase with start_proxy(tokend_port, app_port, port)."""

    start_proxy = None

    @classmethod
    def setUpClass(cls):
        cls.port = h.free_port()
        cls.resource = "https://127.0.0.1:%d/" % cls.port
        cls.md_url = "https://127.0.0.1:%d%s" % (cls.port, WK)
        res = {
            "trusted_headers": ["X-Forwarded-Method", "X-Forwarded-Host", "X-Forwarded-Uri",
                                "X-Original-URI"],
            "identity_headers": {"subject": "X-Auth-Subject", "client": "X-Auth-Client",
                                 "scope": "X-Auth-Scope", "session": "X-Auth-Session",
                                 "actor": "X-Auth-Actor", "issuer": "X-Auth-Issuer"},
            "resources": [
                {"resource": cls.resource, "name": "App on its own port", "realm": "app",
                 "scopes_supported": ["app:read", "app:write"],
                 "required_scopes": {"GET": ["app:read"], "*": ["app:write"]}},
                # Where a port-less X-Forwarded-Host (nginx's $host) would land.
                {"resource": "https://127.0.0.1/", "name": "Decoy on 443", "realm": "decoy",
                 "scopes_supported": ["decoy:read"], "required_scopes": {"*": ["decoy:read"]}},
            ],
        }
        cls.tmp = tempfile.mkdtemp(prefix="tokend-proxy-port-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        path = os.path.join(cls.tmp, "resources.json")
        with open(path, "w") as f:
            json.dump(res, f)
        cls.d = h.start_daemon(("--resources", path))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.app = Upstream()
        cls.addClassCleanup(cls.app.stop)
        cls.proxy = cls.start_proxy(cls.d.port, cls.app.port, cls.port)
        cls.addClassCleanup(cls.proxy.stop)
        cls.agent = cls.d.add_client("agent", "port-agent")
        cls.sid = cls.d.new_session("pat@example.com")

    def send(self, method, path, token=None):
        hdrs = {"Host": "127.0.0.1:%d" % self.port}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % kv for kv in hdrs.items()]
        with h.Conn(self.port) as c:
            c.send(("\r\n".join(lines) + "\r\n\r\n").encode())
            return c.read_response()

    def msg(self, r):
        return "%r\nproxy log:\n%s\ntokend log:\n%s" % (r, self.proxy.log(), self.d.stderr(4000))

    def test_challenge_points_at_the_port_resource_metadata(self):
        before = len(self.app.seen)
        r = self.send("GET", "/page")
        self.assertEqual(r.status, 401, self.msg(r))
        chs = r.header_all("www-authenticate")
        self.assertEqual(len(chs), 1, self.msg(r))
        p = challenge_params(chs[0])
        self.assertEqual(p.get("realm"), "app", self.msg(r))
        self.assertEqual(p.get("resource_metadata"), self.md_url, self.msg(r))
        self.assertEqual(len(self.app.seen), before, "the app must not be reached")

    def test_metadata_through_nginx_names_the_port_resource(self):
        r = self.send("GET", WK)
        self.assertEqual(r.status, 200, self.msg(r))
        j = r.json()
        self.assertEqual(j["resource"], self.resource, j)
        self.assertEqual(j["scopes_supported"], ["app:read", "app:write"], j)
        self.assertEqual(j["authorization_servers"], ["http://127.0.0.1:%d" % self.d.port], j)
        self.assertEqual(j["bearer_methods_supported"], ["header"], j)

    def test_token_for_the_port_resource_passes(self):
        tok = self.d.issue(self.sid, self.agent, "app:read", aud=self.resource)["access_token"]
        r = self.send("GET", "/page", tok)
        self.assertEqual(r.status, 200, self.msg(r))
        hd = headers_of(r.json())
        self.assertEqual(hd.get("x-auth-subject"), ["pat@example.com"], r.json())
        self.assertEqual(hd.get("x-auth-client"), [self.agent.id], r.json())
        # Scope rules are the port resource's: a write needs app:write.
        r = self.send("POST", "/page", tok)
        self.assertEqual(r.status, 403, self.msg(r))
        p = challenge_params(r.header("www-authenticate"))
        self.assertEqual((p.get("error"), p.get("scope")), ("insufficient_scope", "app:write"))
        self.assertEqual(p.get("resource_metadata"), self.md_url, self.msg(r))

    def test_token_for_the_default_port_resource_is_refused(self):
        tok = self.d.issue(self.sid, self.agent, "decoy:read",
                           aud="https://127.0.0.1/")["access_token"]
        before = len(self.app.seen)
        r = self.send("GET", "/page", tok)
        self.assertEqual(r.status, 401, self.msg(r))
        p = challenge_params(r.header("www-authenticate"))
        self.assertEqual(p.get("error"), "invalid_token", self.msg(r))
        self.assertEqual(p.get("resource_metadata"), self.md_url, self.msg(r))
        self.assertEqual(len(self.app.seen), before)

