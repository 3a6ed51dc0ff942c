"""OpenID Connect Back-Channel Logout at POST /backchannel-logout against the
real binary: logout tokens signed at test time (RS256, PS256, ES256, ES384)
end the right sessions and every delegated token under them is inactive the
moment the 200 arrives; each check of spec §2.6 refuses a bad token with 400
and changes nothing; the trust file reloads on SIGHUP; the effect and the
replay record survive a restart."""

import json
import signal
import time
import unittest

import harness as h
import idp_util as u

h.require_binaries()


class BackChannelLogout(u.IdpCase):
    def test_sid_ends_that_session_only(self):
        s1 = u.session(self.d, "alice", idp_sid="kc-sid-1")
        s2 = u.session(self.d, "alice", idp_sid="kc-sid-2")
        t1, t2 = self.chain(s1), self.chain(s2)
        r = u.post_logout(self.d, self.logout_token(u.logout_claims(sid="kc-sid-1", sub="alice")))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("cache-control"), "no-store")
        for t in t1:  # inactive the moment the 200 is in
            self.assertInactive(t)
        for t in t2:
            self.assertActive(t)
        show = self.d.ctl("session", "show", s1)
        self.assertEqual(show["state"], "terminated")
        self.assertEqual(show["reason"], "backchannel_logout")
        self.assertEqual(show["idp_sid"], "kc-sid-1")

    def test_sub_alone_ends_every_session_of_the_subject(self):
        a1 = u.session(self.d, "bob", idp_sid="b-1")
        a2 = u.session(self.d, "bob")
        other = u.session(self.d, "bob", iss=u.HYDRA)  # same sub, other issuer
        carol = u.session(self.d, "carol")
        toks = {s: self.chain(s) for s in (a1, a2, other, carol)}
        r = u.post_logout(self.d, self.logout_token(u.logout_claims(sub="bob")))
        self.assertEqual(r.status, 200, r)
        for s in (a1, a2):
            for t in toks[s]:
                self.assertInactive(t)
        for s in (other, carol):
            for t in toks[s]:
                self.assertActive(t)

    def test_algorithms(self):
        for key, alg in ((self.ec, "ES256"), (self.ec384, "ES384"), (self.rsa, "PS256")):
            with self.subTest(alg=alg):
                sid = u.session(self.d, "dave", idp_sid="d-" + alg)
                toks = self.chain(sid)
                tok = self.logout_token(u.logout_claims(sid="d-" + alg), key=key, alg=alg)
                r = u.post_logout(self.d, tok)
                self.assertEqual(r.status, 200, r)
                self.assertInactive(toks[-1])

    def test_typ_jwt_and_missing_exp_where_allowed(self):
        # Ory Hydra style: typ JWT, no exp, no kid (the issuer has one key).
        sid = u.session(self.d, "erin", iss=u.HYDRA, idp_sid="h-1")
        toks = self.chain(sid)
        claims = u.logout_claims(sid="h-1", iss=u.HYDRA)
        del claims["exp"]
        tok = u.jws({"alg": "RS256", "typ": "JWT"}, claims, self.hydra_key)
        r = u.post_logout(self.d, tok)
        self.assertEqual(r.status, 200, r)
        self.assertInactive(toks[0])
        # ...but not from an issuer that did not allow it.
        sid = u.session(self.d, "erin", idp_sid="e-1")
        claims = u.logout_claims(sid="e-1")
        del claims["exp"]
        r = u.post_logout(self.d, self.logout_token(claims))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "active")

    def test_audit_records_the_event(self):
        sid = u.session(self.d, "fay", idp_sid="f-1")
        claims = u.logout_claims(sid="f-1")
        self.assertEqual(u.post_logout(self.d, self.logout_token(claims)).status, 200)
        rec = [a for a in u.audit(self.d) if a.get("event_id") == claims["jti"]]
        self.assertEqual(len(rec), 1, rec)
        self.assertEqual(rec[0]["source"], "backchannel_logout")
        self.assertEqual(rec[0]["issuer"], u.ISS)
        self.assertEqual(rec[0]["action"], "terminate")
        self.assertEqual(rec[0]["sessions_changed"], 1)
        self.assertEqual(rec[0]["sids"], [sid])
        self.assertLessEqual(abs(rec[0]["time"] - time.time()), 5)

    def test_unknown_session_is_still_200(self):
        r = u.post_logout(self.d, self.logout_token(u.logout_claims(sid="nobody-has-this")))
        self.assertEqual(r.status, 200, r)


class Concurrency(u.IdpCase):
    """docs/ARCHITECTURE.md §4 under load: while 4 connections introspect delegated tokens
    of a session in a loop, a logout token ends it; every introspection sent
    after the 200 was received answers inactive."""

    def test_no_active_answer_after_the_200(self):
        import threading
        sid = u.session(self.d, "zed", idp_sid="z-1")
        toks = self.chain(sid)
        stop = time.monotonic() + 8.0  # hard bound on the loop
        acked = threading.Event()
        results = []  # (sent after the 200?, active?)
        lock = threading.Lock()

        def hammer(i):
            with self.d.conn() as c:
                while time.monotonic() < stop:
                    after = acked.is_set()  # read before sending
                    r = self.d.introspect(toks[i % 3], conn=c)
                    with lock:
                        results.append((after, r.json().get("active") is True))
                    if after and time.monotonic() > ack_time[0] + 0.5:
                        return

        ack_time = [float("inf")]
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        r = u.post_logout(self.d, self.logout_token(u.logout_claims(sid="z-1")))
        ack_time[0] = time.monotonic()
        acked.set()
        for t in threads:
            t.join(timeout=15)
        self.assertEqual(r.status, 200, r)
        before = [a for after, a in results if not after]
        after = [a for after, a in results if after]
        self.assertTrue(any(before), "no active answer before the logout")
        self.assertGreater(len(after), 20)
        self.assertFalse(any(after), "an active answer after the 200")


class Negative(u.IdpCase):
    """Each bad token: 400 with a JSON error, and the session stays active."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sid = u.session(cls.d, "victim", idp_sid="v-1")

    def setUp(self):
        self.toks = self.chain(self.sid)
        self.audit_len = len(u.audit(self.d))

    def refused(self, token=None, data=None, status=400, why=""):
        r = u.post_logout(self.d, token) if data is None else self.d.raw(data)
        self.assertEqual(r.status, status, r)
        if status == 400:
            body = r.json()
            self.assertEqual(body["error"], "invalid_request", body)
            self.assertIn(why, body["error_description"])
        for t in self.toks:
            self.assertActive(t)
        self.assertEqual(self.d.ctl("session", "show", self.sid)["state"], "active")
        self.assertEqual(len(u.audit(self.d)), self.audit_len)
        return r

    def claims(self, **kw):
        return u.logout_claims(sid="v-1", **kw)

    def test_alg_none(self):
        tok = u.jws({"alg": "none", "typ": "logout+jwt"}, self.claims(), sig=b"")
        self.refused(tok, why="alg refused")
        self.refused(u.jws({"alg": "none"}, self.claims(), sig=b"x"), why="alg refused")

    def test_hs256_with_the_rsa_public_key(self):
        tok = u.hs256(self.rsa.pub_pem, {"alg": "HS256", "kid": "rsa-1"}, self.claims())
        self.refused(tok, why="alg refused")

    def test_unknown_kid(self):
        self.refused(self.logout_token(self.claims(), kid="rsa-2"), why="no key with that kid")
        self.refused(self.logout_token(self.claims(), kid="RSA-1"), why="no key")  # exact only

    def test_alg_not_pinned_to_key(self):
        # RS384 is a fine algorithm, but not in this issuer's list.
        self.refused(self.logout_token(self.claims(), alg="RS384"), why="not allowed")
        # ES256 with the RSA key's kid.
        tok = u.jws({"alg": "ES256", "kid": "rsa-1"}, self.claims(), self.ec)
        self.refused(tok, why="not allowed")

    def test_bad_signature(self):
        tok = self.logout_token(self.claims())
        head, payload, sig = tok.split(".")
        self.refused(head + "." + payload + "." + ("A" if sig[0] != "A" else "B") + sig[1:],
                     why="signature")
        # Signed claims swapped for others.
        other = u.b64u(json.dumps(self.claims(sub="someone")))
        self.refused(head + "." + other + "." + sig, why="signature does not verify")

    def test_wrong_issuer(self):
        self.refused(self.logout_token(self.claims(iss="https://evil.test")), why="iss")
        self.refused(self.logout_token(self.claims(iss=u.ISS + "/")), why="iss")

    def test_wrong_audience(self):
        self.refused(self.logout_token(self.claims(aud="someone-else")), why="aud")
        self.refused(self.logout_token(self.claims(aud=["a", "b"])), why="aud")

    def test_expired(self):
        now = int(time.time())
        self.refused(self.logout_token(self.claims(iat=now - 600, exp=now - 120)), why="expired")

    def test_iat_in_the_future(self):
        now = int(time.time())
        self.refused(self.logout_token(self.claims(iat=now + 300, exp=now + 600)),
                     why="future")

    def test_events(self):
        c = self.claims()
        del c["events"]
        self.refused(self.logout_token(c), why="events")
        self.refused(self.logout_token(self.claims(events={"other": {}})), why="events")
        self.refused(self.logout_token(self.claims(events={u.BCL_EVENT: "yes"})), why="events")

    def test_nonce_present(self):
        self.refused(self.logout_token(self.claims(nonce="n-0S6_WzA2Mj")), why="nonce")

    def test_no_sub_no_sid(self):
        c = u.logout_claims()
        self.refused(self.logout_token(c), why="neither sub nor sid")

    def test_missing_jti(self):
        c = self.claims()
        del c["jti"]
        self.refused(self.logout_token(c), why="jti")

    def test_typ(self):
        self.refused(self.logout_token(self.claims(), typ="at+jwt"), why="typ")

    def test_replayed_jti(self):
        c = u.logout_claims(sid="replay-1")
        tok = self.logout_token(c)
        self.assertEqual(u.post_logout(self.d, tok).status, 200)
        self.audit_len += 1
        self.refused(tok, why="jti replayed")
        # Same jti, fresh signature over other claims: still a replay.
        self.refused(self.logout_token(u.logout_claims(sid="v-1", jti=c["jti"])),
                     why="jti replayed")

    def test_malformed(self):
        good = self.logout_token(self.claims())
        head, payload, sig = good.split(".")
        for tok in ("", "abc", head, head + "." + payload, good + ".x", head + ".." + sig,
                    "!!!." + payload + "." + sig, head + "." + payload + "=." + sig,
                    u.b64u("[]") + "." + payload + "." + sig,
                    u.b64u('{"alg":"RS256","alg":"RS256"}') + "." + payload + "." + sig,
                    head + "." + u.b64u("not json") + "." + sig,
                    head + "." + payload + "." + sig + "%"):
            with self.subTest(token=tok[:40]):
                self.refused(tok)

    def test_form(self):
        self.refused(data=h.build_request("POST", "/backchannel-logout", "x=1", None, h.FORM))
        self.refused(data=h.build_request("POST", "/backchannel-logout",
                                          h.form({"logout_token": self.logout_token(
                                              self.claims())}), None, "text/plain"))
        two = h.form([("logout_token", "a"), ("logout_token", "b")])
        self.refused(data=h.build_request("POST", "/backchannel-logout", two, None, h.FORM))

    def test_oversized(self):
        big = "A" * 20000
        self.refused(data=h.build_request("POST", "/backchannel-logout",
                                          h.form({"logout_token": big}), None, h.FORM),
                     status=413)
        r = self.d.request("GET", "/backchannel-logout")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "POST")


class Lifecycle(h.FreshCase):
    """Restart durability and SIGHUP reloads (each test owns its daemon)."""

    def setUp(self):
        import shutil
        import tempfile
        self.keydir = tempfile.mkdtemp(prefix="tokend-idp-")
        self.addCleanup(shutil.rmtree, self.keydir, True)
        self.k1 = u.Key(self.keydir, "k1", "rsa", "k1")
        self.config = self.keydir + "/idp.json"
        u.write_config(self.config, [{"issuer": u.ISS, "audience": u.AUD,
                                      "jwks": {"keys": [self.k1.jwk()]}}])
        self.d = self.daemon(["--idp-config", self.config])
        self.w = h.World(self.d)

    def token(self, key, **kw):
        return u.jws({"alg": "RS256", "typ": "logout+jwt", "kid": key.kid},
                     u.logout_claims(**kw), key)

    def test_restart_keeps_the_effect_and_the_replay_record(self):
        sid = u.session(self.d, "gus", idp_sid="g-1")
        root = self.d.issue(sid, self.w.a)["access_token"]
        child = self.d.issue(sid, self.w.b, "read", parent=root)["access_token"]
        tok = self.token(self.k1, sid="g-1")
        self.assertEqual(u.post_logout(self.d, tok).status, 200)
        self.assertInactive(child)
        self.d.restart()
        self.assertInactive(root)
        self.assertInactive(child)
        self.assertEqual(u.post_logout(self.d, tok).status, 400)  # still a replay
        self.assertEqual(len(u.audit(self.d)), 1)

    def test_sighup_reload(self):
        k2 = u.Key(self.keydir, "k2", "p256", "k2")
        sid = u.session(self.d, "hal", idp_sid="h-1")
        tok2 = u.jws({"alg": "ES256", "kid": "k2"}, u.logout_claims(sid="h-1"), k2)
        self.assertEqual(u.post_logout(self.d, tok2).status, 400)  # k2 unknown yet
        u.write_config(self.config, [{"issuer": u.ISS, "audience": u.AUD,
                                      "jwks": {"keys": [self.k1.jwk(), k2.jwk()]}}])
        self.d.send_signal(signal.SIGHUP)
        self.wait_log("IdP configuration reloaded")
        r = u.post_logout(self.d, tok2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "terminated")
        # A broken file keeps the old configuration.
        with open(self.config, "w") as f:
            f.write('{"issuers": [{"issuer": "x", "audience": 1}]}')
        self.d.send_signal(signal.SIGHUP)
        self.wait_log("IdP configuration unchanged")
        sid = u.session(self.d, "hal", idp_sid="h-2")
        r = u.post_logout(self.d, self.token(self.k1, sid="h-2"))
        self.assertEqual(r.status, 200, r)

    def wait_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in self.d.stderr():
            if time.monotonic() > deadline:
                self.fail("no %r in the log:\n%s" % (text, self.d.stderr()))
            time.sleep(0.05)

    def test_bad_config_refuses_to_start(self):
        bad = self.keydir + "/bad.json"
        for text in ('{"issuers": [{"issuer": "https://x", "audience": "a", '
                     '"algorithms": ["HS256"], "jwks": {"keys": []}}]}',
                     '{"issuers": [{"issuer": "https://x", "audience": "a"}]}',
                     '{"issuers": [], "extra": 1}', 'not json'):
            with open(bad, "w") as f:
                f.write(text)
            d = h.Tokend(self.tmpdir(), ["--idp-config", bad])
            with self.assertRaises(AssertionError) as cm:
                d.start()
            self.assertIn("idp_config", str(cm.exception))
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
