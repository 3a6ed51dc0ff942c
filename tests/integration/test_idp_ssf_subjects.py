"""What the README ("Shared Signals transmitters") promises about SSF pushes,
held to the daemon: which subjects match which sessions (complex subjects:
user and session parts, other members ignored), which subjects are refused,
and what a push answers when the issuer's bearer credential is missing or
wrong (400 authentication_failed, checked per issuer once iss is known)."""

import unittest

import harness as h
import idp_util as u

h.require_binaries()


class SsfSubjects(u.IdpCase):
    def revoke(self, subject, iss=u.ISS, bearer=None):
        claims = u.set_claims("session-revoked", {}, subject, iss=iss)
        return u.post_set(self.d, self.set_token(claims), bearer=bearer)

    def test_complex_members_other_than_user_and_session_are_ignored(self):
        hit = u.session(self.d, "ann", idp_sid="cx-1")
        miss = u.session(self.d, "ann", idp_sid="cx-2")
        t_hit, t_miss = self.chain(hit), self.chain(miss)
        subj = u.complex_subject(u.ISS, session="cx-1")
        subj["tenant"] = {"format": "opaque", "id": "some-tenant"}
        subj["device"] = {"format": "opaque", "id": "some-device"}
        self.assertEqual(self.revoke(subj).status, 202)
        for t in t_hit:
            self.assertInactive(t)
        for t in t_miss:
            self.assertActive(t)
        # user part only, with a tenant: every session of that user
        a, b = u.session(self.d, "amy", idp_sid="cx-3"), u.session(self.d, "amy")
        toks = self.chain(a) + self.chain(b)
        subj = u.complex_subject(u.ISS, sub="amy")
        subj["tenant"] = {"format": "opaque", "id": "t"}
        self.assertEqual(self.revoke(subj).status, 202)
        for t in toks:
            self.assertInactive(t)

    def test_complex_session_alone_matches_every_user_of_that_idp_session(self):
        s1, s2 = u.session(self.d, "bea", idp_sid="cx-4"), u.session(self.d, "carl", idp_sid="cx-4")
        other = u.session(self.d, "bea", idp_sid="cx-5")
        toks, t_other = self.chain(s1) + self.chain(s2), self.chain(other)
        self.assertEqual(self.revoke(u.complex_subject(u.ISS, session="cx-4")).status, 202)
        for t in toks:
            self.assertInactive(t)
        for t in t_other:
            self.assertActive(t)

    def test_user_formats_in_complex(self):
        for fmt, part in (("email", {"format": "email", "email": "dee@example.com"}),
                          ("opaque", {"format": "opaque", "id": "dee@example.com"})):
            with self.subTest(user_format=fmt):
                s1 = u.session(self.d, "dee@example.com", idp_sid="cx-6-" + fmt)
                s2 = u.session(self.d, "eve@example.com", idp_sid="cx-6-" + fmt)
                t1, t2 = self.chain(s1), self.chain(s2)
                subj = {"format": "complex", "user": part,
                        "session": {"format": "opaque", "id": "cx-6-" + fmt}}
                self.assertEqual(self.revoke(subj).status, 202)
                for t in t1:
                    self.assertInactive(t)
                for t in t2:  # same IdP session, another user: untouched
                    self.assertActive(t)

    def test_refused_subjects(self):
        sid = u.session(self.d, "fred", idp_sid="cx-7")
        toks = self.chain(sid)
        n = len(u.audit(self.d))
        cases = {
            "complex with neither user nor session":
                {"format": "complex", "tenant": {"format": "opaque", "id": "t"}},
            "session part not opaque":
                {"format": "complex", "session": {"format": "email", "email": "cx-7"}},
            "user part complex":
                {"format": "complex", "user": {"format": "complex",
                                               "session": {"format": "opaque", "id": "cx-7"}}},
            "unknown format": {"format": "phone_number", "phone_number": "+15550100"},
            "iss_sub of another issuer": {"format": "iss_sub", "iss": u.HYDRA, "sub": "fred"},
            "no format": {"id": "fred"},
        }
        for name, subj in cases.items():
            with self.subTest(name):
                r = self.revoke(subj)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["err"], "invalid_request", r.body)
        for t in toks:
            self.assertActive(t)
        self.assertEqual(len(u.audit(self.d)), n)


class SsfBearer(u.IdpCase):
    def post(self, claims, bearer=None, raw_auth=None, token=None):
        token = token if token is not None else self.set_token(claims)
        if raw_auth is not None:
            req = h.build_request("POST", "/ssf/events", token, {"Authorization": raw_auth},
                                  "application/secevent+jwt")
            return self.d.raw(req)
        return u.post_set(self.d, token, bearer=bearer)

    def claims(self, iss, sub):
        return u.set_claims("session-revoked", {}, {"format": "opaque", "id": sub}, iss=iss)

    def assertErr(self, r, err):
        self.assertEqual(r.status, 400, r)
        body = r.json()
        self.assertEqual(body["err"], err, body)
        return body

    def test_missing_wrong_or_malformed_bearer(self):
        sid = u.session(self.d, "gil", iss=u.SSF_ISS)
        toks = self.chain(sid)
        c = self.claims(u.SSF_ISS, "gil")
        for kw in ({}, {"bearer": "wrong"}, {"bearer": self.bearer[:-1]},
                   {"raw_auth": "Basic " + self.bearer}, {"raw_auth": "Bearer"}):
            with self.subTest(**kw):
                body = self.assertErr(self.post(c, **kw), "authentication_failed")
                self.assertEqual(body["description"], "bearer token missing or wrong")
        for t in toks:
            self.assertActive(t)
        self.assertEqual(self.post(c, bearer=self.bearer).status, 202)
        self.assertInactive(toks[0])

    def test_other_errors_come_first(self):
        # Not a SET at all: invalid_request, bearer or not.
        self.assertErr(self.post(None, token="not-a-jws"), "invalid_request")
        # An issuer tokend does not trust: invalid_issuer, whatever the bearer.
        c = self.claims("https://nobody.test", "gil")
        self.assertErr(self.post(c), "invalid_issuer")
        self.assertErr(self.post(c, bearer="wrong"), "invalid_issuer")

    def test_issuer_without_bearer_ignores_the_header(self):
        sid = u.session(self.d, "hank")
        toks = self.chain(sid)
        self.assertEqual(self.post(self.claims(u.ISS, "hank"), bearer="anything").status, 202)
        self.assertInactive(toks[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
