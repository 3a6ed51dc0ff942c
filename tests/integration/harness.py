"""Integration-test harness: runs the real tokend and tokenctl.

Each test starts `tokend` on an ephemeral port with a fresh LMDB folder, talks
to it over real sockets, and drives `tokenctl` on the same folder. Binaries
come from the TOKEND_BIN and TOKENCTL_BIN environment variables (set by
ctest); a test file exits 77 (skipped) when they are missing. Only the Python
standard library is used.
"""

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

TOKEND_BIN = os.environ.get("TOKEND_BIN", "")
TOKENCTL_BIN = os.environ.get("TOKENCTL_BIN", "")

START_TIMEOUT = 10.0  # seconds to wait for the port file
STOP_TIMEOUT = 15.0  # seconds SIGTERM may take
IO_TIMEOUT = 10.0  # seconds any socket read may block
CTL_TIMEOUT = 60.0  # seconds one tokenctl run may take

TOKEN_LEN = 50
INACTIVE = {"active": False}


def require_binaries():
    """Exit 77 (ctest: skipped) unless both binaries exist."""
    for name, path in (("TOKEND_BIN", TOKEND_BIN), ("TOKENCTL_BIN", TOKENCTL_BIN)):
        if not path or not os.access(path, os.X_OK):
            sys.stderr.write("skipped: %s is not an executable (%r)\n" % (name, path))
            sys.exit(77)


def free_port():
    """A loopback TCP port free at this moment (for a server the test starts
    next, or a URL nothing answers at)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, step=0.05):
    """Poll pred() until it is true or timeout seconds have passed; returns
    its last value (for assertTrue)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def wait_until(pred, timeout=10.0, what="condition"):
    """wait_for, failing with "timed out waiting for <what>" instead."""
    v = wait_for(pred, timeout)
    if not v:
        raise AssertionError("timed out waiting for " + what)
    return v


def _die_with_parent():
    """In the child before exec: SIGKILL it when the test process dies, so a
    test killed by ctest's timeout leaves no daemon behind (Linux only)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


# ---- tokenctl -----------------------------------------------------------------


class CtlError(AssertionError):
    def __init__(self, args, rc, stdout, stderr):
        super().__init__("tokenctl %s exited %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), rc, stdout.strip(), stderr.strip()))
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def ctl_run(data_dir, *args):
    """Run tokenctl --data DIR ARGS; returns the CompletedProcess (text)."""
    argv = [TOKENCTL_BIN, "--data", data_dir] + [str(a) for a in args]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=CTL_TIMEOUT, env=_env())


def ctl(data_dir, *args):
    """Run tokenctl and return its stdout parsed as JSON; raise on failure."""
    p = ctl_run(data_dir, *args)
    if p.returncode != 0:
        raise CtlError([str(a) for a in args], p.returncode, p.stdout, p.stderr)
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise AssertionError("tokenctl %s printed no JSON (%s): %r"
                             % (" ".join(map(str, args)), e, p.stdout)) from None


# ---- HTTP over raw sockets ----------------------------------------------------


class Response:
    """One parsed HTTP response."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("not JSON (%s): %r" % (e, self.body[:200])) from None

    def closes(self):
        v = self.header("connection")
        return v is not None and "close" in v.lower()

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


# ---- TLS test material -------------------------------------------------------

_TLS = {}


def openssl_run(*args):
    subprocess.run(["openssl"] + [str(a) for a in args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_cert(folder, name, ca, cn="localhost", san="DNS:localhost,IP:127.0.0.1"):
    """A P-256 server certificate for cn/san signed by ca (paths of a
    make_ca result); returns (cert, key) paths in folder."""
    key = os.path.join(folder, name + ".key")
    csr = os.path.join(folder, name + ".csr")
    crt = os.path.join(folder, name + ".pem")
    ext = os.path.join(folder, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % san)
    openssl_run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    openssl_run("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                "-out", crt, "-days", "2", "-extfile", ext)
    return crt, key


def make_ca(folder, name="ca"):
    crt = os.path.join(folder, name + ".pem")
    key = os.path.join(folder, name + ".key")
    openssl_run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                "-subj", "/CN=tokend test CA " + name)
    return crt, key


def tls_material():
    """A CA and a server certificate for localhost/127.0.0.1, made once per
    test process with the openssl CLI: {"ca", "cert", "key", "dir"}."""
    if not _TLS:
        folder = tempfile.mkdtemp(prefix="tokend-tls-")
        import atexit
        atexit.register(shutil.rmtree, folder, True)
        ca = make_ca(folder)
        cert, key = make_cert(folder, "server", ca)
        _TLS.update(ca=ca[0], ca_key=ca[1], cert=cert, key=key, dir=folder)
    return dict(_TLS)


def client_context(cafile=None):
    """What a careful client uses: verification on, hostname checked."""
    ctx = ssl.create_default_context(cafile=cafile or tls_material()["ca"])
    return ctx


class Conn:
    """A client connection that sends exact bytes and parses responses;
    over TLS (verified against ctx, as localhost) when ctx is given."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, ctx=None, session=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost",
                                        session=session)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        try:
            self.sock.sendall(data)
        except ssl.SSLEOFError as e:  # the peer closed: as a plain socket says it
            raise BrokenPipeError(str(e))

    def send_tolerant(self, data):
        """Send, ignoring a peer that already closed (it may answer early)."""
        try:
            self.send(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def _fill(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, head_request=False):
        """Read exactly one response (Content-Length framed)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("connection closed before a response head; got %r"
                                     % self.buf[:200])
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise AssertionError("bad status line %r" % lines[0])
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                raise AssertionError("bad header line %r" % line)
            headers.append((k.strip().lower(), v.strip()))
        length = 0
        for k, v in headers:
            if k == "content-length":
                length = int(v)
        if head_request or status in (204, 304) or 100 <= status < 200:
            length = 0
        while len(rest) < length:
            self.buf = head + b"\r\n\r\n" + rest
            if not self._fill():
                raise AssertionError("connection closed inside a body (%d of %d bytes)"
                                     % (len(rest), length))
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[length:]
        return Response(status, reason, headers, rest[:length])

    def request(self, method, path, body=b"", headers=None, content_type=None):
        self.send(build_request(method, path, body, headers, content_type))
        return self.read_response(head_request=(method == "HEAD"))

    def wait_closed(self, timeout=5.0):
        """Drain whatever the peer sends (e.g. a 408) until it closes.
        True on EOF or reset within timeout, False when still open."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    return True
                except socket.timeout:
                    return False
                if not chunk:
                    self.eof = True
                    return True
                self.buf += chunk
        finally:
            self.sock.settimeout(IO_TIMEOUT)

    def reset(self):
        """Close with an RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def is_closed(self, timeout=5.0):
        """True when the peer closes the connection (EOF or reset) in time,
        with no further bytes sent."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1)
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        if chunk:
            self.buf += chunk
            return False
        self.eof = True
        return True


def build_request(method, path, body=b"", headers=None, content_type=None):
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    if content_type is not None:
        lines.append("Content-Type: " + content_type)
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if body or method == "POST":
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


FORM = "application/x-www-form-urlencoded"


def form(pairs):
    """Form-encode a dict or a list of pairs (order kept)."""
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    return urllib.parse.urlencode(pairs)


def pct_all(s):
    """Percent-encode every byte (still a valid form-urlencoded value)."""
    return "".join("%%%02X" % b for b in s.encode("utf-8"))


def basic(client_id, secret, encode=None):
    """Authorization header value for client_secret_basic (RFC 6749 §2.3.1):
    id and secret form-encoded, then base64 of "id:secret"."""
    enc = encode or (lambda s: urllib.parse.quote_plus(s, safe=""))
    raw = "%s:%s" % (enc(client_id), enc(secret))
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


class Client:
    """Credentials of a registered client (from tokenctl client add)."""

    def __init__(self, rec):
        self.rec = rec
        self.id = rec["client_id"]
        self.secret = rec.get("client_secret", "")
        self.role = rec.get("role")

    def basic(self):
        return basic(self.id, self.secret)


NOAUTH = object()  # introspect/revoke without any credentials


def auth_request(path, token=None, auth=None, extra=None, method="post"):
    """Build the bytes of a POST to path with token, authenticated as auth.

    auth: a Client (client_secret_basic), ("post", Client) for
    client_secret_post, ("both", Client) for both at once, NOAUTH for none,
    or a raw Authorization header string."""
    pairs = []
    if token is not None:
        pairs.append(("token", token))
    headers = {}
    if isinstance(auth, Client):
        headers["Authorization"] = auth.basic()
    elif isinstance(auth, tuple) and auth[0] == "post":
        pairs += [("client_id", auth[1].id), ("client_secret", auth[1].secret)]
    elif isinstance(auth, tuple) and auth[0] == "both":
        headers["Authorization"] = auth[1].basic()
        pairs += [("client_id", auth[1].id), ("client_secret", auth[1].secret)]
    elif isinstance(auth, str):
        headers["Authorization"] = auth
    elif auth is NOAUTH or auth is None:
        pass
    else:
        raise ValueError("bad auth %r" % (auth,))
    pairs += list(extra or [])
    return build_request("POST", path, form(pairs), headers, FORM)


# ---- The daemon ---------------------------------------------------------------


class Tokend:
    """One tokend process on an ephemeral port. /metrics is served on its own
    listener: by default an ephemeral loopback port (metrics_port), or what
    metrics_listen says (None: tokend's own default, "off": none)."""

    def __init__(self, data_dir, args=(), workers=2, metrics_listen="127.0.0.1:0", tls=False):
        """tls: also listen with TLS (tls_port, test certificates from
        tls_material) and make conn() and everything built on it speak TLS."""
        self.tls = tls
        self.tls_port = None
        self.data_dir = data_dir
        self.args = [str(a) for a in args]
        self.workers = workers
        self.metrics_listen = metrics_listen
        self.proc = None
        self.port = None
        self.metrics_port = None
        self.default_auth = None  # a Client used by introspect/revoke
        self._n = 0

    # -- life cycle --

    def start(self):
        assert self.proc is None
        self._n += 1
        if getattr(self, "run_dir", None):
            shutil.rmtree(self.run_dir, ignore_errors=True)
        run = tempfile.mkdtemp(prefix="tokend-run-")
        self.run_dir = run
        self.port_file = os.path.join(run, "port")
        self.metrics_port_file = os.path.join(run, "metrics-port")
        self.stderr_path = os.path.join(run, "stderr.log")
        # listen adds addresses when repeated: the default only when the test
        # names none (its first --listen is listener 0, the port file's).
        plain = [] if "--listen" in self.args else ["--listen", "127.0.0.1:0"]
        argv = [TOKEND_BIN, "--data", self.data_dir] + plain + [
                "--port-file", self.port_file, "--metrics-port-file", self.metrics_port_file,
                "--workers", str(self.workers)]
        if self.metrics_listen is not None:
            argv += ["--metrics-listen", self.metrics_listen]
        self.tls_port_file = os.path.join(run, "tls-port")
        argv += self.args
        if self.tls:  # after the test's own addresses
            m = tls_material()
            argv += ["--listen", "127.0.0.1:0 tls", "--tls-cert", m["cert"], "--tls-key", m["key"],
                     "--tls-port-file", self.tls_port_file]
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, env=_env(),
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            port = self._read_port()
            if port:
                self.port = port
                # Written before the main port file; absent when metrics are off.
                self.metrics_port = self._read_port(self.metrics_port_file)
                self.tls_port = self._read_port(self.tls_port_file)
                return self
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._reap()
                raise AssertionError("tokend exited %s before listening:\n%s"
                                     % (rc, self.stderr()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("tokend wrote no port file within %.0f s:\n%s"
                                     % (START_TIMEOUT, self.stderr()))
            time.sleep(0.02)

    def _read_port(self, path=None):
        try:
            with open(path or self.port_file) as f:
                s = f.read()
        except FileNotFoundError:
            return None
        if not s.endswith("\n") or not s.strip().isdigit():
            return None
        return int(s)

    def stderr(self, tail=20000):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
        except (OSError, AttributeError):
            return ""
        return data[-tail:].decode("utf-8", "replace")

    def _reap(self):
        self.proc = None
        try:
            self._err.close()
        except OSError:
            pass

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the process; returns its exit code or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def join(self, timeout=STOP_TIMEOUT):
        """Wait for an exit already asked for; returns the exit code (the
        process is then gone) or None on timeout (still running)."""
        rc = self.wait_exit(timeout)
        if rc is not None:
            self._reap()
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Graceful stop: send sig, assert exit code 0 within timeout."""
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
            raise AssertionError("tokend did not exit within %.0f s of %s:\n%s"
                                 % (timeout, signal.Signals(sig).name, self.stderr()))
        out = self.stderr()
        self._reap()
        if rc != 0:
            raise AssertionError("tokend exited %d after %s (want 0):\n%s"
                                 % (rc, signal.Signals(sig).name, out))

    def kill(self):
        """Cleanup path: no questions asked."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reap()

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.kill()
        if getattr(self, "run_dir", None):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- tokenctl on the same folder --

    def ctl(self, *args):
        return ctl(self.data_dir, *args)

    def ctl_run(self, *args):
        return ctl_run(self.data_dir, *args)

    # -- HTTP --

    def conn(self):
        """A connection to the API: over TLS when this tokend was started with tls."""
        return self.tls_conn() if self.tls else Conn(self.port)

    def plain_conn(self):
        return Conn(self.port)

    def tls_conn(self, ctx=None, session=None):
        if not self.tls_port:
            raise AssertionError("this tokend has no TLS listener")
        return Conn(self.tls_port, ctx=ctx or client_context(), session=session)

    def request(self, method, path, body=b"", headers=None, content_type=None):
        """One request on a fresh connection."""
        with self.conn() as c:
            return c.request(method, path, body, headers, content_type)

    def metrics_request(self, method="GET", path="/metrics", headers=None):
        """One request to the metrics listener on a fresh connection."""
        if not self.metrics_port:
            raise AssertionError("this tokend has no metrics listener")
        with Conn(self.metrics_port) as c:
            return c.request(method, path, b"", headers)

    def metrics_text(self, headers=None):
        """The /metrics page from the metrics listener, asserting 200."""
        r = self.metrics_request(headers=headers)
        if r.status != 200:
            raise AssertionError("/metrics -> %d %r" % (r.status, r.body))
        return r.body.decode()

    def raw(self, data):
        """Send exact bytes on a fresh connection; return the first response."""
        with self.conn() as c:
            c.send_tolerant(data)
            return c.read_response()

    def _auth(self, auth):
        return self.default_auth if auth is None else auth

    def introspect(self, token, auth=None, extra=None, conn=None):
        data = auth_request("/introspect", token, self._auth(auth), extra)
        if conn is not None:
            conn.send(data)
            return conn.read_response()
        return self.raw(data)

    def revoke(self, token, auth=None, extra=None, conn=None):
        data = auth_request("/revoke", token, self._auth(auth), extra)
        if conn is not None:
            conn.send(data)
            return conn.read_response()
        return self.raw(data)

    def active(self, token, auth=None):
        """The introspection answer's JSON, asserting 200."""
        r = self.introspect(token, auth)
        if r.status != 200:
            raise AssertionError("introspect -> %d %r" % (r.status, r.body))
        return r.json()

    # -- fixtures --

    def add_client(self, role, name=None, scope=None, resource=None, pending=False):
        args = ["client", "add", "--name", name or ("%s-%d" % (role, time.monotonic_ns())),
                "--role", role]
        if scope is not None:
            args += ["--scope", scope]
        if resource is not None:
            args += ["--resource", resource]
        if pending:
            args.append("--pending")
        return Client(self.ctl(*args))

    def new_session(self, sub="alice", ttl=None):
        args = ["session", "create", "--sub", sub]
        if ttl is not None:
            args += ["--ttl", ttl]
        return self.ctl(*args)["sid"]

    def issue(self, sid, client, scope="read write", aud=None, parent=None, ttl=None,
              nbf_in=None, refresh=False):
        args = ["token", "issue", "--sid", sid, "--client",
                client.id if isinstance(client, Client) else client, "--scope", scope]
        if aud is not None:
            args += ["--aud", aud]
        if parent is not None:
            args += ["--parent", parent]
        if ttl is not None:
            args += ["--ttl", ttl]
        if nbf_in is not None:
            args += ["--nbf-in", nbf_in]
        if refresh:
            args.append("--refresh")
        return self.ctl(*args)


AGENT_SCOPE = "read write"


class World:
    """A ready set of clients on a daemon: admin, resource server, agents."""

    def __init__(self, d):
        self.admin = d.add_client("admin", "admin")
        self.rs = d.add_client("resource_server", "rs")
        self.a = d.add_client("agent", "agent-a", scope=AGENT_SCOPE)
        self.b = d.add_client("agent", "agent-b", scope=AGENT_SCOPE)
        self.c = d.add_client("agent", "agent-c", scope=AGENT_SCOPE)
        d.default_auth = self.rs


def start_daemon(args=(), data_dir=None, workers=2, metrics_listen="127.0.0.1:0", tls=False):
    """Start tokend on a new (or given) folder. Caller must call cleanup()."""
    own = data_dir is None
    if own:
        data_dir = tempfile.mkdtemp(prefix="tokend-itest-")
    d = Tokend(data_dir, args, workers, metrics_listen, tls)
    d.own_dir = own
    try:
        d.start()
    except BaseException:
        d.cleanup()
        if own:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return d


def destroy_daemon(d):
    d.cleanup()
    if getattr(d, "own_dir", False):
        shutil.rmtree(d.data_dir, ignore_errors=True)


class TokenAsserts:
    """assertActive / assertInactive against self.d."""

    def assertInactive(self, token, auth=None, msg=None):
        r = self.d.introspect(token, auth)
        self.assertEqual(r.status, 200, msg or r)
        self.assertEqual(r.json(), INACTIVE, msg)

    def assertActive(self, token, auth=None, msg=None):
        r = self.d.introspect(token, auth)
        self.assertEqual(r.status, 200, msg or r)
        self.assertIs(r.json().get("active"), True, msg or r)
        return r.json()


class DaemonCase(TokenAsserts, unittest.TestCase):
    """One tokend (and World) shared by every test of the class; the class
    cleanup kills it and removes its folder even when tests fail."""

    daemon_args = ()
    with_world = True
    tls = False  # conn(), request(), introspect() … over TLS

    @classmethod
    def setUpClass(cls):
        cls.d = start_daemon(cls.daemon_args, tls=cls.tls)
        cls.addClassCleanup(destroy_daemon, cls.d)
        cls.w = World(cls.d) if cls.with_world else None


class FreshCase(TokenAsserts, unittest.TestCase):
    """Tests that each start (and stop) their own daemon(s)."""

    def daemon(self, args=(), data_dir=None, metrics_listen="127.0.0.1:0", tls=False):
        d = start_daemon(args, data_dir, metrics_listen=metrics_listen, tls=tls)
        self.addCleanup(destroy_daemon, d)
        return d

    def tmpdir(self):
        p = tempfile.mkdtemp(prefix="tokend-itest-")
        self.addCleanup(shutil.rmtree, p, True)
        return p
