"""The SSF transmitter against a receiver written with npm `jose`
(tests/interop/ssf_receiver.mjs), which verifies every SET against tokend's
/jwks.json and records it.

Ending a session with 1 000 tokens pushes ONE session-revoked event; a token
revocation pushes an event naming the token by its SHA-256 (the token never
travels); a receiver that is down for a while gets everything in order once
it is back; a tokend killed with -9 while events are queued delivers them
after its restart (at-least-once: duplicates are allowed, losses are not); a
full queue becomes one overflow event; a receiver gets only the kinds it
asked for. Needs node and tests/interop/node_modules; skipped (exit 77)
without them.
"""

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

import as_http as a
import harness as h

h.require_binaries()

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
if NODE is None or not os.path.isdir(os.path.join(INTEROP, "node_modules", "jose")):
    sys.stderr.write("skipped: node or tests/interop/node_modules missing "
                     "(run `npm ci` in tests/interop; tools/test does)\n")
    sys.exit(77)

ISSUER = "https://tokend.test"
AUDIENCE = "https://edge.example.com"
BEARER = "edge-push-credential-0123456789"
CAEP_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
TOKEN_REVOKED = "urn:tokend:secevent:token-revoked"
OVERFLOW = "urn:tokend:secevent:overflow"
# Fast back-off so a receiver that is down costs the test seconds.
FAST = ("--issuer", ISSUER, "--ssf-retry-min", "100", "--ssf-retry-max", "800",
        "--ssf-poll", "50")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token_hash(tok):
    d = hashlib.sha256(tok.encode()).digest()
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


class Receiver:
    """The node receiver: start, stop (connection refused while down) and
    start again on the same port; read what it recorded."""

    def __init__(self, folder):
        self.folder = folder
        self.log = os.path.join(folder, "sets.jsonl")
        self.port = free_port()  # known before the receiver first runs
        self.proc = None

    def start(self, jwks_url, issuer=ISSUER):
        pf = os.path.join(self.folder, "receiver-port")
        if os.path.exists(pf):
            os.unlink(pf)
        self.err = open(os.path.join(self.folder, "receiver.err"), "ab")
        self.proc = subprocess.Popen(
            [NODE, os.path.join(INTEROP, "ssf_receiver.mjs"), str(self.port), pf, self.log,
             jwks_url, issuer, AUDIENCE, BEARER],
            cwd=INTEROP, stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        deadline = time.monotonic() + 20
        while not os.path.exists(pf):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("receiver did not start: %s" % self.stderr())
            time.sleep(0.05)
        with open(pf) as f:
            self.port = int(f.read())
        return self

    def stderr(self):
        try:
            with open(os.path.join(self.folder, "receiver.err"), "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
            self.err.close()

    @property
    def url(self):
        return "http://127.0.0.1:%d/events" % self.port

    def entries(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def sets(self):
        """Verified SETs' payloads, in arrival order; fails on any rejection."""
        out = []
        for e in self.entries():
            if "rejected" in e:
                raise AssertionError("the receiver rejected a SET: %r" % e)
            out.append(e["payload"])
        return out

    def wait_for(self, n, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.sets()
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%d SETs within %.0f s, want %d: %r"
                                     % (len(got), timeout, n, got))
            time.sleep(0.05)


def event_of(p):
    (typ, body), = p["events"].items()
    return typ, body


def unique_in_order(sets):
    """Drop redeliveries (same jti), keep the first arrival's order."""
    seen, out = set(), []
    for p in sets:
        if p["jti"] not in seen:
            seen.add(p["jti"])
            out.append(p)
    return out


class Transmitter(h.FreshCase):
    def setUp(self):
        self.folder = self.tmpdir()
        self.data = os.path.join(self.folder, "data")
        self.bearer_file = os.path.join(self.folder, "bearer")
        with open(self.bearer_file, "w") as f:
            f.write(BEARER + "\n")
        self.rcv = Receiver(self.folder)
        self.addCleanup(self.rcv.stop)

    def start(self, extra=()):
        self.d = self.daemon(FAST + tuple(extra), data_dir=self.data)  # later flags win
        return self.d

    def jwks_url(self):
        return "http://127.0.0.1:%d/jwks.json" % self.d.port

    def add_receiver(self, rid="edge1", *extra):
        self.d.ctl("ssf", "receiver", "add", rid, "--url", self.rcv.url, "--audience", AUDIENCE,
                   "--bearer-file", self.bearer_file, *extra)

    def setup_world(self):
        self.agent = self.d.add_client("agent", "agent", scope="read write")
        self.d.default_auth = self.d.add_client("resource_server", "rs")

    def depth(self, rid="edge1"):
        for r in self.d.ctl("ssf", "receiver", "list"):
            if r["receiver"] == rid:
                return r["depth"]
        raise AssertionError("no receiver " + rid)

    def wait_depth(self, want, rid="edge1", timeout=20.0):
        deadline = time.monotonic() + timeout
        while self.depth(rid) != want:
            if time.monotonic() > deadline:
                raise AssertionError("depth %d, want %d" % (self.depth(rid), want))
            time.sleep(0.05)

    # ---- the events ----

    def test_session_end_with_1000_tokens_is_one_event(self):
        self.start()
        self.rcv.start(self.jwks_url())
        self.add_receiver()
        self.setup_world()
        sid = self.d.new_session("alice")
        out = os.path.join(self.folder, "fanout")
        self.d.ctl("token", "fanout", "--sid", sid, "--client", self.agent.id, "--scope", "read",
                   "--children", 999, "--out", out)
        with open(out) as f:
            tokens = [line.strip() for line in f if line.strip()]
        self.assertEqual(len(tokens), 1000)
        self.assertActive(tokens[-1])
        self.d.ctl("session", "terminate", sid, "--reason", "user logged out")
        got = self.rcv.wait_for(1)
        time.sleep(1.0)  # anything more would have come by now (poll 50 ms)
        got = self.rcv.sets()
        self.assertEqual(len(got), 1, got)
        p = got[0]
        self.assertEqual(p["iss"], ISSUER)
        self.assertEqual(p["aud"], AUDIENCE)
        self.assertIsInstance(p["iat"], int)
        self.assertTrue(p["jti"])
        self.assertEqual(p["sub_id"], {"format": "opaque", "id": sid})
        typ, body = event_of(p)
        self.assertEqual(typ, CAEP_REVOKED)
        self.assertEqual(body["reason_admin"], {"en": "user logged out"})
        self.assertIsInstance(body["event_timestamp"], int)
        hdr = self.rcv.entries()[0]["header"]
        self.assertEqual(hdr["typ"], "secevent+jwt")
        self.assertEqual(hdr["alg"], "ES256")
        self.wait_depth(0)
        self.assertInactive(tokens[0])
        self.assertInactive(tokens[-1])

    def test_token_revocation_names_the_hash_and_no_token_travels(self):
        self.start()
        self.rcv.start(self.jwks_url())
        self.add_receiver()
        self.setup_world()
        sid = self.d.new_session("bob")
        t1 = self.d.issue(sid, self.agent, "read")["access_token"]
        t2 = self.d.issue(sid, self.agent, "read")["access_token"]
        # One through tokend's /revoke (the committer), one through tokenctl.
        r = self.d.revoke(t1, auth=self.agent)
        self.assertEqual(r.status, 200, r)
        self.d.ctl("token", "revoke", t2)
        got = self.rcv.wait_for(2)
        self.assertEqual([event_of(p)[0] for p in got], [TOKEN_REVOKED] * 2)
        self.assertEqual([p["sub_id"] for p in got],
                         [{"format": "opaque", "id": token_hash(t)} for t in (t1, t2)])
        raw = "".join(e["raw"] for e in self.rcv.entries())
        for t in (t1, t2):
            self.assertNotIn(t, raw)
            self.assertNotIn(t, json.dumps(self.rcv.entries()))
        # Revoking again changes nothing: no second event.
        self.d.ctl("token", "revoke", t2)
        time.sleep(0.8)
        self.assertEqual(len(self.rcv.sets()), 2)

    def test_suspend_resume_and_grant_events(self):
        self.start()
        self.rcv.start(self.jwks_url())
        self.add_receiver()
        self.setup_world()
        sid = self.d.new_session("carol")
        t = self.d.issue(sid, self.agent, "read", refresh=True)
        self.d.ctl("session", "suspend", sid, "--reason", "audit")
        self.d.ctl("session", "resume", sid)
        r = self.d.revoke(t["refresh_token"], auth=self.agent)  # revokes the grant
        self.assertEqual(r.status, 200, r)
        got = self.rcv.wait_for(4)
        types = [event_of(p)[0] for p in got]
        self.assertEqual(types, ["urn:tokend:secevent:session-suspended",
                                 "urn:tokend:secevent:session-resumed", TOKEN_REVOKED,
                                 "urn:tokend:secevent:grant-revoked"])
        self.assertEqual(got[2]["sub_id"]["id"], token_hash(t["refresh_token"]))
        self.assertEqual(event_of(got[0])[1]["hold"], "admin")
        self.assertEqual(got[0]["sub_id"], {"format": "opaque", "id": sid})
        g = got[3]
        self.assertEqual(event_of(g)[1]["grant_id"], t["grant_id"])
        self.assertEqual(g["sub_id"]["format"], "complex")
        self.assertEqual(g["sub_id"]["user"], {"format": "iss_sub", "iss": ISSUER, "sub": "carol"})
        self.assertEqual(g["sub_id"]["application"], {"format": "opaque", "id": self.agent.id})

    def test_grant_revoked_names_the_issuer_of_the_users_sub(self):
        # The user of a grant is (issuer, sub): the IdP's issuer for a user
        # who signed in there (introspection's idp_iss), tokend's own for a
        # session without one. Read when the event is queued: the receiver
        # is down, and the sessions end before it comes back.
        self.start()
        self.add_receiver("edge1", "--events", "grant-revoked")
        self.setup_world()
        idp = "https://idp.example.org/tenant-7"
        at_idp = self.d.ctl("session", "create", "--sub", "carol", "--issuer", idp)["sid"]
        local = self.d.new_session("carol")
        t1 = self.d.issue(at_idp, self.agent, "read", refresh=True)
        t2 = self.d.issue(local, self.agent, "read", refresh=True)
        self.assertEqual(self.d.introspect(t1["access_token"]).json()["idp_iss"], idp)
        for t, sid in ((t1, at_idp), (t2, local)):
            self.assertEqual(self.d.revoke(t["refresh_token"], auth=self.agent).status, 200)
            self.d.ctl("session", "terminate", sid)
        self.wait_depth(2)
        self.rcv.start(self.jwks_url())
        got = self.rcv.wait_for(2)
        users = [(event_of(p)[1]["grant_id"], p["sub_id"]["user"]) for p in got]
        self.assertEqual(users, [
            (t1["grant_id"], {"format": "iss_sub", "iss": idp, "sub": "carol"}),
            (t2["grant_id"], {"format": "iss_sub", "iss": ISSUER, "sub": "carol"})])
        for p in got:
            self.assertEqual(p["iss"], ISSUER)  # the SET is tokend's whoever the user is
            self.assertEqual(p["sub_id"]["application"], {"format": "opaque", "id": self.agent.id})

    def test_grant_revoked_by_a_replay_at_the_authorization_server(self):
        # A consent grant (no session of its own) revoked by a refresh-token
        # replay: a user of the dev login is named under tokend's issuer.
        self.d = self.daemon(a.as_daemon_args(self.folder, extra=(
            "--refresh-reuse-window", 0, "--ssf-poll", 50, "--ssf-retry-min", 100)),
            data_dir=self.data)
        self.rcv.start(self.jwks_url(), issuer=a.issuer(self.d))
        self.add_receiver("edge1", "--events", "grant-revoked")
        self.d.default_auth = self.d.add_client("resource_server", "rs")
        cid = a.public_client(self.d)["client_id"]
        code, verifier = a.authorize_code(self.d, a.Browser(self.d), cid, subject="dana")
        t0 = a.redeem(self.d, cid, code, verifier).json()
        self.assertEqual(a.refresh(self.d, cid, t0["refresh_token"]).status, 200)
        r = a.refresh(self.d, cid, t0["refresh_token"])  # the replay
        self.assertEqual(r.status, 400, r)
        got = self.rcv.wait_for(1)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(event_of(got[0])[0], "urn:tokend:secevent:grant-revoked")
        self.assertEqual(got[0]["sub_id"], {
            "format": "complex",
            "user": {"format": "iss_sub", "iss": a.issuer(self.d), "sub": "dana"},
            "application": {"format": "opaque", "id": cid}})

    def test_client_disable_and_delegated_token(self):
        self.start()
        self.rcv.start(self.jwks_url())
        self.add_receiver()
        self.setup_world()
        sid = self.d.new_session("ivy")
        tok = self.d.issue(sid, self.agent, "read")["access_token"]
        self.d.ctl("token", "revoke", tok)
        self.d.ctl("client", "disable", self.agent.id)
        self.d.ctl("client", "disable", self.agent.id)  # no change, no event
        got = self.rcv.wait_for(2)
        time.sleep(0.8)
        got = self.rcv.sets()
        self.assertEqual([event_of(p)[0] for p in got],
                         [TOKEN_REVOKED, "urn:tokend:secevent:client-disabled"])
        self.assertEqual(event_of(got[0])[1]["sid"], sid)  # its delegated tokens share it
        self.assertEqual(got[1]["sub_id"], {"format": "opaque", "id": self.agent.id})

    def test_revocation_at_tokend_is_pushed_at_once_not_at_the_next_poll(self):
        self.start(("--ssf-poll", "8000"))
        self.rcv.start(self.jwks_url())
        self.add_receiver()
        self.setup_world()
        sid = self.d.new_session("jill")
        tok = self.d.issue(sid, self.agent, "read")["access_token"]
        time.sleep(0.3)
        t0 = time.monotonic()
        self.assertEqual(self.d.revoke(tok, auth=self.agent).status, 200)
        got = self.rcv.wait_for(1, timeout=5.0)  # the poll alone would take up to 8 s
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual(got[0]["sub_id"]["id"], token_hash(tok))

    def test_receiver_gets_only_the_kinds_it_wants(self):
        self.start()
        self.rcv.start(self.jwks_url())
        self.add_receiver("edge1", "--events", "session-revoked")
        self.setup_world()
        sid = self.d.new_session("dave")
        tok = self.d.issue(sid, self.agent, "read")["access_token"]
        self.d.ctl("token", "revoke", tok)
        self.d.ctl("session", "terminate", sid)
        got = self.rcv.wait_for(1)
        time.sleep(0.8)
        got = self.rcv.sets()
        self.assertEqual([event_of(p)[0] for p in got], [CAEP_REVOKED])
        r = self.d.ctl_run("ssf", "receiver", "add", "bad", "--url", self.rcv.url,
                           "--audience", AUDIENCE, "--events", "token-revoked,nonsense")
        self.assertEqual(r.returncode, 2, r)

    # ---- delivery ----

    def test_receiver_down_then_up_gets_everything_in_order(self):
        self.start()
        self.rcv.start(self.jwks_url())
        self.add_receiver()
        self.setup_world()
        sid = self.d.new_session("erin")
        self.rcv.stop()  # down: connection refused
        tokens = [self.d.issue(sid, self.agent, "read")["access_token"] for _ in range(12)]
        for i, t in enumerate(tokens):  # alternate the committer and tokenctl paths
            if i % 2 == 0:
                self.assertEqual(self.d.revoke(t, auth=self.agent).status, 200)
            else:
                self.d.ctl("token", "revoke", t)
        self.d.ctl("session", "terminate", sid)
        self.wait_depth(13)
        time.sleep(10)  # down for a while: retried with back-off, nothing skipped
        self.assertEqual(self.depth(), 13)
        m = self.d.metrics_text()
        self.assertIn('tokend_ssf_queue_depth{receiver="edge1"} 13', m)
        failed = [l for l in m.splitlines()
                  if l.startswith('tokend_ssf_deliveries_total{receiver="edge1",result="failed"}')]
        self.assertTrue(failed and int(failed[0].split()[-1]) >= 3, m)
        self.rcv.start(self.jwks_url())
        got = unique_in_order(self.rcv.wait_for(13))
        want = [{"format": "opaque", "id": token_hash(t)} for t in tokens]
        want.append({"format": "opaque", "id": sid})
        self.assertEqual([p["sub_id"] for p in got], want)
        self.wait_depth(0)
        # The gauge is the pusher's last scan (every ssf-poll ms): wait for it.
        deadline = time.monotonic() + 5
        while 'tokend_ssf_queue_depth{receiver="edge1"} 0' not in self.d.metrics_text():
            self.assertLess(time.monotonic(), deadline, self.d.metrics_text())
            time.sleep(0.05)
        m = self.d.metrics_text()
        self.assertIn('tokend_ssf_deliveries_total{receiver="edge1",result="delivered"} 13', m)

    def test_kill_9_with_events_queued_loses_none(self):
        self.start()
        self.add_receiver()  # its receiver is not running yet: nothing can be delivered
        self.setup_world()
        sid = self.d.new_session("frank")
        tokens = [self.d.issue(sid, self.agent, "read")["access_token"] for _ in range(5)]
        for t in tokens:
            self.assertEqual(self.d.revoke(t, auth=self.agent).status, 200)
        self.d.ctl("session", "terminate", sid)
        self.wait_depth(6)
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait(timeout=10)
        self.d._reap()
        self.d.start()
        self.rcv.start(self.jwks_url())
        got = unique_in_order(self.rcv.wait_for(6))
        want = [{"format": "opaque", "id": token_hash(t)} for t in tokens]
        want.append({"format": "opaque", "id": sid})
        self.assertEqual([p["sub_id"] for p in got], want)
        self.wait_depth(0)

    def test_full_queue_becomes_one_overflow_event(self):
        self.start()
        self.add_receiver("edge1", "--queue-max", "3")  # receiver not running
        self.setup_world()
        sid = self.d.new_session("gina")
        tokens = [self.d.issue(sid, self.agent, "read")["access_token"] for _ in range(6)]
        for t in tokens:
            self.d.ctl("token", "revoke", t)
        (r,) = self.d.ctl("ssf", "receiver", "list")
        self.assertEqual((r["depth"], r["dropped"], r["overflowed"]), (4, 3, True), r)
        self.assertEqual(r["bearer"], True)
        self.assertNotIn(BEARER, json.dumps(r))
        self.rcv.start(self.jwks_url())
        got = unique_in_order(self.rcv.wait_for(4))
        self.assertEqual([p["sub_id"] for p in got[:3]],
                         [{"format": "opaque", "id": token_hash(t)} for t in tokens[:3]])
        self.assertEqual(event_of(got[3])[0], OVERFLOW)
        self.assertEqual(got[3]["sub_id"], {"format": "uri", "uri": ISSUER})
        self.wait_depth(0)
        # Delivered: the queue takes events again.
        sid2 = self.d.new_session("gina")
        self.d.ctl("session", "terminate", sid2)
        got = unique_in_order(self.rcv.wait_for(5))
        self.assertEqual(got[4]["sub_id"], {"format": "opaque", "id": sid2})
        self.assertNotIn(BEARER, self.d.stderr())

    def test_remove_drops_the_queue(self):
        self.start()
        self.add_receiver()
        self.setup_world()
        sid = self.d.new_session("hank")
        self.d.ctl("session", "terminate", sid)
        self.wait_depth(1)
        out = self.d.ctl("ssf", "receiver", "remove", "edge1")
        self.assertEqual(out, {"receiver": "edge1", "events_dropped": 1})
        self.assertEqual(self.d.ctl("ssf", "receiver", "list"), [])
        r = self.d.ctl_run("ssf", "receiver", "remove", "edge1")
        self.assertEqual(r.returncode, 1, r)


if __name__ == "__main__":
    unittest.main()
