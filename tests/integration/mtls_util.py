"""Client certificates for the RFC 8705 tests, made with the openssl CLI at
test time: a CA for tls_client_auth (tokend's tls-ca), leaf certificates
signed by it or by another CA, and self-signed ones; each with its DER
SHA-256 (x5t#S256) and the URL-encoded PEM nginx forwards
($ssl_client_escaped_cert)."""

import base64
import hashlib
import os
import ssl
import subprocess
import tempfile
import urllib.parse

import harness as h


class Cert:
    def __init__(self, cert, key):
        self.cert, self.key = cert, key
        with open(cert) as f:
            self.pem = f.read()
        self.der = ssl.PEM_cert_to_DER_cert(self.pem)
        self.sha256 = hashlib.sha256(self.der).digest()
        self.hex = self.sha256.hex()
        self.x5t = base64.urlsafe_b64encode(self.sha256).rstrip(b"=").decode()
        self.escaped = urllib.parse.quote(self.pem, safe="")
        self.rfc9440 = ":" + base64.b64encode(self.der).decode() + ":"

    def context(self):
        """Python's ssl verifying tokend (localhost, the test CA) and
        presenting this certificate."""
        ctx = h.client_context()
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def _ext(folder, name, text):
    p = os.path.join(folder, name + ".ext")
    with open(p, "w") as f:
        f.write(text)
    return p


def client_cert(folder, name, subj, ca=None, san=None):
    """A P-256 client certificate (clientAuth) for subj ("/O=…/CN=…"), signed
    by ca (make_ca paths) or self-signed when ca is None; san: an openssl
    subjectAltName value ("DNS:a,URI:b,IP:c,email:d") or None."""
    key = os.path.join(folder, name + ".key")
    crt = os.path.join(folder, name + ".pem")
    text = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    if san:
        text += "subjectAltName=%s\n" % san
    ext = _ext(folder, name, text)
    if ca is None:
        extra = ("-addext", "subjectAltName=%s" % san) if san else ()
        h.openssl_run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", subj,
                      "-addext", "extendedKeyUsage=clientAuth", *extra)
        return Cert(crt, key)
    csr = os.path.join(folder, name + ".csr")
    h.openssl_run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", subj)
    h.openssl_run("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                  "-out", crt, "-days", "2", "-extfile", ext)
    return Cert(crt, key)


_M = {}
NAMED_SAN = ("DNS:rs.example.com,URI:spiffe://example.org/ns/prod/rs,IP:192.0.2.7,"
             "IP:2001:db8::7,email:ops@Example.org")


def material():
    """Once per process: {"dir", "ca" (tls-ca paths), "rs" (CN=rs mtls,
    O=Example Org under it), "other" (another subject under it), "rogue"
    (rs's subject under another CA), "self" and "self2" (self-signed)}."""
    if not _M:
        folder = tempfile.mkdtemp(prefix="tokend-mtls-")
        import atexit
        import shutil
        atexit.register(shutil.rmtree, folder, True)
        ca = h.make_ca(folder, "ca-clients")
        rogue_ca = h.make_ca(folder, "ca-rogue")
        _M.update(
            dir=folder, ca=ca,
            rs=client_cert(folder, "rs", "/O=Example Org/CN=rs mtls", ca),
            other=client_cert(folder, "other", "/O=Example Org/CN=someone else", ca),
            rogue=client_cert(folder, "rogue", "/O=Example Org/CN=rs mtls", rogue_ca),
            self=client_cert(folder, "self", "/CN=self signed one"),
            self2=client_cert(folder, "self2", "/CN=self signed two"),
            # RFC 8705 §2.1.2: one certificate naming a service four ways
            named=client_cert(folder, "named", "/O=Example Org/CN=named", ca, NAMED_SAN),
            named_rogue=client_cert(folder, "named-rogue", "/O=Example Org/CN=named",
                                    rogue_ca, NAMED_SAN),
            named_self=client_cert(folder, "named-self", "/CN=named", None, NAMED_SAN),
            # the same name past the eighth: not kept, never matched
            named_late=client_cert(folder, "named-late", "/O=Example Org/CN=late", ca,
                                   ",".join("DNS:filler%d.example.com" % i for i in range(8))
                                   + ",DNS:rs.example.com"),
        )
    return _M


def curl_form(port, path, fields, cert=None, cafile=None):
    """POST a form with curl over TLS (presenting cert); (status, body)."""
    import shutil
    curl = shutil.which("curl")
    args = [curl, "-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert",
            cafile or h.tls_material()["ca"], "https://localhost:%d%s" % (port, path),
            "--resolve", "localhost:%d:127.0.0.1" % port]
    for k, v in fields:
        args += ["--data-urlencode", "%s=%s" % (k, v)]
    if cert is not None:
        args += ["--cert", cert.cert, "--key", cert.key]
    out = subprocess.run(args, check=True, capture_output=True, timeout=30).stdout.decode()
    body, _, code = out.rpartition("\n")
    return int(code), body
