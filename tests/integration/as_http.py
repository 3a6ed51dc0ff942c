"""Helpers for the authorization-server tests (negative suite, crash test,
browser test): a resources file, registration, PKCE, a cookie-keeping
"browser over HTTP" that walks /authorize -> dev login -> consent, and the
/token calls. Everything follows docs in /work/wt/AS_CONTRACT.md (issue 11).
Built on harness.py; standard library only."""

import base64
import hashlib
import html.parser
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse

import harness as h

MCP = "https://mcp.test/mcp"
API = "https://api.test/v1"
RESOURCES = {"resources": [
    # No scope_descriptions: not in the resources file yet (AS_CONTRACT.md deviation 2).
    {"resource": MCP, "name": "MCP test server", "scopes_supported": ["mcp:read", "mcp:write"]},
    {"resource": API, "name": "Other API", "path_prefix": "/v1", "scopes_supported": ["api:read"]},
]}
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REDIRECT = "http://127.0.0.1:8765/cb"


def write_resources(folder, doc=None):
    path = os.path.join(folder, "resources.json")
    with open(path, "w") as f:
        json.dump(doc or RESOURCES, f)
    return path


def as_daemon_args(folder, registration="open", extra=()):
    """tokend arguments for an authorization-server test: dev login, the
    given registration policy, the two-resource file above."""
    return ["--login", "dev", "--registration", registration,
            "--resources", write_resources(folder)] + [str(a) for a in extra]


def engine_present():
    """True when this tokend has the authorization server (issue 11): it
    knows the `login` setting (the unknown --zz-probe makes it exit 2 either
    way, before it opens anything)."""
    folder = tempfile.mkdtemp(prefix="tokend-probe-")
    try:
        p = subprocess.run([h.TOKEND_BIN, "--data", folder, "--listen", "127.0.0.1:0",
                            "--login", "dev", "--zz-probe", "1"], capture_output=True, text=True,
                           timeout=30, env=h._env())
        return 'unknown setting "login"' not in p.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- PKCE ---------------------------------------------------------------------


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def new_verifier():
    return b64u(secrets.token_bytes(32))  # 43 unreserved characters


def s256(verifier):
    return b64u(hashlib.sha256(verifier.encode("ascii")).digest())


# ---- HTML ---------------------------------------------------------------------


class Page(html.parser.HTMLParser):
    """Every element with its attributes (by id and in order), form inputs,
    and the visible text of an HTML page."""

    def __init__(self, body):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self.by_id = {}
        self.text_parts = []
        self._skip = 0
        self.feed(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if "id" in a:
            self.by_id[a["id"]] = (tag, a)
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text_parts.append(data)

    @property
    def text(self):
        return " ".join(" ".join(self.text_parts).split())

    def tags(self, name):
        return [a for t, a in self.elements if t == name]

    def hidden(self):
        """name -> value of every <input> with a name."""
        return {a["name"]: a.get("value", "") for a in self.tags("input") if "name" in a}


# ---- the browser over HTTP ----------------------------------------------------


class Browser:
    """Keeps tokend's cookies like a browser (the __Host-tokend-session one
    in self.cookie, the others, such as the pre-login cookie, in
    self.others) and follows same-origin 303s; stops at the first redirect
    leaving tokend."""

    def __init__(self, d):
        self.d = d
        self.cookie = None
        self.others = {}
        self.last = None
        self.last_path = ""

    def request(self, method, path, body=b"", content_type=None, cookie=True):
        hdrs = {}
        self.last_path = path
        pairs = []
        if cookie and self.cookie:
            pairs.append("__Host-tokend-session=" + self.cookie)
        if cookie:
            pairs += ["%s=%s" % kv for kv in self.others.items()]
        if pairs:
            hdrs["Cookie"] = "; ".join(pairs)
        r = self.d.request(method, path, body, hdrs, content_type)
        for v in r.header_all("set-cookie"):
            name, _, rest = v.partition("=")
            name = name.strip()
            val = rest.split(";", 1)[0]
            if name == "__Host-tokend-session":
                self.cookie = val or None
            elif val and "Max-Age=0" not in v:
                self.others[name] = val
            else:
                self.others.pop(name, None)
        self.last = r
        return r

    def follow(self, r, limit=8):
        """Follow 303s that stay on tokend; returns the last response (a
        page, or a redirect whose Location leaves tokend)."""
        for _ in range(limit):
            if r.status not in (302, 303):
                return r
            loc = r.header("location")
            if loc is None:
                raise AssertionError("redirect without Location: %r" % r)
            p = urllib.parse.urlsplit(loc)
            if p.scheme or p.netloc:
                base = urllib.parse.urlsplit(self.d.issuer())
                if (p.scheme, p.netloc) != (base.scheme, base.netloc):
                    return r
                loc = urllib.parse.urlunsplit(("", "", p.path, p.query, ""))
            r = self.request("GET", loc)
        raise AssertionError("too many redirects")

    def get(self, path):
        return self.follow(self.request("GET", path))

    def post_form(self, path, pairs, follow=True):
        r = self.request("POST", path, h.form(pairs), h.FORM)
        return self.follow(r) if follow else r


class CookieBrowser:
    """A browser at tokend that keeps every cookie tokend sets (session,
    pre-login, sign-in binder; Secure ones too: loopback http in tests) in
    self.cookies and follows nothing."""

    def __init__(self, d):
        self.d = d
        self.cookies = {}

    def request(self, method, path, body=b"", ctype=None):
        hdrs = {}
        if self.cookies:
            hdrs["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        r = self.d.request(method, path, body, hdrs, ctype)
        for v in r.header_all("set-cookie"):
            name, _, rest = v.partition("=")
            val = rest.split(";", 1)[0]
            if val and "Max-Age=0" not in v:
                self.cookies[name.strip()] = val
            else:
                self.cookies.pop(name.strip(), None)
        return r


def issuer(d):
    return "http://127.0.0.1:%d" % d.port


h.Tokend.issuer = issuer  # the issuer tests run with (contract: test hooks)


def location_params(r):
    """(base URL without query, {param: [values]}) of a redirect."""
    loc = r.header("location")
    assert loc is not None, r
    p = urllib.parse.urlsplit(loc)
    return (urllib.parse.urlunsplit((p.scheme, p.netloc, p.path, "", "")),
            urllib.parse.parse_qs(p.query, keep_blank_values=True))


# ---- the authorization server -------------------------------------------------


def register(d, meta, source=None):
    """POST /register; returns the Response."""
    body = meta if isinstance(meta, (bytes, str)) else json.dumps(meta)
    data = h.build_request("POST", "/register", body, None, "application/json")
    if source is None:
        return d.raw(data)
    import hardening as hd
    with hd.conn_from(d.port, source) as c:
        c.send(data)
        return c.read_response()


def public_client(d, name=None, redirect=REDIRECT, grants=("authorization_code", "refresh_token"),
                  **extra):
    meta = {"client_name": name or "agent-%s" % secrets.token_hex(4),
            "token_endpoint_auth_method": "none", "grant_types": list(grants)}
    if redirect is not None:
        meta["redirect_uris"] = [redirect]
    meta.update(extra)
    r = register(d, meta)
    if r.status != 201:
        raise AssertionError("register -> %r" % r)
    return r.json()


def authorize_query(client_id, redirect=REDIRECT, challenge=None, state=None, scope="mcp:read",
                    resource=MCP, method="S256", extra=()):
    pairs = [("response_type", "code"), ("client_id", client_id)]
    if redirect is not None:
        pairs.append(("redirect_uri", redirect))
    if challenge is not None:
        pairs.append(("code_challenge", challenge))
    if method is not None:
        pairs.append(("code_challenge_method", method))
    if state is not None:
        pairs.append(("state", state))
    if scope is not None:
        pairs.append(("scope", scope))
    if resource is not None:
        pairs.append(("resource", resource))
    pairs += list(extra)
    return "/authorize?" + h.form(pairs)


class Flow:
    """One authorization request walked by a Browser up to the consent page
    (or a redirect), with its PKCE verifier and state."""

    def __init__(self, browser, client_id, redirect=REDIRECT, scope="mcp:read", resource=MCP,
                 subject="alice", extra=()):
        self.b = browser
        self.client_id = client_id
        self.redirect = redirect
        self.verifier = new_verifier()
        self.state = secrets.token_urlsafe(16)
        self.subject = subject
        self.query = authorize_query(client_id, redirect, s256(self.verifier), self.state,
                                     scope, resource, extra=extra)

    def start(self):
        """GET /authorize, signing in on the dev login page when asked.
        Returns the last response: the consent page (200) or a redirect."""
        r = self.b.get(self.query)
        if r.status == 200 and self.b.last_path.startswith("/login"):
            page = Page(r.body)
            fields = page.hidden()
            fields["subject"] = self.subject
            r = self.b.post_form("/login", list(fields.items()))
        self.resp = r
        return r

    def consent_fields(self):
        page = Page(self.resp.body)
        f = page.hidden()
        if "request" not in f or "csrf" not in f:
            raise AssertionError("no consent form: %r" % self.resp)
        return f

    def decide(self, decision="approve", fields=None):
        f = dict(fields or self.consent_fields())
        f["decision"] = decision
        return self.b.post_form("/consent", list(f.items()))


def code_from(r, redirect=REDIRECT):
    """The code of a successful authorization redirect, asserting state/iss."""
    assert r.status in (302, 303), r
    base, q = location_params(r)
    assert base == redirect, (base, redirect)
    assert "code" in q, q
    return q


def authorize_code(d, browser, client_id, scope="mcp:read", resource=MCP, redirect=REDIRECT,
                   subject="alice", extra=()):
    """Walk a whole authorization; returns (code, verifier). Consents when
    the consent page is shown."""
    f = Flow(browser, client_id, redirect, scope, resource, subject, extra)
    r = f.start()
    if r.status == 200:
        r = f.decide("approve")
    q = code_from(r, redirect)
    assert q.get("state") == [f.state], q
    assert q.get("iss") == [issuer(d)], q
    return q["code"][0], f.verifier


def token(d, pairs, auth=None):
    """POST /token with the pairs (a list); auth: a Basic header value."""
    hdrs = {"Authorization": auth} if auth else None
    return d.raw(h.build_request("POST", "/token", h.form(pairs), hdrs, h.FORM))


def redeem(d, client_id, code, verifier, redirect=REDIRECT, extra=()):
    return token(d, [("grant_type", "authorization_code"), ("code", code),
                     ("redirect_uri", redirect), ("code_verifier", verifier),
                     ("client_id", client_id)] + list(extra))


def refresh(d, client_id, rt, extra=()):
    return token(d, [("grant_type", "refresh_token"), ("refresh_token", rt),
                     ("client_id", client_id)] + list(extra))


def exchange(d, client_id, subject_token, extra=()):
    return token(d, [("grant_type", TOKEN_EXCHANGE), ("subject_token", subject_token),
                     ("subject_token_type", AT_TYPE), ("client_id", client_id)] + list(extra))


def tmpfolder(prefix="tokend-as-"):
    return tempfile.mkdtemp(prefix=prefix)
