"""Disabling a client is final for every token it had, and rotate-secret is
the way back for its credentials: against the real tokend and tokenctl.

Every kind of token (access, refresh, delegated from the client's tokens,
delegated *to* the client) is inactive after `client disable` and stays so
after `client approve`; tokens issued after re-approval live. `client
rotate-secret` prints a new secret once; the old one is refused at once,
even on a keep-alive connection whose authentication was cached."""

import unittest

import harness as h

h.require_binaries()


class DisableIsFinal(h.DaemonCase):

    def see(self, token, active):
        """The answer for every caller that may see the token: the admin
        (every kind) and, for access tokens, the resource server."""
        for auth in (self.w.admin, self.w.rs):
            if auth is self.w.rs and token.startswith("tkd_rt_"):
                continue  # refresh tokens are never active to resource servers
            if active:
                self.assertActive(token, auth=auth)
            else:
                self.assertInactive(token, auth=auth)

    def family(self, agent):
        """Every kind of token that involves agent, and bystanders."""
        sid = self.d.new_session("fam-%s" % agent.id[-6:])
        own = self.d.issue(sid, agent, "read", refresh=True)
        child = self.d.issue(sid, self.w.b, "read", parent=own["access_token"])["access_token"]
        grand = self.d.issue(sid, self.w.c, "read", parent=child)["access_token"]
        other = self.d.issue(sid, self.w.a, "read")["access_token"]
        to_agent = self.d.issue(sid, agent, "read", parent=other)["access_token"]
        under = self.d.issue(sid, self.w.c, "read", parent=to_agent)["access_token"]
        dead = [own["access_token"], own["refresh_token"], child, grand, to_agent, under]
        for t in dead + [other]:
            self.see(t, True)
        return sid, dead, other

    def test_disable_then_approve_resurrects_nothing(self):
        agent = self.d.add_client("agent", "fin-1", scope="read write")
        sid, dead, other = self.family(agent)
        self.assertEqual(self.d.ctl("client", "disable", agent.id),
                         {"client_id": agent.id, "status": "disabled"})
        for t in dead:
            self.see(t, False)
        self.see(other, True)
        self.assertEqual(self.d.ctl("client", "approve", agent.id),
                         {"client_id": agent.id, "status": "approved"})
        for t in dead:
            self.see(t, False)
        self.see(other, True)
        # No new delegation from a dead token either.
        p = self.d.ctl_run("token", "issue", "--sid", sid, "--client", self.w.b.id,
                           "--scope", "read", "--parent", dead[0])
        self.assertEqual(p.returncode, 1, p.stderr)
        # The re-approved client starts afresh: new tokens of every kind live.
        fresh = self.d.issue(sid, agent, "read", refresh=True)
        kid = self.d.issue(sid, self.w.b, "read", parent=fresh["access_token"])["access_token"]
        for t in (fresh["access_token"], fresh["refresh_token"], kid):
            self.see(t, True)

    def test_disabling_a_delegate_is_final(self):
        agent = self.d.add_client("agent", "fin-2", scope="read write")
        sid = self.d.new_session("delegate")
        root = self.d.issue(sid, self.w.a, "read")["access_token"]
        mid = self.d.issue(sid, agent, "read", parent=root)["access_token"]
        low = self.d.issue(sid, self.w.c, "read", parent=mid)["access_token"]
        self.d.ctl("client", "disable", agent.id)
        self.d.ctl("client", "approve", agent.id)
        self.see(mid, False)
        self.see(low, False)
        self.see(root, True)

    def test_pending_then_approved_is_not_a_disable(self):
        agent = self.d.add_client("agent", "fin-3", scope="read", pending=True)
        self.d.ctl("client", "approve", agent.id)
        sid = self.d.new_session("pend")
        t = self.d.issue(sid, agent, "read")["access_token"]
        self.see(t, True)

    def test_generation_counts_disables_once(self):
        agent = self.d.add_client("agent", "fin-4", scope="read")

        def generation():
            return [c for c in self.d.ctl("client", "list")
                    if c["client_id"] == agent.id][0]["generation"]

        self.assertEqual(generation(), 0)
        self.d.ctl("client", "disable", agent.id)
        self.d.ctl("client", "disable", agent.id)  # already disabled: nothing changes
        self.assertEqual(generation(), 1)
        self.d.ctl("client", "approve", agent.id)
        self.assertEqual(generation(), 1)
        self.d.ctl("client", "disable", agent.id)
        self.assertEqual(generation(), 2)


class RotateSecret(h.DaemonCase):

    def rotate(self, client):
        out = self.d.ctl("client", "rotate-secret", client.id)
        self.assertEqual(set(out), {"client_id", "client_secret", "status"})
        self.assertEqual(out["client_id"], client.id)
        self.assertTrue(out["client_secret"].startswith("tkd_cs_"), out)
        self.assertNotEqual(out["client_secret"], client.secret)
        return h.Client({"client_id": client.id, "client_secret": out["client_secret"]}), out

    def test_old_secret_refused_new_one_works(self):
        rs = self.d.add_client("resource_server", "rot-rs")
        sid = self.d.new_session("rot")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        self.assertActive(tok, auth=rs)
        new, out = self.rotate(rs)
        self.assertEqual(out["status"], "approved")
        r = self.d.introspect(tok, auth=rs)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"], "invalid_client")
        self.assertActive(tok, auth=new)
        # Printed once: never listed.
        self.assertNotIn(new.secret, self.d.ctl_run("client", "list").stdout)

    def test_cached_authentication_does_not_outlive_the_secret(self):
        rs = self.d.add_client("resource_server", "rot-cache")
        sid = self.d.new_session("rotc")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        with self.d.conn() as c:
            for _ in range(3):  # the same Basic header on one connection: cached
                r = self.d.introspect(tok, auth=rs, conn=c)
                self.assertEqual(r.status, 200, r)
            self.rotate(rs)
            r = self.d.introspect(tok, auth=rs, conn=c)
            self.assertEqual(r.status, 401, r)

    def test_agent_secret_for_revocation(self):
        agent = self.d.add_client("agent", "rot-agent", scope="read")
        sid = self.d.new_session("rota")
        tok = self.d.issue(sid, agent, "read")["access_token"]
        new, _ = self.rotate(agent)
        self.assertEqual(self.d.revoke(tok, auth=agent).status, 401)
        self.assertActive(tok, auth=self.w.rs)
        self.assertEqual(self.d.revoke(tok, auth=new).status, 200)
        self.assertInactive(tok, auth=self.w.rs)

    def test_rotate_a_disabled_client_then_approve(self):
        rs = self.d.add_client("resource_server", "rot-dis")
        sid = self.d.new_session("rotd")
        tok = self.d.issue(sid, self.w.a, "read")["access_token"]
        self.d.ctl("client", "disable", rs.id)
        new, out = self.rotate(rs)
        self.assertEqual(out["status"], "disabled")
        self.assertEqual(self.d.introspect(tok, auth=new).status, 401)  # still disabled
        self.d.ctl("client", "approve", rs.id)
        self.assertEqual(self.d.introspect(tok, auth=rs).status, 401)
        self.assertActive(tok, auth=new)

    def test_unknown_client_and_usage(self):
        p = self.d.ctl_run("client", "rotate-secret", "tkc_" + "N" * 22)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout.strip(), "")
        p = self.d.ctl_run("client", "rotate-secret")
        self.assertEqual(p.returncode, 2, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
