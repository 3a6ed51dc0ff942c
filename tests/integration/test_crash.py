"""Crash safety of acknowledged revocations (kill -9 at random moments).

A store is seeded with SESSIONS x PER_SESSION tokens (scaled with ROUNDS). Each round starts
tokend, fires revocations over HTTP from several keep-alive connections and
session terminations with `tokenctl session terminate` (separate processes,
writing the same store), then SIGKILLs tokend after a random delay. After
every kill tokend is restarted on the same folder and must open it cleanly,
and:
  - every token whose revocation got its 200 is inactive;
  - every token of a session whose `tokenctl session terminate` exited 0 is
    inactive;
  - every token nobody touched is still active (nothing unasked was revoked);
  - a token once seen inactive never comes back.
On every other round the test holds a shared lock on the store's lock file
while tokend restarts, as a live LMDB process would; then LMDB keeps its
reader table and tokend must report the dead daemon's reader slots as
cleared (mdb_reader_check at start-up; the rounds before those let their
tokenctl processes finish before the kill, as tokenctl would clear the slots
first). Bounded: ROUNDS kills.

CrashTokens does the same to the authorization server (issue 11): agents
redeem codes and rotate refresh tokens while tokend is killed; after every
restart each token and code that got its answer works (unless its refresh was
rotated away since) and no refresh token answered as rotated away works.
"""

import fcntl
import os
import random
import signal
import subprocess
import threading
import time
import unittest

import as_http as a
import harness as h
import hardening as hd

h.require_binaries()

ROUNDS = int(os.environ.get("TOKEND_CRASH_ROUNDS", "24"))
SESSIONS = 6 * ROUNDS  # a third are ended by tokenctl, two per round
PER_SESSION = 15
REVOKERS = 4
KILL_DELAY = (0.02, 0.35)  # seconds of load before SIGKILL
SAMPLE_UNTOUCHED = 150  # untouched tokens checked per round (all at the end)


class Revoker(threading.Thread):
    """Revokes tokens from a shared pool on one keep-alive connection until
    the daemon dies; records which revocations got their 200."""

    def __init__(self, port, auth, pool, lock, acked, sent):
        super().__init__(daemon=True)
        self.port, self.auth, self.pool, self.lock = port, auth, pool, lock
        self.acked, self.sent = acked, sent
        self.unexpected = []

    def run(self):
        try:
            c = h.Conn(self.port, timeout=5)
        except OSError:
            return
        try:
            while True:
                with self.lock:
                    if not self.pool:
                        return
                    tok = self.pool.pop()
                    self.sent.add(tok)
                c.send(h.auth_request("/revoke", tok, self.auth))
                r = c.read_response()
                if r.status == 200:
                    with self.lock:
                        self.acked.add(tok)
                elif r.status != 503:
                    self.unexpected.append(r)
                    return
        except (OSError, AssertionError):
            return  # the daemon was killed mid-request: that token is unknown
        finally:
            c.close()


class Crash(h.FreshCase):
    def setUp(self):
        self.dir = self.tmpdir()
        self.d = self.daemon(data_dir=self.dir)
        self.agent = self.d.add_client("agent", "agent", scope="read write")
        self.rs = self.d.add_client("resource_server", "rs")
        self.tokens = hd.seed(self.d, self.agent, SESSIONS, PER_SESSION)
        sids = {}
        with self.d.conn() as c:
            for t in self.tokens:
                c.send(h.auth_request("/introspect", t, self.rs))
                j = c.read_response().json()
                self.assertIs(j["active"], True)
                sids[t] = j["sid"]
        self.sid_of = sids
        self.by_sid = {}
        for t, s in sids.items():
            self.by_sid.setdefault(s, []).append(t)

    def hold_reader_lock(self):
        """Take LMDB's 'another process is using the environment' lock (a
        shared fcntl lock on byte 0 of lock.mdb)."""
        fd = os.open(os.path.join(self.dir, "lock.mdb"), os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_SH, 1, 0, os.SEEK_SET)
        return fd

    def test_kill9_keeps_acknowledged_revocations(self):
        rng = random.Random(int(os.environ.get("TOKEND_CRASH_SEED", "0")) or None)
        d = self.d
        acked, sent = set(), set()
        terminated = set()  # sids whose tokenctl exited 0
        tried_sids = set()
        dead = set()  # tokens observed inactive: must stay so
        free_sids = list(self.by_sid)
        rng.shuffle(free_sids)
        revocable = set(free_sids[len(free_sids) // 3:])
        pool = [t for t in self.tokens if self.sid_of[t] in revocable]
        rng.shuffle(pool)
        term_candidates = free_sids[:len(free_sids) // 3]
        lock = threading.Lock()
        cleared_rounds = 0
        stats = {"kills": 0, "acked": 0, "terminated": 0}

        for rnd in range(ROUNDS):
            if d.proc is None:
                hold = self.hold_reader_lock() if rnd % 2 == 1 else None
                try:
                    d.start()
                finally:
                    if hold is not None:
                        os.close(hold)
                if hold is not None:
                    lines = hd.log_lines(d, "store_readers")
                    self.assertTrue(lines, "no stale reader slots cleared after kill -9:\n"
                                    + d.stderr())
                    cleared_rounds += 1
                self.check(d, acked, terminated, sent, tried_sids, dead, rng)
            workers = [Revoker(d.port, self.agent, pool, lock, acked, sent)
                       for _ in range(REVOKERS)]
            for w in workers:
                w.start()
            ends = []
            for sid in term_candidates[:2]:
                tried_sids.add(sid)
                ends.append((sid, subprocess.Popen(
                    [h.TOKENCTL_BIN, "--data", self.dir, "session", "terminate", sid],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env=h._env())))
            del term_candidates[:2]
            if rnd % 2 == 0:
                # The next round checks that tokend clears the dead daemon's
                # reader slots; a tokenctl opening the store after the kill
                # would clear them first (it runs mdb_reader_check too).
                for sid, p in ends:
                    p.wait(60)
            time.sleep(rng.uniform(*KILL_DELAY))
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            d._reap()
            stats["kills"] += 1
            for w in workers:
                w.join(10)
                self.assertFalse(w.is_alive(), "a revoker hung after the kill")
                self.assertEqual(w.unexpected, [], "revocations answered neither 200 nor 503")
            for sid, p in ends:
                out, err = p.communicate(timeout=60)
                self.assertEqual(p.returncode, 0, "tokenctl session terminate: %s" % err)
                terminated.add(sid)
        stats["acked"] = len(acked)
        stats["terminated"] = len(terminated)

        d.start()
        self.check(d, acked, terminated, sent, tried_sids, dead, rng, full=True)
        self.assertGreaterEqual(cleared_rounds, ROUNDS // 2 - 1)
        self.assertGreater(len(acked), 0, "no revocation was ever acknowledged")
        print("\ncrash: %(kills)d kills, %(acked)d acknowledged revocations and "
              "%(terminated)d terminated sessions, none lost" % stats)

    def check(self, d, acked, terminated, sent, tried_sids, dead, rng, full=False):
        """Store invariants after a restart."""
        must_dead = set(acked) | set(dead)
        for sid in terminated:
            must_dead.update(self.by_sid[sid])
        untouched = [t for t in self.tokens
                     if t not in sent and self.sid_of[t] not in tried_sids]
        if not full and len(untouched) > SAMPLE_UNTOUCHED:
            untouched = rng.sample(untouched, SAMPLE_UNTOUCHED)
        unknown = [t for t in sent if t not in must_dead]
        state = hd.introspect_many(d, list(must_dead) + untouched + unknown, self.rs)
        lost = [t for t in must_dead if state[t]]
        self.assertEqual(lost, [], "%d acknowledged revocations lost after kill -9" % len(lost))
        wrong = [t for t in untouched if not state[t]]
        self.assertEqual(wrong, [], "%d tokens nobody revoked are inactive" % len(wrong))
        dead.update(t for t in unknown if not state[t])
        dead.update(must_dead)
        stats = d.ctl("stats")
        self.assertEqual(stats["tokens"], len(self.tokens))


# ---- The authorization server: code redemption and refresh rotation ----------

AS_ROUNDS = int(os.environ.get("TOKEND_CRASH_AS_ROUNDS", "8"))
AS_AGENTS = 4  # concurrent agents, each its own client, user and browser
AS_KILL_DELAY = (0.3, 1.2)  # seconds of load before SIGKILL (an ASan tokend)
AS_ROTATIONS = 3  # refreshes per family before the agent starts a new authorization


class Agent(threading.Thread):
    """One agent and its user's browser: authorize (dev login, consent),
    redeem the code, rotate the refresh token a few times, start over —
    until tokend dies. Records only what got its answer (in test.as_state):
      live:    family -> {"cid", "access", "refresh"}: the pair last answered
               (an access token whose refresh was rotated since may live on
               or not: only the newest pair is promised);
      rotated: family -> (cid, [refresh tokens whose rotation got 200]);
      codes:   codes answered (303 with code), kept to redeem after restart.
    A family whose rotation got no answer leaves `live`: its newest state is
    unknown, so it is never presented again (a replay would, rightly,
    revoke it)."""

    def __init__(self, test, d, cid, subject, killing, keep_code):
        super().__init__(daemon=True)
        self.t, self.d, self.cid, self.subject = test, d, cid, subject
        self.killing, self.keep_code = killing, keep_code
        self.browser = test.browsers[subject]
        self.unexpected = []

    def run(self):
        st = self.t.as_state
        try:
            while not self.killing.is_set():
                code, verifier = a.authorize_code(self.d, self.browser, self.cid,
                                                  subject=self.subject)
                if self.keep_code():
                    with self.t.lock:
                        st["codes"].append((self.cid, code, verifier))
                    continue
                r = a.redeem(self.d, self.cid, code, verifier)
                if r.status != 200:
                    self.note(r)
                    return
                j = r.json()
                fam = rt = j["refresh_token"]
                with self.t.lock:
                    st["live"][fam] = {"cid": self.cid, "access": j["access_token"],
                                       "refresh": rt}
                for _ in range(AS_ROTATIONS):
                    with self.t.lock:
                        st["live"].pop(fam)  # unknown until the answer
                    r = a.refresh(self.d, self.cid, rt)
                    if r.status != 200:
                        self.note(r)
                        return
                    j = r.json()
                    with self.t.lock:
                        st["rotated"].setdefault(fam, (self.cid, []))[1].append(rt)
                        st["live"][fam] = {"cid": self.cid, "access": j["access_token"],
                                           "refresh": j["refresh_token"]}
                        st["last_rotation"] = time.time()
                    rt = j["refresh_token"]
        except (OSError, AssertionError, ValueError, KeyError) as e:
            if not self.killing.is_set():
                self.unexpected.append("%s: %s" % (type(e).__name__, e))

    def note(self, r):
        if self.killing.is_set() or r.status == 503:
            return
        self.unexpected.append(repr(r))


@unittest.skipUnless(a.engine_present(), "tokend has no authorization server yet")
class CrashTokens(h.FreshCase):
    """kill -9 while agents redeem codes and rotate refresh tokens: after
    every restart, every token answered works unless its refresh was rotated
    away since, every code answered redeems, and no refresh token answered as
    rotated away works (presenting it revokes its family, as a replay must) —
    nothing was answered before it was durable."""

    def test_kill9_keeps_answered_codes_and_rotations(self):
        rng = random.Random(int(os.environ.get("TOKEND_CRASH_SEED", "0")) or None)
        folder = self.tmpdir()
        data = self.tmpdir()
        # Strict rotation: a rotated-away refresh token is never good again.
        # Many sign-ins a second from one address: no authorize-burst.
        d = self.daemon(a.as_daemon_args(folder, "open", ("--code-ttl", 600,
                                                         "--refresh-reuse-window", 0,
                                                         "--authorize-burst", 0)),
                        data_dir=data)
        admin = d.add_client("admin", "admin")
        cids = [a.public_client(d, name="crash-agent-%d" % i)["client_id"]
                for i in range(AS_AGENTS)]
        subjects = ["user%d" % i for i in range(AS_AGENTS)]
        self.browsers = {s: a.Browser(d) for s in subjects}
        self.lock = threading.Lock()
        self.as_state = {"live": {}, "rotated": {}, "codes": [], "last_rotation": 0.0}
        stats = {"kills": 0, "codes": 0, "families": 0, "rotations": 0, "replays": 0}
        lock_rng = threading.Lock()

        def keep_code():
            with lock_rng:
                return rng.random() < 0.1

        for rnd in range(AS_ROUNDS):
            if d.proc is None:
                d.start()
                self.check_as(d, admin, stats)
            killing = threading.Event()
            agents = [Agent(self, d, cid, s, killing, keep_code)
                      for cid, s in zip(cids, subjects)]
            for ag in agents:
                ag.start()
            time.sleep(rng.uniform(*AS_KILL_DELAY))
            killing.set()
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            d._reap()
            stats["kills"] += 1
            for ag in agents:
                ag.join(15)
                self.assertFalse(ag.is_alive(), "an agent hung after the kill")
                self.assertEqual(ag.unexpected, [], "unexpected answers before the kill")
        d.start()
        self.check_as(d, admin, stats)
        self.assertGreater(stats["rotations"], 0, "no rotation was ever answered")
        self.assertGreater(stats["replays"], 0, "no rotated-away refresh token was checked")
        print("\ncrash (authorization server): %(kills)d kills; %(families)d families, "
              "%(rotations)d rotations and %(codes)d codes answered before a kill, all kept; "
              "%(replays)d rotated-away refresh tokens refused after restart" % stats)

    def check_as(self, d, admin, stats):
        st = self.as_state
        live = st["live"]
        toks = [f["access"] for f in live.values()] + [f["refresh"] for f in live.values()]
        state = hd.introspect_many(d, toks, admin)
        lost = [t for t in toks if not state[t]]
        self.assertEqual(lost, [], "%d answered tokens lost after kill -9" % len(lost))
        stats["families"] += len(live)
        stats["rotations"] += sum(len(v[1]) for v in st["rotated"].values())
        # Answered codes were durable: each redeems now.
        codes, st["codes"] = st["codes"], []
        for cid, code, verifier in codes:
            r = a.redeem(d, cid, code, verifier)
            self.assertEqual(r.status, 200, "an answered code was lost: %r" % r)
            stats["codes"] += 1
        # Rotated-away refresh tokens: refused (the reuse window is 0; wait
        # out the second of the last rotation, as the store counts seconds).
        # The replay revokes the grant — the user's consent for this client
        # and resource (AS_CONTRACT.md deviation 6) — so every family of that
        # agent dies with it; an agent with nothing to replay still refreshes.
        wait = st["last_rotation"] + 1.05 - time.time()
        if wait > 0:
            time.sleep(wait)
        replayed = set()
        for fam, (cid, olds) in st["rotated"].items():
            for rt in olds:
                r = a.refresh(d, cid, rt)
                self.assertNotEqual(r.status, 200, "a rotated-away refresh token works after "
                                    "kill -9: %r" % r)
                self.assertEqual(r.json().get("error"), "invalid_grant", r)
                stats["replays"] += 1
            replayed.add(cid)
        st["rotated"] = {}
        dead = [t for f in live.values() if f["cid"] in replayed
                for t in (f["access"], f["refresh"])]
        state = hd.introspect_many(d, dead, admin)
        self.assertEqual([t for t in dead if state[t]], [],
                         "a replay after restart left its grant's tokens alive")
        for f in live.values():
            if f["cid"] not in replayed:
                r = a.refresh(d, f["cid"], f["refresh"])
                self.assertEqual(r.status, 200, "a live refresh token failed after restart: %r"
                                 % r)
        live.clear()


if __name__ == "__main__":
    unittest.main()
