"""Signed JSON webhooks (Standard Webhooks) at POST
/webhooks/session-terminated against the real binary: a valid signature
ends the sessions (several signatures for secret rotation), and a replayed
id (409), a stale timestamp (400), a wrong MAC (401), malformed JSON or
headers (400) and an oversized body (413) change nothing."""

import json
import time
import unittest

import harness as h
import idp_util as u

h.require_binaries()


class Webhook(u.IdpCase):
    def post(self, body, **kw):
        return self.d.raw(u.webhook_request([self.secrets[0]], body, **kw))

    def test_sid_and_sub(self):
        s1 = u.session(self.d, "alice", idp_sid="wh-1")
        s2 = u.session(self.d, "alice")
        t1, t2 = self.chain(s1), self.chain(s2)
        r = self.post({"type": "session.terminated", "iss": u.ISS, "sid": "wh-1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("cache-control"), "no-store")
        for t in t1:
            self.assertInactive(t)
        self.assertActive(t2[0])
        r = self.post({"type": "session.terminated", "iss": u.ISS, "sub": "alice"})
        self.assertEqual(r.status, 200, r)
        for t in t2:
            self.assertInactive(t)
        rec = u.audit(self.d)[-1]
        self.assertEqual(rec["source"], "webhook")
        self.assertEqual(rec["reason"], "webhook:session.terminated")
        self.assertTrue(rec["event_id"].startswith("msg_"))

    def test_rotation_and_missing_iss(self):
        sid = u.session(self.d, "bob")
        toks = self.chain(sid)
        body = json.dumps({"type": "session.terminated", "sub": "bob"}).encode()
        msg, ts = "msg_rotation", str(int(time.time()))
        sigs = " ".join([u.webhook_signature(u.new_secret(), msg, ts, body),
                         "v1a,ignored", u.webhook_signature(self.secrets[1], msg, ts, body)])
        r = self.d.raw(u.webhook_request([], body, msg_id=msg, ts=ts, sigs=sigs))
        self.assertEqual(r.status, 200, r)  # the only issuer whose secret signed it
        self.assertInactive(toks[0])

    def test_other_type_ignored(self):
        sid = u.session(self.d, "carol")
        toks = self.chain(sid)
        r = self.post({"type": "user.updated", "iss": u.ISS, "sub": "carol"})
        self.assertEqual(r.status, 200, r)
        self.assertActive(toks[0])


class WebhookNegative(u.IdpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sid = u.session(cls.d, "victim", idp_sid="v-1")

    def setUp(self):
        self.toks = self.chain(self.sid)
        self.audit_len = len(u.audit(self.d))
        self.body = {"type": "session.terminated", "iss": u.ISS, "sid": "v-1"}

    def refused(self, data, status, error=None):
        r = self.d.raw(data)
        self.assertEqual(r.status, status, r)
        if error is not None:
            self.assertEqual(r.json()["error"], error, r)
        for t in self.toks:
            self.assertActive(t)
        self.assertEqual(len(u.audit(self.d)), self.audit_len)
        return r

    def test_replayed_id(self):
        body = {"type": "session.terminated", "iss": u.ISS, "sid": "other-session"}
        data = u.webhook_request(self.secrets, body, msg_id="msg_replay")
        self.assertEqual(self.d.raw(data).status, 200)
        self.audit_len += 1
        self.refused(data, 409, "duplicate_webhook_id")
        # Same id, new timestamp and body, correctly signed: still the same message.
        self.refused(u.webhook_request(self.secrets, self.body, msg_id="msg_replay"), 409)

    def test_stale_timestamp(self):
        self.refused(u.webhook_request(self.secrets, self.body, ts=int(time.time()) - 400), 400,
                     "invalid_request")
        self.refused(u.webhook_request(self.secrets, self.body, ts=int(time.time()) + 400), 400)

    def test_wrong_hmac(self):
        self.refused(u.webhook_request([u.new_secret()], self.body), 401, "invalid_signature")
        body = json.dumps(self.body).encode()
        msg, ts = "msg_x", str(int(time.time()))
        good = u.webhook_signature(self.secrets[0], msg, ts, body)
        # Signed for another body / id / timestamp.
        self.refused(u.webhook_request([], json.dumps(self.body) + " ", msg_id=msg, ts=ts,
                                       sigs=good), 401)
        self.refused(u.webhook_request([], body, msg_id="msg_y", ts=ts, sigs=good), 401)
        self.refused(u.webhook_request([], body, msg_id=msg, ts=str(int(ts) - 1), sigs=good),
                     401)
        self.refused(u.webhook_request([], body, msg_id=msg, ts=ts, sigs="v2," + good[3:]), 401)
        self.refused(u.webhook_request([], body, msg_id=msg, ts=ts, sigs=""), 401)

    def test_malformed(self):
        for body in (b"{", b"[]", b'{"type":"session.terminated","iss":"' + u.ISS.encode() +
                     b'","sid":"v-1","sid":"v-1"}', b'{"type":"session.terminated"}',
                     json.dumps({"type": 5, "iss": u.ISS, "sid": "v-1"}).encode(),
                     json.dumps({"type": "session.terminated", "iss": "https://evil.test",
                                 "sid": "v-1"}).encode()):
            with self.subTest(body=body[:40]):
                self.refused(u.webhook_request(self.secrets, body), 400, "invalid_request")
        data = u.webhook_request(self.secrets, self.body)
        self.refused(data.replace(b"application/json", b"text/plain"), 400)
        self.refused(data.replace(b"webhook-timestamp: ", b"webhook-timestamp: x"), 400)
        self.refused(data.replace(b"webhook-id:", b"x-id:"), 400)

    def test_oversized(self):
        self.refused(u.webhook_request(self.secrets, {"pad": "x" * 20000}), 413)


if __name__ == "__main__":
    unittest.main(verbosity=2)
