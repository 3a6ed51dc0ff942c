"""IdP side of the event tests: keys made at test time with the openssl CLI,
JWS (RS256, PS256, ES256, ES384) signed with `openssl dgst`, JWKS built from
the public keys, Standard Webhooks signatures with hmac, and the IdP trust
file tokend reads. For the upstream sign-in (login = oidc): the certified
Node OpenID provider (npm oidc-provider, tests/interop/idp.mjs) started per
suite, the user's browser at it, and the steps that drive its interaction
pages. Python standard library plus the openssl binary only (and node for
the OpenID provider)."""

import base64
import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import harness as h
from as_http import Page

ISS = "https://idp.test/realms/acme"
AUD = "tokend-rp"
BCL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"


def b64u(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _run(argv, data=None):
    p = subprocess.run(argv, input=data, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(argv), p.stderr.decode(errors="replace")))
    return p.stdout


class Key:
    """A private key in a PEM file, its public PEM and its JWK."""

    def __init__(self, folder, name, kind, kid=None):
        self.kind = kind  # "rsa", "p256", "p384"
        self.kid = kid
        self.path = os.path.join(folder, name + ".pem")
        self.pub_path = os.path.join(folder, name + ".pub.pem")
        if kind == "rsa":
            _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", self.path])
        else:
            curve = "P-256" if kind == "p256" else "P-384"
            _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:" + curve, "-out", self.path])
        _run(["openssl", "pkey", "-in", self.path, "-pubout", "-out", self.pub_path])
        with open(self.pub_path, "rb") as f:
            self.pub_pem = f.read()

    def jwk(self):
        if self.kind == "rsa":
            out = _run(["openssl", "rsa", "-pubin", "-in", self.pub_path, "-modulus", "-noout"])
            n = bytes.fromhex(out.decode().strip().split("=", 1)[1])
            k = {"kty": "RSA", "n": b64u(n), "e": b64u(b"\x01\x00\x01")}
        else:
            der = _run(["openssl", "pkey", "-pubin", "-in", self.pub_path, "-outform", "DER"])
            size = 32 if self.kind == "p256" else 48
            point = der[-(1 + 2 * size):]
            assert point[0] == 4
            k = {"kty": "EC", "crv": "P-256" if size == 32 else "P-384",
                 "x": b64u(point[1:1 + size]), "y": b64u(point[1 + size:])}
        if self.kid is not None:
            k["kid"] = self.kid
        return k

    def sign(self, alg, data):
        digest = {"256": "-sha256", "384": "-sha384", "512": "-sha512"}[alg[2:]]
        argv = ["openssl", "dgst", digest, "-sign", self.path]
        if alg.startswith("PS"):
            argv[3:3] = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
        sig = _run(argv, data)
        if alg.startswith("ES"):
            sig = der_to_raw(sig, 32 if alg == "ES256" else 48)
        return sig


def der_to_raw(der, size):
    """ECDSA DER SEQUENCE{INTEGER r, INTEGER s} -> r || s, fixed size."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(size, b"\x00")
        i += 2 + n
    return out


def jws(header, claims, key=None, alg=None, sig=None):
    """Compact JWS. header/claims: dicts (or raw bytes). sig overrides."""
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    cb = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = (b64u(hb) + "." + b64u(cb)).encode()
    if sig is None:
        sig = key.sign(alg or header["alg"], signing_input) if key is not None else b""
    return signing_input.decode() + "." + b64u(sig)


def hs256(secret, header, claims):
    hb, cb = json.dumps(header).encode(), json.dumps(claims).encode()
    si = (b64u(hb) + "." + b64u(cb)).encode()
    return si.decode() + "." + b64u(hmac.new(secret, si, hashlib.sha256).digest())


def logout_claims(sid=None, sub=None, iss=ISS, aud=AUD, **extra):
    now = int(time.time())
    c = {"iss": iss, "aud": aud, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4()),
         "events": {BCL_EVENT: {}}}
    if sid is not None:
        c["sid"] = sid
    if sub is not None:
        c["sub"] = sub
    c.update(extra)
    return c


def set_claims(event, payload, sub_id, iss=ISS, aud=AUD, **extra):
    c = {"iss": iss, "aud": aud, "iat": int(time.time()), "jti": str(uuid.uuid4()),
         "sub_id": sub_id, "events": {CAEP + event: payload}}
    c.update(extra)
    return c


def complex_subject(iss, sub=None, session=None):
    s = {"format": "complex"}
    if sub is not None:
        s["user"] = {"format": "iss_sub", "iss": iss, "sub": sub}
    if session is not None:
        s["session"] = {"format": "opaque", "id": session}
    return s


# ---- Standard Webhooks ---------------------------------------------------------------


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def webhook_signature(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, ("%s.%s." % (msg_id, ts)).encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_request(secrets, body, msg_id=None, ts=None, sigs=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    ts = str(int(time.time()) if ts is None else ts)
    if sigs is None:
        sigs = " ".join(webhook_signature(s, msg_id, ts, body) for s in secrets)
    headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sigs}
    return h.build_request("POST", "/webhooks/session-terminated", body, headers,
                           "application/json")


# ---- tokend side ---------------------------------------------------------------------------


def write_config(path, issuers):
    with open(path + ".tmp", "w") as f:
        json.dump({"issuers": issuers}, f, indent=1)
    os.replace(path + ".tmp", path)


def post_logout(d, token, conn=None):
    data = h.build_request("POST", "/backchannel-logout", h.form({"logout_token": token}),
                           None, h.FORM)
    if conn is not None:
        conn.send(data)
        return conn.read_response()
    return d.raw(data)


def post_set(d, token, bearer=None, ctype="application/secevent+jwt"):
    headers = {"Authorization": "Bearer " + bearer} if bearer else None
    return d.raw(h.build_request("POST", "/ssf/events", token, headers, ctype))


def audit(d):
    return d.ctl("audit")


def session(d, sub, iss=ISS, idp_sid=None):
    args = ["session", "create", "--sub", sub, "--idp-iss", iss]
    if idp_sid is not None:
        args += ["--idp-sid", idp_sid]
    return d.ctl(*args)["sid"]


def grep_log(d, pattern):
    return re.search(pattern, d.stderr()) is not None


# ---- A daemon that trusts test IdPs -----------------------------------------------------

HYDRA = "https://hydra.test"  # omits exp and typ JWT: allow_missing_exp, one key, no kid
SSF_ISS = "https://ssf.test"  # SET transmitter with a bearer token


class IdpCase(h.DaemonCase):
    """A daemon with an IdP trust file: ISS (RSA kid rsa-1, EC P-256 ec-1, EC
    P-384 ec-384; RS256/PS256/ES256/ES384; two webhook secrets), HYDRA and
    SSF_ISS. Keys are generated once per class. extra_args: more tokend
    arguments."""

    extra_args = ()

    @classmethod
    def setUpClass(cls):
        import tempfile
        import shutil
        cls.keydir = tempfile.mkdtemp(prefix="tokend-idp-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.rsa = Key(cls.keydir, "rsa", "rsa", "rsa-1")
        cls.ec = Key(cls.keydir, "ec", "p256", "ec-1")
        cls.ec384 = Key(cls.keydir, "ec384", "p384", "ec-384")
        cls.hydra_key = Key(cls.keydir, "hydra", "rsa")
        cls.secrets = [new_secret(), new_secret()]
        cls.bearer = "ssf-" + uuid.uuid4().hex
        cls.config = os.path.join(cls.keydir, "idp.json")
        cls.issuers = cls.default_issuers()
        write_config(cls.config, cls.issuers)
        cls.daemon_args = ("--idp-config", cls.config) + tuple(cls.extra_args)
        super().setUpClass()

    @classmethod
    def default_issuers(cls):
        return [
            {"issuer": ISS, "audience": AUD,
             "jwks": {"keys": [cls.rsa.jwk(), cls.ec.jwk(), cls.ec384.jwk()]},
             "algorithms": ["RS256", "PS256", "ES256", "ES384"],
             "webhook_secrets": cls.secrets},
            {"issuer": HYDRA, "audience": AUD, "allow_missing_exp": True,
             "keys": [{"pem_file": os.path.basename(cls.hydra_key.pub_path)}]},
            {"issuer": SSF_ISS, "audience": AUD, "ssf_bearer": cls.bearer,
             "jwks": {"keys": [cls.ec.jwk()]}, "credential_change": "suspend"},
        ]

    def chain(self, sid):
        """root (agent a) -> child (agent b) -> grandchild (agent c), all active."""
        root = self.d.issue(sid, self.w.a, "read write")["access_token"]
        child = self.d.issue(sid, self.w.b, "read", parent=root)["access_token"]
        grand = self.d.issue(sid, self.w.c, "read", parent=child)["access_token"]
        for t in (root, child, grand):
            self.assertActive(t)
        return [root, child, grand]

    def logout_token(self, claims, key=None, alg="RS256", typ="logout+jwt", kid=None):
        key = key or self.rsa
        header = {"alg": alg, "typ": typ, "kid": kid or key.kid}
        if typ is None:
            del header["typ"]
        if header["kid"] is None:
            del header["kid"]
        return jws(header, claims, key)

    def set_token(self, claims, key=None, alg="ES256"):
        key = key or self.ec
        return jws({"alg": alg, "typ": "secevent+jwt", "kid": key.kid}, claims, key)


# ---- The upstream OpenID provider (npm oidc-provider) ---------------------------------

INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")
NODE = shutil.which("node")
HAVE_OP = NODE is not None and os.path.isdir(os.path.join(INTEROP, "node_modules",
                                                          "oidc-provider"))


def require_op():
    """Exit 77 (ctest: skipped) unless node and oidc-provider are installed."""
    if not HAVE_OP:
        sys.stderr.write("skipped: node or tests/interop/node_modules/oidc-provider missing "
                         "(run `npm ci` in tests/interop)\n")
        sys.exit(77)


def start_op(cls, folder, tokend, *args, name=None):
    """oidc-provider (tests/interop/idp.mjs) on a free loopback port for the
    class cls (killed at its cleanup), its client being the tokend at base
    URL tokend; args follow (CLIENT_SECRET [EMAIL_DOMAIN [USERS
    [CLIENT_JWKS_FILE]]], see idp.mjs). Returns its issuer."""
    port = h.free_port()
    log = open(os.path.join(folder, "%s.log" % (name or "idp-%d" % port)), "w+")
    p = subprocess.Popen([NODE, os.path.join(INTEROP, "idp.mjs"), str(port), tokend] +
                         list(args), cwd=INTEROP, stdout=subprocess.PIPE, stderr=log, text=True,
                         preexec_fn=h._die_with_parent)
    cls.addClassCleanup(log.close)
    cls.addClassCleanup(p.stdout.close)
    cls.addClassCleanup(p.wait)
    cls.addClassCleanup(p.kill)
    line = p.stdout.readline()
    if not line.startswith("ready "):
        log.seek(0)
        raise AssertionError("oidc-provider %s did not start: %r %s" % (name or "", line,
                                                                         log.read()))
    return line.split()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class IdpBrowser:
    """The user's browser at the IdP: a cookie jar, redirects by hand."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())

    def go(self, url, data=None):
        """(status, headers, body) of one request."""
        req = urllib.request.Request(url, data=data)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()


def form_of(body, base):
    """(absolute action, {hidden inputs}) of the first form of a page."""
    p = Page(body)
    forms = p.tags("form")
    if not forms:
        raise AssertionError("no form in %r" % body[:400])
    action = urllib.parse.urljoin(base, forms[0].get("action", ""))
    return action, p.hidden()


class OpSteps:
    """The user's steps at oidc-provider, for a TestCase whose self.d is the
    tokend the provider sends the browser back to."""

    def sign_in_at_op(self, ib, auth_url, user):
        """Drive oidc-provider's interaction pages until it sends the
        browser back to tokend; returns that callback URL."""
        url = auth_url
        for _ in range(12):
            status, hdrs, body = ib.go(url)
            if status in (302, 303):
                url = urllib.parse.urljoin(url, hdrs["Location"])
                if url.startswith("http://127.0.0.1:%d/" % self.d.port):
                    return url
                continue
            self.assertEqual(status, 200, body[:500])
            action, fields = form_of(body, url)
            if fields.get("prompt") == "login":
                fields.update(login=user, password="any")
            status, hdrs, body = ib.go(action, urllib.parse.urlencode(fields).encode())
            self.assertIn(status, (302, 303), body[:500])
            url = urllib.parse.urljoin(action, hdrs["Location"])
            if url.startswith("http://127.0.0.1:%d/" % self.d.port):
                return url
        raise AssertionError("oidc-provider never sent the browser back")

    def log_out_at_op(self, ib, end_url):
        """Confirm the sign-out on oidc-provider's end-session page at
        end_url (the provider posts its logout token to tokend before it
        answers)."""
        status, hdrs, body = ib.go(end_url)
        self.assertEqual(status, 200, body[:300])
        action, fields = form_of(body, end_url)
        fields["logout"] = "yes"
        status, hdrs, body = ib.go(action, urllib.parse.urlencode(fields).encode())
        self.assertIn(status, (200, 302, 303), body[:300])
