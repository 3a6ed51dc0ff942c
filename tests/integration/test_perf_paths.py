"""Behaviour of the paths the performance work touched: the per-connection
cache of caller authentication (a keep-alive connection that authenticated
once must still be refused the moment its client is disabled, or when it
changes its credentials or adds form credentials), and `tokenctl token
fanout`, which seeds a root token with K delegated children for the cascade
benchmark."""

import os
import tempfile
import unittest

import harness as h

h.require_binaries()


class AuthCache(h.DaemonCase):
    def setUp(self):
        sid = self.d.new_session("cache-user")
        self.tok = self.d.issue(sid, self.w.a, "read")["access_token"]

    def answer(self, conn, auth, extra=None):
        conn.send(h.auth_request("/introspect", self.tok, auth, extra))
        return conn.read_response()

    def test_disabled_client_refused_on_same_connection(self):
        rs = self.d.add_client("resource_server")
        with self.d.conn() as c:
            for _ in range(3):
                r = self.answer(c, rs)
                self.assertEqual(r.status, 200, r)
                self.assertIs(r.json()["active"], True)
            self.d.ctl("client", "disable", rs.id)
            r = self.answer(c, rs)
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.json(), {"error": "invalid_client"})

    def test_wrong_secret_after_success_refused(self):
        rs = self.d.add_client("resource_server")
        with self.d.conn() as c:
            self.assertEqual(self.answer(c, rs).status, 200)
            self.assertEqual(self.answer(c, h.basic(rs.id, rs.secret[:-1] + "x")).status, 401)
            self.assertEqual(self.answer(c, rs).status, 200)

    def test_other_client_on_same_connection(self):
        rs = self.d.add_client("resource_server")
        with self.d.conn() as c:
            self.assertEqual(self.answer(c, rs).status, 200)
            # an agent may not introspect, even after a resource server did here
            r = self.answer(c, self.w.a)
            self.assertEqual(r.status, 401, r)
            self.assertEqual(self.answer(c, rs).status, 200)

    def test_rotation_then_new_secret_on_same_connection(self):
        """The remembered header dies with the secret it verified: after a
        rotation the old header is refused on the connection that had it
        cached, the new one authenticates there, and the old one never comes
        back (each time the same connection)."""
        rs = self.d.add_client("resource_server")
        with self.d.conn() as c:
            for _ in range(2):
                self.assertEqual(self.answer(c, rs).status, 200)
            out = self.d.ctl("client", "rotate-secret", rs.id)
            new = h.Client({"client_id": rs.id, "client_secret": out["client_secret"]})
            self.assertEqual(self.answer(c, rs).status, 401)
            for _ in range(2):
                self.assertEqual(self.answer(c, new).status, 200)
            self.assertEqual(self.answer(c, rs).status, 401)
            self.assertEqual(self.answer(c, new).status, 200)

    def test_disable_then_approve_on_same_connection(self):
        """Disabled between two requests of one connection: refused at once;
        approved again, the same header authenticates again through the full
        path (authentication reads status and secret, never the disable
        generation, which only decides the client's tokens)."""
        rs = self.d.add_client("resource_server")
        with self.d.conn() as c:
            for _ in range(2):
                self.assertEqual(self.answer(c, rs).status, 200)
            self.d.ctl("client", "disable", rs.id)
            self.assertEqual(self.answer(c, rs).status, 401)
            self.d.ctl("client", "approve", rs.id)
            for _ in range(2):
                self.assertEqual(self.answer(c, rs).status, 200)

    def test_form_credentials_with_cached_header_is_400(self):
        rs = self.d.add_client("resource_server")
        with self.d.conn() as c:
            self.assertEqual(self.answer(c, rs).status, 200)
            r = self.answer(c, ("both", rs))
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json(), {"error": "invalid_request"})

    def test_cached_header_not_used_by_other_connection_with_bad_creds(self):
        rs = self.d.add_client("resource_server")
        with self.d.conn() as c1, self.d.conn() as c2:
            self.assertEqual(self.answer(c1, rs).status, 200)
            self.assertEqual(self.answer(c2, h.NOAUTH).status, 401)
            self.assertEqual(self.answer(c2, rs).status, 200)


class Fanout(h.DaemonCase):
    def fanout(self, sid, k, client=None):
        path = os.path.join(tempfile.mkdtemp(prefix="tokend-fanout-"), "tree.txt")
        self.addCleanup(lambda: os.path.exists(path) and os.remove(path))
        out = self.d.ctl("token", "fanout", "--sid", sid, "--client", (client or self.w.a).id,
                         "--scope", "read", "--children", k, "--out", path)
        self.assertEqual(out["children"], k)
        with open(path) as f:
            lines = f.read().split("\n")
        self.assertEqual(lines[-1], "")
        return lines[:-1]

    def test_root_and_children_then_cascade(self):
        sid = self.d.new_session("fanout-user")
        toks = self.fanout(sid, 25)
        self.assertEqual(len(toks), 26)
        self.assertEqual(len(set(toks)), 26)
        root = self.assertActive(toks[0])
        self.assertNotIn("act", root)
        child = self.assertActive(toks[7])
        self.assertEqual(child["sid"], sid)
        self.assertEqual(child["act"], {"sub": self.w.a.id, "act": {"sub": self.w.a.id}})
        self.assertEqual(self.d.revoke(toks[0], auth=self.w.a).status, 200)
        for t in toks:
            self.assertInactive(t)

    def test_zero_children(self):
        toks = self.fanout(self.d.new_session("fanout-zero"), 0)
        self.assertEqual(len(toks), 1)
        self.assertActive(toks[0])

    def test_errors(self):
        p = self.d.ctl_run("token", "fanout", "--sid", "tks_nope", "--client", self.w.a.id,
                           "--scope", "read", "--children", "3", "--out", os.devnull)
        self.assertEqual(p.returncode, 1, p)
        p = self.d.ctl_run("token", "fanout", "--sid", "x", "--client", self.w.a.id,
                           "--scope", "read", "--out", os.devnull)
        self.assertEqual(p.returncode, 2, p)
        sid = self.d.new_session("fanout-scope")
        p = self.d.ctl_run("token", "fanout", "--sid", sid, "--client", self.w.a.id,
                           "--scope", "admin", "--children", "1", "--out", os.devnull)
        self.assertEqual(p.returncode, 1, p)


if __name__ == "__main__":
    unittest.main()
