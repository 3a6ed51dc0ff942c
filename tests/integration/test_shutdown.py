"""Process life cycle: graceful stop on SIGTERM/SIGINT with connections
open, reopening the same data folder, configuration sources, start-up
errors, and the default issuer."""

import os
import signal
import subprocess
import time
import unittest

import harness as h

h.require_binaries()


class Shutdown(h.FreshCase):
    def test_sigterm_with_idle_keepalive(self):
        self.d = d = self.daemon()
        w = h.World(d)
        sid = d.new_session("alice")
        keep = d.issue(sid, w.a, "read")["access_token"]
        gone = d.issue(sid, w.a, "read")["access_token"]
        self.assertEqual(d.revoke(gone, auth=w.a).status, 200)
        c = d.conn()
        self.addCleanup(c.close)
        self.assertIs(d.introspect(keep, conn=c).json()["active"], True)
        t0 = time.monotonic()
        d.stop(timeout=5.0)  # asserts exit code 0
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertTrue(c.wait_closed(2.0), "the idle connection was not closed")
        # The folder reopens with everything in it.
        d.start()
        self.assertActive(keep)
        self.assertInactive(gone)
        self.assertEqual(d.request("GET", "/healthz").status, 200)
        d.stop()

    def test_sigint_graceful(self):
        d = self.daemon()
        self.assertEqual(d.request("GET", "/healthz").status, 200)
        d.stop(sig=signal.SIGINT, timeout=5.0)

    def test_sigterm_with_partial_request(self):
        # The half-sent request is dropped at the latest when its header timeout fires.
        d = self.daemon(["--header-timeout", "2000"])
        c = d.conn()
        self.addCleanup(c.close)
        c.send(b"POST /introspect HTTP/1.1\r\nHost: x\r\n")
        d.stop(timeout=15.0)

    def test_sigterm_with_revokes_in_flight(self):
        """Every revocation acknowledged before the stop survives it."""
        self.d = d = self.daemon()
        w = h.World(d)
        sid = d.new_session("carol")
        victims = [d.issue(sid, w.a, "read")["access_token"] for _ in range(30)]
        conns = []
        for v in victims:  # one revocation per connection
            c = d.conn()
            self.addCleanup(c.close)
            c.send(h.auth_request("/revoke", v, w.a))
            conns.append((c, v))
        d.send_signal(signal.SIGTERM)
        acked = []
        for c, v in conns:
            try:
                r = c.read_response()
            except (AssertionError, OSError):  # closed by the stop
                continue
            self.assertIn(r.status, (200, 503), r)
            if r.status == 200:
                acked.append(v)
        self.assertTrue(acked, "no in-flight revocation was answered")
        self.assertEqual(d.join(15.0), 0, d.stderr())
        d.start()
        for v in acked:
            self.assertInactive(v)
        d.stop()

    def test_restart_many_times(self):
        self.d = d = self.daemon()
        w = h.World(d)
        sid = d.new_session("bob")
        toks = []
        for _ in range(3):
            toks.append(d.issue(sid, w.a, "read")["access_token"])
            d.restart()
            for t in toks:
                self.assertActive(t)
        d.stop()

    def test_tokenctl_while_stopped_then_start(self):
        data = self.tmpdir()
        rs = h.Client(h.ctl(data, "client", "add", "--name", "rs", "--role", "resource_server"))
        a = h.Client(h.ctl(data, "client", "add", "--name", "a", "--role", "agent",
                           "--scope", "read"))
        sid = h.ctl(data, "session", "create", "--sub", "zed")["sid"]
        tok = h.ctl(data, "token", "issue", "--sid", sid, "--client", a.id,
                    "--scope", "read")["access_token"]
        self.d = d = self.daemon(data_dir=data)
        d.default_auth = rs
        self.assertActive(tok)
        d.stop()

    def test_default_issuer(self):
        d = self.daemon()
        j = d.request("GET", "/.well-known/oauth-authorization-server").json()
        self.assertEqual(j["issuer"], "http://127.0.0.1:%d" % d.port)

    def test_port_file_format(self):
        d = self.daemon()
        with open(d.port_file) as f:
            self.assertEqual(f.read(), "%d\n" % d.port)


class Config(h.FreshCase):
    def write(self, text):
        path = os.path.join(self.tmpdir(), "tokend.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def issuer_of(self, d):
        return d.request("GET", "/.well-known/oauth-authorization-server").json()["issuer"]

    def test_config_file(self):
        path = self.write("# test config\nissuer = https://file.test\nlog-level = warn\n")
        d = self.daemon(["--config", path])
        self.assertEqual(self.issuer_of(d), "https://file.test")

    def test_flag_overrides_file(self):
        path = self.write("issuer = https://file.test\n")
        d = self.daemon(["--config", path, "--issuer", "https://flag.test"])
        self.assertEqual(self.issuer_of(d), "https://flag.test")

    def start_fails(self, args):
        data = self.tmpdir()
        argv = [h.TOKEND_BIN, "--data", data, "--listen", "127.0.0.1:0", "--workers", "1"] + args
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30, env=h._env())
        self.assertNotEqual(p.returncode, 0, "tokend %s started" % " ".join(args))
        self.assertTrue(p.stderr.strip(), "no message on stderr")
        return p

    def test_bad_flags_refused(self):
        for args in (["--no-such-flag"], ["--workers", "abc"], ["--issuer", "not a url"],
                     ["--issuer", "https://x.test/?q=1"], ["--listen", "nohost"]):
            with self.subTest(args=args):
                self.start_fails(args)

    def test_bad_config_file_refused(self):
        p = self.start_fails(["--config", self.write("no_such_key = 1\n")])
        self.assertIn("no_such_key", p.stderr)


if __name__ == "__main__":
    unittest.main()
