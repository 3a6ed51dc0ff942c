"""TLS on the listener (issue 15): real clients, resumption, reload, bad input.

tokend runs with a plain loopback listener and a TLS listener side by side
(test certificates made with the openssl CLI, harness.tls_material). Clients we
did not write (curl, Python's ssl with verification on, openssl s_client) talk
to it; OpenSSL's record layer is fed our way in random splits to check the
glue between the ring and the BIO pair; and everything a hostile peer can do
before or around the handshake ends in a closed connection within the
configured timeouts. Node's https and the OAuth libraries are in
test_client_interop.py, nginx in test_proxy_nginx.py, the hostile corpus and
the slow clients over TLS in test_hostile.py.
"""

import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
import unittest

import harness as h
import hardening as hd

h.require_binaries()
CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")
if OPENSSL is None:
    import sys
    sys.stderr.write("skipped: the openssl CLI is needed to make test certificates\n")
    sys.exit(77)

HEAD_TIMEOUT_MS = 1500


def client_hello():
    """The bytes of a real ClientHello (Python's ssl over memory BIOs)."""
    ctx = h.client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closes_within(sock, seconds):
    """Seconds until the peer closes (EOF or reset), or None if it did not."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    got = 0
    while time.monotonic() - t0 < seconds:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
        if not chunk:
            return time.monotonic() - t0
        got += len(chunk)
        if got > 1 << 20:
            return None
    return None


class MemoryClient:
    """A TLS client whose records we carry ourselves: Python's SSLObject over
    memory BIOs on a raw socket, sending the ciphertext in chunks we choose."""

    def __init__(self, port, split, ctx=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=h.IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = (ctx or h.client_context()).wrap_bio(self.inc, self.out,
                                                         server_hostname="localhost")
        self.split = split

    def flush(self):
        data = self.out.read()
        for piece in self.split(data):
            self.sock.sendall(piece)
            if len(piece) < 8:
                time.sleep(0.0005)  # let tiny pieces arrive as separate segments

    def pump(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.inc.write_eof()
            return False
        self.inc.write(chunk)
        return True

    def handshake(self):
        for _ in range(100):
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                if not self.pump():
                    raise AssertionError("closed during the handshake")

    def exchange(self, data, until):
        """Send data (encrypted, split), read plaintext until until(buf)."""
        self.obj.write(data)
        self.flush()
        buf = b""
        for _ in range(10000):
            try:
                buf += self.obj.read(65536)
            except ssl.SSLWantReadError:
                if until(buf):
                    return buf
                if not self.pump():
                    return buf
                continue
            if until(buf):
                return buf
        return buf

    def close(self):
        self.sock.close()


def ones(data):
    return [data[i:i + 1] for i in range(len(data))]


def whole(data):
    return [data] if data else []


def randomly(seed):
    rnd = random.Random(seed)

    def split(data):
        out, i = [], 0
        while i < len(data):
            n = rnd.choice((1, 2, 3, 5, 13, 100, 517, 1400, 5000))
            out.append(data[i:i + n])
            i += n
        return out
    return split


class TLSClients(h.DaemonCase):
    """A plain and a TLS listener side by side; clients we did not write."""

    tls = True
    daemon_args = ("--header-timeout", HEAD_TIMEOUT_MS, "--idle-timeout", 3000)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.m = h.tls_material()
        sid = cls.d.new_session("alice")
        cls.tok = cls.d.issue(sid, cls.w.a, "read")["access_token"]

    def test_both_listeners_answer_the_same(self):
        for c in (self.d.plain_conn(), self.d.tls_conn()):
            with c:
                r = self.d.introspect(self.tok, conn=c)
                self.assertEqual(r.status, 200)
                self.assertIs(r.json()["active"], True)
                self.assertEqual(c.request("GET", "/healthz").status, 200)
        with h.Conn(self.d.metrics_port) as c:  # metrics stays on its own listener
            self.assertEqual(c.request("GET", "/metrics").status, 200)
        with self.d.tls_conn() as c:
            self.assertEqual(c.request("GET", "/metrics").status, 404)

    def test_python_ssl_verifies_and_negotiates(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = h.client_context()
            ctx.minimum_version = ctx.maximum_version = version
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with self.d.tls_conn(ctx) as c:
                self.assertEqual(c.sock.version(), version.name.replace("_", "."))
                self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
                cipher = c.sock.cipher()[0]
                if version == ssl.TLSVersion.TLSv1_2:
                    self.assertRegex(cipher, r"^ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20)")
                for _ in range(3):  # keep-alive
                    r = self.d.introspect(self.tok, conn=c)
                    self.assertIs(r.json()["active"], True)
        other = h.make_ca(h.tls_material()["dir"], "stranger")
        with self.assertRaises(ssl.SSLCertVerificationError):
            h.Conn(self.d.tls_port, ctx=h.client_context(other[0]))

    def test_refuses_old_versions_weak_suites_and_foreign_alpn(self):
        ctx = h.client_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with self.assertRaises((ssl.SSLError, OSError)):
            h.Conn(self.d.tls_port, ctx=ctx)
        for suite in ("ECDHE-ECDSA-AES128-SHA", "AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-SHA384"):
            ctx = h.client_context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(suite)
            with self.assertRaises(ssl.SSLError, msg=suite):
                h.Conn(self.d.tls_port, ctx=ctx)
        ctx = h.client_context()
        ctx.set_alpn_protocols(["h2"])
        with self.assertRaises(ssl.SSLError):
            h.Conn(self.d.tls_port, ctx=ctx)
        self.assertEqual(self.d.tls_conn().request("GET", "/healthz").status, 200)

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl_with_cacert(self):
        body = "token=" + self.tok
        for flags in (["--tlsv1.3"], ["--tlsv1.2", "--tls-max", "1.2"]):
            p = subprocess.run(
                [CURL, "-sS", "--fail-with-body", "--cacert", self.m["ca"]] + flags +
                ["-u", "%s:%s" % (self.w.rs.id, self.w.rs.secret), "-d", body,
                 "-w", "\n%{http_version} %{ssl_verify_result}\n",
                 "https://localhost:%d/introspect" % self.d.tls_port, "--next",
                 "--cacert", self.m["ca"]] + flags +
                ["-sS", "-w", "\n%{http_version} %{ssl_verify_result}\n",
                 "https://127.0.0.1:%d/healthz" % self.d.tls_port],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn('"active":true', p.stdout)
            self.assertIn('{"status":"ok"}', p.stdout)
            self.assertEqual(re.findall(r"^1\.1 0$", p.stdout, re.M), ["1.1 0", "1.1 0"])

    def test_session_resumption_python(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = h.client_context()
            ctx.maximum_version = version
            with self.d.tls_conn(ctx) as c:
                self.assertEqual(c.request("GET", "/healthz").status, 200)  # tickets arrive
                session = c.sock.session
                self.assertFalse(c.sock.session_reused)
            self.assertIsNotNone(session)
            for _ in range(3):  # each resumption brings a new ticket for the next
                with self.d.tls_conn(ctx, session=session) as c:
                    self.assertEqual(c.request("GET", "/healthz").status, 200)
                    self.assertTrue(c.sock.session_reused, version)
                    self.assertNotEqual(c.sock.session.id, session.id,
                                        "%s: a resumed connection got no new ticket "
                                        "(OpenSSL clients use a TLS 1.3 ticket once)" % version)
                    session = c.sock.session

    def test_session_resumption_s_client(self):
        sess = os.path.join(self.m["dir"], "s_client.sess")
        base = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.d.tls_port,
                "-CAfile", self.m["ca"], "-verify_return_error", "-servername", "localhost",
                "-ign_eof"]  # until tokend closes: TLS 1.3 tickets follow the handshake
        req = h.build_request("GET", "/healthz", headers={"Connection": "close"})
        for proto in ("-tls1_2", "-tls1_3"):
            first = subprocess.run(base + [proto, "-sess_out", sess], input=req,
                                   capture_output=True, timeout=30)
            self.assertIn(b"\nNew, TLSv1.", first.stdout, first.stdout[-2000:])
            # A chain: each connection resumes with the ticket the one before
            # got (an OpenSSL client uses a TLS 1.3 ticket once, so each
            # resumption must bring a new ticket).
            for i in range(3):
                again = subprocess.run(base + [proto, "-sess_in", sess, "-sess_out", sess],
                                       input=req, capture_output=True, timeout=30)
                self.assertIn(b'{"status":"ok"}', again.stdout)
                self.assertIn(b"\nReused, TLSv1.", again.stdout,
                              "%s resumption %d: %r" % (proto, i, again.stdout[-2000:]))

    def test_record_splits_give_identical_answers(self):
        """The glue between the ring and OpenSSL: the same conversation with
        the client's records cut 1 byte at a time, at random, or coalesced."""
        reqs = (h.auth_request("/introspect", self.tok, self.w.rs.basic()) +
                h.build_request("GET", "/healthz") +
                h.auth_request("/introspect", "tkd_at_" + "A" * 43, self.w.rs.basic()))
        big = h.auth_request("/introspect", self.tok, self.w.rs.basic(),
                             extra=[("token_type_hint", "access_token" + " " * 12000)])

        def three(buf):
            return buf.count(b"HTTP/1.1 ") == 3 and buf.endswith(b"}")

        answers = {}
        for name, split in (("whole", whole), ("ones", ones), ("random1", randomly(1)),
                            ("random2", randomly(2))):
            mc = MemoryClient(self.d.tls_port, split)
            try:
                mc.handshake()
                got = mc.exchange(reqs, three)
                got_big = mc.exchange(big, lambda b: b.endswith(b"}"))
            finally:
                mc.close()
            answers[name] = (re.sub(rb"\r\nDate: [^\r]*", b"", got), got_big)
        self.assertEqual(answers["whole"][0].count(b"HTTP/1.1 200 OK"), 3, answers["whole"])
        self.assertIn(b'"active":true', answers["whole"][0])
        self.assertIn(b'"active":true', answers["whole"][1])
        for name, a in answers.items():
            self.assertEqual(a, answers["whole"], name)


class TLSBadInput(h.DaemonCase):
    """What a hostile peer can do around the handshake: each ends in a closed
    connection within the header timeout, and the server goes on serving."""

    tls = True
    with_world = False
    daemon_args = ("--header-timeout", HEAD_TIMEOUT_MS, "--idle-timeout", 3000,
                   "--workers", 1)

    def raw(self):
        return socket.create_connection(("127.0.0.1", self.d.tls_port), timeout=5)

    def assertServing(self):
        with self.d.tls_conn() as c:
            self.assertEqual(c.request("GET", "/healthz").status, 200)
        self.assertIsNone(self.d.proc.poll(), "tokend died")

    def test_garbage_and_plain_http_before_the_handshake(self):
        for data in (h.build_request("GET", "/healthz"), b"\x00" * 64, os.urandom(4096),
                     b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x03\xff\xff" + b"A" * 200):
            s = self.raw()
            s.sendall(data)
            t = closes_within(s, 3.0)
            s.close()
            self.assertIsNotNone(t, data[:16])
            self.assertLess(t, 1.0, "garbage %r kept the connection %.2f s" % (data[:16], t))
        self.assertServing()

    def test_handshake_that_never_finishes(self):
        hello = client_hello()
        cases = {"silent": b"", "half a hello": hello[:len(hello) // 2],
                 "whole hello, no answer read": hello}
        socks = {}
        for name, data in cases.items():
            s = self.raw()
            s.sendall(data)
            socks[name] = s
        trickle = self.raw()  # one byte every 100 ms: never done in time
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < HEAD_TIMEOUT_MS / 1000 + 1.5 and i < len(hello):
            try:
                trickle.send(hello[i:i + 1])
            except OSError:
                break
            i += 1
            time.sleep(0.1)
        socks["trickled hello"] = trickle
        for name, s in socks.items():
            t = closes_within(s, 4.0)
            s.close()
            self.assertIsNotNone(t, "%s: handshake not bounded in time" % name)
        self.assertLess(time.monotonic() - t0, HEAD_TIMEOUT_MS / 1000 + 5.0)
        self.assertServing()

    def test_oversize_and_corrupt_records_after_the_handshake(self):
        for junk in (b"\x17\x03\x03\x48\x01" + b"\x00" * 0x4801,  # over 16 KiB + 2048
                     b"\x17\x03\x03\x00\x20" + os.urandom(32),  # bad MAC
                     b"\x15\x03\x03\x00\x02\x02\x28"):  # a plaintext fatal alert
            mc = MemoryClient(self.d.tls_port, whole)
            mc.handshake()
            mc.sock.sendall(junk)
            t = closes_within(mc.sock, 3.0)
            mc.close()
            self.assertIsNotNone(t, junk[:5])
        self.assertServing()

    def test_close_notify_then_reset(self):
        """A client that says close_notify and leaves (unread tickets make
        its close a reset) while tokend still sends: the failed send and the
        close must release the slot once (this once freed it twice)."""
        for _ in range(30):
            mc = MemoryClient(self.d.tls_port, whole)
            mc.handshake()
            try:
                mc.obj.unwrap()
            except ssl.SSLWantReadError:
                pass
            mc.flush()
            mc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            mc.close()
        self.assertServing()

    def test_renegotiation_closes(self):
        p = subprocess.Popen([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.d.tls_port,
                              "-tls1_2", "-CAfile", h.tls_material()["ca"]],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            p.stdin.write(b"R\n")  # s_client: renegotiate
            p.stdin.flush()
            p.wait(timeout=5)  # stdin stays open: s_client ends when tokend closes
            out = p.stdout.read()
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("renegotiation attempt: connection left open")
        self.assertIn(b"RENEGOTIATING", out)
        self.assertServing()

    def test_client_that_stops_reading(self):
        ctx = h.client_context()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.d.tls_port))
        s = ctx.wrap_socket(s, server_hostname="localhost")
        s.setblocking(False)
        pipeline = h.build_request("GET", "/healthz") * 20000
        sent = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0 and sent < len(pipeline):
            try:
                sent += s.send(pipeline[sent:sent + 16384])
            except (ssl.SSLWantWriteError, BlockingIOError):
                time.sleep(0.05)
            except OSError:
                break
        s.setblocking(True)
        deadline = time.monotonic() + 8.0
        closed = False
        while time.monotonic() < deadline and not closed:  # idle timeout: 3 s
            time.sleep(0.5)
            try:
                s.settimeout(0.2)
                while s.recv(65536):
                    pass
                closed = True
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            except OSError:
                closed = True
        s.close()
        self.assertTrue(closed, "a client that stopped reading was never closed")
        self.assertServing()


class TLSReload(h.FreshCase):
    def peer_cert(self, d):
        with d.tls_conn() as c:
            return c.sock.getpeercert(binary_form=True)

    def test_sighup_swaps_the_certificate_and_keeps_connections(self):
        m = h.tls_material()
        folder = self.tmpdir()
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        shutil.copy(m["cert"], cert)
        shutil.copy(m["key"], key)
        d = self.daemon(("--tls-cert", cert, "--tls-key", key, "--listen", "127.0.0.1:0",
                         "--listen", "127.0.0.1:0 tls"))
        self.assertIsNone(d.tls_port)  # no --tls-port-file: the harness's tls=False
        d.tls = True
        d.tls_port = tk_tls_port(d)
        old = self.peer_cert(d)
        kept = d.tls_conn()
        self.assertEqual(kept.request("GET", "/healthz").status, 200)
        # A bad pair (a key of another certificate) keeps the old one.
        other_cert, other_key = h.make_cert(folder, "other", (m["ca"], m["ca_key"]))
        shutil.copy(other_key, key)
        d.send_signal(signal.SIGHUP)
        self.assertTrue(hd.wait_for(lambda: "TLS certificate and key unchanged" in d.stderr(), 5))
        self.assertRegex(d.stderr(), r"tls_context .*failed=\"tls-key( does not match tls-cert)?\" error=\"[^\"]+\"")
        self.assertNotIn("PRIVATE KEY", d.stderr())
        self.assertEqual(self.peer_cert(d), old)
        # A good new pair: new connections see it, the open one goes on.
        shutil.copy(other_cert, cert)
        d.send_signal(signal.SIGHUP)
        self.assertTrue(hd.wait_for(lambda: "TLS certificate and key reloaded" in d.stderr(), 5))
        new = self.peer_cert(d)
        self.assertNotEqual(new, old)
        with open(other_cert) as f:
            self.assertEqual(ssl.DER_cert_to_PEM_cert(new).strip(), f.read().strip())
        for _ in range(3):
            self.assertEqual(kept.request("GET", "/healthz").status, 200)
        self.assertEqual(kept.sock.getpeercert(binary_form=True), old)
        kept.close()
        self.assertIsNone(d.proc.poll())

    def test_config_errors(self):
        m = h.tls_material()
        bad = [(("--listen", "127.0.0.1:0 tls"), "needs tls-cert and tls-key"),
               (("--tls-cert", m["cert"], "--tls-key", m["key"]), "no listen address has"),
               (("--listen", "127.0.0.1:0 tsl"), "optionally followed by"),
               (("--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--listen",
                 "127.0.0.1:0", "--listen", "127.0.0.1:0"), "at most 3 addresses")]
        for args, msg in bad:
            p = subprocess.run([h.TOKEND_BIN, "--data", self.tmpdir()] + list(args),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(msg, p.stderr, args)
        folder = self.tmpdir()
        empty = os.path.join(folder, "empty.pem")
        open(empty, "w").close()
        p = subprocess.run([h.TOKEND_BIN, "--data", folder, "--listen", "127.0.0.1:0 tls",
                            "--tls-cert", empty, "--tls-key", m["key"]],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn('failed="tls-cert"', p.stderr)


def tk_tls_port(d):
    """The TLS port of a daemon started with extra --listen … tls args: the
    harness passed --tls-port-file only for tls=True, so read the log."""
    m = re.findall(r"event=listening addr=127\.0\.0\.1 port=(\d+) tls=on", d.stderr())
    if not m:
        raise AssertionError("no TLS listener in the log:\n" + d.stderr())
    return int(m[-1])


if __name__ == "__main__":
    unittest.main()
