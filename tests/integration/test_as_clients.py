"""Interop: real OAuth clients get their tokens from tokend's authorization
server on their own (issue 11, "Done means": real clients, end to end).

One tokend (dev login, open registration, strict refresh rotation) with a
resources file of two protected resources, nginx (tools/proxy/nginx.conf as
shipped) on a non-default port in front of an echo app, for the whole class.
Each test runs one node script (tests/interop) that drives a real client
library through the flow and plays the user's browser over HTTP; the script
checks every step against AS_CONTRACT.md and exits non-zero naming the step
that deviated. The driver answers its questions (tokenctl: delegation,
session end) and then checks the store itself over /introspect.

- oauth4webapi and openid-client (tests/interop/as_flow.mjs): discovery ->
  registration of an agent and a sub-agent -> authorize with PKCE S256,
  state and resource -> dev login -> consent -> code + state + iss to a
  loopback listener -> code exchange -> introspection, and the token
  through nginx auth_request -> /auth -> refresh rotation -> token exchange
  to the sub-agent -> the child's act -> revoking the parent kills the
  child -> replaying the rotated-away refresh token revokes the family.
  And with refresh-reuse-window 0 ("strict"), a replay right after the
  rotation (the same second) is refused and revokes the family too; a
  second authorization covered by the grant skips the consent page.
- MCP TypeScript SDK (tests/interop/as_mcp.mjs): an SDK MCP server whose
  bearer check is tokend's introspection, an SDK client with an
  OAuthClientProvider: tools/list succeeds; `tokenctl session terminate`
  -> the next call gets 401, the SDK's refresh is refused, and the
  browser is signed out.
- MCP SDK, parallel refreshes (issue 11 §7; its own tokend with 5 s access
  tokens and a 5 s refresh-reuse-window): three tool calls meet the expired
  token at once, the SDK refreshes with the same refresh token more than
  once, every refresh is answered and every call succeeds; after the window
  the rotated-away token is refused and its family revoked.
- A pending agent (registration = approval; oauth4webapi): the user is
  shown the awaits-approval page and sent back to the agent with
  error=access_denied, state and iss; approved by tokenctl, the agent gets
  tokens; the same identity registered again is approved at once, another
  redirect URI is pending.

Needs node, tests/interop/node_modules (tools/test runs `npm ci` there) and
nginx; skipped (exit 77) with a message when they are missing."""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness as h
import proxies

h.require_binaries()

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
MODULES = os.path.join(INTEROP, "node_modules")
NEEDED = ("openid-client", "oauth4webapi", os.path.join("@modelcontextprotocol", "sdk"), "zod")
if NODE is None or not all(os.path.isdir(os.path.join(MODULES, m)) for m in NEEDED):
    sys.stderr.write("skipped: node or tests/interop/node_modules missing "
                     "(run `npm ci` in tests/interop; tools/test does)\n")
    sys.exit(77)
if not shutil.which("nginx") and not os.access("/usr/sbin/nginx", os.X_OK):
    sys.stderr.write("skipped: nginx is not installed (tools/test installs it)\n")
    sys.exit(77)

FLOW_TIMEOUT = 180.0  # seconds one node script may take, ASan tokend included
APP_SCOPES = ["app:read", "app:write"]
MCP_SCOPES = ["mcp:read", "mcp:write"]


class NodeFailed(AssertionError):
    pass


def run_node(script, spec, on_event, timeout=FLOW_TIMEOUT):
    """Run tests/interop/SCRIPT with spec as its first stdin line. Every JSON
    line it prints but the last is an event: on_event(ev) returns a dict sent
    back as {"ok": true, ...} (an exception is sent as {"ok": false} and
    raised once the script ended). The last line is {"event":"done"} (its
    dict is returned) or {"event":"failed"} (raised, with stderr)."""
    p = subprocess.Popen([NODE, os.path.join(INTEROP, script)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=INTEROP, preexec_fn=h._die_with_parent)
    lines, err = queue.Queue(), []

    def pump(stream, put):
        for line in stream:
            put(line)
        put(None)

    threading.Thread(target=pump, args=(p.stdout, lines.put), daemon=True).start()
    threading.Thread(target=pump, args=(p.stderr, err.append), daemon=True).start()
    deadline = time.monotonic() + timeout
    final, noise, raised = None, [], None
    try:
        p.stdin.write(json.dumps(spec) + "\n")
        p.stdin.flush()
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise NodeFailed("%s: no answer within %.0f s\nevents so far: %s\nstderr:\n%s"
                                 % (script, timeout, noise, "".join(x for x in err if x)))
            if line is None:
                break
            try:
                ev = json.loads(line)
            except ValueError:
                noise.append(line.rstrip())
                continue
            if ev.get("event") in ("done", "failed"):
                final = ev
                continue
            try:
                ans = dict(on_event(ev) or {}, ok=True)
            except Exception as e:  # told to the script, raised below
                raised = raised or e
                ans = {"ok": False, "message": str(e)}
            p.stdin.write(json.dumps(ans) + "\n")
            p.stdin.flush()
        rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
        for s in (p.stdin, p.stdout, p.stderr):
            try:
                s.close()
            except OSError:
                pass
    if raised is not None:
        raise raised
    stderr = "".join(x for x in err if x)
    if final is None or final["event"] != "done" or rc != 0:
        detail = json.dumps(final, indent=1) if final else "(no final line)"
        raise NodeFailed("%s exited %s\n%s\nother output: %s\nstderr:\n%s"
                         % (script, rc, detail, noise, stderr[-4000:]))
    return final


def write_resources(cls):
    """Pick the nginx and MCP ports, write the resources file naming them,
    return its path (in cls.tmp, removed by the class cleanup)."""
    cls.nginx_port = h.free_port()
    cls.mcp_port = h.free_port()
    while cls.mcp_port == cls.nginx_port:
        cls.mcp_port = h.free_port()
    cls.app_resource = "https://127.0.0.1:%d/" % cls.nginx_port
    cls.mcp_resource = "https://127.0.0.1:%d/mcp" % cls.mcp_port
    res = {
        "trusted_headers": ["X-Forwarded-Method", "X-Forwarded-Host", "X-Forwarded-Uri",
                            "X-Original-URI"],
        "identity_headers": {"subject": "X-Auth-Subject", "client": "X-Auth-Client",
                             "scope": "X-Auth-Scope", "session": "X-Auth-Session",
                             "actor": "X-Auth-Actor"},
        "resources": [
            {"resource": cls.app_resource, "name": "Echo app behind nginx", "realm": "app",
             "scopes_supported": APP_SCOPES,
             "required_scopes": {"GET": ["app:read"], "*": ["app:write"]}},
            {"resource": cls.mcp_resource, "name": "Echo MCP server",
             "scopes_supported": MCP_SCOPES, "required_scopes": {"*": ["mcp:read"]}},
        ],
    }
    cls.tmp = tempfile.mkdtemp(prefix="tokend-as-clients-")
    cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
    path = os.path.join(cls.tmp, "resources.json")
    with open(path, "w") as f:
        json.dump(res, f)
    return path


def mcp_spec(cls, subject, **extra):
    return dict({"issuer": cls.issuer, "mcp_port": cls.mcp_port, "resource": cls.mcp_resource,
                 "scopes": MCP_SCOPES, "subject": subject,
                 "rs": {"id": cls.rs.id, "secret": cls.rs.secret}}, **extra)


class AuthorizationServerClients(h.TokenAsserts, unittest.TestCase):
    """Strict rotation (refresh-reuse-window 0): the library flows replay the
    rotated-away refresh token and expect its family revoked at once."""

    @classmethod
    def setUpClass(cls):
        path = write_resources(cls)
        cls.d = h.start_daemon(("--resources", path, "--login", "dev", "--registration", "open",
                                "--refresh-reuse-window", 0))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.issuer = "http://127.0.0.1:%d" % cls.d.port
        cls.app = proxies.Upstream()
        cls.addClassCleanup(cls.app.stop)
        cls.proxy = proxies.start_nginx(cls.d.port, cls.app.port, port=cls.nginx_port)
        cls.addClassCleanup(cls.proxy.stop)
        cls.rs = cls.d.add_client("resource_server", "as-clients-rs")
        cls.admin = cls.d.add_client("admin", "as-clients-admin")
        cls.d.default_auth = cls.rs

    def logs(self):
        return "\ntokend log:\n%s\nnginx log:\n%s" % (self.d.stderr(6000), self.proxy.log())

    def run_flow(self, script, spec, on_event):
        try:
            return run_node(script, spec, on_event)
        except NodeFailed as e:
            raise NodeFailed(str(e) + self.logs()) from None

    # ---- oauth4webapi, openid-client ----------------------------------------------

    def library_flow(self, lib):
        subject = "%s-user@example.com" % lib
        spec = {"lib": lib, "issuer": self.issuer, "resource": self.app_resource,
                "scope": " ".join(APP_SCOPES), "narrow_scope": "app:read",
                "nginx_url": "http://127.0.0.1:%d" % self.nginx_port, "subject": subject,
                "rs": {"id": self.rs.id, "secret": self.rs.secret},
                "admin": {"id": self.admin.id, "secret": self.admin.secret}}
        seen = {}

        def on_event(ev):
            self.assertEqual(ev["event"], "registered", ev)
            seen.update(ev)
            # The agent lets the sub-agent act for it (tokenctl, AS_CONTRACT.md).
            self.d.ctl("client", "set", ev["first"], "--delegate-to", ev["second"])
            return {}

        out = self.run_flow("as_flow.mjs", spec, on_event)
        self.assertEqual((out["first"], out["second"]), (seen["first"], seen["second"]))
        # What the script saw, checked once more from the outside: the replayed
        # refresh token revoked its grant, so nothing issued from it lives.
        t = out["tokens"]
        for name in ("t1", "t2", "child"):
            self.assertInactive(t[name], msg="%s %s after the flow" % (lib, name))
        for name in ("r1", "r2"):
            self.assertInactive(t[name], auth=self.admin, msg="%s %s after the flow" % (lib, name))
        # Registered by the library as agents of tokend, approved (open policy).
        for cid in (out["first"], out["second"]):
            self.assertIn(cid, json.dumps(self.d.ctl("client", "list")))
        return out

    def test_oauth4webapi_whole_flow(self):
        out = self.library_flow("oauth4webapi")
        self.assertEqual(out["revoker"], "admin")

    def test_openid_client_whole_flow(self):
        out = self.library_flow("openid-client")
        self.assertEqual(out["revoker"], "owner")

    def strict_replay(self, lib):
        spec = {"lib": lib, "mode": "strict-replay", "issuer": self.issuer,
                "resource": self.app_resource, "scope": " ".join(APP_SCOPES),
                "subject": "%s-strict@example.com" % lib,
                "rs": {"id": self.rs.id, "secret": self.rs.secret},
                "admin": {"id": self.admin.id, "secret": self.admin.secret}}
        out = self.run_flow("as_flow.mjs", spec, lambda ev: self.fail("unexpected %r" % ev))
        for t in out["tokens"]:
            self.assertInactive(t)

    def test_oauth4webapi_strict_rotation_refuses_an_immediate_replay(self):
        self.strict_replay("oauth4webapi")

    def test_openid_client_strict_rotation_refuses_an_immediate_replay(self):
        self.strict_replay("openid-client")

    # ---- MCP TypeScript SDK --------------------------------------------------------

    def test_mcp_sdk_client_and_server(self):
        spec = mcp_spec(self, "mcp-user@example.com")
        seen = {}

        def on_event(ev):
            self.assertEqual(ev["event"], "authorized", ev)
            seen.update(ev)
            j = self.d.ctl("session", "terminate", ev["sid"], "--reason", "user signed out")
            self.assertTrue(j is not None)
            return {}

        out = self.run_flow("as_mcp.mjs", spec, on_event)
        self.assertTrue(seen.get("sid", "").startswith("tks_"), seen)
        self.assertEqual(out["sid"], seen["sid"])
        self.assertInactive(out["tokens"]["access"])
        self.assertInactive(out["tokens"]["refresh"], auth=self.admin)



class PendingClients(h.TokenAsserts, unittest.TestCase):
    """registration = approval (the default policy), with oauth4webapi."""

    @classmethod
    def setUpClass(cls):
        path = write_resources(cls)
        cls.d = h.start_daemon(("--resources", path, "--login", "dev",
                                "--registration", "approval"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.issuer = "http://127.0.0.1:%d" % cls.d.port
        cls.rs = cls.d.add_client("resource_server", "as-clients-rs")
        cls.d.default_auth = cls.rs

    def pending_ids(self):
        return json.dumps(self.d.ctl("client", "list", "--pending"))

    def test_pending_agent_is_sent_back_then_approved(self):
        spec = {"issuer": self.issuer, "resource": self.app_resource,
                "scope": " ".join(APP_SCOPES), "subject": "pending-user@example.com"}
        seen = {}

        def on_event(ev):
            self.assertEqual(ev["event"], "pending", ev)
            seen.update(ev)
            self.assertIn(ev["client_id"], self.pending_ids())
            self.d.ctl("client", "approve", ev["client_id"])
            self.assertNotIn(ev["client_id"], self.pending_ids())
            return {}

        try:
            out = run_node("as_pending.mjs", spec, on_event)
        except NodeFailed as e:
            raise NodeFailed(str(e) + "\ntokend log:\n" + self.d.stderr(6000)) from None
        self.assertEqual(out["approved"], seen["client_id"])
        pending = self.pending_ids()
        self.assertIn(out["other_identity"], pending)
        self.assertNotIn(out["same_identity"], pending)
        self.assertNotIn(out["approved"], pending)
        self.assertActive(out["access_token"])


class McpParallelRefresh(h.TokenAsserts, unittest.TestCase):
    """Issue 11 §7: short access tokens and the reuse window, so the MCP SDK's
    unserialised refreshes meet it (its own tokend: the window is the point)."""

    ACCESS_TTL = 5
    REUSE_WINDOW = 5

    @classmethod
    def setUpClass(cls):
        path = write_resources(cls)
        cls.d = h.start_daemon(("--resources", path, "--login", "dev", "--registration", "open",
                                "--access-ttl", cls.ACCESS_TTL,
                                "--refresh-reuse-window", cls.REUSE_WINDOW))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.issuer = "http://127.0.0.1:%d" % cls.d.port
        cls.rs = cls.d.add_client("resource_server", "as-clients-rs")
        cls.admin = cls.d.add_client("admin", "as-clients-admin")
        cls.d.default_auth = cls.rs

    def test_mcp_sdk_parallel_refreshes_keep_the_agent_signed_in(self):
        spec = mcp_spec(self, "mcp-parallel@example.com", mode="parallel",
                        access_ttl=self.ACCESS_TTL, reuse_window=self.REUSE_WINDOW)

        def on_event(ev):
            raise AssertionError("unexpected event %r" % ev)

        try:
            out = run_node("as_mcp.mjs", spec, on_event)
        except NodeFailed as e:
            raise NodeFailed(str(e) + "\ntokend log:\n" + self.d.stderr(6000)) from None
        p = out["parallel"]
        self.assertGreaterEqual(p["reused"], 1, p)
        self.assertTrue(all(r[1] == 200 for r in p["refreshes"]), p)
        self.assertInactive(out["tokens"]["access"])


if __name__ == "__main__":
    unittest.main()
