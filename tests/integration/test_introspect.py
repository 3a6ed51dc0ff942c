"""RFC 7662 token introspection against the real daemon: answer members and
types, every inactive case, caller authentication and request errors."""

import http.client
import json
import time
import unittest

import harness as h
from harness import INACTIVE, NOAUTH

h.require_binaries()

ISSUER = "https://issuer.test"
API = "https://api.test"
OTHER_API = "https://other.test"


class IntrospectAnswer(h.DaemonCase):
    daemon_args = ("--issuer", ISSUER)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d, w = cls.d, cls.w
        cls.sid = d.new_session("alice")
        cls.root = d.issue(cls.sid, w.a, "read write", ttl=600)
        cls.child = d.issue(cls.sid, w.b, "read", parent=cls.root["access_token"])
        cls.grandchild = d.issue(cls.sid, w.c, "read", parent=cls.child["access_token"])

    def test_active_members_and_types(self):
        j = self.assertActive(self.root["access_token"])
        self.assertIs(j["active"], True)
        self.assertEqual(j["scope"], "read write")
        self.assertEqual(j["client_id"], self.w.a.id)
        self.assertEqual(j["sub"], "alice")
        self.assertEqual(j["sid"], self.sid)
        self.assertEqual(j["token_type"], "Bearer")
        self.assertEqual(j["iss"], ISSUER)
        for k in ("exp", "iat", "nbf"):
            self.assertIs(type(j[k]), int, k)
        self.assertEqual(j["exp"] - j["iat"], 600)
        self.assertLessEqual(j["nbf"], j["iat"] + 1)
        self.assertLess(abs(j["iat"] - time.time()), 120, "iat in seconds, not ms")
        self.assertNotIn("aud", j)
        self.assertNotIn("act", j)

    def test_token_issue_json_shape(self):
        r = self.root
        self.assertTrue(r["access_token"].startswith("tkd_at_"))
        self.assertEqual(len(r["access_token"]), h.TOKEN_LEN)
        self.assertEqual(r["token_type"], "Bearer")
        self.assertEqual(r["expires_in"], 600)
        self.assertEqual(r["scope"], "read write")
        self.assertTrue(r["grant_id"].startswith("tkg_"))
        self.assertNotIn("refresh_token", r)

    def test_delegated_act_one_level(self):
        j = self.assertActive(self.child["access_token"])
        self.assertEqual(j["client_id"], self.w.b.id)
        self.assertEqual(j["sub"], "alice")
        self.assertEqual(j["scope"], "read")
        self.assertEqual(j["act"], {"sub": self.w.b.id, "act": {"sub": self.w.a.id}})

    def test_delegated_act_current_actor_outermost(self):
        j = self.assertActive(self.grandchild["access_token"])
        self.assertEqual(j["client_id"], self.w.c.id)
        self.assertEqual(j["sid"], self.sid)
        self.assertEqual(j["act"], {"sub": self.w.c.id,
                                    "act": {"sub": self.w.b.id, "act": {"sub": self.w.a.id}}})

    def test_refresh_token_type(self):
        t = self.d.issue(self.sid, self.w.a, "read", refresh=True)
        self.assertTrue(t["refresh_token"].startswith("tkd_rt_"))
        self.assertEqual(len(t["refresh_token"]), h.TOKEN_LEN)
        # Refresh tokens are visible to admins only (resource servers: inactive).
        self.assertInactive(t["refresh_token"])
        j = self.assertActive(t["refresh_token"], auth=self.w.admin)
        self.assertEqual(j["token_type"], "refresh_token")
        self.assertEqual(j["client_id"], self.w.a.id)

    def test_audience_present_when_set(self):
        rs = self.d.add_client("resource_server", "rs-api", resource=API)
        t = self.d.issue(self.sid, self.w.a, "read", aud=API)
        j = self.assertActive(t["access_token"], auth=rs)
        aud = j["aud"]
        self.assertIn(aud, (API, [API]))

    def test_audience_mismatch_inactive(self):
        rs = self.d.add_client("resource_server", "rs-x", resource=API)
        t = self.d.issue(self.sid, self.w.a, "read", aud=OTHER_API)
        self.assertInactive(t["access_token"], auth=rs)

    def test_admin_may_introspect(self):
        j = self.assertActive(self.root["access_token"], auth=self.w.admin)
        self.assertEqual(j["sub"], "alice")

    def test_hint_wrong_or_unknown_still_finds(self):
        tok = self.root["access_token"]
        for hint in ("refresh_token", "access_token", "no_such_hint"):
            with self.subTest(hint=hint):
                r = self.d.introspect(tok, extra=[("token_type_hint", hint)])
                self.assertEqual(r.status, 200)
                self.assertIs(r.json()["active"], True)

    def test_unknown_parameters_ignored(self):
        r = self.d.introspect(self.root["access_token"],
                              extra=[("foo", "bar"), ("resource", "x"), ("zz", "")])
        self.assertEqual(r.status, 200)
        self.assertIs(r.json()["active"], True)

    def test_duplicate_token_parameter_400(self):
        # RFC 6749 §3.1: request parameters must not be included more than once.
        tok = self.root["access_token"]
        r = self.d.introspect(tok, extra=[("token", tok)])
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "invalid_request"})

    def test_header_names_and_media_type_case_insensitive(self):
        body = h.form([("token", self.root["access_token"])])
        cred = self.w.rs.basic().split(" ", 1)[1]
        head = ("POST /introspect HTTP/1.1\r\nhost: x\r\ncontent-type: "
                "Application/X-WWW-Form-URLEncoded\r\nAUTHORIZATION: basic %s\r\n"
                "content-length: %d\r\n\r\n" % (cred, len(body)))
        r = self.d.raw(head.encode() + body.encode())
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["active"], True)

    def test_standard_client_interop(self):
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=10)
        try:
            c.request("POST", "/introspect", h.form([("token", self.root["access_token"])]),
                      {"Authorization": self.w.rs.basic(), "Content-Type": h.FORM})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIs(json.loads(r.read())["active"], True)
            c.request("GET", "/healthz")
            self.assertEqual(c.getresponse().read(), b'{"status":"ok"}')
        finally:
            c.close()

    def test_form_content_type_with_charset(self):
        body = h.form([("token", self.root["access_token"])])
        r = self.d.request("POST", "/introspect", body,
                           {"Authorization": self.w.rs.basic()},
                           h.FORM + "; charset=UTF-8")
        self.assertEqual(r.status, 200)
        self.assertIs(r.json()["active"], True)


class IntrospectInactive(h.DaemonCase):
    """Every inactive case: exactly {"active":false} with 200."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sid = cls.d.new_session("bob")

    def fresh(self, client=None, **kw):
        return self.d.issue(self.sid, client or self.w.a, "read", **kw)["access_token"]

    def test_unknown(self):
        self.assertInactive("tkd_at_" + "A" * 43)

    def test_garbage(self):
        for tok in ("x", "not a token at all", "\u00e9\u00e8\u0001\u007f", "%%%", "tkd_rt_",
                    "tkd_at_" + "!" * 43, "\xff"):
            with self.subTest(tok=tok):
                self.assertInactive(tok)

    def test_garbage_with_nul_byte(self):
        # A bad token is never a 4xx (RFC 7662 §2.2): a NUL inside it is still a token.
        self.assertInactive("tkd_at_\u0000" + "A" * 42)

    def test_overlong(self):
        # Longer than any token (TK_TOKEN_IN_MAX 512) but within the body limit.
        for n in (513, 4000, 12000):
            with self.subTest(n=n):
                self.assertInactive("tkd_at_" + "A" * n)

    def test_empty_token_value(self):
        r = self.d.introspect("")
        # An empty token is either "missing" (400) or unknown (inactive).
        if r.status == 200:
            self.assertEqual(r.json(), INACTIVE)
        else:
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json(), {"error": "invalid_request"})

    def test_expired_and_not_before_passing(self):
        tok = self.fresh(ttl=1)
        # 2 s, not 1: issuing on it must not race a second boundary on a busy machine.
        short_sid = self.d.new_session("shortlived", ttl=2)
        in_short = self.d.issue(short_sid, self.w.a, "read", ttl=600)["access_token"]
        later = self.fresh(nbf_in=2)  # checked within 1 s: still before its nbf
        self.assertInactive(later, msg="before its nbf")
        time.sleep(3.2)
        self.assertInactive(tok, msg="past its exp")
        self.assertInactive(in_short, msg="its session expired")
        j = self.assertActive(later, msg="its nbf has passed")
        self.assertGreater(j["nbf"], j["iat"])

    def test_not_yet_valid(self):
        self.assertInactive(self.fresh(nbf_in=3600))

    def test_revoked(self):
        tok = self.fresh()
        self.assertActive(tok)
        self.assertEqual(self.d.ctl("token", "revoke", tok), {"revoked": True})
        self.assertInactive(tok)

    def test_parent_revoked(self):
        parent = self.fresh()
        child = self.d.issue(self.sid, self.w.b, "read", parent=parent)["access_token"]
        self.assertActive(child)
        self.d.ctl("token", "revoke", parent)
        self.assertInactive(child)

    def test_session_terminated(self):
        sid = self.d.new_session("carol")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        self.assertActive(tok)
        self.d.ctl("session", "terminate", sid)
        self.assertInactive(tok)

    def test_session_suspended_then_resumed(self):
        sid = self.d.new_session("dave")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        self.assertActive(tok)
        self.d.ctl("session", "suspend", sid)
        self.assertInactive(tok)
        self.d.ctl("session", "resume", sid)
        self.assertActive(tok)

    def test_client_disabled(self):
        agent = self.d.add_client("agent", "to-disable", scope="read")
        tok = self.fresh(client=agent)
        self.assertActive(tok)
        self.d.ctl("client", "disable", agent.id)
        self.assertInactive(tok)

    def test_inactive_answer_headers(self):
        r = self.d.introspect("tkd_at_unknown")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("cache-control"), "no-store")
        self.assertTrue(r.header("content-type").startswith("application/json"))


class IntrospectCaller(h.DaemonCase):
    """Caller authentication (RFC 7662 §2.1, RFC 6749 §2.3.1) and request errors."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        sid = cls.d.new_session("erin")
        cls.tok = cls.d.issue(sid, cls.w.a, "read")["access_token"]

    def assertJsonHeaders(self, r):
        self.assertEqual(r.header("cache-control"), "no-store", r)
        self.assertIsNotNone(r.header("content-type"), r)
        self.assertTrue(r.header("content-type").startswith("application/json"), r)

    def assert401(self, r, form=False):
        """401 invalid_client; the Basic challenge (realm = the issuer) only
        when the client did not authenticate in the form (issue 9 item 6)."""
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), {"error": "invalid_client"})
        www = r.header_all("www-authenticate")
        if form:
            self.assertEqual(www, [], r)
        else:
            self.assertEqual(www, ['Basic realm="http://127.0.0.1:%d", error="invalid_client"'
                                   % self.d.port], r)
        self.assertJsonHeaders(r)

    def test_no_auth_401(self):
        self.assert401(self.d.introspect(self.tok, auth=NOAUTH))

    def test_wrong_secret_401(self):
        bad = h.Client({"client_id": self.w.rs.id, "client_secret": "tkd_cs_" + "B" * 43})
        self.assert401(self.d.introspect(self.tok, auth=bad))

    def test_wrong_secret_post_401(self):
        bad = h.Client({"client_id": self.w.rs.id, "client_secret": "nope"})
        self.assert401(self.d.introspect(self.tok, auth=("post", bad)), form=True)

    def test_unknown_client_401(self):
        bad = h.Client({"client_id": "tkc_nosuchclient", "client_secret": self.w.rs.secret})
        self.assert401(self.d.introspect(self.tok, auth=bad))

    def test_agent_role_401(self):
        self.assert401(self.d.introspect(self.tok, auth=self.w.a))
        self.assert401(self.d.introspect(self.tok, auth=("post", self.w.a)), form=True)

    def test_pending_client_401(self):
        rs = self.d.add_client("resource_server", "rs-pending", pending=True)
        self.assertEqual(rs.rec["status"], "pending")
        self.assert401(self.d.introspect(self.tok, auth=rs))

    def test_disabled_rs_401(self):
        rs = self.d.add_client("resource_server", "rs-disabled")
        self.assertIs(self.d.active(self.tok, auth=rs)["active"], True)
        self.d.ctl("client", "disable", rs.id)
        self.assert401(self.d.introspect(self.tok, auth=rs))

    def test_malformed_credentials_401(self):
        # Failed client authentication is 401 invalid_client (RFC 6749 §5.2).
        for hdr in ("Basic !!!notbase64", "Basic dG9rZW4=", "Bearer abc"):
            with self.subTest(hdr=hdr):
                self.assert401(self.d.introspect(self.tok, auth=hdr))

    def test_client_secret_post_works(self):
        r = self.d.introspect(self.tok, auth=("post", self.w.rs))
        self.assertEqual(r.status, 200)
        self.assertIs(r.json()["active"], True)

    def test_basic_percent_encoded_works(self):
        hdr = h.basic(self.w.rs.id, self.w.rs.secret, encode=h.pct_all)
        r = self.d.introspect(self.tok, auth=hdr)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["active"], True)

    def test_both_methods_400(self):
        r = self.d.introspect(self.tok, auth=("both", self.w.rs))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "invalid_request"})
        self.assertJsonHeaders(r)

    def test_missing_token_400(self):
        r = self.d.introspect(None)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "invalid_request"})
        self.assertJsonHeaders(r)

    def test_get_405(self):
        r = self.d.request("GET", "/introspect", headers={"Authorization": self.w.rs.basic()})
        self.assertEqual(r.status, 405, r)
        self.assertIn("POST", r.header("allow") or "")

    def test_wrong_content_type_400(self):
        for ctype in ("application/json", "text/plain", None):
            with self.subTest(ctype=ctype):
                r = self.d.request("POST", "/introspect", '{"token":"%s"}' % self.tok,
                                   {"Authorization": self.w.rs.basic()}, ctype)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json(), {"error": "invalid_request"})

    def test_every_answer_no_store_json(self):
        answers = [self.d.introspect(self.tok), self.d.introspect("tkd_at_x"),
                   self.d.introspect(self.tok, auth=NOAUTH), self.d.introspect(None)]
        for r in answers:
            with self.subTest(status=r.status):
                self.assertJsonHeaders(r)


if __name__ == "__main__":
    unittest.main()
