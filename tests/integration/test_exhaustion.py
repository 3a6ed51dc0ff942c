"""Resource exhaustion: a full LMDB map, a full committer queue, no file
descriptors left at accept.

- A tiny map that may not grow (--map-size 1 MiB --map-size-max 0): writes
  get 503 temporarily_unavailable with Retry-After and a store_full log
  line, reads keep working, every acknowledged revocation is in force (and
  nothing answered 503 was applied), and after a restart with a larger map
  everything works again and nothing was lost.
- The same map allowed to grow: the committer pauses the workers, grows the
  map and retries, so no revocation fails, while introspection goes on;
  a map grown by tokenctl (another process) is adopted too.
- --commit-queue 1 under a burst of concurrent revocations: the overflow is
  answered 503 at once (never a blocked worker), nothing answered 503 was
  applied, and a retry succeeds.
- RLIMIT_NOFILE lowered under a running tokend: accept backs off (one log
  line), connections already open keep being served, and the waiting ones
  are served once descriptors are free again.
"""

import os
import threading
import time
import unittest

import harness as h
import hardening as hd

h.require_binaries()

MIB = 1 << 20


def revoke_all(d, agent, tokens, threads=4):
    """Revoke tokens from `threads` keep-alive connections; returns
    {token: status}."""
    out = {}
    lock = threading.Lock()
    todo = list(tokens)

    def run():
        with d.conn() as c:
            while True:
                with lock:
                    if not todo:
                        return
                    t = todo.pop()
                c.send(h.auth_request("/revoke", t, agent))
                r = c.read_response()
                if r.status == 503:
                    assert r.header("retry-after") == "1", r
                    assert r.json() == {"error": "temporarily_unavailable"}, r
                with lock:
                    out[t] = r.status

    ts = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


class Store(h.FreshCase):
    def prepare(self, args, sessions=30, per_session=100):
        self.dir = self.tmpdir()
        seeder = h.Tokend(self.dir)  # tokenctl only: the clients and tokens
        self.agent = seeder.add_client("agent", "agent", scope="read write")
        self.rs = seeder.add_client("resource_server", "rs")
        self.tokens = hd.seed(seeder, self.agent, sessions, per_session)
        return self.daemon(args, data_dir=self.dir)

    def test_full_map_503_then_restart_bigger(self):
        # 4 000 tokens fill ~0.95 MiB; their revocations append ~136 KiB to the
        # revocation log (a revocation no longer rewrites its token record), more
        # than the map has left whatever the group commits' sizes.
        d = self.prepare(("--map-size", MIB, "--map-size-max", 0), sessions=40)
        got = revoke_all(d, self.agent, self.tokens)
        acked = [t for t, s in got.items() if s == 200]
        refused = [t for t, s in got.items() if s == 503]
        self.assertEqual(len(acked) + len(refused), len(self.tokens), set(got.values()))
        self.assertTrue(refused, "a 1 MiB map never filled up")
        self.assertTrue(hd.log_lines(d, "store_full"), d.stderr())
        # Reads keep working on a full map; 503 means "not revoked".
        state = hd.introspect_many(d, acked + refused, self.rs)
        self.assertEqual([t for t in acked if state[t]], [])
        self.assertEqual([t for t in refused if not state[t]], [])
        d.stop()
        d.args = ["--map-size", str(64 * MIB)]
        d.start()
        state = hd.introspect_many(d, acked + refused, self.rs)
        self.assertEqual([t for t in acked if state[t]], [], "acknowledged revocations lost")
        again = revoke_all(d, self.agent, refused)
        self.assertEqual(set(again.values()), {200})
        state = hd.introspect_many(d, refused, self.rs)
        self.assertEqual([t for t in refused if state[t]], [])
        print("\nmap full: %d revocations acknowledged, %d answered 503, none lost; "
              "all applied after a restart with a larger map" % (len(acked), len(refused)))

    def test_map_grows_while_serving(self):
        d = self.prepare(("--map-size", MIB), sessions=40)  # must outgrow 1 MiB (above)
        stop = threading.Event()
        probes = {"n": 0, "bad": []}
        keep = self.tokens[:50]

        def introspect_loop():
            with d.conn() as c:
                while not stop.is_set():
                    for t in keep[:10]:
                        c.send(h.auth_request("/introspect", t, self.rs))
                        r = c.read_response()
                        probes["n"] += 1
                        if r.status != 200 or r.json().get("active") is not True:
                            probes["bad"].append(r)

        reader = threading.Thread(target=introspect_loop, daemon=True)
        reader.start()
        victims = self.tokens[50:]
        got = revoke_all(d, self.agent, victims)
        stop.set()
        reader.join(30)
        self.assertEqual({s for s in got.values()}, {200}, "revocations failed while growing")
        self.assertEqual(probes["bad"][:3], [], "introspection failed while growing")
        self.assertGreater(probes["n"], 0)
        grown = hd.log_lines(d, "store_grown")
        self.assertTrue(grown, d.stderr())
        state = hd.introspect_many(d, victims + keep, self.rs)
        self.assertEqual([t for t in victims if state[t]], [])
        self.assertEqual([t for t in keep if not state[t]], [])
        # Another process (tokenctl, default map) grows the file past ours.
        more = hd.seed(d, self.agent, 20, 100)

        def all_visible():
            try:
                s = hd.introspect_many(d, more[::50], self.rs)
            except AssertionError:
                return False  # 503 while the new size is adopted
            return all(s.values())
        self.assertTrue(hd.wait_for(all_visible, 10.0), d.stderr())
        self.assertEqual(set(revoke_all(d, self.agent, more[:100]).values()), {200})
        print("\nmap growth: %d revocations, %d introspections meanwhile, %d growths, "
              "none failed" % (len(victims), probes["n"], len(grown)))


class CommitQueue(h.FreshCase):
    def test_queue_full_is_503_never_a_blocked_worker(self):
        d = self.daemon(("--commit-queue", 1))
        w = h.World(d)
        sid = d.new_session("alice")
        toks = [t for t in hd.seed(d, w.a, 4, 40)]
        conns = [d.conn() for _ in range(80)]
        for c, t in zip(conns, toks):
            c.send(h.auth_request("/revoke", t, w.a))
        t0 = time.monotonic()
        status = {}
        for c, t in zip(conns, toks):
            r = c.read_response()
            status[t] = r.status
            if r.status == 503:
                self.assertEqual(r.header("retry-after"), "1")
            c.close()
        burst_s = time.monotonic() - t0
        self.assertEqual(set(status.values()) - {200, 503}, set())
        refused = [t for t, s in status.items() if s == 503]
        acked = [t for t, s in status.items() if s == 200]
        self.assertTrue(refused, "a queue of 1 never overflowed under 80 revocations")
        self.assertLess(burst_s, 10.0)
        state = hd.introspect_many(d, toks[:80], w.rs)
        self.assertEqual([t for t in acked if state[t]], [])
        self.assertEqual([t for t in refused if not state[t]], [], "a 503 was applied")
        again = revoke_all(d, w.a, refused, threads=1)
        self.assertEqual(set(again.values()), {200})
        self.assertTrue(sid)
        print("\ncommit queue 1: %d of 80 concurrent revocations answered 503 at once "
              "(in %.0f ms), all applied on retry" % (len(refused), burst_s * 1e3))


class FdExhaustion(h.FreshCase):
    """The limit must be in force before tokend starts: io_uring takes
    RLIMIT_NOFILE when the multishot accept is armed, so lowering it on a
    running process changes nothing until the accept is re-armed."""

    def start_with_nofile(self, extra):
        # Measure the descriptors tokend holds once serving, then start it
        # again through `ulimit -Sn` with room for `extra` more.
        probe = self.daemon(("--workers", 1))
        high = max(int(f) for f in os.listdir("/proc/%d/fd" % probe.proc.pid))
        probe.stop()
        wrapper = os.path.join(self.tmpdir(), "tokend-nofile")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nulimit -Sn %d || exit 99\nexec "%s" "$@"\n'
                    % (high + 1 + extra, h.TOKEND_BIN))
        os.chmod(wrapper, 0o755)
        real = h.TOKEND_BIN
        h.TOKEND_BIN = wrapper
        try:
            probe.start()
        finally:
            h.TOKEND_BIN = real
        return probe

    def test_accept_backs_off_and_recovers(self):
        d = self.start_with_nofile(3)
        first = [d.conn() for _ in range(3)]
        for c in first:
            self.assertEqual(c.request("GET", "/healthz").status, 200)
        waiting = [d.conn() for _ in range(6)]  # completed by the kernel, not accepted
        for c in waiting:
            c.send(h.build_request("GET", "/healthz"))
        self.assertTrue(hd.wait_for(lambda: hd.log_lines(d, "accept_backoff"), 5.0),
                        d.stderr())
        time.sleep(0.6)  # a few back-off ticks: still exactly one log line
        self.assertEqual(len(hd.log_lines(d, "accept_backoff")), 1)
        for c in first:  # already open: still served
            self.assertEqual(c.request("GET", "/healthz").status, 200)
        for c in first:
            c.close()
        served = 0
        for c in waiting:  # served as descriptors free up
            self.assertEqual(c.read_response().status, 200)
            c.close()  # frees a descriptor for the next one
            served += 1
        self.assertEqual(served, len(waiting))
        self.assertEqual(d.request("GET", "/healthz").status, 200)
        self.assertTrue(hd.log_lines(d, "accept_resumed"))
        self.assertIsNone(d.proc.poll())


if __name__ == "__main__":
    unittest.main()
