"""Interop: nginx (tools/proxy/nginx.conf as shipped) on a non-default port in
front of a resource whose identifier carries that port (issue 11 §7; the
shared test is proxies.PortFlow). The shipped config sends
`X-Forwarded-Host $http_host`, port kept; with `$host` every test here fails."""

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


class NginxNonDefaultPort(proxies.PortFlow, unittest.TestCase):
    start_proxy = staticmethod(lambda tokend, app, port: proxies.start_nginx(tokend, app, port=port))


if __name__ == "__main__":
    unittest.main()
