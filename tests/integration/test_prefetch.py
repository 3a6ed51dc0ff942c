"""The batch hint (docs/ARCHITECTURE.md §4, "Prefetching a batch") changes
no answer. The same store is introspected by tokend with `prefetch = on`
(forced: the store is far below the `auto` threshold) and then with
`prefetch = off`, with the same requests: pipelined in one send,
split across sends (inside the token), percent- and plus-encoded tokens,
client_secret_post, unknown, revoked, session-ended, duplicated and empty
token parameters, a chunked body; and forward-auth requests (Bearer, the
DPoP scheme with a bearer token, Basic, a wrong audience), pipelined. Every answer must be byte-identical
between the two (and right), and /metrics must show that the walker really
ran on the `on` daemon (it found the hinted tokens), and not on the `off`
one nor, for so small a store, on an `auto` one."""

import json
import os
import re
import time
import unittest

import harness as h

h.require_binaries()


def found_total(d, result):
    m = re.search(r'^tokend_prefetch_tokens_total\{result="%s"\} (\d+)$' % result,
                  d.metrics_text(), re.M)
    return int(m.group(1)) if m else -1


WIKI = "https://wiki.test/"


class PrefetchSameAnswers(h.FreshCase):
    def args(self, mode):
        return ("--prefetch", mode, "--resources", self.resources, "--issuer", "https://as.test")

    def setUp(self):
        self.dir = self.tmpdir()
        self.resources = os.path.join(self.tmpdir(), "resources.json")
        with open(self.resources, "w") as f:
            json.dump({"resources": [{"resource": WIKI,
                                      "required_scopes": {"GET": ["wiki:read"]}}]}, f)
        d = self.daemon(self.args("auto"), data_dir=self.dir)
        self.rs = d.add_client("resource_server", "rs")
        agent = d.add_client("agent", "agent", scope=h.AGENT_SCOPE + " wiki:read")
        sid = d.new_session("alice")
        ended = d.new_session("bob")
        self.active = [d.issue(sid, agent, "read")["access_token"] for _ in range(6)]
        self.revoked = d.issue(sid, agent, "read")["access_token"]
        self.ended = d.issue(ended, agent, "read")["access_token"]
        self.wiki = [d.issue(sid, agent, "wiki:read", aud=WIKI)["access_token"] for _ in range(4)]
        for t in (self.revoked, self.wiki[3]):
            r = d.revoke(t, auth=agent)
            self.assertEqual(r.status, 200, r)
        d.ctl("session", "terminate", ended)
        self.unknown = "tkd_at_" + "A" * 43
        with d.conn() as c:  # auto: a small store is not walked
            c.send(b"".join(self.intro(t) for t in self.active))
            for _ in self.active:
                self.assertEqual(c.read_response().status, 200)
        self.assertEqual(found_total(d, "hinted"), 0)
        d.stop()

    def intro(self, token, auth=None, extra=None, raw_body=None):
        if raw_body is not None:
            return h.build_request("POST", "/introspect", raw_body,
                                   {"Authorization": self.rs.basic()}, h.FORM)
        return h.auth_request("/introspect", token, auth or self.rs, extra)

    def exchange(self, d):
        """Every request kind once; the answers as (status, body) in order."""
        out = []
        tokens = self.active + [self.revoked, self.ended, self.unknown]
        # pipelined: all of them in one send, several times over
        with d.conn() as c:
            for _ in range(3):
                c.send(b"".join(self.intro(t) for t in tokens))
                out += [c.read_response() for _ in tokens]
        # pipelined, the first refused before it hashes its token (bad
        # credentials): the others must not take its hash
        bad = h.basic(self.rs.id, self.rs.secret[:-1] + "x")
        with d.conn() as c:
            c.send(self.intro(self.active[0], auth=bad) + self.intro(self.unknown) +
                   self.intro(self.active[1]) + self.intro(self.revoked))
            out += [c.read_response() for _ in range(4)]
        # many connections at once, each one request (one batch on the worker)
        conns = [d.conn() for _ in tokens]
        try:
            for c, t in zip(conns, tokens):
                c.send(self.intro(t))
            out += [c.read_response() for c in conns]
        finally:
            for c in conns:
                c.close()
        # split inside the token, and inside the head
        for cut in (len(self.intro(self.active[0])) - 20, 30):
            data = self.intro(self.active[0])
            with d.conn() as c:
                c.send(data[:cut])
                time.sleep(0.05)
                c.send(data[cut:])
                out.append(c.read_response())
        # percent-encoded token (active), plus in the value (unknown)
        out.append(d.raw(self.intro(None, raw_body="token=" + h.pct_all(self.active[1]))))
        out.append(d.raw(self.intro(None, raw_body="token=tkd_at_a+b")))
        # client_secret_post, with the token first
        out.append(d.raw(self.intro(self.active[2], auth=("post", self.rs))))
        # token twice, empty token, no token, a chunked body
        out.append(d.raw(self.intro(None, raw_body="token=%s&token=%s" %
                                    (self.active[3], self.active[3]))))
        out.append(d.raw(self.intro(None, raw_body="token=")))
        out.append(d.raw(self.intro(None, raw_body="token_type_hint=access_token")))
        out.append(d.raw(b"POST /introspect HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                         self.rs.basic().encode() + b"\r\nContent-Type: " + h.FORM.encode() +
                         b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
                         b"%x\r\ntoken=%s\r\n0\r\n\r\n" % (56, self.active[4].encode())))
        # forward-auth, pipelined: Bearer (active, revoked, unknown, another
        # audience's), the DPoP scheme with a bearer token, Basic
        auths = ["Bearer " + t for t in self.wiki + [self.unknown, self.active[5]]]
        auths += ["DPoP " + self.wiki[0], self.rs.basic()]
        fwd = b"".join(h.build_request("GET", "/auth", headers={
            "X-Forwarded-Host": "wiki.test", "X-Forwarded-Uri": "/page",
            "Authorization": a}) for a in auths)
        with d.conn() as c:
            c.send(fwd)
            out += [c.read_response() for _ in auths]
        return [(r.status, r.header("x-auth-subject"), r.header("www-authenticate"), r.body)
                for r in out]

    def test_answers_identical_on_and_off(self):
        on = self.daemon(self.args("on"), data_dir=self.dir)
        got_on = self.exchange(on)
        hinted, found = found_total(on, "hinted"), found_total(on, "found")
        on.stop()
        off = self.daemon(self.args("off"), data_dir=self.dir)
        got_off = self.exchange(off)
        self.assertEqual(found_total(off, "hinted"), 0)
        self.assertEqual(len(got_on), len(got_off))
        for i, (a, b) in enumerate(zip(got_on, got_off)):
            self.assertEqual(a, b, "answer %d differs with the hint on" % i)
        # and they are the right answers: the first pipelined round
        n = len(self.active)
        for status, _, _, body in got_on[:n]:
            self.assertEqual(status, 200)
            self.assertIn(b'"active":true', body)
        for status, _, _, body in got_on[n:n + 3]:
            self.assertEqual((status, body), (200, b'{"active":false}'))
        fwd = [(s, sub) for s, sub, _, _ in got_on[-8:]]
        self.assertEqual(fwd, [(200, "alice")] * 3 + [(401, None)] * 5)
        # the walker ran and found (nearly) every plain token it was shown:
        # unknown tokens are hinted but not found
        self.assertGreaterEqual(hinted, 3 * len(self.active))
        self.assertGreaterEqual(found, 3 * len(self.active))
        self.assertLess(found, hinted)


if __name__ == "__main__":
    unittest.main()
