"""The visibility invariant (docs/ARCHITECTURE.md §4) under concurrency, and durability.

Eight threads, each on its own keep-alive connection, introspect the tokens
of one session in a tight loop and record when each request was *sent*.
Meanwhile the session's root token is revoked over HTTP (and, in a second
round, another session is terminated with tokenctl). No request sent after
the revocation's 200 arrived (or after tokenctl exited) may answer active.
Then tokend is stopped with SIGTERM and restarted on the same folder: every
revoked or terminated token stays inactive, an untouched one stays active.
The same holds for the client records each worker remembers per snapshot
(src/store/client_memo.c): a token's client disabled, or the caller's secret
rotated, by tokenctl while the threads run is seen by every request sent
after tokenctl exited.
"""

import threading
import time
import unittest

import harness as h

h.require_binaries()

THREADS = 8
WARMUP = 0.4  # seconds of introspection before the revocation
AFTER = 0.8  # seconds of introspection after it


class Hammer:
    """THREADS connections introspecting tokens round-robin until stopped."""

    def __init__(self, d, tokens, auth=None):
        self.d = d
        self.tokens = tokens
        self.auth = auth or d.default_auth
        self.stop = threading.Event()
        self.records = [[] for _ in range(THREADS)]  # (t_sent, token index, active)
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(THREADS)]

    def run(self, k):
        out = self.records[k]
        n = len(self.tokens)
        reqs = [h.auth_request("/introspect", t, self.auth) for t in self.tokens]
        try:
            with self.d.conn() as c:
                i = k
                while not self.stop.is_set():
                    idx = i % n
                    i += 1
                    t_sent = time.monotonic()
                    c.send(reqs[idx])
                    r = c.read_response()
                    if r.status in (401, 429) and self.auth is not self.d.default_auth:
                        # refused: the caller's own secret changed (then rate-limited)
                        out.append((t_sent, idx, False))
                        continue
                    if r.status != 200:
                        raise AssertionError("introspect -> %r" % r)
                    out.append((t_sent, idx, r.json().get("active") is True))
        except BaseException as e:  # reported by the main thread
            self.errors.append("thread %d: %r" % (k, e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def all(self):
        return [r for recs in self.records for r in recs]


class Concurrency(h.FreshCase):
    def setUp(self):
        self.d = self.daemon()
        self.w = h.World(self.d)

    def delegated_session(self, sub, plain=0, delegated=49):
        """A session with a root token, `delegated` descendants of it (children and
        grandchildren, agents b and c) and `plain` independent tokens."""
        d, w = self.d, self.w
        sid = d.new_session(sub)
        root = d.issue(sid, w.a, "read write")["access_token"]
        below = []
        parents = [root]
        for i in range(delegated):
            if i % 2 == 0:
                t = d.issue(sid, w.b, "read", parent=root)["access_token"]
                parents.append(t)
            else:
                t = d.issue(sid, w.c, "read", parent=parents[-1])["access_token"]
            below.append(t)
        flat = [d.issue(sid, w.a, "read")["access_token"] for _ in range(plain)]
        return sid, root, below, flat

    def check_round(self, hammer, t_before, t_ack, what):
        self.assertFalse(hammer.errors, "\n".join(hammer.errors))
        recs = hammer.all()
        before = [r for r in recs if r[0] < t_before]
        after = [r for r in recs if r[0] > t_ack]
        self.assertTrue(any(r[2] for r in before), "no active answer before the " + what)
        self.assertGreater(len(after), THREADS, "too few requests after the " + what)
        for k, recs_k in enumerate(hammer.records):
            self.assertTrue(any(r[0] > t_ack for r in recs_k),
                            "thread %d sent nothing after the %s" % (k, what))
        bad = [r for r in after if r[2]]
        self.assertEqual(bad, [], "%d of %d requests sent after the %s answered active"
                         " (first %.6f s after)" % (len(bad), len(after), what,
                                                   (bad[0][0] - t_ack) if bad else 0))

    def test_revocation_visible_under_load_and_durable(self):
        d, w = self.d, self.w
        sid1, root1, below1, _ = self.delegated_session("alice", plain=0, delegated=49)
        sid2, root2, below2, flat2 = self.delegated_session("bob", plain=25, delegated=24)
        sid3 = d.new_session("carol")
        keep = d.issue(sid3, w.a, "read")["access_token"]
        keep_child = d.issue(sid3, w.b, "read", parent=keep)["access_token"]

        # Round 1: POST /revoke of the root token of session 1.
        toks1 = [root1] + below1
        with Hammer(d, toks1) as ham:
            time.sleep(WARMUP)
            t_before = time.monotonic()
            with d.conn() as c:
                r = d.revoke(root1, auth=w.a, conn=c)
                t_ack = time.monotonic()
            self.assertEqual((r.status, r.body), (200, b""), r)
            time.sleep(AFTER)
        self.check_round(ham, t_before, t_ack, "revocation's 200")

        # Round 2: tokenctl session terminate of session 2.
        toks2 = [root2] + below2 + flat2
        with Hammer(d, toks2) as ham:
            time.sleep(WARMUP)
            t_before = time.monotonic()
            out = d.ctl("session", "terminate", sid2)
            t_ack = time.monotonic()
            self.assertEqual(out["state"], "terminated")
            time.sleep(AFTER)
        self.check_round(ham, t_before, t_ack, "tokenctl exit")

        self.assertActive(keep)
        self.assertActive(keep_child)

        # Durability: SIGTERM (exit 0), restart on the same folder.
        d.stop()
        d.start()
        for t in toks1 + toks2:
            self.assertInactive(t)
        self.assertActive(keep)
        self.assertActive(keep_child)
        s = d.ctl("session", "show", sid2)
        self.assertEqual(s["state"], "terminated")

    def test_client_changes_visible_under_load(self):
        """A token's client disabled, then the caller's secret rotated, each by
        tokenctl while eight connections introspect: every request sent after
        tokenctl exited sees the change, although each worker had read both
        client records thousands of times in the snapshot before."""
        d, w = self.d, self.w
        agent = d.add_client("agent", "agent-doomed", scope=h.AGENT_SCOPE)
        sid = d.new_session("frank")
        root = d.issue(sid, w.a, "read write")["access_token"]
        toks = [d.issue(sid, agent, "read")["access_token"] for _ in range(8)]
        toks += [d.issue(sid, agent, "read", parent=root)["access_token"] for _ in range(8)]
        with Hammer(d, toks) as ham:
            time.sleep(WARMUP)
            t_before = time.monotonic()
            out = d.ctl("client", "disable", agent.id)
            t_ack = time.monotonic()
            self.assertEqual(out["status"], "disabled")
            time.sleep(AFTER)
        self.check_round(ham, t_before, t_ack, "tokenctl client disable")
        self.assertActive(root)

        rs = d.add_client("resource_server", "rs-rotated")
        with Hammer(d, [root], auth=rs) as ham:
            time.sleep(WARMUP)
            t_before = time.monotonic()
            out = d.ctl("client", "rotate-secret", rs.id)
            t_ack = time.monotonic()
            time.sleep(AFTER)
        self.check_round(ham, t_before, t_ack, "tokenctl client rotate-secret")
        new = h.Client({"client_id": rs.id, "client_secret": out["client_secret"]})
        r = d.introspect(root, auth=new)
        for _ in range(10):  # the refused old secret got this address rate-limited
            if r.status != 429:
                break
            time.sleep(0.5)
            r = d.introspect(root, auth=new)
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.json()["active"], True)

    def test_revoke_then_check_on_other_connections(self):
        """After each 200, open keep-alive connections (spread over the workers
        by SO_REUSEPORT) must already see the token inactive."""
        d, w = self.d, self.w
        sid = d.new_session("dave")
        toks = [d.issue(sid, w.a, "read")["access_token"] for _ in range(12)]
        checkers = [d.conn() for _ in range(6)]
        revoker = d.conn()
        try:
            for tok in toks:
                for c in checkers:
                    self.assertIs(d.introspect(tok, conn=c).json()["active"], True)
                r = d.revoke(tok, auth=w.a, conn=revoker)
                self.assertEqual(r.status, 200, r)
                for c in checkers:
                    self.assertEqual(d.introspect(tok, conn=c).json(), h.INACTIVE)
        finally:
            for c in checkers + [revoker]:
                c.close()

    def test_parallel_revokers(self):
        """Several clients revoking at once (group commit): every 200 is
        followed by an inactive answer, and nothing else changes."""
        d, w = self.d, self.w
        sid = d.new_session("erin")
        owners = [w.a, w.b, w.c]
        toks = [(owners[i % 3], d.issue(sid, owners[i % 3], "read")["access_token"])
                for i in range(24)]
        spare = d.issue(sid, w.a, "read")["access_token"]
        errors = []

        def revoke_some(part):
            try:
                with d.conn() as rc, d.conn() as ic:
                    for owner, tok in part:
                        r = d.revoke(tok, auth=owner, conn=rc)
                        if r.status != 200:
                            raise AssertionError("revoke -> %r" % r)
                        j = d.introspect(tok, conn=ic).json()
                        if j != h.INACTIVE:
                            raise AssertionError("active right after its 200: %r" % j)
            except BaseException as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=revoke_some, args=(toks[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertActive(spare)


if __name__ == "__main__":
    unittest.main()
