"""Refresh tokens are for the authorization server, not bearer credentials:
against the real tokend, introspection answers {"active":false} for a
refresh token to resource servers (with or without a resource of their own)
and the full answer to admins; forward-auth refuses a refresh token with 401
invalid_token; access tokens of the same grant are unaffected, and the
refresh token still works for what it is for (its client revokes it)."""

import json
import os
import shutil
import tempfile
import unittest

import harness as h

h.require_binaries()

API = "https://api.refresh.test/"


class RefreshTokens(h.TokenAsserts, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.res_dir = tempfile.mkdtemp(prefix="tokend-res-")
        cls.addClassCleanup(shutil.rmtree, cls.res_dir, True)
        path = os.path.join(cls.res_dir, "resources.json")
        with open(path, "w") as f:
            json.dump({"resources": [{"resource": API, "required_scopes": {"*": ["read"]}}]}, f)
        cls.d = h.start_daemon(("--resources", path))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.w = h.World(cls.d)
        cls.rs_api = cls.d.add_client("resource_server", "rs-api", resource=API)
        cls.sid = cls.d.new_session("rita")

    def pair(self):
        return self.d.issue(self.sid, self.w.a, "read", aud=API, refresh=True)

    def auth(self, token):
        return self.d.request("GET", "/auth", headers={
            "X-Forwarded-Host": "api.refresh.test", "X-Forwarded-Uri": "/x",
            "Authorization": "Bearer " + token})

    def test_resource_servers_see_refresh_tokens_inactive(self):
        t = self.pair()
        for rs in (self.w.rs, self.rs_api):
            self.assertInactive(t["refresh_token"], auth=rs)
            self.assertActive(t["access_token"], auth=rs)

    def test_admins_see_refresh_tokens(self):
        t = self.pair()
        j = self.assertActive(t["refresh_token"], auth=self.w.admin)
        self.assertEqual(j["token_type"], "refresh_token")
        self.assertEqual(j["client_id"], self.w.a.id)
        self.assertActive(t["access_token"], auth=self.w.admin)

    def test_forward_auth_refuses_refresh_tokens(self):
        t = self.pair()
        ok = self.auth(t["access_token"])
        self.assertEqual(ok.status, 200, ok)
        r = self.auth(t["refresh_token"])
        self.assertEqual(r.status, 401, r)
        self.assertIn('error="invalid_token"', r.header("www-authenticate"))
        self.assertIsNone(r.header("x-auth-subject"))

    def test_refresh_token_still_revocable_by_its_client(self):
        t = self.pair()
        self.assertEqual(self.d.revoke(t["refresh_token"], auth=self.w.a).status, 200)
        self.assertInactive(t["refresh_token"], auth=self.w.admin)
        self.assertInactive(t["access_token"], auth=self.w.rs)  # the grant went with it


if __name__ == "__main__":
    unittest.main(verbosity=2)
