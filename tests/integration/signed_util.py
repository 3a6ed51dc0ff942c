"""Helpers for the RFC 9701 tests (test_signed_introspection.py,
test_signed_interop.py): signed introspection requests, JWS decoding
without verification, and the RFC 7638 thumbprint of an EC JWK."""

import base64
import hashlib
import json

import harness as h

JWT_TYPE = "application/token-introspection+jwt"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def introspect_request(token, client, accepts=(JWT_TYPE,)):
    """The bytes of POST /introspect authenticated as client (Basic), with
    one Accept header per value of accepts (none when empty)."""
    body = h.form([("token", token)]).encode("ascii")
    lines = ["POST /introspect HTTP/1.1", "Host: 127.0.0.1", "Content-Type: " + h.FORM,
             "Authorization: " + client.basic()]
    lines += ["Accept: " + a for a in accepts]
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def decode(jws):
    """(header, payload, signature bytes) of a compact JWS, unverified."""
    parts = jws.split(".")
    assert len(parts) == 3, jws
    return json.loads(b64d(parts[0])), json.loads(b64d(parts[1])), b64d(parts[2])


def thumbprint(jwk):
    """RFC 7638 §3.2 for an EC key: the required members, sorted, compact."""
    canon = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"),
                       sort_keys=True)
    return b64e(hashlib.sha256(canon.encode("ascii")).digest())


def jwks(d):
    r = d.request("GET", "/jwks.json")
    assert r.status == 200, r
    return r.json()


def kids(d):
    return [k["kid"] for k in jwks(d)["keys"]]
