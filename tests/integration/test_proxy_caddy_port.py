"""Interop: Caddy (tools/proxy/Caddyfile as shipped) on a non-default port in
front of a resource whose identifier carries that port (issue 11 §7; the
shared test is proxies.PortFlow): forward_auth must pass the Host with its
port on to tokend."""

import shutil
import sys
import unittest

import harness as h
import proxies

h.require_binaries()
if not shutil.which("caddy"):
    sys.stderr.write("skipped: caddy is not installed (tools/test installs it)\n")
    sys.exit(77)


class CaddyNonDefaultPort(proxies.PortFlow, unittest.TestCase):
    start_proxy = staticmethod(
        lambda tokend, app, port: proxies.start_caddy(tokend, app, port=port, site_host="127.0.0.1"))


if __name__ == "__main__":
    unittest.main()
