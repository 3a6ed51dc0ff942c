"""Findings of the adversarial review of the edge (forward-auth, HTTP):
one class per finding, each test failing on the code before its fix."""

import shutil
import unittest

import harness as h
from test_forward_auth import write_resources

h.require_binaries()

WIKI = "https://wiki.test/"


class ForwardAuthMethodCase(h.TokenAsserts, unittest.TestCase):
    """HTTP methods are case-sensitive (RFC 9110 §9.1), but upstreams differ:
    Django and Werkzeug upper-case the method, Go and nginx do not. A proxy
    that forwards "delete" (Traefik over Go accepts it) would get only the
    "*" rule (or none) from tokend while the upstream runs its DELETE
    handler. tokend refuses a method it cannot read unambiguously (400),
    as it does for paths servers read differently."""

    resources = {"resources": [
        {"resource": WIKI,
         "required_scopes": {"*": ["wiki:read"], "DELETE": ["wiki:admin"],
                             "POST": ["wiki:write"]}},
    ]}

    @classmethod
    def setUpClass(cls):
        cls.res_dir, path = write_resources(cls.resources)
        cls.addClassCleanup(shutil.rmtree, cls.res_dir, True)
        cls.d = h.start_daemon(("--resources", path, "--issuer", "https://as.test"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        d = cls.d
        agent = d.add_client("agent", "wiki-agent", scope="wiki:read wiki:write wiki:admin")
        sid = d.new_session("alice")
        cls.read = d.issue(sid, agent, "wiki:read", aud=WIKI)["access_token"]
        cls.admin = d.issue(sid, agent, "wiki:read wiki:admin", aud=WIKI)["access_token"]

    def auth(self, token, method, envoy=False):
        hdrs = {"Authorization": "Bearer " + token, "X-Forwarded-Host": "wiki.test"}
        if envoy:  # the original method is the /auth request's own
            return self.d.raw(("%s /auth/page HTTP/1.1\r\nHost: wiki.test\r\n"
                               "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                               % (method, token)).encode())
        hdrs["X-Forwarded-Uri"] = "/page"
        hdrs["X-Forwarded-Method"] = method
        return self.d.request("GET", "/auth", headers=hdrs)

    def test_exact_methods_still_decided(self):
        self.assertEqual(self.auth(self.read, "GET").status, 200)
        self.assertEqual(self.auth(self.read, "DELETE").status, 403)
        self.assertEqual(self.auth(self.admin, "DELETE").status, 200)
        self.assertEqual(self.auth(self.read, "PROPFIND").status, 200)  # the "*" rule
        self.assertEqual(self.auth(self.read, "M-SEARCH").status, 200)

    def test_other_case_never_gets_a_weaker_rule(self):
        for method in ("delete", "Delete", "dELETE", "post", "Post", "get", "propfind"):
            for envoy in (False, True):
                with self.subTest(method=method, envoy=envoy):
                    r = self.auth(self.read, method, envoy)
                    self.assertEqual(r.status, 400, r)
                    self.assertIsNone(r.header("x-auth-subject"))


class ForwardAuthOriginalUrlFragment(h.TokenAsserts, unittest.TestCase):
    """A '#' in X-Forwarded-Uri is refused (400), but X-Original-URL
    "https://wiki.test#/admin" was read as host wiki.test, path "/", and
    matched the wiki (200 for a wiki:read token) instead of being refused:
    a fragment is refused in every header that carries the original URI."""

    resources = {"resources": [
        {"resource": WIKI, "required_scopes": {"*": ["wiki:read"]}},
        {"resource": "https://wiki.test/admin", "path_prefix": "/admin",
         "required_scopes": {"*": ["wiki:admin"]}},
    ]}

    @classmethod
    def setUpClass(cls):
        cls.res_dir, path = write_resources(cls.resources)
        cls.addClassCleanup(shutil.rmtree, cls.res_dir, True)
        cls.d = h.start_daemon(("--resources", path, "--issuer", "https://as.test"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        agent = cls.d.add_client("agent", "wiki-agent", scope="wiki:read")
        sid = cls.d.new_session("alice")
        cls.read = cls.d.issue(sid, agent, "wiki:read", aud=WIKI)["access_token"]

    def auth(self, **hdrs):
        hdrs["Authorization"] = "Bearer " + self.read
        return self.d.request("GET", "/auth", headers={k.replace("_", "-"): v
                                                       for k, v in hdrs.items()})

    def test_plain_urls_still_decided(self):
        self.assertEqual(self.auth(X_Original_URL="https://wiki.test/page").status, 200)
        self.assertEqual(self.auth(X_Original_URL="https://wiki.test").status, 200)
        self.assertEqual(self.auth(X_Original_URL="https://wiki.test?/admin").status, 200)
        self.assertEqual(self.auth(X_Original_URL="https://wiki.test/admin").status, 401)

    def test_fragment_refused_everywhere(self):
        for url in ("https://wiki.test#/admin", "https://wiki.test#", "https://wiki.test/#x",
                    "https://wiki.test/page#/../admin"):
            with self.subTest(url=url):
                r = self.auth(X_Original_URL=url)
                self.assertEqual(r.status, 400, r)
                self.assertIsNone(r.header("x-auth-subject"))
        r = self.auth(X_Forwarded_Host="wiki.test", X_Forwarded_Uri="/page#/../admin")
        self.assertEqual(r.status, 400, r)


class ForwardAuthPathCase(h.TokenAsserts, unittest.TestCase):
    """Prefixes were compared byte for byte, so "/ADMIN/x" beside a
    resource at "/admin" matched the wiki root instead: a wiki:read token
    got 200, and an upstream that routes case-insensitively (Express by
    default, IIS, ASP.NET) served /admin/x. A path whose case-folded match
    differs from its exact one is refused (400); paths that fold to the
    same resource are decided as before."""

    resources = {"resources": [
        {"resource": WIKI, "required_scopes": {"*": ["wiki:read"]}},
        {"resource": "https://wiki.test/admin", "path_prefix": "/admin",
         "required_scopes": {"*": ["wiki:admin"]}},
    ]}

    @classmethod
    def setUpClass(cls):
        cls.res_dir, path = write_resources(cls.resources)
        cls.addClassCleanup(shutil.rmtree, cls.res_dir, True)
        cls.d = h.start_daemon(("--resources", path, "--issuer", "https://as.test"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        d = cls.d
        agent = d.add_client("agent", "wiki-agent", scope="wiki:read wiki:admin")
        sid = d.new_session("alice")
        cls.read = d.issue(sid, agent, "wiki:read", aud=WIKI)["access_token"]

    def auth(self, uri):
        return self.d.request("GET", "/auth", headers={
            "Authorization": "Bearer " + self.read, "X-Forwarded-Host": "wiki.test",
            "X-Forwarded-Uri": uri, "X-Forwarded-Method": "GET"})

    def test_plain_paths_still_decided(self):
        self.assertEqual(self.auth("/page").status, 200)
        self.assertEqual(self.auth("/Page/Other").status, 200)  # folds to the wiki too
        self.assertEqual(self.auth("/admin/x").status, 401)     # the admin resource's audience
        self.assertEqual(self.auth("/administrator").status, 200)  # not under /admin

    def test_other_case_of_a_protected_prefix_refused(self):
        for uri in ("/ADMIN/x", "/Admin", "/aDmIn/users", "/ADMIN"):
            with self.subTest(uri=uri):
                r = self.auth(uri)
                self.assertEqual(r.status, 400, r)
                self.assertIsNone(r.header("x-auth-subject"))


if __name__ == "__main__":
    unittest.main()
