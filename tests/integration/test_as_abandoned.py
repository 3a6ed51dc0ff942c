"""Clients that hang up while their authorization-server answer waits for the
group commit must not use up the worker's parked answers (TK_AS_PENDING_SLOTS
per worker). Before the server's dropped hook, every abandoned /token,
/register or /authorize request kept its slot until it went stale (120 s), so
one client opening and closing 64 connections made every AS write answer 503
for two minutes."""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import as_http as a  # noqa: E402
import harness as h  # noqa: E402

ABANDONED = 600  # more than the TK_AS_PENDING_SLOTS (256) of one worker, twice over


def hang_up_after_sending(port, raw, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(raw)
        socks.append(s)
    for s in socks:  # gone before the commit answers (most of them)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()


class Abandoned(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = a.tmpfolder()
        cls.d = h.start_daemon(a.as_daemon_args(cls.folder, extra=("--register-burst", 1000,
                                                                   "--authorize-burst", 0)),
                               workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_abandoned_token_requests_free_their_slots(self):
        cid = a.public_client(self.d)["client_id"]
        b = a.Browser(self.d)
        codes = [a.authorize_code(self.d, b, cid) for _ in range(ABANDONED + 1)]
        for code, ver in codes[:ABANDONED]:
            raw = h.build_request("POST", "/token", h.form([
                ("grant_type", "authorization_code"), ("code", code),
                ("redirect_uri", a.REDIRECT), ("code_verifier", ver),
                ("client_id", cid)]), None, h.FORM)
            hang_up_after_sending(self.d.port, raw, 1)
        time.sleep(0.5)  # the commits complete; their answers have nobody to go to
        code, ver = codes[ABANDONED]
        r = a.redeem(self.d, cid, code, ver)
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertIn("access_token", r.json())

    def test_abandoned_registrations_free_their_slots(self):
        body = (b'{"redirect_uris":["http://127.0.0.1:9/cb"],'
                b'"token_endpoint_auth_method":"none"}')
        raw = h.build_request("POST", "/register", body, None, "application/json")
        hang_up_after_sending(self.d.port, raw, ABANDONED)
        time.sleep(0.5)
        r = a.public_client(self.d)
        self.assertIn("client_id", r)


if __name__ == "__main__":
    unittest.main()
