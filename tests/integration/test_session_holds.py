"""Suspensions are holds with an owner, against the real tokend and tokenctl
with signed SSF events: each owner (admin = tokenctl, device = CAEP
device-compliance-change, credential = CAEP credential-change when the
issuer is configured to suspend) lifts only its own hold; a session is active
only with none left; termination stays final; the audit trail names every
hold set and lifted; tokenctl shows the holds."""

import unittest

import harness as h
import idp_util as u

h.require_binaries()

NOT_COMPLIANT = {"previous_status": "compliant", "current_status": "not-compliant"}
COMPLIANT = {"previous_status": "not-compliant", "current_status": "compliant"}


class Holds(u.IdpCase):

    def event(self, event, payload, subject, iss=u.ISS):
        claims = u.set_claims(event, payload, subject, iss=iss)
        bearer = self.bearer if iss == u.SSF_ISS else None
        r = u.post_set(self.d, self.set_token(claims), bearer=bearer)
        self.assertEqual(r.status, 202, r)

    def device(self, payload, sid_at_idp, iss=u.ISS):
        self.event("device-compliance-change", payload,
                   u.complex_subject(iss, session=sid_at_idp), iss=iss)

    def holds(self, sid):
        show = self.d.ctl("session", "show", sid)
        return show["state"], show["holds"]

    def assertHeld(self, sid, toks, holds):
        self.assertEqual(self.holds(sid), ("suspended", holds))
        for t in toks:
            self.assertInactive(t)

    def assertFree(self, sid, toks):
        self.assertEqual(self.holds(sid), ("active", []))
        for t in toks:
            self.assertActive(t)

    def test_admin_hold_survives_device_compliant(self):
        sid = u.session(self.d, "ann", idp_sid="h-1")
        toks = self.chain(sid)
        self.assertEqual(self.d.ctl("session", "suspend", sid, "--reason", "investigation"),
                         {"sid": sid, "state": "suspended"})
        self.device(COMPLIANT, "h-1")
        self.assertHeld(sid, toks, ["admin"])
        self.assertEqual(self.d.ctl("session", "show", sid)["reason"], "investigation")
        self.assertEqual(self.d.ctl("session", "resume", sid), {"sid": sid, "state": "active"})
        self.assertFree(sid, toks)

    def test_credential_hold_survives_device_compliant(self):
        sid = u.session(self.d, "cal", iss=u.SSF_ISS, idp_sid="h-2")
        toks = self.chain(sid)
        self.event("credential-change", {"credential_type": "password", "change_type": "update"},
                   {"format": "opaque", "id": "cal"}, iss=u.SSF_ISS)
        self.assertHeld(sid, toks, ["credential"])
        self.device(COMPLIANT, "h-2", iss=u.SSF_ISS)
        self.assertHeld(sid, toks, ["credential"])
        # The admin's resume lifts the admin hold only: the credential hold stays.
        self.assertEqual(self.d.ctl("session", "resume", sid),
                         {"sid": sid, "state": "suspended", "holds": ["credential"]})
        self.assertHeld(sid, toks, ["credential"])
        # An administrator may lift another owner's hold, but must say so.
        self.assertEqual(self.d.ctl("session", "resume", sid, "--hold", "credential"),
                         {"sid": sid, "state": "active"})
        self.assertFree(sid, toks)

    def test_device_hold_lifted_by_device(self):
        sid = u.session(self.d, "dee", idp_sid="h-3")
        toks = self.chain(sid)
        self.device(NOT_COMPLIANT, "h-3")
        self.assertHeld(sid, toks, ["device"])
        listed = [s for s in self.d.ctl("session", "list") if s["sid"] == sid]
        self.assertEqual(listed[0]["holds"], ["device"])
        self.device(COMPLIANT, "h-3")
        self.assertFree(sid, toks)

    def test_two_holds_need_both_lifts(self):
        sid = u.session(self.d, "eve", idp_sid="h-4")
        toks = self.chain(sid)
        self.device(NOT_COMPLIANT, "h-4")
        self.d.ctl("session", "suspend", sid)
        self.assertHeld(sid, toks, ["admin", "device"])
        self.device(COMPLIANT, "h-4")
        self.assertHeld(sid, toks, ["admin"])
        self.device(NOT_COMPLIANT, "h-4")
        self.d.ctl("session", "resume", sid)
        self.assertHeld(sid, toks, ["device"])
        self.device(COMPLIANT, "h-4")
        self.assertFree(sid, toks)

    def test_subject_keyed_compliant_lifts_only_device_holds(self):
        admin_held = u.session(self.d, "fox")
        plain = u.session(self.d, "fox")
        t_admin, t_plain = self.chain(admin_held), self.chain(plain)
        self.d.ctl("session", "suspend", admin_held)
        subject = {"format": "iss_sub", "iss": u.ISS, "sub": "fox"}
        self.event("device-compliance-change", NOT_COMPLIANT, subject)
        self.assertHeld(admin_held, t_admin, ["admin", "device"])
        self.assertHeld(plain, t_plain, ["device"])
        self.event("device-compliance-change", COMPLIANT, subject)
        self.assertHeld(admin_held, t_admin, ["admin"])
        self.assertFree(plain, t_plain)

    def test_terminate_while_held_is_final(self):
        sid = u.session(self.d, "gil", idp_sid="h-6")
        toks = self.chain(sid)
        self.device(NOT_COMPLIANT, "h-6")
        self.d.ctl("session", "suspend", sid)
        self.assertEqual(self.d.ctl("session", "terminate", sid),
                         {"sid": sid, "state": "terminated"})
        self.device(COMPLIANT, "h-6")
        for hold in ("admin", "device", "credential"):
            p = self.d.ctl_run("session", "resume", sid, "--hold", hold)
            self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(self.d.ctl("session", "show", sid)["state"], "terminated")
        for t in toks:
            self.assertInactive(t)

    def test_audit_names_every_hold(self):
        sid = u.session(self.d, "hop", idp_sid="h-7")
        self.chain(sid)
        self.d.ctl("session", "suspend", sid, "--reason", "look")
        self.device(NOT_COMPLIANT, "h-7")
        self.device(COMPLIANT, "h-7")
        self.d.ctl("session", "resume", sid)
        self.d.ctl("session", "terminate", sid)
        trail = [(a["source"], a["action"], a.get("hold")) for a in u.audit(self.d)
                 if sid in a["sids"]]
        self.assertEqual(trail, [("admin", "suspend", "admin"), ("ssf", "suspend", "device"),
                                 ("ssf", "resume", "device"), ("admin", "resume", "admin"),
                                 ("admin", "terminate", None)])

    def test_resume_usage(self):
        sid = u.session(self.d, "ivy")
        for bad in ("root", "", "Admin"):
            p = self.d.ctl_run("session", "resume", sid, "--hold", bad)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
        p = self.d.ctl_run("session", "suspend", sid, "--hold", "device")
        self.assertEqual(p.returncode, 2, p.stderr)  # suspend sets the admin hold only
        self.assertEqual(self.holds(sid), ("active", []))


if __name__ == "__main__":
    unittest.main(verbosity=2)
