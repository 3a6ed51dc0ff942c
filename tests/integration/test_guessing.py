"""Credential guessing and token scanning.

Failed client authentications are limited per source address and per
client id (token buckets of TK_RL_BURST failures, one back per second):
the next attempt gets 429 with Retry-After before any secret is compared.
A good caller is never slowed: its address has no failures, so even the
client id under attack still works from there. One worker, so one table
(each worker keeps its own). Sources are distinct loopback addresses.

Token scanning: unknown tokens, random garbage and tokens the caller may not
see all answer byte-for-byte like an unknown token, and never count as
authentication failures.
"""

import secrets
import time
import unittest

import harness as h
import hardening as hd

h.require_binaries()

BURST = 20  # TK_RL_BURST


class Guessing(h.FreshCase):
    def setUp(self):
        self.d = self.daemon(("--workers", 1))
        self.w = h.World(self.d)
        sid = self.d.new_session("alice")
        self.tok = self.d.issue(sid, self.w.a, "read")["access_token"]

    def attempt(self, c, client_id, secret, token=None):
        c.send(h.auth_request("/introspect", token or self.tok,
                              h.basic(client_id, secret)))
        return c.read_response()

    def test_guessing_a_secret_is_rate_limited(self):
        rs = self.w.rs
        with hd.conn_from(self.d.port, "127.0.0.2") as bad:
            for i in range(BURST):
                r = self.attempt(bad, rs.id, "tkd_cs_wrong%d" % i)
                self.assertEqual(r.status, 401, "attempt %d: %r" % (i, r))
            r = self.attempt(bad, rs.id, "tkd_cs_wrong")
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.json(), {"error": "too_many_requests"})
            self.assertIn(r.header("retry-after"), ("1", "2"))
            # Limited before the secret is compared: the right one fails too.
            r = self.attempt(bad, rs.id, rs.secret)
            self.assertEqual(r.status, 429, r)
            # A good caller elsewhere is not slowed, even for the same client id.
            t0 = time.monotonic()
            with hd.conn_from(self.d.port, "127.0.0.1") as good:
                for _ in range(20):
                    r = self.attempt(good, rs.id, rs.secret)
                    self.assertEqual(r.status, 200, r)
                    self.assertIs(r.json()["active"], True)
            good_s = time.monotonic() - t0
            # An address that failed itself is held back for that client id.
            with hd.conn_from(self.d.port, "127.0.0.3") as other:
                self.assertEqual(self.attempt(other, self.w.b.id, "nope").status, 401)
                self.assertEqual(self.attempt(other, rs.id, rs.secret).status, 429)
                self.assertEqual(self.attempt(other, self.w.admin.id,
                                              self.w.admin.secret).status, 200)
            # One token comes back per second.
            time.sleep(1.2)
            r = self.attempt(bad, rs.id, rs.secret)
            self.assertEqual(r.status, 200, r)
        lines = hd.log_lines(self.d, "auth_rate_limited")
        self.assertTrue(lines)
        self.assertNotIn(rs.secret, self.d.stderr())
        print("\nguessing: 429 after %d failures; 20 good calls of the attacked client "
              "took %.1f ms" % (BURST, good_s * 1e3))

    def test_missing_credentials_count_per_address(self):
        with hd.conn_from(self.d.port, "127.0.0.4") as c:
            for _ in range(BURST):
                c.send(h.auth_request("/revoke", self.tok, h.NOAUTH))
                self.assertEqual(c.read_response().status, 401)
            c.send(h.auth_request("/revoke", self.tok, h.NOAUTH))
            r = c.read_response()
            self.assertEqual(r.status, 429, r)
            # The limit applies to /revoke and /introspect alike.
            c.send(h.auth_request("/introspect", self.tok, self.w.rs))
            self.assertEqual(c.read_response().status, 429)
        self.assertIs(self.d.active(self.tok)["active"], True)

    def test_token_scanning_looks_like_unknown(self):
        unknown = self.d.introspect("tkd_at_" + "A" * 43)
        self.assertEqual((unknown.status, unknown.json()), (200, h.INACTIVE))
        with self.d.conn() as c:
            for i in range(3 * BURST):
                guess = "tkd_at_" + secrets.token_urlsafe(32)[:43] if i % 2 else \
                    secrets.token_hex(i + 1)
                r = self.d.introspect(guess, conn=c)
                self.assertEqual((r.status, r.headers, r.body),
                                 (unknown.status, unknown.headers, unknown.body), guess)
        # A resource server that may not see a token gets the unknown answer too.
        other = self.d.add_client("resource_server", "rs-other",
                                  resource="https://other.example")
        sid = self.d.new_session("bob")
        aimed = self.d.issue(sid, self.w.a, "read", aud="https://wiki.example")["access_token"]
        self.assertIs(self.d.active(aimed)["active"], True)
        r = self.d.introspect(aimed, auth=other)
        self.assertEqual((r.status, r.headers, r.body),
                         (unknown.status, unknown.headers, unknown.body))
        # Revoking another client's token is refused (RFC 7009 §2.1), unlike an
        # unknown token: see README "Hardening" for the trade-off.
        self.assertEqual(self.d.revoke(aimed, auth=self.w.b).status, 400)
        self.assertEqual(self.d.revoke("tkd_at_" + "B" * 43, auth=self.w.b).status, 200)
        self.assertIs(self.d.active(aimed)["active"], True)


class NoLimit(h.FreshCase):
    def test_auth_fail_burst_zero_turns_it_off(self):
        d = self.daemon(("--workers", 1, "--auth-fail-burst", 0))
        with d.conn() as c:
            for i in range(BURST + 10):
                c.send(h.auth_request("/introspect", "x", h.basic("tkc_x", "s%d" % i)))
                self.assertEqual(c.read_response().status, 401)


if __name__ == "__main__":
    unittest.main()
