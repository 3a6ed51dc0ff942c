"""Shared Signals push (RFC 8935) at POST /ssf/events against the real binary:
CAEP session-revoked ends the matching sessions (iss_sub, email, opaque,
complex user+session), device-compliance-change suspends and resumes,
credential-change follows the issuer's setting, unknown events are accepted
and change nothing, duplicates are acknowledged once; refusals are 400 with
the RFC 8935 err codes and change nothing."""

import time
import unittest

import harness as h
import idp_util as u

h.require_binaries()


class Ssf(u.IdpCase):
    def post(self, claims, key=None, bearer=None):
        r = u.post_set(self.d, self.set_token(claims, key), bearer=bearer)
        return r

    def accepted(self, claims, **kw):
        r = self.post(claims, **kw)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.body, b"")
        return r

    def test_session_revoked_complex_subject(self):
        s1 = u.session(self.d, "alice", idp_sid="ssf-1")
        s2 = u.session(self.d, "alice", idp_sid="ssf-2")
        other = u.session(self.d, "mallory", idp_sid="ssf-1")  # same IdP sid, other user
        t1, t2, t3 = self.chain(s1), self.chain(s2), self.chain(other)
        subj = u.complex_subject(u.ISS, sub="alice", session="ssf-1")
        self.accepted(u.set_claims("session-revoked", {"event_timestamp": int(time.time())},
                                   subj))
        for t in t1:
            self.assertInactive(t)
        for t in t2 + t3:  # complex: every part must fit
            self.assertActive(t)
        self.assertEqual(self.d.ctl("session", "show", s1)["reason"], "caep:session-revoked")

    def test_session_revoked_user_subjects(self):
        cases = [({"format": "iss_sub", "iss": u.ISS, "sub": "bob"}, "bob"),
                 ({"format": "email", "email": "carol@example.com"}, "carol@example.com"),
                 ({"format": "opaque", "id": "user-7"}, "user-7"),
                 (u.complex_subject(u.ISS, sub="dan"), "dan")]
        for subj, sub in cases:
            with self.subTest(format=subj["format"]):
                sids = [u.session(self.d, sub), u.session(self.d, sub, idp_sid="x-" + sub)]
                toks = [self.chain(s) for s in sids]
                self.accepted(u.set_claims("session-revoked", {}, subj))
                for ts in toks:
                    for t in ts:
                        self.assertInactive(t)

    def test_device_compliance_suspends_and_resumes(self):
        sid = u.session(self.d, "erin", idp_sid="dev-1")
        toks = self.chain(sid)
        subj = u.complex_subject(u.ISS, session="dev-1")
        self.accepted(u.set_claims("device-compliance-change",
                                   {"previous_status": "compliant",
                                    "current_status": "not-compliant"}, subj))
        for t in toks:
            self.assertInactive(t)
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "suspended")
        self.accepted(u.set_claims("device-compliance-change",
                                   {"previous_status": "not-compliant",
                                    "current_status": "compliant"}, subj))
        for t in toks:
            self.assertActive(t)
        actions = [a["action"] for a in u.audit(self.d) if sid in a["sids"]]
        self.assertEqual(actions, ["suspend", "resume"])

    def test_credential_change_per_issuer(self):
        sid = u.session(self.d, "fay")
        toks = self.chain(sid)
        self.accepted(u.set_claims("credential-change",
                                   {"credential_type": "password", "change_type": "update"},
                                   {"format": "opaque", "id": "fay"}))
        self.assertInactive(toks[0])
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "terminated")
        # SSF_ISS is configured to suspend on credential-change (and wants a bearer).
        sid = u.session(self.d, "fay", iss=u.SSF_ISS)
        claims = u.set_claims("credential-change", {}, {"format": "opaque", "id": "fay"},
                              iss=u.SSF_ISS)
        self.accepted(claims, bearer=self.bearer)
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "suspended")

    def test_unknown_event_accepted_and_ignored(self):
        sid = u.session(self.d, "gus")
        toks = self.chain(sid)
        n = len(u.audit(self.d))
        claims = u.set_claims("session-revoked", {}, {"format": "opaque", "id": "gus"})
        claims["events"] = {"https://schemas.openid.net/secevent/ssf/event-type/verification":
                            {"state": "abc"}}
        self.accepted(claims)
        self.assertActive(toks[0])
        self.assertEqual(len(u.audit(self.d)), n)

    def test_duplicate_is_acknowledged_once(self):
        sid = u.session(self.d, "hal")
        self.chain(sid)
        claims = u.set_claims("session-revoked", {}, {"format": "opaque", "id": "hal"})
        tok = self.set_token(claims)
        self.assertEqual(u.post_set(self.d, tok).status, 202)
        self.assertEqual(u.post_set(self.d, tok).status, 202)  # a retry: no second effect
        recs = [a for a in u.audit(self.d) if a.get("event_id") == claims["jti"]]
        self.assertEqual(len(recs), 1)

    def test_rs256_set(self):
        sid = u.session(self.d, "ida")
        toks = self.chain(sid)
        tok = u.jws({"alg": "RS256", "typ": "secevent+jwt", "kid": "rsa-1"},
                    u.set_claims("session-revoked", {}, {"format": "opaque", "id": "ida"}),
                    self.rsa)
        self.assertEqual(u.post_set(self.d, tok).status, 202)
        self.assertInactive(toks[0])


class SsfNegative(u.IdpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sid = u.session(cls.d, "victim", idp_sid="v-1")
        cls.bsid = u.session(cls.d, "victim", iss=u.SSF_ISS)

    def setUp(self):
        self.toks = self.chain(self.sid) + self.chain(self.bsid)
        self.audit_len = len(u.audit(self.d))

    def claims(self, iss=u.ISS, **kw):
        return u.set_claims("session-revoked", {}, {"format": "opaque", "id": "victim"},
                            iss=iss, **kw)

    def refused(self, err, token=None, bearer=None, ctype="application/secevent+jwt"):
        r = u.post_set(self.d, token, bearer=bearer, ctype=ctype)
        self.assertEqual(r.status, 400, r)
        body = r.json()
        self.assertEqual(body["err"], err, body)
        self.assertIsInstance(body["description"], str)
        for t in self.toks:
            self.assertActive(t)
        self.assertEqual(len(u.audit(self.d)), self.audit_len)

    def test_invalid_request(self):
        self.refused("invalid_request", self.set_token(self.claims()), ctype="application/jwt")
        tok = u.jws({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}, self.claims(), self.ec)
        self.refused("invalid_request", tok)  # typ must be secevent+jwt
        self.refused("invalid_request", "not.a.jws")
        self.refused("invalid_request", self.set_token(self.claims(sub="victim")))
        c = self.claims()
        c["events"]["https://example.com/other"] = {}
        self.refused("invalid_request", self.set_token(c))  # two events
        c = self.claims()
        del c["jti"]
        self.refused("invalid_request", self.set_token(c))
        c = u.set_claims("session-revoked", {}, {"format": "phone_number", "phone_number": "+1"})
        self.refused("invalid_request", self.set_token(c))
        c = u.set_claims("session-revoked", {},
                         {"format": "iss_sub", "iss": "https://evil.test", "sub": "victim"})
        self.refused("invalid_request", self.set_token(c))
        c = u.set_claims("device-compliance-change", {"current_status": "meh"},
                         {"format": "opaque", "id": "victim"})
        self.refused("invalid_request", self.set_token(c))
        c = self.claims(iat=int(time.time()) - 3 * 86400)  # older than max_age
        self.refused("invalid_request", self.set_token(c))
        c = self.claims(iat=int(time.time()) + 600)
        self.refused("invalid_request", self.set_token(c))

    def test_invalid_issuer(self):
        self.refused("invalid_issuer", self.set_token(self.claims(iss="https://evil.test")))

    def test_invalid_audience(self):
        self.refused("invalid_audience", self.set_token(self.claims(aud="other")))

    def test_invalid_key(self):
        unknown_kid = u.jws({"alg": "ES384", "typ": "secevent+jwt", "kid": "nope"},
                            self.claims(), self.ec384)
        self.refused("invalid_key", unknown_kid)
        tok = self.set_token(self.claims())
        head, payload, sig = tok.split(".")
        i = len(sig) // 2
        bad = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
        self.refused("invalid_key", head + "." + payload + "." + bad)
        none = u.jws({"alg": "none", "typ": "secevent+jwt"}, self.claims(), sig=b"")
        self.refused("invalid_key", none)
        hs = u.hs256(self.ec.pub_pem, {"alg": "HS256", "typ": "secevent+jwt", "kid": "ec-1"},
                     self.claims())
        self.refused("invalid_key", hs)

    def test_authentication_failed(self):
        c = self.claims(iss=u.SSF_ISS)
        self.refused("authentication_failed", self.set_token(c))
        self.refused("authentication_failed", self.set_token(c), bearer="wrong")
        self.refused("authentication_failed", self.set_token(c), bearer=self.bearer + "x")


if __name__ == "__main__":
    unittest.main(verbosity=2)
