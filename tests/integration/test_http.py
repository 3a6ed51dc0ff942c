"""HTTP/1.1 behaviour over real sockets: keep-alive, pipelining with deferred
answers, malformed input (each answered, then the connection closed, the
server still serving), slow senders, discovery, health, metrics, timeouts."""

import re
import time
import unittest

import harness as h

h.require_binaries()

ISSUER = "https://as.test"


def parse_metrics(text):
    """Prometheus text -> {sample name with labels: value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


class Http(h.DaemonCase):
    daemon_args = ("--issuer", ISSUER)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sid = cls.d.new_session("alice")
        cls.tok = cls.d.issue(cls.sid, cls.w.a, "read")["access_token"]

    def intro_bytes(self, tok, **kw):
        return h.auth_request("/introspect", tok, self.w.rs, **kw)

    def assertServing(self):
        r = self.d.request("GET", "/healthz")
        self.assertEqual(r.status, 200)

    # -- connections --

    def test_keep_alive(self):
        with self.d.conn() as c:
            for _ in range(5):
                c.send(self.intro_bytes(self.tok))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertIs(r.json()["active"], True)
                self.assertFalse(r.closes())
            r = c.request("GET", "/healthz")
            self.assertEqual(r.status, 200)
            self.assertFalse(c.is_closed(0.2))

    def test_connection_close_honoured(self):
        with self.d.conn() as c:
            r = c.request("GET", "/healthz", headers={"Connection": "close"})
            self.assertEqual(r.status, 200)
            self.assertTrue(r.closes(), r)
            self.assertTrue(c.is_closed())

    def test_http10_closes(self):
        with self.d.conn() as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(c.is_closed())

    def test_pipelining_in_order(self):
        unknown = "tkd_at_" + "U" * 43
        data = (self.intro_bytes(self.tok) + self.intro_bytes(unknown)
                + h.build_request("GET", "/healthz"))
        with self.d.conn() as c:
            c.send(data)
            r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        self.assertIs(r1.json()["active"], True)
        self.assertEqual(r2.json(), h.INACTIVE)
        self.assertEqual(r3.json(), {"status": "ok"})

    def test_pipelining_with_deferred_revoke(self):
        victim = self.d.issue(self.sid, self.w.a, "read")["access_token"]
        data = (self.intro_bytes(victim)
                + h.auth_request("/revoke", victim, self.w.a)
                + self.intro_bytes(victim)
                + self.intro_bytes(self.tok))
        with self.d.conn() as c:
            c.send(data)
            rs = [c.read_response() for _ in range(4)]
        self.assertIs(rs[0].json()["active"], True)
        self.assertEqual((rs[1].status, rs[1].body), (200, b""))
        self.assertEqual(rs[2].json(), h.INACTIVE)
        self.assertIs(rs[3].json()["active"], True)

    def test_many_pipelined(self):
        # More answers than one connection's out buffer holds at once.
        n = 200
        with self.d.conn() as c:
            c.send(self.intro_bytes(self.tok) * n)
            for _ in range(n):
                self.assertIs(c.read_response().json()["active"], True)

    def test_pipelined_revokes_interleaved(self):
        victims = [self.d.issue(self.sid, self.w.a, "read")["access_token"] for _ in range(15)]
        data = b"".join(h.auth_request("/revoke", v, self.w.a) + self.intro_bytes(v)
                        + self.intro_bytes(self.tok) for v in victims)
        with self.d.conn() as c:
            c.send(data)
            for v in victims:
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, b""), r)
                self.assertEqual(c.read_response().json(), h.INACTIVE)
                self.assertIs(c.read_response().json()["active"], True)

    def test_client_gone_before_deferred_answer(self):
        victims = [self.d.issue(self.sid, self.w.a, "read")["access_token"] for _ in range(5)]
        for v in victims:
            c = self.d.conn()
            c.send(h.auth_request("/revoke", v, self.w.a))
            c.close()  # no wait for the answer
        deadline = time.monotonic() + 5
        pending = list(victims)
        while pending and time.monotonic() < deadline:
            pending = [v for v in pending if self.d.introspect(v).json() != h.INACTIVE]
            time.sleep(0.05)
        self.assertEqual(pending, [], "a revocation whose client left was not applied")
        self.assertServing()

    def test_error_answers_keep_connection(self):
        with self.d.conn() as c:
            self.assertEqual(c.request("GET", "/nope").status, 404)
            c.send(h.auth_request("/introspect", self.tok, h.NOAUTH))
            self.assertEqual(c.read_response().status, 401)
            c.send(self.intro_bytes(self.tok))
            self.assertIs(c.read_response().json()["active"], True)

    def test_one_byte_at_a_time(self):
        data = self.intro_bytes(self.tok)
        with self.d.conn() as c:
            for i in range(len(data)):
                c.send(data[i:i + 1])
                if i % 16 == 0:
                    time.sleep(0.001)
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertIs(r.json()["active"], True)

    def test_split_between_head_and_body(self):
        data = self.intro_bytes(self.tok)
        cut = data.index(b"\r\n\r\n") + 4
        with self.d.conn() as c:
            c.send(data[:cut])
            time.sleep(0.1)
            c.send(data[cut:])
            self.assertIs(c.read_response().json()["active"], True)

    # -- malformed input: answered, closed, server still serving --

    def bad(self, data, status):
        with self.d.conn() as c:
            c.send_tolerant(data)
            r = c.read_response()
            self.assertEqual(r.status, status, r)
            self.assertTrue(c.is_closed(), "connection left open after %d" % status)
        self.assertServing()
        return r

    def test_oversized_head_431(self):
        pad = "X-Pad: " + "a" * 8000 + "\r\n"
        data = ("GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad * 3 + "\r\n").encode()
        self.bad(data, 431)

    def test_too_many_headers_431(self):
        data = ("GET /healthz HTTP/1.1\r\n" + "".join("X-H%d: v\r\n" % i for i in range(100))
                + "\r\n").encode()
        self.bad(data, 431)

    def test_long_request_line_414(self):
        self.bad(("GET /" + "a" * 9000 + " HTTP/1.1\r\nHost: x\r\n\r\n").encode(), 414)

    def test_oversized_body_413(self):
        data = (b"POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: " + h.FORM.encode()
                + b"\r\nContent-Length: 1000000\r\n\r\n")
        self.bad(data, 413)

    def test_cl_and_te_400(self):
        data = (b"POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.bad(data, 400)

    def test_transfer_encoding_501(self):
        data = (b"POST /introspect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\n")
        self.bad(data, 501)

    def test_bad_version_505(self):
        self.bad(b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505)

    def test_malformed_request_line_400(self):
        for data in (b"GET\r\n\r\n", b"G@T /healthz HTTP/1.1\r\n\r\n",
                     b"GET /healthz  HTTP/1.1\r\n\r\n"):
            with self.subTest(data=data):
                self.bad(data, 400)

    def test_bad_content_length_400(self):
        for cl in (b"abc", b"-1", b"5, 6"):
            with self.subTest(cl=cl):
                self.bad(b"POST /introspect HTTP/1.1\r\nContent-Length: " + cl + b"\r\n\r\n", 400)

    def test_bad_request_after_good_one(self):
        # A good request answered, then the bad one answered and the connection closed.
        with self.d.conn() as c:
            c.send(self.intro_bytes(self.tok) + b"GET\r\n\r\n")
            self.assertIs(c.read_response().json()["active"], True)
            self.assertEqual(c.read_response().status, 400)
            self.assertTrue(c.is_closed())

    def test_peer_reset_mid_request(self):
        c = self.d.conn()
        c.send(self.intro_bytes(self.tok)[:30])
        c.reset()
        self.assertServing()

    # -- routes --

    def test_discovery(self):
        r = self.d.request("GET", "/.well-known/oauth-authorization-server")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("application/json"))
        j = r.json()
        self.assertEqual(j["issuer"], ISSUER)
        self.assertEqual(j["introspection_endpoint"], ISSUER + "/introspect")
        self.assertEqual(j["revocation_endpoint"], ISSUER + "/revoke")
        methods = {"client_secret_basic", "client_secret_post"}
        self.assertEqual(set(j["introspection_endpoint_auth_methods_supported"]), methods)
        self.assertEqual(set(j["revocation_endpoint_auth_methods_supported"]), methods)

    def test_healthz(self):
        r = self.d.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertEqual(r.header("cache-control"), "no-store")

    def test_not_found(self):
        for path in ("/nope", "/introspect/extra", "/", "/.well-known/x"):
            with self.subTest(path=path):
                r = self.d.request("GET", path)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.json(), {"error": "not_found"})
                self.assertEqual(r.header("cache-control"), "no-store")

    def test_known_path_wrong_method_405(self):
        r = self.d.request("POST", "/healthz", "x=1", content_type=h.FORM)
        self.assertEqual(r.status, 405, r)
        self.assertIn("GET", r.header("allow") or "")
        r = self.d.request("DELETE", "/revoke")
        self.assertEqual(r.status, 405, r)
        self.assertIn("POST", r.header("allow") or "")

    def test_query_string_ignored_for_routing(self):
        self.assertEqual(self.d.request("GET", "/healthz?probe=1").status, 200)

    def metrics(self):
        r = self.d.metrics_request()
        self.assertEqual(r.status, 200)
        return r, parse_metrics(r.body.decode())

    def test_metrics_format(self):
        r, m = self.metrics()
        ctype = r.header("content-type") or ""
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        self.assertIn("version=0.0.4", ctype)
        text = r.body.decode()
        for name in ("tokend_requests_total", "tokend_introspections_total",
                     "tokend_revocations_total", "tokend_connections_accepted_total",
                     "tokend_commit_batches_total"):
            self.assertIn("# TYPE %s counter" % name, text)
        self.assertIn('tokend_introspections_total{result="active"}', m)
        self.assertIn('tokend_revocations_total{result="revoked"}', m)

    def test_metrics_move(self):
        # Counters are summed over the workers: requests on fresh connections
        # land on either worker.
        _, before = self.metrics()
        for _ in range(4):
            self.d.introspect(self.tok)
        for _ in range(2):
            self.d.introspect("tkd_at_" + "M" * 43)
        victim = self.d.issue(self.sid, self.w.a, "read")["access_token"]
        self.assertEqual(self.d.revoke(victim, auth=self.w.b).status, 400)
        self.assertEqual(self.d.revoke(victim, auth=self.w.a).status, 200)
        self.d.raw(b"GET\r\n\r\n")
        want = {
            'tokend_introspections_total{result="active"}': 4,
            'tokend_introspections_total{result="inactive"}': 2,
            'tokend_revocations_total{result="revoked"}': 1,
            'tokend_revocations_total{result="forbidden"}': 1,
            "tokend_commit_batches_total": 1,
            "tokend_connections_accepted_total": 8,
            "tokend_bad_requests_total": 1,
        }
        # Counters are read relaxed (committer.h: approximate while running),
        # so give them a moment to settle.
        deadline = time.monotonic() + 3.0
        while True:
            _, after = self.metrics()
            short = {k: after.get(k, 0) - before.get(k, 0) for k in want
                     if after.get(k, 0) - before.get(k, 0) < want[k]}
            if not short or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(short, {}, "counters that did not move enough")
        reqs = {k: v for k, v in after.items() if k.startswith("tokend_requests_total{")}
        self.assertTrue(any("introspect" in k for k in reqs), reqs)
        self.assertGreaterEqual(sum(reqs.values()) - sum(
            v for k, v in before.items() if k.startswith("tokend_requests_total{")), 8)


class Timeouts(h.DaemonCase):
    daemon_args = ("--idle-timeout", "400", "--header-timeout", "400", "--body-timeout", "400")
    with_world = False

    def test_idle_keepalive_closed(self):
        with self.d.conn() as c:
            self.assertEqual(c.request("GET", "/healthz").status, 200)
            self.assertTrue(c.wait_closed(5.0), "an idle connection was not closed")

    def test_slow_head_closed(self):
        with self.d.conn() as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            self.assertTrue(c.wait_closed(5.0), "a stalled head was not timed out")
        self.assertEqual(self.d.request("GET", "/healthz").status, 200)

    def test_slow_body_closed(self):
        with self.d.conn() as c:
            c.send(b"POST /introspect HTTP/1.1\r\nHost: x\r\nContent-Type: " + h.FORM.encode()
                   + b"\r\nContent-Length: 100\r\n\r\ntoken=")
            self.assertTrue(c.wait_closed(5.0), "a stalled body was not timed out")
        self.assertEqual(self.d.request("GET", "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
