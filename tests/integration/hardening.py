"""Helpers shared by the hardening tests (crash, hostile clients, exhaustion):
pipelined introspection of many tokens, a seeded store, a raised descriptor
limit, and log scanning. Built on harness.py; standard library only."""

import os
import resource
import socket
import time

import harness as h


def introspect_many(d, tokens, auth, chunk=100):
    """Introspect every token over one keep-alive connection, `chunk`
    requests in flight at a time. Returns {token: active (bool)}."""
    out = {}
    tokens = list(tokens)
    with d.conn() as c:
        for i in range(0, len(tokens), chunk):
            part = tokens[i:i + chunk]
            c.send(b"".join(h.auth_request("/introspect", t, auth) for t in part))
            for t in part:
                r = c.read_response()
                if r.status != 200:
                    raise AssertionError("introspect -> %r" % r)
                out[t] = r.json().get("active") is True
    return out


def seed(d, agent, sessions, per_session):
    """Bulk-load sessions x per_session access tokens of `agent` with
    tokenctl seed; returns the token strings in file order."""
    out = os.path.join(d.data_dir, "seeded-tokens")
    d.ctl("seed", "--sessions", sessions, "--tokens-per-session", per_session,
          "--out", out, "--client", agent.id)
    with open(out) as f:
        return [line.strip() for line in f if line.strip()]


def raise_nofile(want):
    """Raise this process's soft RLIMIT_NOFILE towards `want` (children
    inherit it). Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def log_lines(d, event):
    """The daemon's logfmt lines carrying event=<event>."""
    return [l for l in d.stderr(tail=1 << 22).splitlines() if ("event=%s " % event) in l + " "]


def wait_for(pred, timeout, step=0.02):
    """Poll pred() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def conn_from(port, src, timeout=h.IO_TIMEOUT):
    """A harness Conn to 127.0.0.1:port whose source address is `src`
    (any 127.0.0.0/8 address works on loopback)."""
    c = h.Conn.__new__(h.Conn)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                      source_address=(src, 0))
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.buf = b""
    c.eof = False
    return c
