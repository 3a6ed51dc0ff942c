"""Store schema 1 → 3 (token ids and the revocation bitmap, issue 13; schema 3
added code ids and spent codes and refresh tokens, nothing a schema 1 store
holds): a store
written by the tokend and tokenctl of schema 1 (fixtures/store-schema1.*,
made by fixtures/make_store_schema1.py with the binaries of commit eb9dcb4)
is read unchanged by today's tokenctl, upgraded in place by today's tokend,
and then answers every introspection exactly as the old tokend did, for a
resource server and for an admin. Revocations after the upgrade work on both
kinds of token: old records (no id: revoked_at in the record) and new ones
(an id: a bit in the bitmap), including the cascade below each, and survive
a restart. A session's token count holds the index entries the old binaries
wrote (session_tokens, by hash: the layout every binary before session_ids
wrote) and the new ones (session_ids, by token id)."""

import json
import os
import tarfile
import time
import unittest

import harness as h

h.require_binaries()

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def without_iss(answer):
    """The issuer is tokend's own address, a fresh port each run."""
    return {k: v for k, v in answer.items() if k != "iss"}


class StoreMigration(h.FreshCase):
    def setUp(self):
        with open(os.path.join(HERE, "store-schema1.json")) as f:
            self.fx = json.load(f)
        if time.time() >= self.fx["valid_until"]:
            self.skipTest("fixture tokens expired: regenerate with make_store_schema1.py")
        self.data = self.tmpdir()
        with tarfile.open(os.path.join(HERE, "store-schema1.tar.gz")) as tf:
            tf.extractall(self.data)
        self.c = {k: h.Client(v) for k, v in self.fx["clients"].items()}
        self.tok = self.fx["tokens"]

    def check_all(self, d, changed=()):
        """Every fixture token answers as the old tokend did (the names in
        changed: inactive now)."""
        for name, t in sorted(self.tok.items()):
            for who in ("rs", "admin"):
                want = self.fx["answers"][name][who]
                if name in changed:
                    want = h.INACTIVE
                got = d.active(t, auth=self.c[who])
                self.assertEqual(without_iss(got), without_iss(want), (name, who))

    def data_bytes(self):
        with open(os.path.join(self.data, "data.mdb"), "rb") as f:
            return f.read()

    def test_read_only_tools_then_upgrade_answers_identical(self):
        before = self.data_bytes()
        # Read-only tokenctl on the schema 1 store: no upgrade, nothing written.
        stats = h.ctl(self.data, "stats")
        self.assertEqual(stats["tokens"], len(self.tok))
        for name, t in sorted(self.tok.items()):
            got = h.ctl(self.data, "token", "show", t)
            want = self.fx["answers"][name]["admin"]
            self.assertEqual(without_iss(got), without_iss(want), name)
        self.assertEqual(self.data_bytes(), before)

        d = self.daemon(data_dir=self.data)
        self.assertIn("store_migrated", d.stderr())
        self.assertIn("from=1 to=3", d.stderr())
        self.check_all(d)
        d.stop()
        d.start()  # upgraded once: no second migration, same answers
        self.assertNotIn("store_migrated", d.stderr())
        self.check_all(d)

    def test_revocations_after_upgrade(self):
        d = self.d = self.daemon(data_dir=self.data)
        d.default_auth = self.c["rs"]
        a = self.c["a"]
        # Old records: revoked the old way, the cascade below them too.
        for name in ("live_parent", "to_revoke_later", "revoked"):
            self.assertEqual(d.revoke(self.tok[name], auth=a).status, 200)
        changed = {"live_parent", "live_child", "to_revoke_later"}
        self.check_all(d, changed)
        # New tokens (ids, the bitmap) under an old live token and on their own.
        sid = self.fx["sessions"]["s1"]
        old_count = h.ctl(self.data, "session", "show", sid)["tokens"]
        self.assertGreater(old_count, 0)  # the old binaries' index entries (hashes)
        new = d.issue(sid, a, "read", parent=self.tok["active"])["access_token"]
        new_child = d.issue(sid, self.c["b"], "read", parent=new)["access_token"]
        alone = d.issue(sid, a, "read")["access_token"]
        for t in (new, new_child, alone):
            self.assertActive(t)
        # The session's count holds both: old entries by hash, new ones by id.
        self.assertEqual(h.ctl(self.data, "session", "show", sid)["tokens"], old_count + 3)
        self.assertEqual(d.revoke(new, auth=a).status, 200)
        self.assertEqual(d.revoke(new, auth=a).status, 200)  # again: a no-op
        self.assertInactive(new)
        self.assertInactive(new_child)
        self.assertActive(alone)
        self.check_all(d, changed)
        # Revoking the old parent kills the new token below it.
        new2 = d.issue(sid, a, "read", parent=self.tok["active_aud"])["access_token"]
        self.assertActive(new2)
        self.assertEqual(d.revoke(self.tok["active_aud"], auth=a).status, 200)
        self.assertInactive(new2)
        changed.add("active_aud")
        d.stop()
        d.start()  # durable
        self.check_all(d, changed)
        for t in (new, new_child, new2):
            self.assertInactive(t)
        self.assertActive(alone)


WINDOW = 20  # refresh-reuse-window (seconds) for the schema 2 store


class StoreMigrationSchema2(h.FreshCase):
    """Store schema 2 → 3 (code ids, spent codes and refresh tokens): a store
    written by the tokend of schema 2 (fixtures/store-schema2.*, made by
    fixtures/make_store_schema2.py with the binaries of commit 2c36f83) holds
    a refresh token rt0 rotated the old way (its record says when) and its
    successor rt1. After the upgrade rt1 rotates through the spent DBI, may
    be reused within the reuse window, and rt0, reused long after its
    window, still revokes the whole family."""

    def setUp(self):
        with open(os.path.join(HERE, "store-schema2.json")) as f:
            self.fx = json.load(f)
        if time.time() >= self.fx["valid_until"]:
            self.skipTest("fixture tokens expired: regenerate with make_store_schema2.py")
        import as_http as ah
        self.ah = ah
        self.data = self.tmpdir()
        with tarfile.open(os.path.join(HERE, "store-schema2.tar.gz")) as tf:
            tf.extractall(self.data)
        self.args = ah.as_daemon_args(self.tmpdir(), extra=("--refresh-reuse-window", WINDOW))
        # rt0 was rotated when the fixture was made: only a fixture made a
        # moment ago is still inside the window.
        time.sleep(max(0.0, self.fx["made_at"] + WINDOW + 2 - time.time()))

    def refresh(self, d, rt):
        return self.ah.refresh(d, self.fx["client_id"], rt)

    def test_rotations_before_and_after_upgrade(self):
        d = self.daemon(self.args, data_dir=self.data)
        self.assertIn("store_migrated", d.stderr())
        self.assertIn("from=2 to=3", d.stderr())
        r = self.refresh(d, self.fx["rt1"])  # old record, rotated now: the spent DBI
        self.assertEqual(r.status, 200, r)
        rt2 = r.json()["refresh_token"]
        d.stop()
        d.start()  # durable, upgraded once
        self.assertNotIn("store_migrated", d.stderr())
        r = self.refresh(d, self.fx["rt1"])  # reuse within the window: a sibling pair
        self.assertEqual(r.status, 200, r)
        sibling = r.json()["refresh_token"]
        r = self.refresh(d, rt2)
        self.assertEqual(r.status, 200, r)
        rt3 = r.json()["refresh_token"]
        # rt0 was rotated before the upgrade, far longer ago than the window:
        # theft, the family goes.
        r = self.refresh(d, self.fx["rt0"])
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "invalid_grant")
        for rt in (rt3, sibling, self.fx["rt1"]):
            r = self.refresh(d, rt)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["error"], "invalid_grant")

    def test_old_rotation_reused_first(self):
        d = self.daemon(self.args, data_dir=self.data)
        r = self.refresh(d, self.fx["rt0"])
        self.assertEqual(r.status, 400, r)
        r = self.refresh(d, self.fx["rt1"])  # its family was revoked with it
        self.assertEqual(r.status, 400, r)


if __name__ == "__main__":
    unittest.main()
