"""Interop: nginx (tools/proxy/nginx.conf as shipped) on a non-default port in
front of a resource whose identifier carries that port (issue 11 §7).

tokend matches a resource identifier with a port only on that port, a
request without one counting as 443. nginx's `$host` drops the port, so a
config sending `X-Forwarded-Host $host` makes tokend look up 127.0.0.1:443:
here that finds the decoy resource https://127.0.0.1/ (wrong challenge,
wrong metadata, a token for the real resource refused) instead of
https://127.0.0.1:PORT/. The shipped config sends `$http_host`, port kept.
Each test asserts what only the right resource gives."""

import json
import os
import re
import shutil
import sys
import tempfile
import unittest

import harness as h
import proxies

h.require_binaries()
if not shutil.which("nginx") and not os.access("/usr/sbin/nginx", os.X_OK):
    sys.stderr.write("skipped: nginx is not installed (tools/test installs it)\n")
    sys.exit(77)

WK = "/.well-known/oauth-protected-resource"


def challenge_params(value):
    """The auth-params of one Bearer challenge as a dict (quoted values)."""
    if not value or not value.startswith("Bearer "):
        raise AssertionError("not a Bearer challenge: %r" % value)
    return dict(re.findall(r'([A-Za-z_]+)="([^"]*)"', value))


class NginxNonDefaultPort(h.TokenAsserts, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.port = proxies.free_port()
        cls.resource = "https://127.0.0.1:%d/" % cls.port
        cls.md_url = "https://127.0.0.1:%d%s" % (cls.port, WK)
        res = {
            "trusted_headers": ["X-Forwarded-Method", "X-Forwarded-Host", "X-Forwarded-Uri",
                                "X-Original-URI"],
            "identity_headers": {"subject": "X-Auth-Subject", "client": "X-Auth-Client",
                                 "scope": "X-Auth-Scope", "session": "X-Auth-Session",
                                 "actor": "X-Auth-Actor"},
            "resources": [
                {"resource": cls.resource, "name": "App on its own port", "realm": "app",
                 "scopes_supported": ["app:read", "app:write"],
                 "required_scopes": {"GET": ["app:read"], "*": ["app:write"]}},
                # Where a port-less X-Forwarded-Host (nginx's $host) would land.
                {"resource": "https://127.0.0.1/", "name": "Decoy on 443", "realm": "decoy",
                 "scopes_supported": ["decoy:read"], "required_scopes": {"*": ["decoy:read"]}},
            ],
        }
        cls.tmp = tempfile.mkdtemp(prefix="tokend-nginx-port-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        path = os.path.join(cls.tmp, "resources.json")
        with open(path, "w") as f:
            json.dump(res, f)
        cls.d = h.start_daemon(("--resources", path))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.app = proxies.Upstream()
        cls.addClassCleanup(cls.app.stop)
        cls.proxy = proxies.start_nginx(cls.d.port, cls.app.port, port=cls.port)
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
        return "%r\nnginx log:\n%s\ntokend log:\n%s" % (r, self.proxy.log(), self.d.stderr(4000))

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
        hd = proxies.headers_of(r.json())
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


if __name__ == "__main__":
    unittest.main()
