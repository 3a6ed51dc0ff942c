"""A real browser against the authorization server (issue 11): Debian's
chromium, driven by npm playwright-core (tests/interop/browser.mjs), signs in
on the dev login page, sees the consent page, approves and lands on the
agent's loopback redirect with code, state and iss. Also: a client name full
of HTML is shown as text; the consent page cannot be framed from another
loopback origin (X-Frame-Options: DENY, CSP frame-ancestors 'none'); the CSP
allows no inline script; the page renders on a 375 px wide viewport.
Screenshots go to $TOKEND_SCREENSHOT_DIR when set (kept, to look at), else to
a temporary folder removed afterwards; never the source tree.

BrowserSelf checks the driver and the detectors on static pages this test
serves (no tokend needed): a framed page with XFO/CSP stays blank while one
without them shows, an inline onerror handler does fire a dialog without CSP
— so the assertions on tokend's pages can fail.

Needs node, tests/interop/node_modules/playwright-core (tools/test runs
`npm ci` there) and /usr/bin/chromium (apt package chromium); exits 77
(skipped) with a message when any is missing."""

import http.server
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness as h
import as_http as a

h.require_binaries()

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
CHROMIUM = "/usr/bin/chromium"
if NODE is None or not os.path.isdir(os.path.join(INTEROP, "node_modules", "playwright-core")):
    sys.stderr.write("skipped: node or tests/interop/node_modules/playwright-core missing "
                     "(run `npm ci` in tests/interop; tools/test does)\n")
    sys.exit(77)
if not os.access(CHROMIUM, os.X_OK):
    sys.stderr.write("skipped: %s missing (apt-get install chromium; tools/test does)\n"
                     % CHROMIUM)
    sys.exit(77)

CMD_TIMEOUT = 60.0  # seconds one browser command may take (ASan tokend, cold chromium)
EVIL = "<img src=x onerror=alert(1)>"


class Chromium:
    """The node driver: one command, one JSON answer."""

    def __init__(self):
        self.proc = subprocess.Popen([NODE, os.path.join(INTEROP, "browser.mjs")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=INTEROP, text=True,
                                     preexec_fn=h._die_with_parent)
        ready = self._read()
        if not ready.get("ready"):
            raise AssertionError("browser.mjs did not start: %r" % ready)

    def _read(self):
        r, _, _ = select.select([self.proc.stdout], [], [], CMD_TIMEOUT)
        if not r:
            self.close()
            raise AssertionError("browser.mjs gave no answer within %.0f s" % CMD_TIMEOUT)
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()
            raise AssertionError("browser.mjs exited: %s" % err[-4000:])
        return json.loads(line)

    def __call__(self, op, check=True, **kw):
        kw["op"] = op
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        ans = self._read()
        if check and not ans.get("ok"):
            raise AssertionError("browser %s %r failed: %s" % (op, kw, ans))
        return ans

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


class Pages:
    """A loopback HTTP server of our own (another origin than tokend):
    routes map a path to (status, headers, body); every request is kept."""

    def __init__(self, host="127.0.0.1"):
        self.routes = {}
        self.seen = []
        self.posts = []
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                pages.seen.append(self.path)
                path = urllib.parse.urlsplit(self.path).path
                route = pages.routes.get(path)
                if route is None:
                    status, headers, body = 200, {}, b"<!doctype html><title>ok</title><p>ok"
                else:
                    status, headers, body = route(self.path) if callable(route) else route
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                pages.posts.append((self.path, self.rfile.read(n).decode("latin-1"),
                                    self.headers.get("Cookie")))
                self.do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = "http://%s:%d" % (host, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def frame_page(src):
    """A page that frames src (tokend's consent page, or a control)."""
    body = ('<!doctype html><title>framer</title><h1>framer</h1>'
            '<iframe id="victim" width="600" height="400" src="%s"></iframe>'
            % src.replace("&", "&amp;").replace('"', "&quot;"))
    return (200, {}, body.encode())


def framer_route(path):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return frame_page(q["src"][0])


def shot_dir(case):
    """$TOKEND_SCREENSHOT_DIR (kept, for a person to look at), else a
    temporary folder removed with the class."""
    d = os.environ.get("TOKEND_SCREENSHOT_DIR")
    if d:
        os.makedirs(d, exist_ok=True)
        print("\nscreenshots in %s" % d)
        return d
    d = tempfile.mkdtemp(prefix="tokend-shots-")
    case.addClassCleanup(shutil.rmtree, d, True)
    return d


def framing_refused(ev):
    """Chromium's console messages that refused to display a framed page."""
    return [m for m in ev["console"] if "frame" in m["text"].lower()
            and ("refused" in m["text"].lower() or "blocked" in m["text"].lower())]


def child_frames(ans):
    return [f for f in ans["frames"] if not f["main"]]


class BrowserCase(unittest.TestCase):
    @classmethod
    def start_browser(cls):
        cls.br = Chromium()
        cls.addClassCleanup(cls.br.close)
        cls.pages = Pages()
        cls.addClassCleanup(cls.pages.close)
        cls.pages.routes["/frame"] = framer_route

    def events(self):
        return self.br("events")

    def frame(self, src):
        """Open the framing page (our own origin) around src; wait until the
        frame settled; returns the child frames as the browser saw them."""
        url = self.pages.origin + "/frame?" + urllib.parse.urlencode({"src": src})
        self.br("goto", url=url)
        time.sleep(0.5)  # an XFO/CSP block commits an error page after load
        return child_frames(self.br("frames"))


class BrowserSelf(BrowserCase):
    """The driver and the detectors, on static pages (no tokend)."""

    @classmethod
    def setUpClass(cls):
        cls.start_browser()
        cls.target = Pages()
        cls.addClassCleanup(cls.target.close)
        body = b'<!doctype html><title>t</title><form><button id="approve">Approve</button></form>'
        cls.target.routes["/open"] = (200, {}, body)
        cls.target.routes["/deny"] = (200, {"X-Frame-Options": "DENY"}, body)
        cls.target.routes["/fa"] = (200, {"Content-Security-Policy": "frame-ancestors 'none'"},
                                    body)
        cls.target.routes["/xss"] = (200, {}, ("<!doctype html><p>%s</p>" % EVIL).encode())
        cls.target.routes["/xss-csp"] = (200, {"Content-Security-Policy": "default-src 'none'"},
                                         ("<!doctype html><p>%s</p>" % EVIL).encode())

    def test_framing_detector(self):
        self.events()
        frames = self.frame(self.target.origin + "/open")
        self.assertEqual(len(frames), 1, frames)
        self.assertTrue(frames[0]["approve"], frames)  # the control shows
        self.assertEqual(framing_refused(self.events()), [])
        for path in ("/deny", "/fa"):
            frames = self.frame(self.target.origin + path)
            self.assertEqual(len(frames), 1, frames)
            self.assertFalse(frames[0]["approve"], (path, frames))
            self.assertFalse((frames[0]["text"] or "").strip().startswith("Approve"), frames)
            self.assertTrue(framing_refused(self.events()), path)

    def test_dialog_detector(self):
        self.events()
        self.br("goto", url=self.target.origin + "/xss")
        time.sleep(0.3)
        ev = self.events()
        self.assertEqual([d["type"] for d in ev["dialogs"]], ["alert"], ev)
        # With CSP the handler is blocked: the dialog check alone is not
        # enough, which is why the tokend test also counts img elements.
        self.br("goto", url=self.target.origin + "/xss-csp")
        time.sleep(0.3)
        self.assertEqual(self.events()["dialogs"], [])
        n = self.br("eval", expr="document.querySelectorAll('img').length")["value"]
        self.assertEqual(n, 1)

    def test_form_flow(self):
        """The steps BrowserFlow takes, on a stand-in: a 303 chain to a login
        form, fill + click, a Secure __Host- cookie on http://127.0.0.1 (a
        potentially trustworthy origin), a consent form, and the landing on
        another origin's listener, with the redirect chain reported."""
        t = self.target
        cookie = "__Host-tokend-session=abc; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax"
        cb = self.pages.origin + "/cb?code=c1&state=s1&iss=x"
        t.routes["/authorize"] = (303, {"Location": "/login?request=r1"}, b"")
        t.routes["/login"] = lambda path: (
            (303, {"Location": "/consent?request=r1", "Set-Cookie": cookie}, b"")
            if t.posts and t.posts[-1][0] == "/login" and path == "/login" and
            len(t.posts) == 1 else
            (200, {}, b'<form method="post" action="/login"><input name="subject">'
                      b'<input type="hidden" name="request" value="r1">'
                      b'<button id="signin">Sign in</button></form>'))
        t.routes["/consent"] = lambda path: (
            (303, {"Location": cb}, b"") if path == "/consent" else
            (200, {}, b'<form method="post" action="/consent"><button id="approve" '
                      b'name="decision" value="approve">Approve</button></form>'))
        ans = self.br("goto", url=t.origin + "/authorize?x=1")
        self.assertEqual(ans["url"], t.origin + "/login?request=r1")
        self.assertEqual(ans["chain"], [{"url": t.origin + "/authorize?x=1", "status": 303,
                                         "location": "/login?request=r1"}])
        self.br("fill", selector='input[name="subject"]', value="alice")
        ans = self.br("click", selector="#signin")
        self.assertEqual(ans["url"], t.origin + "/consent?request=r1", ans)
        self.assertEqual(t.posts[-1][1], "subject=alice&request=r1")
        ans = self.br("click", selector="#approve")
        self.assertEqual(ans["url"], cb, ans)
        self.assertEqual(ans["chain"][-1]["status"], 303, ans)
        self.assertEqual(t.posts[-1], ("/consent", "decision=approve",
                                       "__Host-tokend-session=abc"))
        self.assertEqual(self.br("eval", expr="document.cookie")["value"], "")  # HttpOnly

    def test_screenshot(self):
        d = shot_dir(type(self))
        path = os.path.join(d, "self.png")
        self.br("goto", url=self.target.origin + "/open")
        self.br("screenshot", path=path, full=True)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class BrowserFlow(BrowserCase):
    """The whole flow in chromium against the real tokend."""

    @classmethod
    def setUpClass(cls):
        if not a.engine_present():
            raise unittest.SkipTest("tokend has no authorization server yet (no `login` setting)")
        cls.folder = tempfile.mkdtemp(prefix="tokend-as-browser-")
        cls.addClassCleanup(shutil.rmtree, cls.folder, True)
        cls.d = h.start_daemon(a.as_daemon_args(cls.folder, "open"))
        cls.addClassCleanup(h.destroy_daemon, cls.d)
        cls.admin = cls.d.add_client("admin", "admin")
        cls.start_browser()
        cls.cb = Pages()  # the agent's loopback redirect listener
        cls.addClassCleanup(cls.cb.close)
        cls.cb.routes["/cb"] = (200, {}, b"<!doctype html><title>agent</title><p>done")
        cls.redirect = cls.cb.origin + "/cb"
        cls.shots = shot_dir(cls)

    def register(self, name):
        r = a.register(self.d, {"client_name": name, "redirect_uris": [self.redirect],
                                "token_endpoint_auth_method": "none",
                                "grant_types": ["authorization_code", "refresh_token"]})
        self.assertEqual(r.status, 201, r)
        return r.json()

    def authorize_url(self, client_id, state, verifier, scope="mcp:read mcp:write", extra=()):
        return self.d.issuer() + a.authorize_query(client_id, self.redirect, a.s256(verifier),
                                                   state, scope, a.MCP, extra=extra)

    def sign_in_if_asked(self, ans, subject):
        if urllib.parse.urlsplit(ans["url"]).path != "/login":
            return ans
        self.assertEqual(ans["status"], 200, ans)
        self.br("fill", selector='input[name="subject"]', value=subject)
        return self.br("click", selector="#signin")

    def assert_page_headers(self, hdrs):
        csp = hdrs.get("content-security-policy")
        self.assertIsNotNone(csp, hdrs)
        directives = {}
        for part in csp.split(";"):
            words = part.split()
            if words:
                directives[words[0].lower()] = [w.lower() for w in words[1:]]
        self.assertEqual(directives.get("frame-ancestors"), ["'none'"], csp)
        # 'self', and on the consent page the agent's redirect origin: chromium
        # applies form-action to the redirect that follows the form's POST.
        fa = directives.get("form-action") or []
        self.assertEqual(fa[:1], ["'self'"], csp)
        self.assertLessEqual(set(fa[1:]), {self.cb.origin}, csp)
        script = directives.get("script-src", directives.get("default-src"))
        self.assertIsNotNone(script, "no script-src/default-src: inline script allowed: " + csp)
        for bad in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "'unsafe-hashes'"):
            self.assertNotIn(bad, script, csp)
        self.assertEqual(hdrs.get("x-frame-options", "").upper(), "DENY", hdrs)
        self.assertEqual(hdrs.get("referrer-policy"), "no-referrer", hdrs)
        self.assertIn("no-store", hdrs.get("cache-control", ""), hdrs)
        self.assertEqual(hdrs.get("content-type"), "text/html; charset=utf-8", hdrs)

    def test_1_sign_in_consent_approve(self):
        client = self.register("Notes agent")
        state, verifier = secrets.token_urlsafe(16), a.new_verifier()
        ans = self.br("goto", url=self.authorize_url(client["client_id"], state, verifier))
        self.assertEqual(urllib.parse.urlsplit(ans["url"]).path, "/login", ans)
        self.assertEqual(ans["status"], 200, ans)
        self.assert_page_headers(ans["headers"])
        ans = self.sign_in_if_asked(ans, "alice@example.test")
        self.assertEqual(urllib.parse.urlsplit(ans["url"]).path, "/consent", ans)
        self.assertEqual(ans["status"], 200, ans)
        self.assert_page_headers(ans["headers"])
        # The sign-in set our cookie on the way; HttpOnly keeps it from script.
        cookies = self.br("eval", expr="document.cookie")["value"]
        self.assertNotIn("tokend-session", cookies)
        text = self.br("eval", expr="document.body.innerText")["value"]
        for want in ("Notes agent", client["client_id"], "MCP test server", "mcp:read",
                     "mcp:write",
                     "alice@example.test", "127.0.0.1"):
            self.assertIn(want, text, "consent page lacks %r:\n%s" % (want, text))
        # The name is marked as the agent's own claim (wording is the page's).
        self.assertRegex(text.lower(), "self-declared|declared by the agent|not verified", text)
        # Readable: a screenshot at desktop size and at a phone's 375 px, where
        # nothing may overflow sideways and both buttons stay reachable.
        self.br("screenshot", path=os.path.join(self.shots, "consent-1024.png"), full=True)
        self.br("viewport", width=375, height=740)
        self.br("screenshot", path=os.path.join(self.shots, "consent-375.png"), full=True)
        width = self.br("eval", expr="document.documentElement.scrollWidth")["value"]
        self.assertLessEqual(width, 375, "consent page overflows a 375 px viewport")
        for sel in ("#approve", "#deny"):
            box = self.br("eval", expr="(() => { const r = document.querySelector('%s')"
                                       ".getBoundingClientRect(); return [r.left, r.right, "
                                       "r.width, r.height]; })()" % sel)["value"]
            self.assertGreaterEqual(box[0], 0, (sel, box))
            self.assertLessEqual(box[1], 375, (sel, box))
            self.assertGreater(box[2] * box[3], 0, (sel, box))
        self.br("viewport", width=1024, height=768)
        ans = self.br("click", selector="#approve")
        # Landed on the agent's listener with code, state and iss (RFC 9207).
        url = urllib.parse.urlsplit(ans["url"])
        self.assertEqual("%s://%s%s" % (url.scheme, url.netloc, url.path), self.redirect, ans)
        q = urllib.parse.parse_qs(url.query)
        self.assertEqual(q.get("state"), [state], q)
        self.assertEqual(q.get("iss"), [self.d.issuer()], q)
        self.assertEqual(len(q.get("code", [])), 1, q)
        self.assertEqual(ans["chain"][-1]["status"], 303, ans["chain"])
        self.assertTrue(any(p.startswith("/cb?") for p in self.cb.seen), self.cb.seen)
        # The code is real: PKCE redemption gives a token for the resource.
        r = a.redeem(self.d, client["client_id"], q["code"][0], verifier, self.redirect)
        self.assertEqual(r.status, 200, r)
        j = self.d.active(r.json()["access_token"], auth=self.admin)
        self.assertEqual(j["sub"], "alice@example.test")
        self.assertEqual(j["client_id"], client["client_id"])
        self.assertIn(a.MCP, j["aud"] if isinstance(j["aud"], list) else [j["aud"]])
        ev = self.events()
        self.assertEqual(ev["dialogs"], [], ev)
        self.assertEqual(ev["pageerrors"], [], ev)

    def consent_in_browser(self, client_id, subject="alice@example.test", extra=()):
        state, verifier = secrets.token_urlsafe(16), a.new_verifier()
        ans = self.br("goto", url=self.authorize_url(client_id, state, verifier, extra=extra))
        ans = self.sign_in_if_asked(ans, subject)
        self.assertEqual(urllib.parse.urlsplit(ans["url"]).path, "/consent", ans)
        return ans

    def test_2_html_in_client_name_is_text(self):
        client = self.register(EVIL)
        self.events()
        ans = self.consent_in_browser(client["client_id"])
        self.assert_page_headers(ans["headers"])
        time.sleep(0.3)  # an onerror would fire once the img failed to load
        ev = self.events()
        self.assertEqual(ev["dialogs"], [], ev)
        self.assertEqual(self.br("eval", expr="document.querySelectorAll('img').length")["value"],
                         0)
        self.assertEqual(self.br("eval", expr="document.querySelectorAll('[onerror]').length")
                         ["value"], 0)
        text = self.br("eval", expr="document.body.innerText")["value"]
        self.assertIn(EVIL, text)
        self.br("screenshot", path=os.path.join(self.shots, "consent-evil-name.png"), full=True)

    def test_3_consent_page_cannot_be_framed(self):
        client = self.register("Framed agent")
        ans = self.consent_in_browser(client["client_id"])
        self.assert_page_headers(ans["headers"])
        consent_url = ans["url"]
        # The framing page is another origin on loopback (same site: the
        # SameSite=Lax cookie would go along, so only XFO/CSP stop it).
        frames = self.frame(consent_url)
        self.assertEqual(len(frames), 1, frames)
        self.assertFalse(frames[0]["approve"], "the consent page rendered inside a frame: %r"
                         % frames)
        self.assertNotIn("Framed agent", frames[0]["text"] or "", frames)
        ev = self.events()
        self.assertTrue(framing_refused(ev), "chromium logged no framing refusal: %r"
                        % ev["console"])
        # The same URL at the top level still works: the block is the frame.
        ans = self.br("goto", url=consent_url)
        self.assertTrue(self.br("eval", expr="!!document.querySelector('#approve')")["value"])

    def test_4_deny_lands_with_access_denied(self):
        client = self.register("Denied agent")
        state, verifier = secrets.token_urlsafe(16), a.new_verifier()
        ans = self.br("goto", url=self.authorize_url(client["client_id"], state, verifier))
        ans = self.sign_in_if_asked(ans, "alice@example.test")
        ans = self.br("click", selector="#deny")
        url = urllib.parse.urlsplit(ans["url"])
        q = urllib.parse.parse_qs(url.query)
        self.assertEqual(q.get("error"), ["access_denied"], ans)
        self.assertEqual(q.get("state"), [state], q)
        self.assertEqual(q.get("iss"), [self.d.issuer()], q)
        self.assertNotIn("code", q)

    def test_5_remembered_consent_and_prompt_consent(self):
        client = self.register("Returning agent")
        self.consent_in_browser(client["client_id"])
        ans = self.br("click", selector="#approve")
        self.assertIn("code", urllib.parse.parse_qs(urllib.parse.urlsplit(ans["url"]).query))
        # The same request again: the grant covers it, straight to the agent.
        state, verifier = secrets.token_urlsafe(16), a.new_verifier()
        ans = self.br("goto", url=self.authorize_url(client["client_id"], state, verifier))
        url = urllib.parse.urlsplit(ans["url"])
        self.assertEqual("%s://%s%s" % (url.scheme, url.netloc, url.path), self.redirect, ans)
        q = urllib.parse.parse_qs(url.query)
        self.assertEqual(q.get("state"), [state], q)
        self.assertEqual(q.get("iss"), [self.d.issuer()], q)
        r = a.redeem(self.d, client["client_id"], q["code"][0], verifier, self.redirect)
        self.assertEqual(r.status, 200, r)
        # prompt=consent asks again.
        ans = self.consent_in_browser(client["client_id"], extra=[("prompt", "consent")])
        self.assertTrue(self.br("eval", expr="!!document.querySelector('#approve')")["value"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
