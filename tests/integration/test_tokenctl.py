"""tokenctl: the JSON shape of every command, exit codes (1 failure with a
message on stderr, 2 usage), and bulk seeding, checked against a running
tokend on the same folder."""

import os
import json
import time
import unittest

import harness as h

h.require_binaries()

ID_RE = r"[A-Za-z0-9_-]{22}"
SECRET_RE = r"[A-Za-z0-9_-]{43}"


class Tokenctl(h.DaemonCase):
    def ctl_fails(self, rc, *args):
        p = self.d.ctl_run(*args)
        self.assertEqual(p.returncode, rc, "tokenctl %s: stdout %r stderr %r"
                         % (" ".join(map(str, args)), p.stdout, p.stderr))
        self.assertTrue(p.stderr.strip(), "no message on stderr for %r" % (args,))
        return p

    # -- clients --

    def test_client_add_shape(self):
        out = self.d.ctl("client", "add", "--name", "shape", "--role", "agent",
                         "--scope", "read write")
        self.assertRegex(out["client_id"], "^tkc_" + ID_RE + "$")
        self.assertRegex(out["client_secret"], "^tkd_cs_" + SECRET_RE + "$")
        self.assertEqual(out["name"], "shape")
        self.assertEqual(out["role"], "agent")
        self.assertEqual(out["status"], "approved")

    def test_client_roles(self):
        for role in ("agent", "resource_server", "admin"):
            with self.subTest(role=role):
                self.assertEqual(self.d.ctl("client", "add", "--name", "r-" + role,
                                            "--role", role)["role"], role)

    def test_client_pending_approve_disable(self):
        c = self.d.add_client("resource_server", "lifecycle", pending=True)
        self.assertEqual(c.rec["status"], "pending")
        self.assertEqual(self.d.ctl("client", "approve", c.id),
                         {"client_id": c.id, "status": "approved"})
        sid = self.d.new_session("x")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        self.assertIs(self.d.active(tok, auth=c)["active"], True)  # approved: may call
        self.assertEqual(self.d.ctl("client", "disable", c.id),
                         {"client_id": c.id, "status": "disabled"})
        self.assertEqual(self.d.introspect(tok, auth=c).status, 401)

    def test_client_list(self):
        c = self.d.add_client("agent", "listed", scope="read")
        out = self.d.ctl("client", "list")
        self.assertIsInstance(out, list)
        mine = [x for x in out if x["client_id"] == c.id]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["name"], "listed")
        self.assertEqual(mine[0]["role"], "agent")
        self.assertEqual(mine[0]["status"], "approved")
        ids = {x["client_id"] for x in out}
        self.assertTrue({self.w.rs.id, self.w.a.id, self.w.admin.id} <= ids)
        for x in out:
            self.assertNotIn("client_secret", x)
        self.assertNotIn(c.secret, self.d.ctl_run("client", "list").stdout)

    def test_client_errors(self):
        self.ctl_fails(1, "client", "disable", "tkc_" + "N" * 22)
        self.ctl_fails(1, "client", "approve", "tkc_" + "N" * 22)
        self.ctl_fails(1, "client", "rotate-secret", "tkc_" + "N" * 22)
        self.ctl_fails(2, "client", "add", "--name", "x")  # no --role
        self.ctl_fails(2, "client", "add", "--name", "x", "--role", "emperor")

    # -- sessions --

    def test_session_create_shape(self):
        now = int(time.time())
        out = self.d.ctl("session", "create", "--sub", "alice", "--ttl", "100")
        self.assertRegex(out["sid"], "^tks_" + ID_RE + "$")
        self.assertEqual(out["sub"], "alice")
        self.assertIs(type(out["expires"]), int)
        self.assertLessEqual(abs(out["expires"] - (now + 100)), 5)

    def test_session_create_issuer(self):
        out = self.d.ctl("session", "create", "--sub", "bob", "--issuer", "https://idp.test")
        self.assertRegex(out["sid"], "^tks_")

    def test_session_list_and_show(self):
        sid = self.d.new_session("listme")
        for _ in range(3):
            self.d.issue(sid, self.w.a, "read")
        out = self.d.ctl("session", "list")
        self.assertIsInstance(out, list)
        mine = [x for x in out if x["sid"] == sid]
        self.assertEqual(len(mine), 1)
        for k in ("sid", "sub", "state", "created", "expires"):
            self.assertIn(k, mine[0])
        self.assertEqual(mine[0]["sub"], "listme")
        self.assertEqual(mine[0]["state"], "active")
        self.assertIs(type(mine[0]["created"]), int)
        show = self.d.ctl("session", "show", sid)
        self.assertEqual(show["sid"], sid)
        self.assertEqual(show["sub"], "listme")
        self.assertEqual(show["state"], "active")
        self.assertEqual(show["tokens"], 3)

    def test_session_state_changes(self):
        sid = self.d.new_session("states")
        self.assertEqual(self.d.ctl("session", "show", sid)["holds"], [])
        self.assertEqual(self.d.ctl("session", "suspend", sid), {"sid": sid, "state": "suspended"})
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "suspended")
        self.assertEqual(self.d.ctl("session", "show", sid)["holds"], ["admin"])
        self.assertEqual(self.d.ctl("session", "resume", sid), {"sid": sid, "state": "active"})
        self.assertEqual(self.d.ctl("session", "show", sid)["holds"], [])
        self.assertEqual(self.d.ctl("session", "terminate", sid, "--reason", "admin"),
                         {"sid": sid, "state": "terminated"})
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "terminated")

    def test_session_unknown_sid(self):
        bad = "tks_" + "N" * 22
        for cmd in ("terminate", "suspend", "resume", "show"):
            with self.subTest(cmd=cmd):
                p = self.ctl_fails(1, "session", cmd, bad)
                self.assertEqual(p.stdout.strip(), "")

    def test_session_usage(self):
        self.ctl_fails(2, "session", "create")  # no --sub
        self.ctl_fails(2, "session", "terminate")  # no SID
        self.ctl_fails(2, "session", "frobnicate")

    # -- tokens --

    def test_token_issue_refresh_shape(self):
        sid = self.d.new_session("tok")
        out = self.d.issue(sid, self.w.a, "read write", ttl=300, refresh=True)
        self.assertRegex(out["access_token"], "^tkd_at_" + SECRET_RE + "$")
        self.assertRegex(out["refresh_token"], "^tkd_rt_" + SECRET_RE + "$")
        self.assertEqual(out["token_type"], "Bearer")
        self.assertEqual(out["expires_in"], 300)
        self.assertEqual(out["scope"], "read write")
        self.assertRegex(out["grant_id"], "^tkg_" + ID_RE + "$")

    def test_token_delegated_shares_grant(self):
        sid = self.d.new_session("tok")
        root = self.d.issue(sid, self.w.a, "read write")
        child = self.d.issue(sid, self.w.b, "read", parent=root["access_token"])
        self.assertEqual(child["grant_id"], root["grant_id"])
        self.assertNotIn("refresh_token", child)

    def test_token_show(self):
        sid = self.d.new_session("shown")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        out = self.d.ctl("token", "show", tok)
        self.assertIs(out["active"], True)
        self.assertEqual(out["sub"], "shown")
        self.assertEqual(out["sid"], sid)
        self.assertEqual(out["client_id"], self.w.a.id)
        self.assertEqual(out["scope"], "read")
        self.assertEqual(out["token_type"], "Bearer")
        out = self.d.ctl("token", "show", tok, "--issuer", "https://show.test")
        self.assertEqual(out["iss"], "https://show.test")
        # Same answer as the endpoint, apart from iss (the daemon's own issuer).
        http = self.d.active(tok)
        out.pop("iss", None)
        http.pop("iss", None)
        self.assertEqual(out, http)

    def test_token_show_inactive(self):
        self.assertEqual(self.d.ctl("token", "show", "tkd_at_" + "N" * 43), h.INACTIVE)

    def test_token_revoke(self):
        sid = self.d.new_session("rev")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        self.assertEqual(self.d.ctl("token", "revoke", tok), {"revoked": True})
        self.assertEqual(self.d.ctl("token", "revoke", tok), {"revoked": False})
        self.assertEqual(self.d.ctl("token", "show", tok), h.INACTIVE)
        self.assertInactive(tok)

    def test_token_revoke_refresh_revokes_grant(self):
        sid = self.d.new_session("rt")
        t = self.d.issue(sid, self.w.a, "read", refresh=True)
        child = self.d.issue(sid, self.w.b, "read", parent=t["access_token"])["access_token"]
        self.assertEqual(self.d.ctl("token", "revoke", t["refresh_token"]), {"revoked": True})
        for tok in (t["refresh_token"], t["access_token"], child):
            self.assertInactive(tok)

    def test_token_issue_errors(self):
        sid = self.d.new_session("err")
        root = self.d.issue(sid, self.w.a, "read")["access_token"]
        bad_sid = "tks_" + "N" * 22
        self.ctl_fails(1, "token", "issue", "--sid", bad_sid, "--client", self.w.a.id,
                       "--scope", "read")
        self.ctl_fails(1, "token", "issue", "--sid", sid, "--client", "tkc_" + "N" * 22,
                       "--scope", "read")
        # Scope outside the client's allowed scopes.
        self.ctl_fails(1, "token", "issue", "--sid", sid, "--client", self.w.a.id,
                       "--scope", "admin")
        # Delegation may only narrow the scope.
        self.ctl_fails(1, "token", "issue", "--sid", sid, "--client", self.w.b.id,
                       "--scope", "read write", "--parent", root)
        # An inactive parent cannot delegate.
        self.d.ctl("token", "revoke", root)
        self.ctl_fails(1, "token", "issue", "--sid", sid, "--client", self.w.b.id,
                       "--scope", "read", "--parent", root)
        # A terminated session issues nothing.
        self.d.ctl("session", "terminate", sid)
        self.ctl_fails(1, "token", "issue", "--sid", sid, "--client", self.w.a.id,
                       "--scope", "read")
        self.ctl_fails(2, "token", "issue", "--client", self.w.a.id)  # no --sid

    def test_disabled_client_cannot_be_issued(self):
        agent = self.d.add_client("agent", "dis", scope="read")
        self.d.ctl("client", "disable", agent.id)
        sid = self.d.new_session("dis")
        self.ctl_fails(1, "token", "issue", "--sid", sid, "--client", agent.id,
                       "--scope", "read")

    def test_depth_limit(self):
        sid = self.d.new_session("deep")
        agents = [self.w.a, self.w.b, self.w.c]
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        n = 0
        while n < 12:
            p = self.d.ctl_run("token", "issue", "--sid", sid, "--client", agents[n % 3].id,
                               "--scope", "read", "--parent", tok)
            if p.returncode != 0:
                self.assertEqual(p.returncode, 1, p.stderr)
                break
            tok = json.loads(p.stdout)["access_token"]
            n += 1
        self.assertEqual(n, 4, "delegation links allowed with the default --max-depth")
        self.assertActive(tok)

    # -- stats, usage --

    def test_stats(self):
        before = self.d.ctl("stats")
        for k in ("tokens", "sessions", "grants", "clients", "map_size", "map_used"):
            self.assertIs(type(before[k]), int, k)
        sid = self.d.new_session("stats")
        self.d.issue(sid, self.w.a, "read")
        after = self.d.ctl("stats")
        self.assertEqual(after["tokens"], before["tokens"] + 1)
        self.assertEqual(after["sessions"], before["sessions"] + 1)
        self.assertEqual(after["grants"], before["grants"] + 1)
        self.assertGreater(after["map_size"], 0)
        self.assertLessEqual(after["map_used"], after["map_size"])

    def test_usage_errors_exit_2(self):
        for args in ([], ["frobnicate"], ["client"], ["token"], ["token", "issue"],
                     ["seed", "--sessions", "1"], ["stats", "--bogus"]):
            with self.subTest(args=args):
                self.ctl_fails(2, *args)

    # -- seed --

    def test_seed(self):
        out_path = os.path.join(self.d.run_dir, "seed.txt")
        before = self.d.ctl("stats")
        p = self.d.ctl_run("seed", "--sessions", "3", "--tokens-per-session", "4",
                           "--out", out_path, "--client", self.w.a.id, "--scope", "read")
        self.assertEqual(p.returncode, 0, p.stderr)
        summary = json.loads(p.stdout)
        self.assertIsInstance(summary, dict)
        with open(out_path) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 12)
        self.assertEqual(len(set(lines)), 12)
        for t in lines:
            self.assertRegex(t, "^tkd_at_" + SECRET_RE + "$")
        for t in lines:
            j = self.assertActive(t)
            self.assertEqual(j["client_id"], self.w.a.id)
            self.assertEqual(j["scope"], "read")
        after = self.d.ctl("stats")
        self.assertEqual(after["tokens"], before["tokens"] + 12)
        self.assertEqual(after["sessions"], before["sessions"] + 3)

    def test_seed_default_client(self):
        out_path = os.path.join(self.d.run_dir, "seed2.txt")
        p = self.d.ctl_run("seed", "--sessions", "2", "--tokens-per-session", "2",
                           "--out", out_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out_path) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(set(lines)), 4)
        for t in lines:
            self.assertActive(t)


if __name__ == "__main__":
    unittest.main()
