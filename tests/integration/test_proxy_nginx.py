"""Interop: Debian's nginx with auth_request in front of an app, asking the real
tokend (tools/proxy/nginx.conf as shipped, addresses rewritten), over plain
HTTP and over TLS (proxy_pass https://, the certificate verified)."""

import os
import shutil
import sys
import unittest

import harness as h
import proxies

h.require_binaries()
if not shutil.which("nginx") and not os.access("/usr/sbin/nginx", os.X_OK):
    sys.stderr.write("skipped: nginx is not installed (tools/test installs it)\n")
    sys.exit(77)


class Nginx(proxies.ProxyFlow, unittest.TestCase):
    start_proxy = staticmethod(proxies.start_nginx)


class NginxTLS(Nginx):
    """The same flow with nginx asking an https:// tokend, proxy_ssl_verify on."""
    tls = True


if __name__ == "__main__":
    unittest.main()
