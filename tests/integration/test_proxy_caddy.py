"""Interop: Debian's Caddy with forward_auth in front of an app, asking the real
tokend (tools/proxy/Caddyfile as shipped, addresses rewritten)."""

import shutil
import sys
import unittest

import harness as h
import proxies

h.require_binaries()
if not shutil.which("caddy"):
    sys.stderr.write("skipped: caddy is not installed (tools/test installs it)\n")
    sys.exit(77)


class Caddy(proxies.ProxyFlow, unittest.TestCase):
    start_proxy = staticmethod(proxies.start_caddy)


if __name__ == "__main__":
    unittest.main()
