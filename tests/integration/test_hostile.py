"""Hostile clients against the real daemon.

1. The corpus in tests/integration/hostile/*.txt (format in its README):
   request smuggling, malformed framing, odd request lines, oversized parts,
   pipelined junk. Each case gets exactly the listed statuses, then a closed
   connection, and the server goes on serving.
2. Slow clients: thousands of connections that trickle a head, stall in a
   body or never read their answers are all closed by the timeouts, while a
   good client keeps being served promptly (latency measured and printed;
   only loose bounds are asserted, machines are noisy).
3. The connection limit: beyond --max-conns a new connection is closed at
   once, the existing ones are unaffected, and a freed slot is reused.

The corpus and the slow clients run twice: over plain HTTP and over TLS (the
*TLS classes: the same tests with every connection on the TLS listener).
"""

import glob
import os
import re
import selectors
import socket
import ssl
import time
import unittest

import harness as h
import hardening as hd

h.require_binaries()

HERE = os.path.dirname(os.path.abspath(__file__))
REPEAT = re.compile(r"\{\{(\d+)\*((?:(?!\{\{|\}\}).)*?)\}\}", re.S)


def expand(text):
    """Innermost {{N*TEXT}} first, then the escapes."""
    for _ in range(16):
        new = REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
        if new == text:
            break
        text = new
    out = bytearray()
    i = 0
    simple = {"r": 13, "n": 10, "t": 9, "0": 0, "\\": 92}
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = text[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError("unknown escape \\%s" % e)
    return bytes(out)


def load_corpus():
    """[(file:name, [statuses], bytes)] from every hostile/*.txt."""
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "hostile", "*.txt"))):
        base = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            blocks = re.split(r"^=== ", f.read(), flags=re.M)
        for block in blocks[1:]:
            lines = block.split("\n")
            name, expect, data = lines[0].strip(), None, []
            for line in lines[1:]:
                if line.startswith("#") or (not line.strip() and expect is None):
                    continue
                if line.startswith("expect:") and expect is None:
                    expect = [int(x) for x in line[7:].split()]
                    continue
                data.append(line)
            if not expect:
                raise ValueError("%s: case %s has no expect line" % (base, name))
            cases.append(("%s:%s" % (base, name), expect, expand("".join(data))))
    return cases


class Corpus(h.DaemonCase):
    with_world = False
    tls = False

    def test_corpus(self):
        cases = load_corpus()
        self.assertGreater(len(cases), 50)
        for name, expect, data in cases:
            with self.subTest(case=name):
                with self.d.conn() as c:
                    c.send_tolerant(data)
                    got = []
                    for _ in expect:
                        got.append(c.read_response().status)
                    self.assertEqual(got, expect, name)
                    self.assertTrue(c.is_closed(3.0), "%s: connection left open" % name)
                r = self.d.request("GET", "/healthz")
                self.assertEqual(r.status, 200, "%s: server not serving afterwards" % name)
        rejected = sum(1 for _, e, _ in load_corpus() if e[-1] >= 400)
        print("\nhostile corpus: %d cases, %d malformed requests rejected and closed"
              % (len(cases), rejected))
        self.assertIsNone(self.d.proc.poll(), "tokend died")


# ---- Slow clients ---------------------------------------------------------------

HEAD_TIMEOUT_MS = 1500
IDLE_TIMEOUT_MS = 2000
N_TRICKLE = int(os.environ.get("TOKEND_SLOW_TRICKLE", "1200"))  # heads, a byte at a time
N_BODY = int(os.environ.get("TOKEND_SLOW_BODY", "1200"))  # heads done, bodies stalled
N_IDLE = 400  # connected, never a byte
N_NODRAIN = 40  # pipelined requests, answers never read
MAX_CONNS = 2500  # per worker (2 workers)


def open_raw(port, rcvbuf=None, ctx=None):
    """A non-blocking connection; with ctx, after a completed TLS handshake."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    if ctx is not None:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.setblocking(False)
    return s


def send_some(s, data):
    """Non-blocking send; returns bytes sent (0 when the peer is gone or full)."""
    try:
        return s.send(data)
    except (BlockingIOError, InterruptedError):
        return 0
    except OSError:
        return 0


def closed_by_peer(s, max_bytes=4 << 20):
    """Drain what is readable; True on EOF or reset, False if still open."""
    got = 0
    while got < max_bytes:
        try:
            chunk = s.recv(65536)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except OSError:
            return True
        if not chunk:
            return True
        got += len(chunk)
    return False


class SlowClients(h.DaemonCase):
    daemon_args = ("--max-conns", MAX_CONNS, "--header-timeout", HEAD_TIMEOUT_MS,
                   "--body-timeout", HEAD_TIMEOUT_MS, "--idle-timeout", IDLE_TIMEOUT_MS)
    tls = False
    share = 1  # the TLS run opens 1/share as many (each costs a handshake in Python)

    @classmethod
    def setUpClass(cls):
        total = N_TRICKLE + N_BODY + N_IDLE + N_NODRAIN
        have = hd.raise_nofile(2 * total + 512)
        if have < total + 256:
            raise unittest.SkipTest("RLIMIT_NOFILE %d is too low for %d connections"
                                    % (have, total))
        super().setUpClass()
        sid = cls.d.new_session("alice")
        cls.tok = cls.d.issue(sid, cls.w.a, "read")["access_token"]

    def good_request(self):
        t0 = time.monotonic()
        r = self.d.introspect(self.tok)
        dt = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        self.assertIs(r.json()["active"], True)
        return dt

    def test_slowloris_does_not_starve_good_clients(self):
        port = self.d.tls_port if self.tls else self.d.port
        ctx = h.client_context() if self.tls else None
        k = self.share
        baseline = sorted(self.good_request() for _ in range(20))
        head = h.build_request("POST", "/introspect", h.form({"token": self.tok}),
                               {"Authorization": self.w.rs.basic()}, h.FORM)
        cut = head.index(b"\r\n\r\n") + 4
        trickle = [open_raw(port, ctx=ctx) for _ in range(N_TRICKLE // k)]
        body = [open_raw(port, ctx=ctx) for _ in range(N_BODY // k)]
        idle = [open_raw(port, ctx=ctx) for _ in range(N_IDLE // k)]
        nodrain = [open_raw(port, rcvbuf=4096, ctx=ctx) for _ in range(N_NODRAIN)]
        for s in body:
            send_some(s, head[:cut] + head[cut:cut + 3])  # head done, body stalls
        pipeline = h.build_request("GET", "/healthz") * 3000
        for s in nodrain:
            send_some(s, pipeline)
        opened = time.monotonic()
        # Trickle one head byte per connection every 100 ms while good
        # requests go on; each trickler's head never completes in time.
        lat = []
        pos = 0
        while time.monotonic() - opened < 3.0:
            if pos < cut - 4:
                for s in trickle:
                    send_some(s, head[pos:pos + 1])
                pos += 1
            lat.append(self.good_request())
            time.sleep(0.1)
        everything = trickle + body + idle + nodrain
        deadline = opened + (HEAD_TIMEOUT_MS + IDLE_TIMEOUT_MS) / 1000 + 6.0
        pending = list(everything)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if not closed_by_peer(s)]
            if pending:
                time.sleep(0.2)
        for s in everything:
            s.close()
        lat.sort()
        p50 = lat[len(lat) // 2]
        print("\nslow clients: %d connections held; good client p50 %.1f ms, max %.1f ms "
              "(idle server p50 %.1f ms); %d still open at the deadline"
              % (len(everything), p50 * 1e3, lat[-1] * 1e3, baseline[10] * 1e3, len(pending)))
        self.assertEqual(len(pending), 0, "slow connections the timeouts did not close")
        self.assertLess(p50, 0.5, "good client slowed down: %r" % lat)
        self.assertLess(lat[-1], 3.0, "good client stalled: %r" % lat)
        self.assertIsNone(self.d.proc.poll(), "tokend died")
        self.good_request()


class CorpusTLS(Corpus):
    """The corpus over TLS: the same statuses, then a closed connection."""
    tls = True


class SlowClientsTLS(SlowClients):
    """Slow clients that completed a TLS handshake; the pre-handshake ones are
    in test_tls.py."""
    tls = True
    share = 4


class ConnLimit(h.FreshCase):
    def test_beyond_max_conns_refused_cleanly(self):
        d = self.daemon(("--workers", 1, "--max-conns", 8))
        d.workers = 1
        held = [d.conn() for _ in range(8)]
        for c in held:
            self.assertEqual(c.request("GET", "/healthz").status, 200)
        extra = d.conn()
        extra.send_tolerant(h.build_request("GET", "/healthz"))
        self.assertTrue(extra.wait_closed(3.0), "connection beyond --max-conns not closed")
        self.assertEqual(extra.buf, b"", "a refused connection got an answer")
        extra.close()
        for c in held:  # the existing ones are unaffected
            self.assertEqual(c.request("GET", "/healthz").status, 200)
        held.pop().close()

        def served():
            try:
                with d.conn() as c:
                    return c.request("GET", "/healthz").status == 200
            except (OSError, AssertionError):
                return False
        self.assertTrue(hd.wait_for(served, 5.0), "a freed slot was not reused")
        for c in held:
            c.close()
        r = hd.wait_for(lambda: d.metrics_request(), 5.0)
        m = dict(re.findall(r"^(tokend_connections_refused_total) (\d+)$",
                            r.body.decode(), re.M))
        self.assertGreaterEqual(int(m.get("tokend_connections_refused_total", 0)), 1)


if __name__ == "__main__":
    unittest.main()
