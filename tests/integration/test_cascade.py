"""The cascade rule (docs/ARCHITECTURE.md §3) at delegation depth 3: revoking a token,
ending a session or disabling a client makes everything under it inactive,
and nothing above it."""

import json
import unittest

import harness as h

h.require_binaries()


class Cascade(h.DaemonCase):
    def chain(self, sub="alice"):
        """A session with root (agent a) -> child (b) -> grandchild (c)."""
        sid = self.d.new_session(sub)
        root = self.d.issue(sid, self.w.a, "read write")["access_token"]
        child = self.d.issue(sid, self.w.b, "read", parent=root)["access_token"]
        grand = self.d.issue(sid, self.w.c, "read", parent=child)["access_token"]
        for t in (root, child, grand):
            self.assertActive(t)
        return sid, root, child, grand

    def test_revoke_middle_by_owner(self):
        _, root, child, grand = self.chain()
        r = self.d.revoke(child, auth=self.w.b)
        self.assertEqual(r.status, 200, r)
        self.assertInactive(child)
        self.assertInactive(grand)
        self.assertActive(root)

    def test_revoke_root_kills_all(self):
        _, root, child, grand = self.chain()
        self.assertEqual(self.d.revoke(root, auth=self.w.a).status, 200)
        for t in (root, child, grand):
            self.assertInactive(t)

    def test_revoke_leaf_only(self):
        _, root, child, grand = self.chain()
        self.assertEqual(self.d.revoke(grand, auth=self.w.c).status, 200)
        self.assertInactive(grand)
        self.assertActive(child)
        self.assertActive(root)

    def test_parent_owner_cannot_revoke_child_directly(self):
        # RFC 7009 §2.1: the token must have been issued to the caller.
        _, root, child, _ = self.chain()
        r = self.d.revoke(child, auth=self.w.a)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "unauthorized_client"})
        self.assertActive(child)

    def test_session_terminate_kills_all(self):
        sid, root, child, grand = self.chain()
        other_sid, o_root, o_child, _ = self.chain("bob")
        out = self.d.ctl("session", "terminate", sid, "--reason", "logout")
        self.assertEqual(out["sid"], sid)
        self.assertEqual(out["state"], "terminated")
        for t in (root, child, grand):
            self.assertInactive(t)
        self.assertActive(o_root)
        self.assertActive(o_child)

    def test_session_terminate_is_final(self):
        sid, root, _, _ = self.chain()
        self.d.ctl("session", "terminate", sid)
        p = self.d.ctl_run("session", "resume", sid)
        # Refused (exit 1), or a no-op that reports the session still terminated.
        if p.returncode == 0:
            self.assertEqual(json.loads(p.stdout)["state"], "terminated")
        else:
            self.assertEqual(p.returncode, 1, p.stderr)
        self.assertInactive(root)

    def test_session_suspend_resume_cascade(self):
        sid, root, child, grand = self.chain()
        self.d.ctl("session", "suspend", sid)
        for t in (root, child, grand):
            self.assertInactive(t)
        self.d.ctl("session", "resume", sid)
        for t in (root, child, grand):
            self.assertActive(t)

    def test_disable_root_client_kills_all(self):
        a = self.d.add_client("agent", "casc-a", scope="read write")
        sid = self.d.new_session("carol")
        root = self.d.issue(sid, a, "read")["access_token"]
        child = self.d.issue(sid, self.w.b, "read", parent=root)["access_token"]
        grand = self.d.issue(sid, self.w.c, "read", parent=child)["access_token"]
        self.assertActive(grand)
        self.d.ctl("client", "disable", a.id)
        for t in (root, child, grand):
            self.assertInactive(t)
        # Disabling is final: approving the client again brings none back.
        self.d.ctl("client", "approve", a.id)
        for t in (root, child, grand):
            self.assertInactive(t)

    def test_disable_middle_client(self):
        b = self.d.add_client("agent", "casc-b", scope="read write")
        sid = self.d.new_session("dave")
        root = self.d.issue(sid, self.w.a, "read")["access_token"]
        child = self.d.issue(sid, b, "read", parent=root)["access_token"]
        grand = self.d.issue(sid, self.w.c, "read", parent=child)["access_token"]
        self.d.ctl("client", "disable", b.id)
        self.assertInactive(child)
        self.assertInactive(grand)
        self.assertActive(root)
        self.d.ctl("client", "approve", b.id)
        self.assertInactive(child)
        self.assertInactive(grand)
        self.assertActive(root)

    def test_wide_fanout_session_end(self):
        sid = self.d.new_session("erin")
        root = self.d.issue(sid, self.w.a, "read")["access_token"]
        kids = [self.d.issue(sid, self.w.b, "read", parent=root)["access_token"]
                for _ in range(5)]
        plain = [self.d.issue(sid, self.w.c, "read")["access_token"] for _ in range(3)]
        self.d.ctl("session", "terminate", sid)
        for t in [root] + kids + plain:
            self.assertInactive(t)


if __name__ == "__main__":
    unittest.main()
