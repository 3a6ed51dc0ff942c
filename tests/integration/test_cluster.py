"""Cluster mode (issue 14) against real processes: three nats-server processes
forming a JetStream cluster (stream replicas R=3) and three tokend nodes on
loopback ports, started once for the module.

Seeding: tokenctl writes clients, sessions and tokens into one store BEFORE
cluster mode, and that folder is copied to the three nodes (the same thing as
bootstrapping every node from one snapshot at sequence 0). From then on every
write goes through the API of some node and the op log: tokenctl refuses to
write into a cluster node's store.

What is checked: seeded tokens are active everywhere; a revocation, an IdP
back-channel logout acknowledged on A is in force on B and C within a short
window (measured and printed); kill -9 of a node during a revocation burst,
restart: it catches up, every acknowledged revocation is in force, and the
non-idempotent forward-auth audit counts agree on every node (nothing applied
twice); one nats-server of three killed: writes continue; all stopped: writes
503 at once, introspection 503 after max-staleness, /healthz not ready;
restarted: everything converges; a fourth node started from `tokenctl cluster
snapshot` answers like the others."""

import base64
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import as_http as ah
import harness as h
import http_fixture as hf
import idp_util as u
import mtls_util as mu

h.require_binaries()
NATS = shutil.which("nats-server")
if NATS is None:
    sys.stderr.write("skipped: nats-server is not installed (Debian package nats-server)\n")
    sys.exit(77)

STALENESS_MS = 1500
RESOURCE = "https://wiki.test/"
RESOURCES = {"resources": [{"resource": RESOURCE, "name": "Wiki",
                            "required_scopes": {"*": ["read"]}}] + ah.RESOURCES["resources"]}
SEEDED_SESSIONS = 6
TOKENS_PER_SESSION = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, step=0.002):
    """Seconds until pred() held, or None after timeout."""
    t0 = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(step)


def key_file(root, name="cluster.key"):
    """A cluster-key-file (32 random bytes in hex, mode 0600); its path."""
    path = os.path.join(root, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    return path


def log(msg):
    sys.stderr.write("test_cluster: %s\n" % msg)


class Nats:
    """One nats-server of the JetStream cluster; same ports and store on restart."""

    def __init__(self, root, name, port, cport, routes):
        self.name, self.port = name, port
        self.mport = free_port()  # monitoring: /healthz says when its JetStream caught up
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "nats.conf")
        self.log_path = os.path.join(self.dir, "nats.log")
        with open(self.conf, "w") as f:
            f.write("server_name: %s\nlisten: 127.0.0.1:%d\n" % (name, port))
            f.write("http: 127.0.0.1:%d\n" % self.mport)
            f.write('jetstream { store_dir: "%s" }\n' % os.path.join(self.dir, "js"))
            f.write("cluster { name: tokendtest, listen: 127.0.0.1:%d, routes: [%s] }\n"
                    % (cport, ", ".join("nats-route://127.0.0.1:%d" % r for r in routes)))
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([NATS, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     preexec_fn=h._die_with_parent)
        ok = wait_until(self._listening, 15, 0.02)
        if ok is None:
            raise AssertionError("nats-server %s did not listen:\n%s" % (self.name, self.text()))

    def current(self):
        """nats-server's own /healthz: 200 once its JetStream (streams and
        consumers it holds a replica of) has caught up with the cluster."""
        import urllib.request
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.mport,
                                        timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        self._log.close()


def healthy(d):
    try:
        return d.request("GET", "/healthz").status == 200
    except OSError:
        return False


class Cluster(h.TokenAsserts, unittest.TestCase):
    """Three nats-servers (R=3) and three tokend nodes A, B, C, shared by the
    tests of the class, which run in name order and leave the cluster whole."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="tokend-cluster-")
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        ports = [(free_port(), free_port()) for _ in range(3)]
        cls.nats = [Nats(cls.root, "n%d" % i, p, c, [cp for _, cp in ports])
                    for i, (p, c) in enumerate(ports)]
        for n in cls.nats:
            cls.addClassCleanup(n.stop, signal.SIGKILL)
            n.start()
        cls.urls = ",".join("nats://127.0.0.1:%d" % n.port for n in cls.nats)
        cls.key = key_file(cls.root)
        cls.seed()
        cls.nodes = {}
        for name in ("a", "b", "c"):
            cls.nodes[name] = cls.start_node(name, cls.copy_seed(name))
        for name, d in cls.nodes.items():
            if wait_until(lambda: healthy(d), 60, 0.05) is None:
                raise AssertionError("node %s never ready:\n%s\n%s" % (
                    name, d.stderr(), "\n".join(n.text() for n in cls.nats)))
        cls.A, cls.B, cls.C = cls.nodes["a"], cls.nodes["b"], cls.nodes["c"]

    @classmethod
    def seed(cls):
        """Clients, sessions (bound to IdP sessions) and tokens, before cluster mode."""
        cls.seed_dir = os.path.join(cls.root, "seed")
        cls.keydir = os.path.join(cls.root, "idp")
        os.makedirs(cls.keydir)
        cls.ec = u.Key(cls.keydir, "ec", "p256", "ec-1")
        cls.idp_config = os.path.join(cls.keydir, "idp.json")
        u.write_config(cls.idp_config, [{"issuer": u.ISS, "audience": u.AUD,
                                         "jwks": {"keys": [cls.ec.jwk()]},
                                         "algorithms": ["ES256"]}])
        cls.res_path = os.path.join(cls.root, "resources.json")
        with open(cls.res_path, "w") as f:
            json.dump(RESOURCES, f)

        def ctl(*args):
            return h.ctl(cls.seed_dir, *args)

        cls.rs = h.Client(ctl("client", "add", "--name", "rs", "--role", "resource_server"))
        cls.agent = h.Client(ctl("client", "add", "--name", "agent", "--role", "agent",
                                 "--scope", "read write"))
        cls.sessions = {}  # idp sid -> (tokend sid, [tokens])
        for i in range(SEEDED_SESSIONS):
            idp_sid = "kc-%d" % i
            sid = ctl("session", "create", "--sub", "user%d" % i, "--idp-iss", u.ISS,
                      "--idp-sid", idp_sid)["sid"]
            toks = [ctl("token", "issue", "--sid", sid, "--client", cls.agent.id, "--scope",
                        "read", "--aud", RESOURCE)["access_token"]
                    for _ in range(TOKENS_PER_SESSION)]
            cls.sessions[idp_sid] = (sid, toks)
        every = [t for _, toks in cls.sessions.values() for t in toks]
        cls.keep = every[TOKENS_PER_SESSION:TOKENS_PER_SESSION + 10]  # session kc-1: never revoked
        cls.free = every[TOKENS_PER_SESSION + 10:]  # take() hands these out

    @classmethod
    def copy_seed(cls, name):
        d = os.path.join(cls.root, "node-" + name)
        shutil.copytree(cls.seed_dir, d)
        return d

    @classmethod
    def start_node(cls, name, data_dir):
        d = h.Tokend(data_dir, ["--cluster-nats", cls.urls, "--cluster-node", name,
                                "--cluster-key-file", cls.key,
                                "--cluster-replicas", "3",
                                "--cluster-max-staleness", str(STALENESS_MS),
                                "--idp-config", cls.idp_config, "--resources", cls.res_path,
                                "--login", "dev", "--registration", "open"])
        d.default_auth = cls.rs
        d.start()
        cls.addClassCleanup(d.cleanup)
        return d

    def take(self, n=1):
        """Seeded tokens no test has touched yet (of the last sessions: the first
        sessions are ended by the back-channel logout test)."""
        out = [self.free.pop() for _ in range(n)]
        return out[0] if n == 1 else out

    def revoke_acked(self, d, token, deadline=10.0):
        """Revoke on d, retrying 503 until a 200 or the deadline; the 503 count."""
        t0, n503 = time.monotonic(), 0
        while True:
            r = d.revoke(token, auth=self.agent)
            if r.status == 200:
                return n503
            self.assertEqual(r.status, 503, r)
            n503 += 1
            if time.monotonic() - t0 > deadline:
                self.fail("no 200 for a revocation within %.0f s" % deadline)
            time.sleep(0.05)

    def inactive_on(self, d, token):
        r = d.introspect(token)
        return r.status == 200 and r.json() == h.INACTIVE

    def window(self, token, nodes, timeout=5.0):
        """Seconds from now until token is inactive on each node (polled in
        turn). The contract meanwhile: a node may still say active only
        within max-staleness of the write's 2xx; after that it says inactive
        or 503 (fail closed)."""
        t0, seen = time.monotonic(), {}
        while len(seen) < len(nodes) and time.monotonic() - t0 < timeout:
            for name, d in nodes.items():
                if name in seen:
                    continue
                r = d.introspect(token)
                now = time.monotonic() - t0
                if r.status == 200 and r.json() == h.INACTIVE:
                    seen[name] = now
                elif r.status == 200:
                    self.assertLess(now, STALENESS_MS / 1000, "%s: active past max-staleness"
                                    % name)
                else:
                    self.assertEqual(r.status, 503, r)
        return seen

    def cluster_logs(self):
        out = []
        for name, d in (("A", self.A), ("B", self.B), ("C", self.C)):
            lines = [l for l in d.stderr().splitlines() if "cluster_" in l]
            out.append("%s:\n  %s" % (name, "\n  ".join(lines[-12:])))
        return "\n".join(out)

    def applied(self, d):
        for line in d.metrics_text().splitlines():
            if line.startswith("tokend_cluster_applied_sequence "):
                return int(line.split()[1])
        return -1

    def caught_up(self, d, ref):
        """Wait until d applied everything ref has (a client that switches
        nodes sees the other's writes only after that: the window)."""
        want = self.applied(ref)
        self.assertIsNotNone(wait_until(lambda: self.applied(d) >= want, 5, 0.01))

    def audit_agents(self, d):
        return json.dumps(h.ctl(d.data_dir, "audit", "agents"), sort_keys=True)

    def forward_auth(self, d, token):
        r = d.request("GET", "/auth", headers={"X-Forwarded-Host": "wiki.test",
                                               "X-Forwarded-Uri": "/x",
                                               "Authorization": "Bearer " + token})
        return r.status

    # ---- tests, in order ---------------------------------------------------------------------

    def test_1_seeded_tokens_active_on_every_node(self):
        for t in self.keep + self.free[-10:] + self.sessions["kc-0"][1][:5]:
            for d in (self.A, self.B, self.C):
                self.assertIs(d.active(t)["active"], True)

    def test_2_revocation_on_a_reaches_b_and_c(self):
        windows = []
        for _ in range(20):
            t = self.take()
            self.assertEqual(self.revoke_acked(self.A, t), 0)
            self.assertTrue(self.inactive_on(self.A, t), "A answered before applying")
            seen = self.window(t, {"b": self.B, "c": self.C})
            self.assertEqual(set(seen), {"b", "c"}, "not inactive everywhere within 5 s")
            windows += seen.values()
        windows.sort()
        log("revocation window A 2xx -> inactive on B/C over %d: p50 %.1f ms, max %.1f ms" % (
            len(windows), 1000 * windows[len(windows) // 2], 1000 * windows[-1]))
        self.assertLess(windows[-1], 2.0)

    def test_3_backchannel_logout_on_a_reaches_b_and_c(self):
        sid, toks = self.sessions["kc-0"]
        claims = u.logout_claims(sid="kc-0", sub="user0")
        token = u.jws({"alg": "ES256", "typ": "logout+jwt", "kid": "ec-1"}, claims, self.ec)
        r = u.post_logout(self.A, token)
        self.assertEqual(r.status, 200, r)
        for t in (toks[0], toks[-1]):
            self.assertTrue(self.inactive_on(self.A, t))
        seen = self.window(toks[-1], {"b": self.B, "c": self.C})
        self.assertEqual(set(seen), {"b", "c"})
        log("back-channel logout window: %s" % {k: "%.1f ms" % (1000 * v) for k, v in
                                                 seen.items()})
        for d in (self.B, self.C):
            for t in toks:
                self.assertTrue(self.inactive_on(d, t))
            self.assertEqual(h.ctl(d.data_dir, "session", "show", sid)["state"], "terminated")
        # The same event again (another node): a replay everywhere, no second audit record.
        r = u.post_logout(self.B, token)
        self.assertEqual(r.status, 400, r)

    def test_4_kill9_during_burst_catches_up_without_double_apply(self):
        toks = self.take(90)
        acked, errors = [], []
        fa_ok = [0]

        def burst():
            for i, t in enumerate(toks):
                r = self.A.revoke(t, auth=self.agent)
                if r.status == 200:
                    acked.append(t)
                elif r.status != 503:
                    errors.append(r)
                # Forward-auth on A: folded counts are AGENT_ACCESS ops, the one
                # op kind that is not idempotent (a second apply would show).
                if self.forward_auth(self.A, self.keep[i % 10]) == 200:
                    fa_ok[0] += 1

        th = threading.Thread(target=burst)
        th.start()
        wait_until(lambda: len(acked) >= 30, 30)
        self.C.kill()  # SIGKILL
        th.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(acked), len(toks), "A refused writes while C was down")
        time.sleep(1.5)  # a fold of the workers' audit counts
        self.C.start()
        ready = wait_until(lambda: healthy(self.C), 30, 0.02)
        self.assertIsNotNone(ready, self.C.stderr())
        log("C ready %.2f s after restart; log: %s" % (
            ready, [l for l in self.C.stderr().splitlines() if "cluster_" in l][-2:]))
        for t in acked:
            self.assertTrue(self.inactive_on(self.C, t), "an acknowledged revocation lost")
        # Nothing applied twice: every node folded the same audit counts, and
        # they hold every forward-auth answer A gave (A's workers fold about
        # once a second while they have requests: poke them).
        def folded():
            for _ in range(8):
                healthy(self.A)
            allowed = sum(r["allowed"] for r in h.ctl(self.C.data_dir, "audit", "agents"))
            return allowed >= fa_ok[0] and len(
                {self.audit_agents(d) for d in (self.A, self.B, self.C)}) == 1
        folded_in = wait_until(folded, 15, 0.2)
        self.assertIsNotNone(folded_in, [self.audit_agents(d) for d in (self.A, self.B, self.C)])
        allowed = sum(r["allowed"] for r in h.ctl(self.C.data_dir, "audit", "agents"))
        self.assertEqual(allowed, fa_ok[0], "an entry applied twice (or lost) on C")
        self.assertGreater(allowed, 0)
        m = self.C.metrics_text()
        self.assertIn("tokend_cluster_lag 0", m)

    def test_5_one_nats_server_down_writes_continue(self):
        # Each server in turn, so one of them is the one A is connected to.
        for n in self.nats:
            n.stop(signal.SIGKILL)
            try:
                n503, worst = 0, 0.0
                for _ in range(3):
                    t = self.take()
                    n503 += self.revoke_acked(self.A, t, deadline=60)
                    # JetStream may elect a new stream or meta leader: seconds.
                    seen = self.window(t, {"b": self.B, "c": self.C}, timeout=30)
                    self.assertEqual(set(seen), {"b", "c"}, self.cluster_logs())
                    worst = max(worst, *seen.values())
                log("nats-server %s down: %d 503s over 3 writes on A, slowest B/C %.2f s"
                    % (n.name, n503, worst))
            finally:
                n.start()
            # The next kill must leave a quorum: wait until the restarted server's
            # replica has caught up (on a loaded host that takes seconds).
            self.assertIsNotNone(wait_until(n.current, 60, 0.1), n.text())
            for d in (self.A, self.B, self.C):
                self.assertIsNotNone(wait_until(lambda: healthy(d), 30, 0.05))

    def test_6_all_nats_down_fail_closed_then_converge(self):
        t_write, t_read = self.take(), self.take()
        for n in self.nats:
            n.stop()
        t0 = time.monotonic()
        r = self.A.revoke(t_write, auth=self.agent)
        self.assertEqual(r.status, 503, r)
        self.assertLess(time.monotonic() - t0, 0.5, "a write must fail at once")
        stale = wait_until(lambda: self.B.introspect(t_read).status == 503, 10, 0.02)
        self.assertIsNotNone(stale)
        since = time.monotonic() - t0
        log("all nats down: introspection 503 after %.2f s (max-staleness %.1f s)"
            % (since, STALENESS_MS / 1000))
        self.assertGreater(since, STALENESS_MS / 1000 / 2)
        self.assertLess(since, STALENESS_MS / 1000 + 2)
        self.assertEqual(self.B.request("GET", "/healthz").status, 503)
        m = [l for l in self.B.metrics_text().splitlines()
             if l.startswith('tokend_cluster_stale_refusals_total{endpoint="introspect"}')]
        self.assertGreater(int(m[0].split()[1]), 0, m)
        self.assertIn("tokend_cluster_ready 0", self.B.metrics_text())
        for n in self.nats:
            n.start()
        for d in (self.A, self.B, self.C):
            self.assertIsNotNone(wait_until(lambda: healthy(d), 60, 0.05), d.stderr())
        self.revoke_acked(self.A, t_write, deadline=30)
        seen = self.window(t_write, {"b": self.B, "c": self.C})
        self.assertEqual(set(seen), {"b", "c"})
        self.assertIs(self.B.active(t_read)["active"], True)

    def test_7_tokenctl_refuses_writes_into_a_node(self):
        r = h.ctl_run(self.A.data_dir, "session", "create", "--sub", "mallory")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cluster stream TOKEND", r.stderr)
        self.assertIn("API", r.stderr)
        self.assertEqual(h.ctl_run(self.A.data_dir, "session", "list").returncode, 0)

    def test_8_node_from_snapshot_answers_like_the_others(self):
        first = self.take()
        self.revoke_acked(self.A, first)
        self.assertIn("b", self.window(first, {"b": self.B}))
        snap = os.path.join(self.root, "snap-d")
        out = h.ctl(self.B.data_dir, "cluster", "snapshot", "--out", snap)
        self.assertEqual(out["stream"], "TOKEND")
        self.assertGreater(out["log_seq"], 0)
        t = self.take()
        self.revoke_acked(self.A, t)  # written after the snapshot: the tail
        D = self.start_node("d", snap)
        self.assertIsNotNone(wait_until(lambda: healthy(D), 30, 0.02), D.stderr())
        # Ready means current: the tail written before D started is in force now.
        self.assertTrue(self.inactive_on(D, t), D.metrics_text())
        self.assertIsNotNone(wait_until(
            lambda: "from=%d" % (out["log_seq"] + 1) in D.stderr(), 5), D.stderr())
        every = [t for _, toks in self.sessions.values() for t in toks]
        for tok in every:
            answers = []
            for d in (self.A, D):
                j = d.introspect(tok).json()
                j.pop("iss", None)
                answers.append(j)
            self.assertEqual(answers[0], answers[1], tok[:12])
        self.assertTrue(self.inactive_on(D, t))
        self.assertEqual(self.audit_agents(D), self.audit_agents(self.A))
        D.stop()

    def test_9_store_ahead_of_its_stream_stays_stale(self):
        # A store that applied entries of TOKEND, pointed at another (new)
        # stream: its entries would all look old. Never ready, writes refused.
        snap = os.path.join(self.root, "snap-e")
        out = h.ctl(self.A.data_dir, "cluster", "snapshot", "--out", snap)
        self.assertGreater(out["log_seq"], 0)
        E = h.Tokend(snap, ["--cluster-nats", self.urls, "--cluster-node", "e",
                            "--cluster-key-file", self.key,
                            "--cluster-stream", "OTHER", "--cluster-max-staleness",
                            str(STALENESS_MS)])
        E.default_auth = self.rs
        E.start()
        self.addCleanup(E.cleanup)
        seen = wait_until(lambda: "cluster_stream_behind_store" in E.stderr(), 10, 0.05)
        self.assertIsNotNone(seen, E.stderr())
        self.assertEqual(E.request("GET", "/healthz").status, 503)
        self.assertEqual(E.introspect(self.keep[0]).status, 503)
        t0 = time.monotonic()
        self.assertEqual(E.revoke(self.take(), auth=self.agent).status, 503)
        self.assertLess(time.monotonic() - t0, 0.5)
        E.stop()

    def test_10_authorization_server_across_nodes(self):
        # Every AS write is an op on the log: register on A, sign in and
        # consent on B with A's cookie, redeem the code on C, refresh on A;
        # the tokens are active everywhere; a replayed code (on B) revokes
        # the grant on every node.
        client = ah.public_client(self.A)["client_id"]
        self.caught_up(self.B, self.A)
        browser = ah.Browser(self.B)
        code, verifier = ah.authorize_code(self.B, browser, client, subject="carol")
        self.caught_up(self.C, self.B)
        r = ah.redeem(self.C, client, code, verifier)
        self.assertEqual(r.status, 200, r)
        pair = r.json()
        self.assertIs(self.C.active(pair["access_token"])["active"], True)  # at once on C
        for d in (self.A, self.B):  # within the replication window elsewhere
            self.assertIsNotNone(wait_until(
                lambda: d.active(pair["access_token"])["active"] is True, 2))
            self.assertEqual(d.active(pair["access_token"])["sub"], "carol")
        self.caught_up(self.A, self.C)
        r = ah.refresh(self.A, client, pair["refresh_token"])
        self.assertEqual(r.status, 200, r)
        fresh = r.json()["access_token"]
        self.assertIsNotNone(wait_until(lambda: self.C.active(fresh)["active"] is True, 2))
        self.caught_up(self.B, self.A)
        r = ah.redeem(self.B, client, code, verifier)  # the code again: the family dies
        self.assertEqual(r.status, 400, r)
        for d in (self.A, self.B, self.C):
            self.assertTrue(wait_until(lambda: self.inactive_on(d, fresh), 2) is not None)
            self.assertTrue(self.inactive_on(d, pair["access_token"]))
        # The same registration, client and grant records on every node.
        lists = {json.dumps(h.ctl(d.data_dir, "grant", "list", "--sub", "carol"),
                            sort_keys=True) for d in (self.A, self.B, self.C)}
        self.assertEqual(len(lists), 1, lists)
        self.assertNotIn("cluster_op_unreplicable", self.A.stderr() + self.B.stderr())


class _SetSink(http.server.BaseHTTPRequestHandler):
    """An RFC 8935 push receiver that records each POSTed SET's jti and
    answers 202 (signatures are test_ssf_transmitter's business)."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        seg = body.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
        with self.server.lock:
            self.server.jtis.append(payload["jti"])
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class SsfOnePusher(unittest.TestCase):
    """SSF in cluster mode: apply queues every event on every node, so every
    node that runs the pusher pushes it. With ssf-push = off on all nodes but
    one, a receiver gets each event once, whichever node took the write, and
    the pushing node's acks, replicated, drain the queues of the others."""

    def setUp(self):
        root = tempfile.mkdtemp(prefix="tokend-cluster-ssf-")
        self.addCleanup(shutil.rmtree, root, True)
        self.sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SetSink)
        self.sink.jtis, self.sink.lock = [], threading.Lock()
        threading.Thread(target=self.sink.serve_forever, daemon=True).start()
        self.addCleanup(self.sink.server_close)
        self.addCleanup(self.sink.shutdown)
        nats = Nats(root, "s0", free_port(), free_port(), [])
        with open(nats.conf, "w") as f:  # one server: no cluster block
            f.write("server_name: s0\nlisten: 127.0.0.1:%d\njetstream { store_dir: \"%s\" }\n"
                    % (nats.port, os.path.join(nats.dir, "js")))
        self.addCleanup(nats.stop, signal.SIGKILL)
        nats.start()
        key = key_file(root)
        seed = os.path.join(root, "seed")
        bearer = os.path.join(root, "bearer")
        with open(bearer, "w") as f:
            f.write("edge-push-credential-0123456789\n")
        rs = h.Client(h.ctl(seed, "client", "add", "--name", "rs", "--role", "resource_server"))
        self.agent = h.Client(h.ctl(seed, "client", "add", "--name", "agent", "--role", "agent",
                                    "--scope", "read"))
        sid = h.ctl(seed, "session", "create", "--sub", "u")["sid"]
        self.tokens = [h.ctl(seed, "token", "issue", "--sid", sid, "--client", self.agent.id,
                             "--scope", "read")["access_token"] for _ in range(6)]
        h.ctl(seed, "ssf", "receiver", "add", "edge1", "--url",
              "http://127.0.0.1:%d/events" % self.sink.server_port, "--audience",
              "https://edge.example.com", "--bearer-file", bearer)
        self.nodes = []
        for name, push in (("a", "on"), ("b", "off"), ("c", "off")):
            d = h.Tokend(os.path.join(root, name), [
                "--cluster-nats", "nats://127.0.0.1:%d" % nats.port, "--cluster-node", name,
                "--cluster-key-file", key, "--cluster-max-staleness", str(STALENESS_MS),
                "--ssf-poll", "50",
                "--ssf-push", push])
            shutil.copytree(seed, d.data_dir)
            d.default_auth = rs
            d.start()
            self.addCleanup(d.cleanup)
            self.nodes.append(d)
        for d in self.nodes:
            self.assertIsNotNone(wait_until(lambda: healthy(d), 60, 0.05), d.stderr())

    def depth(self, d):
        (r,) = h.ctl(d.data_dir, "ssf", "receiver", "list")
        return r["depth"]

    def test_each_event_pushed_once_and_every_queue_drained(self):
        a, b, c = self.nodes
        self.assertIn("ssf_push_off", b.stderr())
        self.assertNotIn("ssf_push_off", a.stderr())
        for i, t in enumerate(self.tokens):  # writes on every node, the pushing one included
            r = self.nodes[i % 3].revoke(t, auth=self.agent)
            self.assertEqual(r.status, 200, r)
        got = wait_until(lambda: len(set(self.sink.jtis)) >= len(self.tokens), 20, 0.02)
        self.assertIsNotNone(got, "SETs: %r\n%s" % (self.sink.jtis, a.stderr()))
        for d in self.nodes:  # A's acks reach every node through the stream
            self.assertIsNotNone(wait_until(lambda: self.depth(d) == 0, 10, 0.05),
                                 "depth %d on %s" % (self.depth(d), d.data_dir))
        time.sleep(0.5)  # a second pusher, were there one, had ten polls to push again
        with self.sink.lock:
            jtis = list(self.sink.jtis)
        self.assertEqual(len(jtis), len(self.tokens), "each event once: %r" % jtis)
        self.assertEqual(len(set(jtis)), len(jtis))


class RawNats:
    """A bare NATS client over TCP (the protocol's text form): what anyone
    who reaches the NATS servers can do, no library, no credentials."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.line()  # INFO
        self.s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nPING\r\n')
        self.expect(b"PONG")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError("NATS closed the connection")
            self.buf += chunk
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.buf += self.s.recv(65536)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect(self, word):
        while True:
            l = self.line()
            if l == b"PING":
                self.s.sendall(b"PONG\r\n")
            elif l.startswith(word):
                return l
            elif l.startswith(b"-ERR"):
                raise AssertionError(l)

    def sub(self, subject):
        self.s.sendall(b"SUB %s 1\r\nPING\r\n" % subject.encode())
        self.expect(b"PONG")

    def next_msg(self):
        """(headers bytes, payload) of the next HMSG/MSG."""
        l = self.expect(b"HMSG")
        parts = l.split()
        hlen, total = int(parts[-2]), int(parts[-1])
        data = self.exact(total + 2)[:total]
        return data[:hlen], data[hlen:]

    def pub(self, subject, payload, headers=None):
        if headers is None:
            self.s.sendall(b"PUB %s %d\r\n%s\r\nPING\r\n" % (subject.encode(), len(payload),
                                                           payload))
        else:
            hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                            for k, v in headers) + b"\r\n"
            self.s.sendall(b"HPUB %s %d %d\r\n%s%s\r\nPING\r\n" % (
                subject.encode(), len(hdr), len(hdr) + len(payload), hdr, payload))
        self.expect(b"PONG")

    def request(self, subject, payload, headers=None):
        """Publish with a reply subject; the JSON of the one answer (a
        JetStream PubAck or API response)."""
        if not getattr(self, "inbox", None):
            self.inbox = "_INBOX.tokendtest%d" % os.getpid()
            self.s.sendall(b"SUB %s 9\r\n" % self.inbox.encode())
        if headers is None:
            self.s.sendall(b"PUB %s %s %d\r\n%s\r\n" % (
                subject.encode(), self.inbox.encode(), len(payload), payload))
        else:
            hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                            for k, v in headers) + b"\r\n"
            self.s.sendall(b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
                subject.encode(), self.inbox.encode(), len(hdr), len(hdr) + len(payload), hdr,
                payload))
        while True:
            l = self.expect(b"MSG")
            parts = l.split()
            data = self.exact(int(parts[-1]) + 2)[:-2]
            if parts[1].decode() == self.inbox:
                return json.loads(data)

    def close(self):
        self.s.close()


def header_pairs(hdr):
    """[(name, value)] of a raw NATS header block."""
    out = []
    for l in hdr.split(b"\r\n")[1:]:
        if b":" in l:
            k, v = l.split(b":", 1)
            out.append((k.decode(), v.strip().decode()))
    return out


class ForgedEntries(unittest.TestCase):
    """The op log is authenticated: an entry published straight to a stream's
    subject by someone without the cluster key (a genuine entry's bytes with
    no MAC, with a wrong MAC, or replayed with its real MAC from another
    stream) is never applied. The node stops at it (fail closed): the token
    the entry would revoke stays active in its store, the node goes not
    ready, refuses writes, and counts the entry in /metrics."""

    def setUp(self):
        root = tempfile.mkdtemp(prefix="tokend-cluster-forge-")
        self.addCleanup(shutil.rmtree, root, True)
        nats = Nats(root, "f0", free_port(), free_port(), [])
        with open(nats.conf, "w") as f:
            f.write("server_name: f0\nlisten: 127.0.0.1:%d\njetstream { store_dir: \"%s\" }\n"
                    % (nats.port, os.path.join(nats.dir, "js")))
        self.addCleanup(nats.stop, signal.SIGKILL)
        nats.start()
        self.port = nats.port
        key = key_file(root)
        seed = os.path.join(root, "seed")
        self.rs = h.Client(h.ctl(seed, "client", "add", "--name", "rs", "--role",
                                 "resource_server"))
        self.agent = h.Client(h.ctl(seed, "client", "add", "--name", "agent", "--role", "agent",
                                    "--scope", "read"))
        sid = h.ctl(seed, "session", "create", "--sub", "u")["sid"]
        self.tokens = [h.ctl(seed, "token", "issue", "--sid", sid, "--client", self.agent.id,
                             "--scope", "read")["access_token"] for _ in range(3)]
        # Every node has the same key, each on its own stream: the donor's
        # entries are genuine, for DONOR.ops.
        self.nodes = {}
        for name in ("DONOR", "L1", "L2", "L3"):
            d = h.Tokend(os.path.join(root, name), [
                "--cluster-nats", "nats://127.0.0.1:%d" % nats.port, "--cluster-node",
                name.lower(), "--cluster-stream", name, "--cluster-key-file", key,
                "--cluster-max-staleness", str(STALENESS_MS)])
            shutil.copytree(seed, d.data_dir)
            d.default_auth = self.rs
            d.start()
            self.addCleanup(d.cleanup)
            self.nodes[name] = d
        for d in self.nodes.values():
            self.assertIsNotNone(wait_until(lambda: healthy(d), 60, 0.05), d.stderr())

    def metric(self, d, name):
        for line in d.metrics_text().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        self.fail("no %s in /metrics" % name)

    def test_forged_entries_never_applied(self):
        t = self.tokens[0]
        raw = RawNats(self.port)
        self.addCleanup(raw.close)
        raw.sub("DONOR.ops")
        donor = self.nodes["DONOR"]
        self.assertEqual(donor.revoke(t, auth=self.agent).status, 200)
        hdr, entry = raw.next_msg()
        mac = [l.split(b":", 1)[1].strip().decode() for l in hdr.split(b"\r\n")
               if l.lower().startswith(b"tokend-mac:")]
        self.assertEqual(len(mac), 1, hdr)
        self.assertEqual(donor.introspect(t).json(), h.INACTIVE)
        wrong = mac[0][:-1] + ("0" if mac[0][-1] != "0" else "1")  # in the MAC itself
        forgeries = {"L1": None,                           # no MAC
                     "L2": [("Tokend-Mac", wrong)],        # one hex digit off
                     "L3": [("Tokend-Mac", mac[0])]}       # genuine, for DONOR.ops
        for stream, headers in forgeries.items():
            d = self.nodes[stream]
            self.assertEqual(self.metric(d, "tokend_cluster_unauthenticated_entries_total"), 0)
            self.assertEqual(d.introspect(t).json()["active"], True)
            before = self.metric(d, "tokend_cluster_applied_sequence")
            raw.pub(stream + ".ops", entry, headers)
            seen = wait_until(lambda: self.metric(
                d, "tokend_cluster_unauthenticated_entries_total") == 1, 10, 0.05)
            self.assertIsNotNone(seen, d.stderr())
            self.assertIn("cluster_entry_unauthenticated", d.stderr())
            # Not applied: the token is active in the store, the sequence did
            # not move; the node is not current any more (fail closed).
            self.assertEqual(self.metric(d, "tokend_cluster_applied_sequence"), before)
            self.assertIsNotNone(wait_until(lambda: not healthy(d), 10, 0.05))
            r = d.introspect(t)
            self.assertIn(r.status, (200, 503), r)
            if r.status == 200:
                self.assertEqual(r.json()["active"], True)
            shown = h.ctl(d.data_dir, "token", "show", t)
            self.assertIs(shown["active"], True, shown)
            # Nothing after it is applied either, and writes are refused.
            self.assertEqual(d.revoke(self.tokens[1], auth=self.agent).status, 503)
            time.sleep(0.3)
            self.assertEqual(self.metric(d, "tokend_cluster_applied_sequence"), before)
            self.assertEqual(self.metric(d, "tokend_cluster_unauthenticated_entries_total"), 1)
        # The donor, which got only genuine entries, counted none.
        self.assertEqual(self.metric(donor, "tokend_cluster_unauthenticated_entries_total"), 0)


class ReplayedEntries(unittest.TestCase):
    """A genuine entry captured off the stream's subject and published again
    over raw NATS, as anyone who can publish there could: with its own
    Nats-Msg-Id inside the stream's duplicate window JetStream drops it (it
    cannot take another id: the MAC covers it); after the window it is
    stored, and the node refuses it, its signed time being older than the
    stream's timestamp by more than cluster-replay-window: not applied, the
    node stops there (not ready, writes refused) and counts it. Normal
    writes meanwhile are unaffected. A stream made elsewhere with a
    duplicate window too short for the replay window is not used."""

    WINDOW_MS = 2000  # the stream tokend creates gets twice that as its duplicate window

    def metric(self, d, name):
        for line in d.metrics_text().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        self.fail("no %s in /metrics" % name)

    def test_replay(self):
        root = tempfile.mkdtemp(prefix="tokend-cluster-replay-")
        self.addCleanup(shutil.rmtree, root, True)
        nats = one_nats(self, root, "p0")
        key = key_file(root)
        seed = os.path.join(root, "seed")
        rs = h.Client(h.ctl(seed, "client", "add", "--name", "rs", "--role", "resource_server"))
        agent = h.Client(h.ctl(seed, "client", "add", "--name", "agent", "--role", "agent",
                               "--scope", "read"))
        sid = h.ctl(seed, "session", "create", "--sub", "u")["sid"]
        tokens = [h.ctl(seed, "token", "issue", "--sid", sid, "--client", agent.id, "--scope",
                        "read")["access_token"] for _ in range(3)]
        raw = RawNats(nats.port)
        self.addCleanup(raw.close)
        # A stream made by hand with a 10 s duplicate window: too short for
        # the default 60 s replay window.
        made = raw.request("$JS.API.STREAM.CREATE.SHORT", json.dumps({
            "name": "SHORT", "subjects": ["SHORT.ops"], "storage": "file",
            "duplicate_window": 10 * 10**9}).encode())
        self.assertNotIn("error", made, made)
        nodes = {}
        for name, stream, extra in (("a", "REPLAY", ["--cluster-replay-window",
                                                     str(self.WINDOW_MS)]),
                                    ("b", "REPLAY", ["--cluster-replay-window",
                                                     str(self.WINDOW_MS)]),
                                    ("short", "SHORT", [])):
            d = h.Tokend(os.path.join(root, name), [
                "--cluster-nats", "nats://127.0.0.1:%d" % nats.port, "--cluster-node", name,
                "--cluster-stream", stream, "--cluster-key-file", key,
                "--cluster-max-staleness", str(STALENESS_MS)] + extra)
            shutil.copytree(seed, d.data_dir)
            d.default_auth = rs
            d.start()
            self.addCleanup(d.cleanup)
            nodes[name] = d
        a, b, short = nodes["a"], nodes["b"], nodes["short"]
        for d in (a, b):
            self.assertIsNotNone(wait_until(lambda: healthy(d), 60, 0.05), d.stderr())
        self.assertIsNotNone(wait_until(
            lambda: "cluster_stream_duplicate_window" in short.stderr(), 15, 0.05),
            short.stderr())
        self.assertIn("need_ms=90000", short.stderr())
        self.assertFalse(healthy(short))
        self.assertEqual(short.revoke(tokens[2], auth=agent).status, 503)
        self.assertIn("duplicate_window_ms=%d" % (2 * self.WINDOW_MS), a.stderr() + b.stderr())

        raw.sub("REPLAY.ops")
        self.assertEqual(a.revoke(tokens[0], auth=agent).status, 200)
        t_stored = time.monotonic()
        hdr, entry = raw.next_msg()
        headers = header_pairs(hdr)
        self.assertEqual(sorted(k.lower() for k, _ in headers), ["nats-msg-id", "tokend-mac"])
        self.assertIsNotNone(wait_until(
            lambda: b.introspect(tokens[0]).json() == h.INACTIVE, 5, 0.02))
        seq = self.metric(b, "tokend_cluster_applied_sequence")
        # Inside the duplicate window: dropped by JetStream, nothing happens.
        ack = raw.request("REPLAY.ops", entry, headers)
        self.assertIs(ack.get("duplicate"), True, ack)
        self.assertEqual(ack["seq"], seq)
        # Normal writes go on (from either node).
        self.assertEqual(b.revoke(tokens[1], auth=agent).status, 200)
        self.assertIsNotNone(wait_until(
            lambda: a.introspect(tokens[1]).json() == h.INACTIVE, 5, 0.02))
        seq = self.metric(a, "tokend_cluster_applied_sequence")
        self.assertEqual(self.metric(b, "tokend_cluster_applied_sequence"), seq)
        # After the duplicate window: stored, and refused by every node.
        time.sleep(max(0.0, 2 * self.WINDOW_MS / 1000 + 0.5 - (time.monotonic() - t_stored)))
        ack = raw.request("REPLAY.ops", entry, headers)
        self.assertNotIn("duplicate", ack)
        self.assertEqual(ack["seq"], seq + 1)
        for d in (a, b):
            self.assertIsNotNone(wait_until(lambda: self.metric(
                d, "tokend_cluster_replayed_entries_total") == 1, 10, 0.05), d.stderr())
            self.assertIn("cluster_entry_replayed", d.stderr())
            self.assertEqual(self.metric(d, "tokend_cluster_unauthenticated_entries_total"), 0)
            self.assertEqual(self.metric(d, "tokend_cluster_applied_sequence"), seq)
            self.assertIsNotNone(wait_until(lambda: not healthy(d), 10, 0.05))
            self.assertEqual(d.revoke(tokens[2], auth=agent).status, 503)


class NatsCredentials(unittest.TestCase):
    """cluster-nats-user / cluster-nats-password-file: a nats-server that
    requires a user and password takes a node with them; a node with a wrong
    password (or none) is never connected, never ready."""

    def test_user_password(self):
        root = tempfile.mkdtemp(prefix="tokend-cluster-auth-")
        self.addCleanup(shutil.rmtree, root, True)
        nats = Nats(root, "u0", free_port(), free_port(), [])
        with open(nats.conf, "w") as f:
            f.write("server_name: u0\nlisten: 127.0.0.1:%d\njetstream { store_dir: \"%s\" }\n"
                    "authorization { user: tokend, password: \"pw-0123456789\" }\n"
                    % (nats.port, os.path.join(nats.dir, "js")))
        self.addCleanup(nats.stop, signal.SIGKILL)
        nats.start()
        key = key_file(root)
        good, bad = os.path.join(root, "good.pw"), os.path.join(root, "bad.pw")
        for path, pw in ((good, "pw-0123456789\n"), (bad, "pw-0123456788\n")):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pw)
        nodes = {}
        for name, extra in (("good", ["--cluster-nats-user", "tokend",
                                      "--cluster-nats-password-file", good]),
                            ("bad", ["--cluster-nats-user", "tokend",
                                     "--cluster-nats-password-file", bad]),
                            ("none", [])):
            d = h.Tokend(os.path.join(root, name), [
                "--cluster-nats", "nats://127.0.0.1:%d" % nats.port, "--cluster-node", name,
                "--cluster-stream", "AUTH", "--cluster-key-file", key,
                "--cluster-max-staleness", str(STALENESS_MS)] + extra)
            os.makedirs(d.data_dir)
            d.start()
            self.addCleanup(d.cleanup)
            nodes[name] = d
        self.assertIsNotNone(wait_until(lambda: healthy(nodes["good"]), 30, 0.05),
                             nodes["good"].stderr())
        self.assertIn("tokend_cluster_connected 1", nodes["good"].metrics_text())
        time.sleep(1.0)
        for name in ("bad", "none"):
            self.assertFalse(healthy(nodes[name]), nodes[name].stderr())
            self.assertIn("tokend_cluster_connected 0", nodes[name].metrics_text())


def write_private(path, text):
    """(Re)write a mode-0600 file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def one_nats(test, root, name, extra=""):
    """One nats-server with JetStream (no cluster block), stopped at cleanup."""
    nats = Nats(root, name, free_port(), free_port(), [])
    with open(nats.conf, "w") as f:
        f.write("server_name: %s\nlisten: 127.0.0.1:%d\njetstream { store_dir: \"%s\" }\n%s"
                % (name, nats.port, os.path.join(nats.dir, "js"), extra))
    test.addCleanup(nats.stop, signal.SIGKILL)
    nats.start()
    return nats


class KeyRotation(unittest.TestCase):
    """cluster-key-file holds the signing key first and the keys still
    accepted after it. The documented rotation, one node restarted at a
    time, never stops the cluster: (1) the new key added as accepted on
    every node, (2) made the signing key on every node, (3) the old key
    dropped. A node left on the old key alone stops at the first entry
    signed with the new one (not applied, counted, not ready)."""

    def metric(self, d, name):
        for line in d.metrics_text().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        self.fail("no %s in /metrics" % name)

    def test_rotation(self):
        root = tempfile.mkdtemp(prefix="tokend-cluster-rot-")
        self.addCleanup(shutil.rmtree, root, True)
        nats = one_nats(self, root, "r0")
        old, new = os.urandom(32).hex(), os.urandom(32).hex()
        seed = os.path.join(root, "seed")
        rs = h.Client(h.ctl(seed, "client", "add", "--name", "rs", "--role", "resource_server"))
        agent = h.Client(h.ctl(seed, "client", "add", "--name", "agent", "--role", "agent",
                               "--scope", "read"))
        sid = h.ctl(seed, "session", "create", "--sub", "u")["sid"]
        tokens = [h.ctl(seed, "token", "issue", "--sid", sid, "--client", agent.id, "--scope",
                        "read")["access_token"] for _ in range(6)]
        nodes, keys = {}, {}
        for name in ("a", "b", "c"):
            keys[name] = os.path.join(root, name + ".key")
            write_private(keys[name], old + "\n")
            d = h.Tokend(os.path.join(root, name), [
                "--cluster-nats", "nats://127.0.0.1:%d" % nats.port, "--cluster-node", name,
                "--cluster-stream", "ROT", "--cluster-key-file", keys[name],
                "--cluster-max-staleness", str(STALENESS_MS)])
            shutil.copytree(seed, d.data_dir)
            d.default_auth = rs
            d.start()
            self.addCleanup(d.cleanup)
            nodes[name] = d
        a, b, c = nodes["a"], nodes["b"], nodes["c"]

        def restart(d, name, text):
            d.stop()
            write_private(keys[name], text)
            d.start()
            self.assertIsNotNone(wait_until(lambda: healthy(d), 30, 0.05), d.stderr())

        def revoke_everywhere(writer, token, readers):
            self.assertEqual(writer.revoke(token, auth=agent).status, 200, writer.stderr())
            for d in readers:
                self.assertIsNotNone(wait_until(
                    lambda: d.introspect(token).json() == h.INACTIVE, 5, 0.02), d.stderr())

        for d in nodes.values():
            self.assertIsNotNone(wait_until(lambda: healthy(d), 60, 0.05), d.stderr())
        revoke_everywhere(a, tokens[0], (b, c))
        # (1) The new key accepted everywhere (c stays on the old key alone).
        restart(b, "b", "%s\n# next\n%s\n" % (old, new))
        revoke_everywhere(b, tokens[1], (a, c))  # b still signs with the old key
        restart(a, "a", "%s\n%s\n" % (old, new))
        # (2) The new key signs: a first, while b (not restarted yet) signs
        # with the old one; both apply each other's entries.
        restart(a, "a", "%s\n%s\n" % (new, old))
        revoke_everywhere(a, tokens[2], (b,))
        revoke_everywhere(b, tokens[3], (a,))
        restart(b, "b", "%s\n%s\n" % (new, old))
        # (3) The old key dropped.
        restart(a, "a", new + "\n")
        restart(b, "b", new + "\n")
        revoke_everywhere(b, tokens[4], (a,))
        self.assertEqual(self.metric(a, "tokend_cluster_unauthenticated_entries_total"), 0)
        self.assertEqual(self.metric(b, "tokend_cluster_unauthenticated_entries_total"), 0)
        # c, never given the new key, applied what the old key signed and
        # stopped at a's first entry signed with the new key.
        self.assertIsNotNone(wait_until(lambda: self.metric(
            c, "tokend_cluster_unauthenticated_entries_total") == 1, 10, 0.05), c.stderr())
        self.assertIn("mac=unknown_key", c.stderr())
        self.assertIsNotNone(wait_until(lambda: not healthy(c), 10, 0.05))
        self.assertIs(h.ctl(c.data_dir, "token", "show", tokens[1])["active"], False)
        self.assertIs(h.ctl(c.data_dir, "token", "show", tokens[2])["active"], True)


class NatsTls(unittest.TestCase):
    """tls:// to a nats-server that requires TLS and a client certificate
    (certificates made now with openssl; one server, R=1): two nodes with
    the CA, a certificate and its key connect and replicate; a node that
    trusts another CA, one that reaches the server by a name its certificate
    does not carry, one without a client certificate and one with plain
    nats:// never connect, stay not ready, and say why in the log."""

    def test_tls(self):
        root = tempfile.mkdtemp(prefix="tokend-cluster-tls-")
        self.addCleanup(shutil.rmtree, root, True)
        ca, other = hf.TestCA(root, "ca"), hf.TestCA(root, "other")
        srv_cert, srv_key = ca.server_cert("nats", san="IP:127.0.0.1")
        client = mu.client_cert(root, "node", "/CN=tokend-node", ca=(ca.cert, ca.key))
        os.chmod(client.key, 0o600)
        nats = Nats(root, "t0", free_port(), free_port(), [])
        with open(nats.conf, "w") as f:
            f.write("server_name: t0\nlisten: 127.0.0.1:%d\njetstream { store_dir: \"%s\" }\n"
                    "tls { cert_file: \"%s\", key_file: \"%s\", ca_file: \"%s\", verify: true }\n"
                    % (nats.port, os.path.join(nats.dir, "js"), srv_cert, srv_key, ca.cert))
        self.addCleanup(nats.stop, signal.SIGKILL)
        nats.start()
        key = key_file(root)
        seed = os.path.join(root, "seed")
        rs = h.Client(h.ctl(seed, "client", "add", "--name", "rs", "--role", "resource_server"))
        agent = h.Client(h.ctl(seed, "client", "add", "--name", "agent", "--role", "agent",
                               "--scope", "read"))
        sid = h.ctl(seed, "session", "create", "--sub", "u")["sid"]
        token = h.ctl(seed, "token", "issue", "--sid", sid, "--client", agent.id, "--scope",
                      "read")["access_token"]
        tls = "tls://127.0.0.1:%d" % nats.port
        mutual = ["--cluster-nats-cert", client.cert, "--cluster-nats-key", client.key]
        nodes = {}
        for name, extra, why in (
                ("a", [tls, "--cluster-nats-ca", ca.cert] + mutual, None),
                ("b", [tls, "--cluster-nats-ca", ca.cert] + mutual, None),
                ("wrongca", [tls, "--cluster-nats-ca", other.cert] + mutual,
                 "unable to get local issuer certificate"),
                ("wronghost", ["tls://localhost:%d" % nats.port, "--cluster-nats-ca", ca.cert]
                 + mutual, "mismatch"),
                ("nocert", [tls, "--cluster-nats-ca", ca.cert], "needs cluster-nats-cert"),
                ("plain", ["nats://127.0.0.1:%d" % nats.port], "the server requires TLS")):
            d = h.Tokend(os.path.join(root, name), [
                "--cluster-nats"] + extra + ["--cluster-node", name, "--cluster-stream", "TLS",
                                             "--cluster-key-file", key,
                                             "--cluster-max-staleness", str(STALENESS_MS)])
            shutil.copytree(seed, d.data_dir)
            d.default_auth = rs
            d.start()
            self.addCleanup(d.cleanup)
            nodes[name] = (d, why)
        a, b = nodes["a"][0], nodes["b"][0]
        for d in (a, b):
            self.assertIsNotNone(wait_until(lambda: healthy(d), 60, 0.05), d.stderr())
            self.assertIn("tokend_cluster_connected 1", d.metrics_text())
        self.assertEqual(a.revoke(token, auth=agent).status, 200)
        self.assertIsNotNone(wait_until(
            lambda: b.introspect(token).json() == h.INACTIVE, 5, 0.02), b.stderr())
        for name, (d, why) in nodes.items():
            if why is None:
                continue
            self.assertIsNotNone(wait_until(lambda: why in d.stderr(), 15, 0.1),
                                 "%s: %s" % (name, d.stderr()))
            self.assertFalse(healthy(d), name)
            self.assertIn("tokend_cluster_connected 0", d.metrics_text())
            self.assertEqual(d.introspect(token).status, 503, name)
            self.assertEqual(d.revoke(token, auth=agent).status, 503, name)


class SingleNodeUnchanged(h.DaemonCase):
    """Without cluster-nats: no cluster metrics, /healthz as before, tokenctl writes."""

    def test_no_cluster(self):
        r = self.d.request("GET", "/healthz")
        self.assertEqual((r.status, r.body), (200, b'{"status":"ok"}'))
        self.assertNotIn("tokend_cluster_", self.d.metrics_text())
        self.assertTrue(self.d.new_session("bob").startswith("tks_"))

    def test_cluster_keys_need_cluster_nats(self):
        d = h.Tokend(tempfile.mkdtemp(prefix="tokend-itest-"), ["--cluster-node", "x"])
        self.addCleanup(shutil.rmtree, d.data_dir, True)
        with self.assertRaises(AssertionError) as e:
            d.start()
        self.assertIn("cluster-nats", str(e.exception))

    def test_cluster_needs_a_private_key_file(self):
        root = tempfile.mkdtemp(prefix="tokend-itest-")
        self.addCleanup(shutil.rmtree, root, True)
        base = ["--cluster-nats", "nats://127.0.0.1:1", "--cluster-node", "x"]
        loose = key_file(root, "loose.key")
        os.chmod(loose, 0o640)
        short = key_file(root, "short.key")
        with open(short, "w") as f:
            f.write("0123456789abcdef0123456789abcde\n")
        for extra, why in (([], "cluster-key-file"), (["--cluster-key-file", loose],
                                                       "group or others"),
                           (["--cluster-key-file", short], "at least 32"),
                           (["--cluster-key-file", os.path.join(root, "none")], "none")):
            d = h.Tokend(os.path.join(root, "d%d" % len(why)), base + extra)
            with self.assertRaises(AssertionError) as e:
                d.start()
            self.assertIn(why, str(e.exception))

    def test_cluster_tls_files_checked_at_start(self):
        root = tempfile.mkdtemp(prefix="tokend-itest-")
        self.addCleanup(shutil.rmtree, root, True)
        ca = hf.TestCA(root, "ca")
        client = mu.client_cert(root, "node", "/CN=n", ca=(ca.cert, ca.key))
        os.chmod(client.key, 0o644)
        garbage = os.path.join(root, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        base = ["--cluster-nats", "tls://127.0.0.1:1", "--cluster-node", "x",
                "--cluster-key-file", key_file(root)]
        for i, (extra, why) in enumerate((
                ([], "cluster-nats-ca"),
                (["--cluster-nats-ca", os.path.join(root, "none.pem")], "none.pem"),
                (["--cluster-nats-ca", garbage], "cluster_tls_refused"),
                (["--cluster-nats-ca", ca.cert, "--cluster-nats-cert", client.cert,
                  "--cluster-nats-key", client.key], "group or others"),
                (["--cluster-nats-ca", ca.cert, "--cluster-nats-cert", client.cert],
                 "both or neither"))):
            d = h.Tokend(os.path.join(root, "d%d" % i), base + extra)
            with self.assertRaises(AssertionError) as e:
                d.start()
            self.assertIn(why, str(e.exception))
        d = h.Tokend(os.path.join(root, "plain"), ["--cluster-nats", "nats://127.0.0.1:1",
                                                   "--cluster-node", "x", "--cluster-key-file",
                                                   key_file(root, "k2"), "--cluster-nats-ca",
                                                   ca.cert])
        with self.assertRaises(AssertionError) as e:
            d.start()
        self.assertIn("need tls://", str(e.exception))


if __name__ == "__main__":
    unittest.main()
