"""Client authentication at /introspect and /revoke over the whole class.

Issue 9 items 5 and 6. Every Authorization header kind {none, Basic good,
Basic bad, Basic malformed, Bearer, another scheme, empty} times every form
{no credentials, good, bad, client_id only}, on both endpoints, against the
real daemon: status, error code, the WWW-Authenticate header, and the
auth_failed log line (which client id it names: the one the rate limiter is
charged for; tests/unit/test_client_auth.c compares the charged buckets
themselves).

Decided semantics (README, "Client authentication"):
- a header of another scheme than Basic (a Bearer token, say) is not client
  authentication: it is ignored and the form's credentials are used;
- Basic and any form credential in one request is 400 invalid_request
  (RFC 6749 §2.3: one method per request);
- a 401 carries `WWW-Authenticate: Basic realm="<issuer>",
  error="invalid_client"` unless the client authenticated in the form: form
  clients (openid-client, oauth4webapi) read the JSON error, and a challenge
  makes them report a challenge instead of invalid_client.
"""

import unittest

import harness as h
import hardening as hd

h.require_binaries()

HEADERS = ("none", "basic-good", "basic-bad", "basic-malformed", "bearer", "other", "empty")
FORMS = ("none", "good", "bad", "id-only")


class ClientAuthMatrix(h.DaemonCase):
    # One worker, no rate limit: the matrix fails on purpose many times.
    daemon_args = ("--workers", 1, "--auth-fail-burst", 0)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rs2 = cls.d.add_client("resource_server", "rs-form")
        sid = cls.d.new_session("carol")
        cls.tok = cls.d.issue(sid, cls.w.a, "read")["access_token"]

    def header(self, kind):
        rs = self.w.rs
        return {
            "none": h.NOAUTH,
            "basic-good": h.basic(rs.id, rs.secret),
            "basic-bad": h.basic(rs.id, "tkd_cs_" + "W" * 43),
            "basic-malformed": "Basic !!!notbase64",
            "bearer": "Bearer " + self.tok,
            "other": 'Digest username="%s", realm="x"' % rs.id,
            "empty": "",
        }[kind]

    def form(self, kind):
        rs2 = self.rs2
        return {
            "none": [],
            "good": [("client_id", rs2.id), ("client_secret", rs2.secret)],
            "bad": [("client_id", rs2.id), ("client_secret", "tkd_cs_" + "X" * 43)],
            "id-only": [("client_id", rs2.id)],
        }[kind]

    def expected(self, hk, fk):
        """(status, error, challenge, client named by auth_failed or None)."""
        basic = hk.startswith("basic")
        if basic and fk != "none":
            return 400, "invalid_request", False, None
        if hk == "basic-good":
            return 200, None, False, None
        if hk == "basic-bad":
            return 401, "invalid_client", True, self.w.rs.id
        if hk == "basic-malformed":
            return 401, "invalid_client", True, "-"
        return {
            "good": (200, None, False, None),
            "bad": (401, "invalid_client", False, self.rs2.id),
            "id-only": (401, "invalid_client", False, self.rs2.id),
            "none": (401, "invalid_client", True, "-"),
        }[fk]

    def challenge(self):
        return 'Basic realm="http://127.0.0.1:%d", error="invalid_client"' % self.d.port

    def test_matrix(self):
        for path in ("/introspect", "/revoke"):
            for hk in HEADERS:
                for fk in FORMS:
                    with self.subTest(path=path, header=hk, form=fk):
                        self.one(path, hk, fk)

    def one(self, path, hk, fk):
        status, error, challenge, named = self.expected(hk, fk)
        before = len(hd.log_lines(self.d, "auth_failed"))
        # An unknown token: /revoke answers 200 at once, nothing changes.
        data = h.auth_request(path, "tkd_at_" + "U" * 43, self.header(hk), self.form(fk))
        r = self.d.raw(data)
        self.assertEqual(r.status, status, r)
        if error is not None:
            self.assertEqual(r.json(), {"error": error}, r)
        else:
            self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("www-authenticate"),
                         [self.challenge()] if challenge else [], r)
        if named is None:
            self.assertEqual(len(hd.log_lines(self.d, "auth_failed")), before)
            return
        lines = hd.wait_for(lambda: hd.log_lines(self.d, "auth_failed")[before:], 5)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("endpoint=%s " % path[1:], lines[0])
        self.assertIn("client=%s " % named, lines[0])
        for secret in (self.w.rs.secret, self.rs2.secret):
            self.assertNotIn(secret, lines[0])

    def test_bearer_and_form_authenticates_the_form_client(self):
        """The reported case: Authorization: Bearer + client_secret_post."""
        r = self.d.introspect(self.tok, auth="Bearer " + self.tok,
                              extra=[("client_id", self.rs2.id),
                                     ("client_secret", self.rs2.secret)])
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["active"], True)


if __name__ == "__main__":
    unittest.main()
