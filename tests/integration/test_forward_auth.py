"""Forward-auth (/auth) against the real daemon: every answer an edge proxy can
get (missing, inactive, wrong audience, insufficient scope, good token), the
identity headers, how the original request is read from proxy headers, the
resource match order, and the agent access audit (tokenctl + /metrics)."""

import json
import os
import re
import shutil
import tempfile
import time
import unittest

import harness as h

h.require_binaries()

WIKI = "https://wiki.test/"
ADMIN = "https://wiki.test/admin"
MCP = "https://api.test/mcp"
ANY = "https://any.test/"

RESOURCES = {
    "resources": [
        {"resource": WIKI, "name": "Wiki", "realm": "wiki",
         "scopes_supported": ["wiki:read", "wiki:write"],
         "required_scopes": {"GET": ["wiki:read"], "*": ["wiki:write"]}},
        {"resource": ADMIN, "path_prefix": "/admin",
         "required_scopes": {"*": ["wiki:admin"]}},
        {"resource": MCP, "path_prefix": "/mcp", "name": "MCP server",
         "identity_headers": {"subject": "X-User", "issuer": "X-Idp"}},
        {"resource": ANY, "host": "*", "path_prefix": "/shared"},
    ]
}


def md_url(resource):
    """RFC 9728 §3.1: the well-known segment between host and path."""
    m = re.match(r"^(https://[^/]+)(/.*)?$", resource)
    path = m.group(2) or ""
    if path == "/":
        path = ""
    return m.group(1) + "/.well-known/oauth-protected-resource" + path


# The scopes a resource offers: its 401 challenges name them (scope="…").
OFFERED = {WIKI: "wiki:read wiki:write"}


def challenge(resource, realm="tokend", error=None, scope=None):
    if scope is None and error != "insufficient_scope":
        scope = OFFERED.get(resource)
    parts = ['Bearer realm="%s"' % realm]
    if error:
        parts.append('error="%s"' % error)
    if scope:
        parts.append('scope="%s"' % scope)
    parts.append('resource_metadata="%s"' % md_url(resource))
    return ", ".join(parts)


def write_resources(obj):
    d = tempfile.mkdtemp(prefix="tokend-res-")
    path = os.path.join(d, "resources.json")
    with open(path, "w") as f:
        json.dump(obj, f)
    return d, path


class ForwardAuthBase(h.TokenAsserts, unittest.TestCase):
    resources = RESOURCES

    @classmethod
    def setUpClass(cls):
        cls.res_dir, path = write_resources(cls.resources)
        cls.addClassCleanup(shutil.rmtree, cls.res_dir, True)
        cls.d = h.start_daemon(("--resources", path, "--issuer", "https://as.test"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.w = h.World(cls.d)
        d = cls.d
        cls.agent = d.add_client("agent", "wiki-agent",
                                 scope="wiki:read wiki:write wiki:admin read write")
        cls.sid = d.new_session("alice")
        cls.read = d.issue(cls.sid, cls.agent, "wiki:read", aud=WIKI)["access_token"]
        cls.write = d.issue(cls.sid, cls.agent, "wiki:read wiki:write", aud=WIKI)["access_token"]

    def auth(self, token=None, host="wiki.test", uri="/page", method=None, path="/auth",
             http_method="GET", extra=None, authorization=None):
        hdrs = {}
        if host is not None:
            hdrs["X-Forwarded-Host"] = host
        if uri is not None:
            hdrs["X-Forwarded-Uri"] = uri
        if method is not None:
            hdrs["X-Forwarded-Method"] = method
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if authorization is not None:
            hdrs["Authorization"] = authorization
        hdrs.update(extra or {})
        return self.d.request(http_method, path, headers=hdrs)

    def assertAdmin(self, r):
        """Matched to the admin resource: a wiki token has the wrong audience there."""
        self.assertChallenge(r, 401, ADMIN, error="invalid_token")

    def assertChallenge(self, r, status, resource, **kw):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("www-authenticate"), challenge(resource, **kw), r)
        self.assertEqual(r.header("cache-control"), "no-store")
        self.assertIsNone(r.header("x-auth-subject"))


class Decisions(ForwardAuthBase):

    def test_missing_token_has_no_error_code(self):
        r = self.auth()
        self.assertChallenge(r, 401, WIKI, realm="wiki")
        self.assertEqual(r.body, b"")

    def test_other_scheme_counts_as_missing(self):
        r = self.auth(authorization=self.w.rs.basic())
        self.assertChallenge(r, 401, WIKI, realm="wiki")

    def test_unknown_and_malformed_tokens_are_invalid(self):
        for tok in ("tkd_at_" + "A" * 43, "x", "a" * 600):
            self.assertChallenge(self.auth(tok), 401, WIKI, realm="wiki", error="invalid_token")
        for bad in ("Bearer a b", "Bearer ", "Bearer  tok", "Bearer t\u00e9"):
            r = self.auth(authorization=bad)
            self.assertChallenge(r, 401, WIKI, realm="wiki", error="invalid_token")

    def test_good_token_identity_headers(self):
        r = self.auth(self.read)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("cache-control"), "no-store")
        self.assertIsNone(r.header("www-authenticate"))
        self.assertEqual(r.header("x-auth-subject"), "alice")
        self.assertEqual(r.header("x-auth-client"), self.agent.id)
        self.assertEqual(r.header("x-auth-scope"), "wiki:read")
        self.assertEqual(r.header("x-auth-session"), self.sid)
        self.assertEqual(r.header_all("x-auth-actor"), [""])  # sent empty: overwrites a forged one
        # A session without an IdP (tokenctl, dev login): the issuer is sent
        # empty, so a proxy that copies it overwrites a forged one too.
        self.assertEqual(r.header_all("x-auth-issuer"), [""])

    def test_insufficient_scope(self):
        r = self.auth(self.read, method="POST")
        self.assertChallenge(r, 403, WIKI, realm="wiki", error="insufficient_scope",
                             scope="wiki:write")
        self.assertEqual(self.auth(self.write, method="POST").status, 200)
        # HEAD has no rule of its own: the GET rule applies.
        self.assertEqual(self.auth(self.read, method="HEAD").status, 200)
        # Methods are case-sensitive, but upstreams that upper-case them
        # exist: "get" is refused as ambiguous (test_review_edge).
        self.assertEqual(self.auth(self.read, method="get").status, 400)

    def test_method_defaults_to_the_request_method(self):
        # nginx's auth_request subrequest keeps the original method.
        r = self.auth(self.read, http_method="DELETE")
        self.assertEqual(r.status, 403, r)
        r = self.auth(self.write, http_method="POST")
        self.assertEqual(r.status, 200, r)

    def test_wrong_audience(self):
        other = self.d.issue(self.sid, self.agent, "wiki:read", aud=MCP)["access_token"]
        self.assertChallenge(self.auth(other), 401, WIKI, realm="wiki", error="invalid_token")
        r = self.auth(other, host="api.test", uri="/mcp")
        self.assertEqual(r.status, 200, r)
        none = self.d.issue(self.sid, self.agent, "wiki:read")["access_token"]
        self.assertChallenge(self.auth(none), 401, WIKI, realm="wiki", error="invalid_token")
        # The token works for /introspect all the same (no audience restriction there).
        self.assertActive(none)

    def test_refresh_token_is_not_a_bearer_token(self):
        t = self.d.issue(self.sid, self.agent, "wiki:read", aud=WIKI, refresh=True)
        self.assertEqual(self.auth(t["access_token"]).status, 200)
        self.assertChallenge(self.auth(t["refresh_token"]), 401, WIKI, realm="wiki",
                             error="invalid_token")

    def test_revoked_expired_and_not_yet_valid(self):
        t = self.d.issue(self.sid, self.agent, "wiki:read", aud=WIKI)["access_token"]
        self.assertEqual(self.auth(t).status, 200)
        self.assertEqual(self.d.revoke(t, auth=self.agent).status, 200)
        self.assertChallenge(self.auth(t), 401, WIKI, realm="wiki", error="invalid_token")
        later = self.d.issue(self.sid, self.agent, "wiki:read", aud=WIKI, nbf_in=600)
        self.assertChallenge(self.auth(later["access_token"]), 401, WIKI, realm="wiki",
                             error="invalid_token")

    def test_session_end_is_seen_by_the_next_request(self):
        sid = self.d.new_session("bob")
        t = self.d.issue(sid, self.agent, "wiki:read", aud=WIKI)["access_token"]
        with self.d.conn() as c:
            hdrs = {"X-Forwarded-Host": "wiki.test", "X-Forwarded-Uri": "/",
                    "Authorization": "Bearer " + t}
            self.assertEqual(c.request("GET", "/auth", headers=hdrs).status, 200)
            self.d.ctl("session", "terminate", sid)
            r = c.request("GET", "/auth", headers=hdrs)
            self.assertEqual(r.status, 401, r)
            self.assertIn('error="invalid_token"', r.header("www-authenticate"))

    def test_delegated_token_actor_chain(self):
        helper = self.d.add_client("agent", "helper", scope="wiki:read")
        child = self.d.issue(self.sid, helper, "wiki:read", parent=self.read)["access_token"]
        r = self.auth(child)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-auth-client"), helper.id)
        self.assertEqual(r.header("x-auth-actor"), "%s %s" % (helper.id, self.agent.id))
        self.assertEqual(r.header("x-auth-subject"), "alice")

    def test_identity_values_are_percent_encoded(self):
        sid = self.d.new_session("jos\u00e9 100%")
        t = self.d.issue(sid, self.agent, "wiki:read", aud=WIKI)["access_token"]
        r = self.auth(t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-auth-subject"), "jos%C3%A9 100%25")

    def test_per_resource_header_names(self):
        t = self.d.issue(self.sid, self.agent, "read", aud=MCP)["access_token"]
        r = self.auth(t, host="api.test", uri="/mcp/tools")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-user"), "alice")
        self.assertIsNone(r.header("x-auth-subject"))
        self.assertEqual(r.header("x-auth-client"), self.agent.id)

    def test_issuer_names_the_users_idp(self):
        # Each IdP chooses its own subs: the same "alice" at two IdPs is two
        # users, and only the issuer header tells the app which one.
        home, partner = "https://sso.home.test", "https://login.partner.test/t/1"
        seen = {}
        for iss in (home, partner):
            sid = self.d.ctl("session", "create", "--sub", "alice", "--idp-iss", iss)["sid"]
            t = self.d.issue(sid, self.agent, "wiki:read", aud=WIKI)["access_token"]
            r = self.auth(t)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("x-auth-subject"), "alice")
            self.assertEqual(r.header_all("x-auth-issuer"), [iss], r)
            # The same value introspection answers as idp_iss.
            self.assertEqual(self.d.introspect(t, self.w.rs).json()["idp_iss"], iss)
            # A delegated token carries its session's issuer; a resource that
            # renames the header gets it under its own name only.
            helper = self.d.add_client("agent", "helper-" + str(len(seen)), scope="wiki:read read")
            child = self.d.issue(sid, helper, "wiki:read", parent=t)["access_token"]
            self.assertEqual(self.auth(child).header_all("x-auth-issuer"), [iss])
            m = self.d.issue(sid, self.agent, "read", aud=MCP)["access_token"]
            r = self.auth(m, host="api.test", uri="/mcp/tools")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header_all("x-idp"), [iss], r)
            self.assertIsNone(r.header("x-auth-issuer"))
            seen[iss] = r.header("x-auth-session")
        self.assertNotEqual(seen[home], seen[partner])

    def test_issuer_value_is_percent_encoded(self):
        # Written exactly like the subject: '%' and anything not printable
        # ASCII is escaped, so no issuer can split a header.
        iss = "https://idp.test/a%41b"
        sid = self.d.ctl("session", "create", "--sub", "bob", "--idp-iss", iss)["sid"]
        t = self.d.issue(sid, self.agent, "wiki:read", aud=WIKI)["access_token"]
        r = self.auth(t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("x-auth-issuer"), ["https://idp.test/a%2541b"], r)

    def test_token_only_from_the_authorization_header(self):
        r = self.auth(uri="/page?access_token=" + self.read)
        self.assertChallenge(r, 401, WIKI, realm="wiki")
        r = self.d.request("POST", "/auth", body=h.form({"access_token": self.read}),
                           headers={"X-Forwarded-Host": "wiki.test", "X-Forwarded-Uri": "/"},
                           content_type=h.FORM)
        self.assertChallenge(r, 401, WIKI, realm="wiki")


class OriginalRequest(ForwardAuthBase):

    def test_nginx_style_original_uri(self):
        r = self.auth(self.read, uri=None, extra={"X-Original-URI": "/page?x=1"})
        self.assertEqual(r.status, 200, r)
        r = self.auth(self.read, uri=None, extra={"X-Original-URI": "/admin/x"})
        self.assertAdmin(r)

    def test_original_url_gives_host_and_path(self):
        r = self.auth(self.read, host=None, uri=None,
                      extra={"X-Original-URL": "https://wiki.test/admin/users?q"})
        self.assertAdmin(r)
        r = self.auth(self.read, host="WIKI.test", uri=None,
                      extra={"X-Original-URL": "https://wiki.test"})
        self.assertEqual(r.status, 200, r)

    def test_envoy_style_path_suffix_and_host(self):
        hdrs = {"Authorization": "Bearer " + self.read}
        r = self.d.raw(("GET /auth/page?q=1 HTTP/1.1\r\nHost: wiki.test\r\n"
                        "Authorization: Bearer %s\r\n\r\n" % self.read).encode())
        self.assertEqual(r.status, 200, r)
        r = self.d.raw(("POST /auth/admin/x HTTP/1.1\r\nHost: wiki.test\r\n"
                        "Content-Length: 0\r\nAuthorization: Bearer %s\r\n\r\n"
                        % self.read).encode())
        self.assertAdmin(r)
        del hdrs

    def test_ambiguous_or_missing_original_request_is_400(self):
        cases = [
            dict(uri=None),                                            # no URI at all
            dict(extra={"X-Original-URI": "/other"}),                  # disagrees with X-Forwarded-Uri
            dict(host="a.test, wiki.test"),                            # a list of hosts
            dict(method="GET", extra={"X-Original-Method": "POST"}),   # methods disagree
            dict(host=None, uri=None, extra={"X-Original-URL": "wiki.test/x"}),
            dict(uri="page"),                                          # not origin-form
            dict(uri="/%zz"),
            dict(uri="/%00"),
            dict(uri="/../etc"),
            dict(uri="/admin;x/users"),                                # see PathAmbiguity
            dict(host="wiki%2etest"),                                  # see Hosts
        ]
        for kw in cases:
            r = self.auth(self.read, **kw)
            self.assertEqual(r.status, 400, (kw, r))
            self.assertEqual(r.json(), {"error": "invalid_request"})
        raw = ("GET /auth HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: wiki.test\r\n"
               "X-Forwarded-Host: wiki.test\r\nX-Forwarded-Uri: /\r\n\r\n")
        self.assertEqual(self.d.raw(raw.encode()).status, 400)

    def test_agreeing_headers_are_fine(self):
        r = self.auth(self.read, extra={"X-Original-URI": "/page",
                                        "X-Original-URL": "https://WIKI.TEST/page"})
        self.assertEqual(r.status, 200, r)

    def test_path_is_normalised_before_matching(self):
        for uri in ("/public/../admin", "/public/%2e%2e/admin/x", "//admin", "/%61dmin",
                    "/admin/./x", "/a/b/../../admin"):
            r = self.auth(self.read, uri=uri)
            self.assertAdmin(r)


# ---- Paths the upstream could route differently (issue 9 item 3) ----------------
#
# A path tokend reads one way and the upstream another is refused (400, fail
# closed). With a wiki token, /admin/users is refused (wrong audience at the
# admin resource): none of these spellings of it, or of any other path, may
# be let through.

# ';' path parameters, raw: Tomcat, Jetty and Spring drop ";…" from each
# segment. (variant, the path a Tomcat-style upstream routes it as)
PARAMS = [
    ("/admin;jsessionid=x/users", "/admin/users"),
    ("/admin;/users", "/admin/users"),
    ("/admin;", "/admin"),
    ("/admin;x", "/admin"),
    ("/;x/admin/users", "/admin/users"),
    ("/admin;a=1;b=2/x", "/admin/x"),
    ("/public/..;/admin", "/admin"),
    ("/public;x/..;y/admin;z/users", "/admin/users"),
    ("/ad;x/min", "/ad/min"),
    ("/page;jsessionid=0123", "/page"),
    ("/page;x/sub;y?q=;z", "/page/sub"),
]
# Refused whatever path_parameters says.
AMBIGUOUS = [
    # encoded ';' (servers disagree on whether it separates)
    "/admin%3bx/secret", "/admin%3Bx/secret", "/admin%3B/users", "/page%3b",
    # encoded slash
    "/admin%2Fusers", "/admin%2fusers", "/public%2F..%2Fadmin", "/%2Fadmin", "/page%2F",
    # backslash, raw and encoded (a separator on Windows servers and some routers)
    "/admin%5Cusers", "/admin%5cusers", "/public%5C..%5Cadmin", "/public\\..\\admin",
    "/admin\\users", "/page\\",
    # '%' followed by non-hex or truncated
    "/admin%", "/admin%4", "/admin%zz", "/admin%g1", "/admin%1g", "/%u0061dmin", "/%%61dmin",
    # encoded NUL and control characters (C0, DEL, C1)
    "/admin%00", "/admin%00.html", "/page%0d%0aX-Auth-Subject:%20root", "/page%09",
    "/page%1f", "/page%7f", "/page%c2%85", "/page%C2%9F",
    # invalid or overlong UTF-8 after decoding
    "/%C0%AE%C0%AE/admin", "/public/%C0%AE%C0%AE/admin", "/%C0%AFadmin", "/%E0%80%AE%E0%80%AE/admin",
    "/%C1%9Cadmin", "/page%C3", "/page%C3(", "/page%80", "/page%ED%A0%80", "/page%F4%90%80%80",
    "/page%FF", "/caf\xe9", "/\xc0\xae\xc0\xae/admin",
    # double encoding that a second decoding would turn into a dot-segment or separator
    "/%252e%252e/admin", "/public/%252e%252e/admin", "/public/%252E%252E/admin",
    "/admin%252fusers", "/admin%255cusers", "/admin%253bx/users", "/%25%32%65%25%32%65/admin",
    # a fragment (never part of a request target)
    "/admin#x", "/page#/../admin", "/page#", "/page?q#f",
    # dot-segments above the root
    "/..", "/../admin", "/public/../../admin", "/%2e%2e/admin", "/./../admin",
]
# Windows (IIS) reads these as /admin…: a segment's trailing dots and spaces are
# dropped, and "name::$DATA" / "name:$I30:$INDEX_ALLOCATION" are NTFS streams of
# "name". Refused unless the resources file says "windows_paths": "allow".
WINDOWS = [
    "/admin./users", "/admin%2e/users", "/admin%2E/users", "/admin../users", "/admin.../users",
    "/admin.", "/admin..", "/admin...", "/admin%20/users", "/admin%20", "/admin%20%20/users",
    "/admin ./", "/admin%20./users", "/admin.%20/users", "/admin.%20.%20/users",
    "/public/../admin./users", "/public/%2e%2e/admin%2e/users", "/%61dmin./users",
    "/admin::$DATA", "/admin::$DATA/users", "/admin%3a%3a$DATA/users", "/admin%3A%3A%24DATA",
    "/admin:$I30:$INDEX_ALLOCATION/users", "/admin%3A$I30%3A$INDEX_ALLOCATION/users",
    "/page.", "/page%20", "/page::$DATA", "/x/web.config::$DATA", "/x/y./z",
]
# 8.3 short names: NTFS gives "administrator" the alias "ADMINI~1", so on IIS
# /ADMINI~1/users may be /administrator/users, whatever resource covers that.
# Any segment that can be one (a base of at most 8 characters ending in '~'
# and digits, an extension of at most 3), in any case and encoding.
SHORT_NAMES = [
    "/ADMINI~1/users", "/admini~1/users", "/AdMiNi~1/users", "/ADMINI%7E1/users",
    "/ADMINI%7e1/users", "/ADMINI~%31/users", "/%41DMINI~1/users", "/ADMINI~1",
    "/x/ADMINI~1/users", "/public/../ADMINI~1/users", "/ADMIN~12/users", "/ADM~1234/users",
    "/AD1F2~1/users", "/A~B~1/users", "/~1/users", "/WEB~1.CON", "/x/DEFAUL~1.ASP",
    "/x/file~1.h", "/ADMINI~1:stream/users", "/%C3%89COLE~1/users",
]
WINDOWS += SHORT_NAMES
# A '~' that cannot make a short name: user directories and ordinary names.
TILDES = [
    "/~alice", "/~alice/public_html/x", "/~user1/x", "/%7Ebob/x", "/x/~", "/a~/x", "/a~b/x",
    "/ADMINI~1X/users", "/ADMINI~12/users", "/ADMINIS~1/users", "/A~1234567/users",
    "/ADMINI~1.HTML", "/ADMINI~1.tar.gz", "/v~2.0.1/x", "/.~1/x", "/a.b~1/x",
]


class PathAmbiguity(ForwardAuthBase):

    def bad_requests(self):
        text = self.d.metrics_text()
        m = re.search(r'tokend_forward_auth_total\{result="bad_request"\} (\d+)', text)
        return int(m.group(1)) if m else 0

    def assertRefused(self, r, what):
        self.assertEqual(r.status, 400, (what, r))
        self.assertEqual(r.json(), {"error": "invalid_request"}, what)
        self.assertIsNone(r.header("x-auth-subject"), what)
        self.assertIsNone(r.header("www-authenticate"), what)

    def test_the_plain_paths(self):
        # What the variants must not be confused with: admin refused, page allowed.
        self.assertAdmin(self.auth(self.read, uri="/admin/users"))
        self.assertEqual(self.auth(self.read, uri="/page").status, 200)

    def test_parameters_and_every_ambiguity_class_are_400(self):
        before = self.bad_requests()
        variants = [v for v, _ in PARAMS] + AMBIGUOUS + WINDOWS
        for uri in variants:
            self.assertRefused(self.auth(self.read, uri=uri), uri)
        # Counted as bad_request in forward-auth's metrics, one per request.
        self.assertEqual(self.bad_requests() - before, len(variants))

    def test_every_header_that_carries_the_uri(self):
        windows = [u for u in WINDOWS if " " not in u]  # a raw space ends a request line
        for uri in ["/admin;x/users", "/admin%3bx/secret", "/admin%2Fx", "/admin%5Cx",
                    "/%252e%252e/admin", "/%C0%AE%C0%AE/admin", "/admin#x"] + WINDOWS:
            self.assertRefused(self.auth(self.read, uri=None, extra={"X-Original-URI": uri}), uri)
            self.assertRefused(self.auth(self.read, host=None, uri=None,
                                         extra={"X-Original-URL": "https://wiki.test" + uri}), uri)
        # Envoy style: the original path after /auth, through the request-line parser.
        for uri in ["/admin;x/users", "/admin%3bx/secret", "/admin%2Fx", "/admin%5Cx",
                    "/%252e%252e/admin", "/%C0%AE%C0%AE/admin"] + windows:
            r = self.d.raw(("GET /auth%s HTTP/1.1\r\nHost: wiki.test\r\n"
                            "Authorization: Bearer %s\r\n\r\n" % (uri, self.read)).encode())
            self.assertRefused(r, uri)

    def test_tildes_that_cannot_be_short_names_are_paths(self):
        before = self.bad_requests()
        for uri in TILDES:
            self.assertEqual(self.auth(self.read, uri=uri).status, 200, uri)
        self.assertEqual(self.bad_requests(), before)

    def test_query_is_not_the_path(self):
        # Only the path is routed on: a query may hold any of these.
        for q in ("?a=;b", "?x=%2F", "?x=%5C", "?x=%252e", "?x=%C0%AE", "?x=/../.."):
            self.assertEqual(self.auth(self.read, uri="/page" + q).status, 200, q)
            self.assertAdmin(self.auth(self.read, uri="/admin/users" + q))

    def test_ordinary_escapes_still_decode(self):
        self.assertAdmin(self.auth(self.read, uri="/%61dmin/users"))
        self.assertAdmin(self.auth(self.read, uri="/public/%2e%2E/admin"))
        self.assertEqual(self.auth(self.read, uri="/caf%C3%A9%20100%25").status, 200)


class PathParametersStrip(PathAmbiguity):
    """"path_parameters": "strip": the Tomcat reading, every variant decided
    as the path the upstream routes it as; the other classes stay 400."""
    resources = dict(RESOURCES, path_parameters="strip")

    def decision(self, r):
        return (r.status, r.header("www-authenticate"), r.header("x-auth-subject"))

    def test_parameters_and_every_ambiguity_class_are_400(self):
        before = self.bad_requests()
        for uri in AMBIGUOUS + WINDOWS:
            self.assertRefused(self.auth(self.read, uri=uri), uri)
        self.assertEqual(self.bad_requests() - before, len(AMBIGUOUS) + len(WINDOWS))

    def test_parameters_are_stripped(self):
        for variant, plain in PARAMS:
            want = self.decision(self.auth(self.read, uri=plain))
            self.assertEqual(self.decision(self.auth(self.read, uri=variant)), want, variant)
        self.assertAdmin(self.auth(self.read, uri="/admin;jsessionid=x/users"))
        admin = self.d.issue(self.sid, self.agent, "wiki:admin", aud=ADMIN)["access_token"]
        self.assertEqual(self.auth(admin, uri="/admin;jsessionid=x/users").status, 200)

    def test_every_header_that_carries_the_uri(self):
        self.assertAdmin(self.auth(self.read, uri=None, extra={"X-Original-URI": "/admin;x/y"}))
        self.assertAdmin(self.auth(self.read, host=None, uri=None,
                                   extra={"X-Original-URL": "https://wiki.test/admin;x/y"}))
        r = self.d.raw(("GET /auth/admin;x/users HTTP/1.1\r\nHost: wiki.test\r\n"
                        "Authorization: Bearer %s\r\n\r\n" % self.read).encode())
        self.assertAdmin(r)
        self.assertRefused(self.auth(self.read, uri=None, extra={"X-Original-URI": "/a%3bx"}),
                           "encoded ;")


class WindowsPathsAllowed(ForwardAuthBase):
    """"windows_paths": "allow" (an upstream that is not Windows and serves
    names ending in '.' or ' ' or like "ADMINI~1"): the Windows variants are decided as the
    paths they literally are; every other ambiguity class stays 400."""
    resources = dict(RESOURCES, windows_paths="allow")

    def test_windows_variants_decided_literally(self):
        for uri in ["/admin./users", "/admin%20/users", "/admin...", "/admin::$DATA/users",
                    "/page.", "/x/web.config::$DATA"] + SHORT_NAMES + TILDES:
            # Not /admin (the prefix covers "/admin" on a segment boundary only): the wiki.
            self.assertEqual(self.auth(self.read, uri=uri).status, 200, uri)
        self.assertAdmin(self.auth(self.read, uri="/admin/users"))
        for uri in AMBIGUOUS:
            self.assertEqual(self.auth(self.read, uri=uri).status, 400, uri)


# ---- Hosts (issue 9 item 4) --------------------------------------------------------

# wiki.test covers "/", the "*" resource covers /shared: a spelling of
# wiki.test that tokend did not recognise fell through to "*".
SAME_HOST = ["wiki.test", "WIKI.TEST", "Wiki.Test", "wiki.test.", "WIKI.test.",
             "wiki.test:443", "wiki.test.:443", "wiki.test:0443", "wiki.test:8080",
             "wiki.test.:8080", "wiki.test:"]
BAD_HOSTS = ["wiki%2etest", "wiki%2Etest", "%77iki.test", "wiki.test%2e", "wiki.test..",
             "wiki..test", ".wiki.test", ".", "wiki.test:x", "wiki.test:0", "wiki.test:65536",
             "wiki.test:443:443", "wiki.test: 443", "user@wiki.test", "wiki.test/x",
             "wiki.test\\", "wi ki.test", "wiki.test,other.test", "w\xc3\xafki.test",
             "[::1", "[::1]x", "[v1.x]", "[fe80::1%25eth0]", "[127.0.0.1]", "*",
             "a" * 64 + ".test", ("a" * 63 + ".") * 4 + "test"]


class Hosts(ForwardAuthBase):
    resources = {
        "resources": RESOURCES["resources"] + [
            {"resource": "https://secure.test/", "host": "secure.test:443"},
            {"resource": "https://ports.test:8443/", "host": "Ports.Test.:8443"},
            {"resource": "https://[::1]:8443/"},
        ]
    }

    def test_every_spelling_of_a_host_is_that_host(self):
        any_token = self.d.issue(self.sid, self.agent, "read", aud=ANY)["access_token"]
        for host in SAME_HOST:
            r = self.auth(self.read, host=host, uri="/shared/x")
            self.assertEqual(r.status, 200, (host, r))  # wiki.test's "/", not "*"
            r = self.auth(any_token, host=host, uri="/shared/x")
            self.assertChallenge(r, 401, WIKI, realm="wiki", error="invalid_token")
        # And X-Original-URL's authority the same way.
        r = self.auth(self.read, host=None, uri=None,
                      extra={"X-Original-URL": "https://WIKI.test.:443/shared/x"})
        self.assertEqual(r.status, 200, r)

    def test_invalid_hosts_are_400(self):
        for host in BAD_HOSTS:
            r = self.auth(self.read, host=host, uri="/shared/x")
            self.assertEqual(r.status, 400, (host, r))
            self.assertEqual(r.json(), {"error": "invalid_request"}, host)
        raw = ("GET /auth HTTP/1.1\r\nHost: wiki%%2etest\r\nX-Forwarded-Uri: /\r\n"
               "Authorization: Bearer %s\r\n\r\n" % self.read)
        self.assertEqual(self.d.raw(raw.encode()).status, 400)

    def test_ports_compared_as_the_resource_requires(self):
        sec = self.d.issue(self.sid, self.agent, "read", aud="https://secure.test/")
        sec = sec["access_token"]
        for host in ("secure.test", "SECURE.test.", "secure.test:443", "secure.test:00443"):
            self.assertEqual(self.auth(sec, host=host, uri="/x").status, 200, host)
        for host in ("secure.test:8443", "secure.test:80"):
            r = self.auth(sec, host=host, uri="/x")
            self.assertEqual(r.status, 403, (host, r))  # only "*" /shared could cover it
            self.assertEqual(r.json(), {"error": "unknown_resource"})
        ports = self.d.issue(self.sid, self.agent, "read",
                             aud="https://ports.test:8443/")["access_token"]
        for host in ("ports.test:8443", "PORTS.TEST.:8443", "ports.test:08443"):
            self.assertEqual(self.auth(ports, host=host, uri="/x").status, 200, host)
        for host in ("ports.test", "ports.test:443", "ports.test:80"):
            self.assertEqual(self.auth(ports, host=host, uri="/x").status, 403, host)
        v6 = self.d.issue(self.sid, self.agent, "read", aud="https://[::1]:8443/")["access_token"]
        for host in ("[::1]:8443", "[0:0:0:0:0:0:0:1]:8443", "[0::1]:08443"):
            self.assertEqual(self.auth(v6, host=host, uri="/x").status, 200, host)


class Matching(ForwardAuthBase):

    def test_prefix_on_segment_boundary(self):
        self.assertEqual(self.auth(self.read, uri="/administrator").status, 200)
        self.assertAdmin(self.auth(self.read, uri="/admin"))
        self.assertAdmin(self.auth(self.read, uri="/admin/"))
        # With a token for the admin resource the "*" rule applies there.
        t = self.d.issue(self.sid, self.agent, "wiki:read", aud=ADMIN)["access_token"]
        self.assertChallenge(self.auth(t, uri="/admin/x"), 403, ADMIN,
                             error="insufficient_scope", scope="wiki:admin")
        t = self.d.issue(self.sid, self.agent, "wiki:admin", aud=ADMIN)["access_token"]
        self.assertEqual(self.auth(t, uri="/admin/x", method="DELETE").status, 200)

    def test_host_with_port_and_case(self):
        self.assertEqual(self.auth(self.read, host="Wiki.Test:8080").status, 200)
        r = self.auth(self.read, host="[::1]:80")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json(), {"error": "unknown_resource"})

    def test_unknown_resource(self):
        r = self.auth(self.read, host="api.test", uri="/other")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json(), {"error": "unknown_resource"})
        self.assertIsNone(r.header("www-authenticate"))
        r = self.auth(self.read, host="api.test", uri="/mcpx")
        self.assertEqual(r.status, 403, r)

    def test_wildcard_host(self):
        t = self.d.issue(self.sid, self.agent, "read", aud=ANY)["access_token"]
        for host in ("one.test", "two.test:9"):
            self.assertEqual(self.auth(t, host=host, uri="/shared/x").status, 200)
        # An exact host beats "*" (wiki.test has "/" which covers /shared).
        self.assertChallenge(self.auth(t, uri="/shared/x"), 401, WIKI, realm="wiki",
                             error="invalid_token")

    def test_every_method_is_routed(self):
        for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            r = self.d.request(m, "/auth", headers={"X-Forwarded-Host": "wiki.test",
                                                    "X-Forwarded-Uri": "/"})
            self.assertEqual(r.status, 401, (m, r))


class TrustedHeaders(ForwardAuthBase):
    resources = dict(RESOURCES, trusted_headers=["X-Original-URI"])

    def test_untrusted_headers_are_ignored(self):
        # X-Forwarded-Uri and -Host are not trusted: the URI comes from
        # X-Original-URI and the host from Host.
        raw = ("GET /auth HTTP/1.1\r\nHost: wiki.test\r\nX-Forwarded-Host: api.test\r\n"
               "X-Forwarded-Uri: /mcp\r\nX-Original-URI: /admin\r\n"
               "Authorization: Bearer %s\r\n\r\n" % self.read)
        r = self.d.raw(raw.encode())
        self.assertAdmin(r)
        raw = ("GET /auth HTTP/1.1\r\nHost: wiki.test\r\nX-Forwarded-Uri: /admin\r\n"
               "X-Forwarded-Uri: /x\r\n\r\n")
        r = self.d.raw(raw.encode())  # untrusted duplicates do not matter; no URI → 400
        self.assertEqual(r.status, 400, r)


class Audit(ForwardAuthBase):

    def wait_audit(self, client, resource, want, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            rows = self.d.ctl("audit", "agents", "--client", client)
            row = [x for x in rows if x["resource"] == resource]
            got = (row[0]["allowed"], row[0]["denied"]) if row else (0, 0)
            if got == want or time.monotonic() > deadline:
                return got, row
            time.sleep(0.2)

    def test_counts_reach_tokenctl_and_metrics(self):
        a = self.d.add_client("agent", "audited-agent", scope="wiki:read")
        t = self.d.issue(self.sid, a, "wiki:read", aud=WIKI)["access_token"]
        before = int(time.time())
        for _ in range(5):
            self.assertEqual(self.auth(t).status, 200)
        for _ in range(2):
            self.assertEqual(self.auth(t, method="PUT").status, 403)
        self.assertEqual(self.auth(t, host="api.test", uri="/mcp").status, 401)  # wrong audience
        self.assertEqual(self.auth("tkd_at_" + "B" * 43).status, 401)  # no agent to count
        got, row = self.wait_audit(a.id, WIKI, (5, 2))
        self.assertEqual(got, (5, 2), row)
        r = row[0]
        self.assertEqual(r["client_name"], "audited-agent")
        self.assertGreaterEqual(r["first_seen"], before - 1)
        self.assertGreaterEqual(r["last_seen"], r["first_seen"])
        got, _ = self.wait_audit(a.id, MCP, (0, 1))
        self.assertEqual(got, (0, 1))
        text = self.d.metrics_text()
        self.assertIn('tokend_agent_requests_total{client="%s",resource="%s",result="allowed"} 5'
                      % (a.id, WIKI), text)
        self.assertIn('tokend_agent_requests_total{client="%s",resource="%s",result="denied"} 2'
                      % (a.id, WIKI), text)
        self.assertRegex(text, r'tokend_forward_auth_total\{result="allowed"\} [1-9]')
        self.assertRegex(text, r'tokend_forward_auth_total\{result="wrong_audience"\} [1-9]')
        self.assertRegex(text, r"tokend_agent_pairs [1-9]")
        self.assertIn('tokend_requests_total{endpoint="forward_auth",status="403"}', text)

    def test_counts_survive_a_restart(self):
        a = self.d.add_client("agent", "restart-agent", scope="wiki:read")
        t = self.d.issue(self.sid, a, "wiki:read", aud=WIKI)["access_token"]
        for _ in range(3):
            self.assertEqual(self.auth(t).status, 200)
        self.d.restart()  # the stop folds what the workers still hold
        rows = self.d.ctl("audit", "agents", "--client", a.id)
        self.assertEqual([(x["resource"], x["allowed"], x["denied"]) for x in rows],
                         [(WIKI, 3, 0)])
        self.assertEqual(self.auth(t).status, 200)
        got, _ = self.wait_audit(a.id, WIKI, (4, 0))
        self.assertEqual(got, (4, 0))


class Config(h.FreshCase):

    def test_bad_resources_file_stops_start_up(self):
        d, path = write_resources({"resources": [{"resource": "http://plain.test/"}]})
        self.addCleanup(shutil.rmtree, d, True)
        with self.assertRaises(AssertionError) as cm:
            self.daemon(("--resources", path))
        self.assertIn("resources_invalid", str(cm.exception))
        self.assertIn("https", str(cm.exception))
        with self.assertRaises(AssertionError):
            self.daemon(("--resources", os.path.join(d, "missing.json")))

    def test_identifiers_that_differ_by_path_need_no_path_prefix(self):
        # The default path_prefix is the identifier's path (no trailing '/').
        res = {"resources": [{"resource": "https://apps.test/a"},
                             {"resource": "https://apps.test/b/"},
                             {"resource": "https://apps.test"}]}
        d, path = write_resources(res)
        self.addCleanup(shutil.rmtree, d, True)
        t = self.daemon(("--resources", path))
        for uri, want in (("/a", "https://apps.test/a"), ("/a/x", "https://apps.test/a"),
                          ("/b", "https://apps.test/b/"), ("/b/x/y", "https://apps.test/b/"),
                          ("/ab", "https://apps.test"), ("/", "https://apps.test")):
            r = t.request("GET", "/auth", headers={"X-Forwarded-Host": "apps.test",
                                                   "X-Forwarded-Uri": uri})
            self.assertEqual(r.header("www-authenticate"), challenge(want), uri)

    def test_a_remaining_conflict_says_what_to_add(self):
        res = {"resources": [{"resource": "https://apps.test/a"},
                             {"resource": "https://apps.test/a/"}]}
        d, path = write_resources(res)
        self.addCleanup(shutil.rmtree, d, True)
        with self.assertRaises(AssertionError) as cm:
            self.daemon(("--resources", path))
        msg = str(cm.exception)
        self.assertIn("resources_invalid", msg)
        self.assertIn('both cover host "apps.test" and path prefix "/a"', msg)
        self.assertIn('give one of them a "path_prefix"', msg)

    def test_path_parameters_member_is_checked(self):
        d, path = write_resources(dict(RESOURCES, path_parameters="keep"))
        self.addCleanup(shutil.rmtree, d, True)
        with self.assertRaises(AssertionError) as cm:
            self.daemon(("--resources", path))
        self.assertIn("path_parameters", str(cm.exception))

    def test_no_resources_configured(self):
        d = self.daemon()
        r = d.request("GET", "/auth", headers={"X-Forwarded-Host": "wiki.test",
                                               "X-Forwarded-Uri": "/"})
        self.assertIn(r.status, (400, 403), r)  # nothing is trusted, nothing is covered
        r = d.raw(b"GET /auth/x HTTP/1.1\r\nHost: wiki.test\r\n\r\n")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json(), {"error": "unknown_resource"})

    def test_config_file_key(self):
        d, path = write_resources(RESOURCES)
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "tokend.conf")
        with open(conf, "w") as f:
            f.write("resources = %s\n" % path)
        t = self.daemon(("--config", conf))
        r = t.request("GET", "/auth", headers={"X-Forwarded-Host": "wiki.test",
                                               "X-Forwarded-Uri": "/"})
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.header("www-authenticate"), challenge(WIKI, realm="wiki"))


if __name__ == "__main__":
    unittest.main()
