"""RFC 7009 token revocation against the real daemon: answers, ownership,
grants, and that a revocation is visible as soon as its 200 arrives."""

import unittest

import harness as h
from harness import NOAUTH

h.require_binaries()


class Revoke(h.DaemonCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sid = cls.d.new_session("alice")

    def issue(self, client=None, **kw):
        return self.d.issue(self.sid, client or self.w.a, "read", **kw)

    def assertRevoked200(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"", r)

    def test_success_200_empty_body(self):
        tok = self.issue()["access_token"]
        self.assertActive(tok)
        r = self.d.revoke(tok, auth=self.w.a)
        self.assertRevoked200(r)
        self.assertEqual(r.header("content-length"), "0")
        self.assertInactive(tok)

    def test_unknown_token_200(self):
        self.assertRevoked200(self.d.revoke("tkd_at_" + "Z" * 43, auth=self.w.a))
        self.assertRevoked200(self.d.revoke("garbage", auth=self.w.a))

    def test_already_revoked_200(self):
        tok = self.issue()["access_token"]
        self.assertRevoked200(self.d.revoke(tok, auth=self.w.a))
        self.assertRevoked200(self.d.revoke(tok, auth=self.w.a))
        self.assertInactive(tok)

    def test_other_clients_token_400_and_stays_active(self):
        tok = self.issue(client=self.w.a)["access_token"]
        r = self.d.revoke(tok, auth=self.w.b)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "unauthorized_client"})
        self.assertEqual(r.header("cache-control"), "no-store")
        self.assertActive(tok)

    def test_resource_server_cannot_revoke_agent_token(self):
        tok = self.issue(client=self.w.a)["access_token"]
        r = self.d.revoke(tok, auth=self.w.rs)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "unauthorized_client"})
        self.assertActive(tok)

    def test_admin_revokes_any(self):
        tok = self.issue(client=self.w.b)["access_token"]
        self.assertRevoked200(self.d.revoke(tok, auth=self.w.admin))
        self.assertInactive(tok)

    def test_client_secret_post(self):
        tok = self.issue()["access_token"]
        self.assertRevoked200(self.d.revoke(tok, auth=("post", self.w.a)))
        self.assertInactive(tok)

    def test_refresh_revokes_grant(self):
        t = self.issue(refresh=True)
        self.assertActive(t["access_token"])
        self.assertRevoked200(self.d.revoke(t["refresh_token"], auth=self.w.a))
        self.assertInactive(t["refresh_token"], auth=self.w.admin)  # admins see refresh tokens
        self.assertInactive(t["access_token"])

    def test_refresh_revoke_spares_other_grants(self):
        t1 = self.issue(refresh=True)
        t2 = self.issue(refresh=True)
        self.assertRevoked200(self.d.revoke(t1["refresh_token"], auth=self.w.a))
        self.assertActive(t2["access_token"])
        self.assertActive(t2["refresh_token"], auth=self.w.admin)

    def test_revoke_delegated_descendants(self):
        root = self.issue()["access_token"]
        child = self.issue(client=self.w.b, parent=root)["access_token"]
        self.assertRevoked200(self.d.revoke(root, auth=self.w.a))
        self.assertInactive(child)

    def test_wrong_hint_ignored(self):
        tok = self.issue()["access_token"]
        r = self.d.revoke(tok, auth=self.w.a, extra=[("token_type_hint", "refresh_token")])
        self.assertRevoked200(r)
        self.assertInactive(tok)
        tok = self.issue()["access_token"]
        r = self.d.revoke(tok, auth=self.w.a, extra=[("token_type_hint", "bogus")])
        self.assertRevoked200(r)
        self.assertInactive(tok)

    def test_visible_on_new_connection_immediately(self):
        toks = [self.issue()["access_token"] for _ in range(5)]
        for tok in toks:
            self.assertActive(tok)
            self.assertRevoked200(self.d.revoke(tok, auth=self.w.a))
            with self.d.conn() as c:  # a new connection, right after the 200
                r = self.d.introspect(tok, conn=c)
                self.assertEqual(r.json(), h.INACTIVE)

    def test_visible_on_same_connection(self):
        tok = self.issue()["access_token"]
        with self.d.conn() as c:
            self.assertIs(self.d.introspect(tok, conn=c).json()["active"], True)
            self.assertRevoked200(self.d.revoke(tok, auth=self.w.a, conn=c))
            self.assertEqual(self.d.introspect(tok, conn=c).json(), h.INACTIVE)

    def test_no_auth_401(self):
        tok = self.issue()["access_token"]
        r = self.d.revoke(tok, auth=NOAUTH)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), {"error": "invalid_client"})
        self.assertIn("basic", (r.header("www-authenticate") or "").lower())
        self.assertActive(tok)

    def test_wrong_secret_401(self):
        tok = self.issue()["access_token"]
        bad = h.Client({"client_id": self.w.a.id, "client_secret": "tkd_cs_" + "Q" * 43})
        r = self.d.revoke(tok, auth=bad)
        self.assertEqual(r.status, 401, r)
        self.assertActive(tok)

    def test_disabled_client_401(self):
        agent = self.d.add_client("agent", "rv-disabled", scope="read")
        tok = self.issue(client=agent)["access_token"]
        self.d.ctl("client", "disable", agent.id)
        r = self.d.revoke(tok, auth=agent)
        self.assertEqual(r.status, 401, r)

    def test_both_methods_400(self):
        tok = self.issue()["access_token"]
        r = self.d.revoke(tok, auth=("both", self.w.a))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "invalid_request"})
        self.assertActive(tok)

    def test_missing_token_400(self):
        r = self.d.revoke(None, auth=self.w.a)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "invalid_request"})

    def test_get_405(self):
        r = self.d.request("GET", "/revoke", headers={"Authorization": self.w.a.basic()})
        self.assertEqual(r.status, 405, r)
        self.assertIn("POST", r.header("allow") or "")

    def test_wrong_content_type_400(self):
        tok = self.issue()["access_token"]
        r = self.d.request("POST", "/revoke", '{"token":"%s"}' % tok,
                           {"Authorization": self.w.a.basic()}, "application/json")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "invalid_request"})
        self.assertActive(tok)


if __name__ == "__main__":
    unittest.main()
