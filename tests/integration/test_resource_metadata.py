"""RFC 9728 protected-resource metadata and the RFC 8414 protected_resources
member, against the real daemon: path insertion (§3.1), `resource` exactly
the identifier (§3.3), the members, host selection, and 404/405/HEAD."""

import json
import os
import shutil
import tempfile
import unittest

import harness as h

h.require_binaries()

ISSUER = "https://as.test"
RESOURCES = {
    "resources": [
        {"resource": "https://wiki.test/", "name": "Wiki",
         "scopes_supported": ["wiki:read", "wiki:write"]},
        {"resource": "https://api.test", "name": "API root"},
        {"resource": "https://api.test/mcp", "path_prefix": "/mcp", "name": "MCP \"tools\""},
        {"resource": "https://api.test/v1/", "path_prefix": "/v1/"},
    ]
}
WK = "/.well-known/oauth-protected-resource"


class Metadata(h.TokenAsserts, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.res_dir = tempfile.mkdtemp(prefix="tokend-res-")
        cls.addClassCleanup(shutil.rmtree, cls.res_dir, True)
        path = os.path.join(cls.res_dir, "resources.json")
        with open(path, "w") as f:
            json.dump(RESOURCES, f)
        cls.d = h.start_daemon(("--resources", path, "--issuer", ISSUER))
        cls.addClassCleanup(h.destroy_daemon, cls.d)

    def get(self, path, host=None, method="GET"):
        hdrs = {"X-Forwarded-Host": host} if host else None
        return self.d.request(method, path, headers=hdrs)

    def test_document_members(self):
        r = self.get(WK + "/mcp")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.json(), {
            "resource": "https://api.test/mcp",
            "authorization_servers": [ISSUER],
            "bearer_methods_supported": ["header"],
            "resource_name": 'MCP "tools"',
        })
        j = self.get(WK, host="wiki.test").json()
        self.assertEqual(j["resource"], "https://wiki.test/")  # exactly, trailing slash kept
        self.assertEqual(j["scopes_supported"], ["wiki:read", "wiki:write"])
        self.assertEqual(j["resource_name"], "Wiki")

    def test_trailing_slash_path_is_kept(self):
        j = self.get(WK + "/v1/").json()
        self.assertEqual(j["resource"], "https://api.test/v1/")
        self.assertNotIn("scopes_supported", j)  # omitted, not an empty array
        self.assertNotIn("resource_name", j)
        self.assertEqual(self.get(WK + "/v1").status, 404)

    def test_host_selects_among_root_resources(self):
        self.assertEqual(self.get(WK, host="API.test").json()["resource"], "https://api.test")
        self.assertEqual(self.get(WK, host="wiki.test").json()["resource"], "https://wiki.test/")
        # Without X-Forwarded-Host the Host header decides.
        r = self.d.raw(("GET %s HTTP/1.1\r\nHost: api.test\r\n\r\n" % WK).encode())
        self.assertEqual(r.json()["resource"], "https://api.test")
        self.assertEqual(self.get(WK).status, 404)  # Host 127.0.0.1: ambiguous
        self.assertEqual(self.get(WK, host="other.test").status, 404)

    def test_host_is_compared_normalised(self):
        # Case, one trailing dot and the https default port name the same host.
        for host in ("API.test.", "api.test:443", "Api.Test.:0443"):
            self.assertEqual(self.get(WK, host=host).json()["resource"], "https://api.test", host)
        for host in ("api.test:8443", "api%2etest", "api.test..", "api..test"):
            self.assertEqual(self.get(WK, host=host).status, 404, host)

    def test_challenge_points_at_the_served_document(self):
        r = self.d.request("GET", "/auth", headers={"X-Forwarded-Host": "api.test",
                                                    "X-Forwarded-Uri": "/mcp/x"})
        self.assertEqual(r.status, 401)
        url = r.header("www-authenticate").split('resource_metadata="')[1].rstrip('"')
        self.assertEqual(url, "https://api.test" + WK + "/mcp")
        self.assertEqual(self.get(WK + "/mcp").json()["resource"], "https://api.test/mcp")

    def test_not_found_method_and_head(self):
        self.assertEqual(self.get(WK + "/nope").status, 404)
        self.assertEqual(self.get(WK + "x").status, 404)  # not under the well-known path
        r = self.get(WK + "/mcp", method="POST")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "GET, HEAD")
        r = self.d.request("HEAD", WK + "/mcp")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertGreater(int(r.header("content-length")), 0)

    def test_as_metadata_lists_protected_resources(self):
        j = self.get("/.well-known/oauth-authorization-server").json()
        self.assertEqual(j["issuer"], ISSUER)
        self.assertEqual(j["protected_resources"],
                         [x["resource"] for x in RESOURCES["resources"]])

    def test_metrics_count_the_endpoint(self):
        self.get(WK + "/mcp")
        text = self.d.metrics_text()
        self.assertIn('tokend_requests_total{endpoint="resource_metadata",status="200"}', text)


class WithoutResources(h.DaemonCase):
    with_world = False

    def test_no_protected_resources_member(self):
        j = self.d.request("GET", "/.well-known/oauth-authorization-server").json()
        self.assertNotIn("protected_resources", j)
        self.assertEqual(self.d.request("GET", WK).status, 404)
        self.assertEqual(self.d.request("GET", WK + "/x").status, 404)


if __name__ == "__main__":
    unittest.main()
