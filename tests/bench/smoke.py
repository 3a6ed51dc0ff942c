"""Bench smoke test: every tokend-bench scenario with tiny sizes for about a
second, so the harness cannot rot. Checks that each run exits 0, writes a
well-formed JSON report (schema tokend-bench/1) and an HTML page with inline
SVG, that requests were answered without errors, and that the cascade saw no
stale active:true answer after an end request's 200, that over TLS both
full and resumed handshakes were made, that the token scenarios (code
redemption, refresh rotation, token exchange in turns with revocations) and
forward-auth (tokend's /auth in turns with nginx, and nginx against nginx;
and with DPoP-bound tokens and a fresh proof per request, none refused)
answered every request correctly (tokend-bench exits 1 on a wrong answer) and
report their ratios with per-turn spread, and with --baseline (the tokend
beside the bench again, on its own store) a baseline series per load, the
before/after ratios with their spread in the JSON and the before/after section
in the HTML page; that scale-workers loaded tokend and nginx with 1 and 2
workers at the offered open-loop rate and measured the CPU of nginx's worker
processes; and that cluster mode (three nodes on one nats-server, when
installed) saw every revocation on the other nodes. Timings are not checked.

Usage: smoke.py PATH/TO/tokend-bench   (tokend and tokenctl beside it)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

SCHEMA = "tokend-bench/1"
COMMON = ["--cpu", "-1", "--server-cpu", "-1", "--warmup", "0.1", "--connections", "8"]
TURNS = ["--turn-ms", "200", "--skip-ms", "50"]
RUNS = [
    ("introspect", ["--tokens", "2000", "--duration", "0.5", "--rounds", "1", "--signed"]),
    ("introspect-tls", ["--tokens", "2000", "--duration", "0.5", "--rounds", "1"]),
    ("cascade", ["--k", "1,200", "--repeat", "1", "--duration", "0.6"]),
    ("revoke", ["--tokens", "2000", "--duration", "0.5"]),
    # --baseline: the tokend beside the bench again, on its own store, in turns
    ("revoke", ["--tokens", "2000", "--duration", "0.5", "--rounds", "2", "--baseline", None]),
    ("introspect", ["--tokens", "2000", "--duration", "0.4", "--rounds", "1", "--no-nginx",
                    "--baseline", None]),
    ("scale", ["--tokens", "500,2000", "--duration", "0.4", "--rounds", "1"]),
    ("scale-workers", ["--tokens", "2000", "--duration", "0.4", "--rounds", "1", "--rate", "2000",
                       "--workers", "2"]),
    ("token", ["--grant", "all", "--tokens", "20000", "--duration", "1.8"] + TURNS),
    ("token", ["--grant", "refresh", "--tokens", "5000", "--duration", "0.9"] + TURNS),
    ("token", ["--grant", "all", "--tokens", "20000", "--duration", "3.2", "--baseline", None] +
     TURNS),
    ("forward-auth", ["--duration", "0.9"] + TURNS),
    ("forward-auth", ["--control", "--duration", "0.9"] + TURNS),
    ("forward-auth", ["--duration", "1.2", "--baseline", None] + TURNS),
    ("forward-auth-dpop", ["--duration", "0.9"] + TURNS),
]
if shutil.which("nats-server"):  # cluster mode: three nodes on one nats-server
    # 200: a whole number of seeded sessions (100 tokens each), so the token
    # the background load introspects is past the revoked ones only if the
    # seed holds more than asked for (it once was the last one revoked).
    RUNS.append(("cluster", ["--tokens", "200", "--nats", "1"]))
TOKEN_SERIES = {"code": "tokend token code", "refresh": "tokend token refresh",
                "exchange": "tokend token exchange"}


def fail(msg):
    sys.stderr.write("FAIL: %s\n" % msg)
    sys.exit(1)


def check_report(name, doc):
    for key in ("schema", "scenario", "time", "machine", "config", "series", "metrics",
                "targets", "table"):
        if key not in doc:
            fail("%s: JSON lacks %r" % (name, key))
    if doc["schema"] != SCHEMA or doc["scenario"] != name:
        fail("%s: schema/scenario %r/%r" % (name, doc["schema"], doc["scenario"]))
    if not doc["series"]:
        fail("%s: no series" % name)
    for s in doc["series"]:
        if s["requests"] <= 0 or s["rps"] <= 0:
            fail("%s: series %r answered nothing" % (name, s["name"]))
        errors = {k: v for k, v in s["errors"].items() if v}
        if errors:
            fail("%s: series %r had errors %r" % (name, s["name"], errors))
        lat = s["latency_us"]
        if not 0 < lat["p50"] <= lat["p99"] <= lat["max"] * 1.01:
            fail("%s: series %r latency out of order %r" % (name, s["name"], lat))
        if sum(c for _, c in s["histogram_us"]) != s["requests"]:
            fail("%s: histogram counts differ from requests" % name)
    for t in doc["targets"]:
        if set(t) != {"name", "value", "op", "threshold", "met", "note"}:
            fail("%s: target fields %r" % (name, sorted(t)))


def check_cascade(doc):
    m = doc["metrics"]
    if m.get("stale_answers") != 0:
        fail("cascade: stale answers %r" % m.get("stale_answers"))
    cols = doc["table"]["columns"]
    for row in doc["table"]["rows"]:
        r = dict(zip(cols, row))
        if r["end_status"] != 200 or r["probes_after_ack"] <= 0 or r["active_before"] <= 0:
            fail("cascade: trial %r" % r)


def check_tls(doc):
    """Every server that ran did full and resumed handshakes."""
    m = doc["metrics"]
    for who in ("tokend", "nginx"):
        if who == "nginx" and "nginx_rps" not in m:
            continue
        for kind in ("full", "resumed"):
            v = m.get("%s_%s_handshakes_per_s" % (who, kind), 0)
            if not v > 0:
                fail("introspect-tls: %s %s handshakes %r" % (who, kind, v))


def check_turns(doc, ratio):
    """A turns run: the ratio and its per-turn spread, turns in every series."""
    m = doc["metrics"]
    for key in (ratio, ratio + "_turn_sd", ratio + "_turn_min", ratio + "_turn_max",
                ratio + "_ci95", ratio + "_turns"):
        if key not in m:
            fail("%s: no metric %r" % (doc["scenario"], key))
    if not m[ratio] > 0 or m[ratio + "_turns"] < 1:
        fail("%s: %s %r over %r turns" % (doc["scenario"], ratio, m[ratio], m[ratio + "_turns"]))
    if not m[ratio + "_turn_min"] <= m[ratio + "_turn_median"] <= m[ratio + "_turn_max"]:
        fail("%s: %s spread out of order" % (doc["scenario"], ratio))
    for s in doc["series"]:
        if not s["rounds"] or any(r["rps"] <= 0 for r in s["rounds"]):
            fail("%s: series %r per-turn rates %r" % (doc["scenario"], s["name"], s["rounds"]))


def check_token(doc, args):
    grant = args[args.index("--grant") + 1]
    grants = list(TOKEN_SERIES) if grant == "all" else [grant]
    names = [s["name"] for s in doc["series"]]
    want = [TOKEN_SERIES[g] for g in grants] + ["tokend revoke"]
    if "--baseline" in args:  # each load of the new tokend, then the baseline's
        want = [n for w in want for n in (w, w + " (baseline)")]
    if names != want:
        fail("token: series %r" % names)
    for g in grants:
        check_turns(doc, "ratio_%s_vs_revoke" % g)
        if not doc["metrics"].get("%s_per_s" % g, 0) > 0:
            fail("token: no %s answers" % g)
    if not doc["metrics"]["revocations_per_s"] > 0:
        fail("token: no revocations")
    if "code" in grants and not 0 < doc["metrics"]["codes_redeemed"] <= \
            doc["metrics"]["codes_minted"]:
        fail("token: codes %r" % doc["metrics"])


def check_forward_auth(doc, args):
    names = [s["name"] for s in doc["series"]]
    if "--control" in args:
        if names != ["nginx B (control)", "nginx A (control)"]:
            fail("forward-auth --control: series %r" % names)
        check_turns(doc, "control_ratio")
    else:
        want = ["tokend forward-auth", "nginx return 200"]
        if "--baseline" in args:
            want.append("tokend forward-auth (baseline)")
        if names != want:
            fail("forward-auth: series %r" % names)
        check_turns(doc, "ratio_throughput")


def check_forward_auth_dpop(doc):
    names = [s["name"] for s in doc["series"]]
    if names != ["tokend forward-auth DPoP", "nginx return 200"]:
        fail("forward-auth-dpop: series %r" % names)
    check_turns(doc, "ratio_throughput")
    m = doc["metrics"]
    if not m.get("dpop_proofs_signed_ahead", 0) > 0 or "dpop_proofs_signed_inline" not in m:
        fail("forward-auth-dpop: proof counts %r" % m)


def check_before_after(name, doc, steps, turns):
    """The before/after pairs: one per step, each after/before series named,
    with the ratios; with turns, their per-turn spread."""
    pairs = doc.get("before_after", [])
    names = [s["name"] for s in doc["series"]]
    if [p["name"] for p in pairs] != steps:
        fail("%s --baseline: before/after steps %r" % (name, [p["name"] for p in pairs]))
    for p in pairs:
        if p["after"] not in names or p["before"] not in names or p["after"] == p["before"]:
            fail("%s --baseline: pair %r names no series" % (name, p))
        if not (p["rps_after"] > 0 and p["rps_before"] > 0 and p["ratio_throughput"] > 0 and
                p["ratio_server_cpu"] > 0):
            fail("%s --baseline: pair %r" % (name, p))
        if turns:
            check_turns(doc, "ratio_%s_vs_baseline" % p["name"])
            if "ratio_%s_server_cpu_vs_baseline" % p["name"] not in doc["metrics"]:
                fail("%s --baseline: no CPU ratio for %s" % (name, p["name"]))


def check_baseline(name, doc, args):
    names = [s["name"] for s in doc["series"]]
    if name == "token":
        grant = args[args.index("--grant") + 1]
        steps = (list(TOKEN_SERIES) if grant == "all" else [grant]) + ["revoke"]
        check_before_after(name, doc, steps, True)
        for g in steps[:-1]:  # the baseline's own grants against its own revocations
            check_turns(doc, "baseline_ratio_%s_vs_revoke" % g)
        if doc["config"]["baseline"] != args[args.index("--baseline") + 1]:
            fail("token --baseline: config %r" % doc["config"])
        return
    if name == "forward-auth":
        check_before_after(name, doc, ["auth"], True)
        check_turns(doc, "baseline_ratio_throughput")
        return
    want = "tokend (baseline) revoke" if name == "revoke" else "tokend (baseline)"
    if want not in names or "ratio_throughput_vs_baseline" not in doc["metrics"]:
        fail("%s --baseline: no baseline series or ratio (series %r)" % (name, names))
    check_before_after(name, doc, [name], False)
    if name == "revoke" and (doc["metrics"].get("baseline_revoked_checked", 0) <= 0 or
                             len(doc["series"][1]["rounds"]) != 2):
        fail("revoke --baseline: baseline not checked or not in 2 turns")


def check_scale_workers(doc, args):
    """tokend and nginx with 1 and N workers at the offered rate; nginx's CPU
    includes its worker processes (a master alone would read near 0)."""
    n = int(args[args.index("--workers") + 1])
    names = [s["name"] for s in doc["series"]]
    want = ["tokend 1 worker", "tokend %d workers" % n]
    if os.access("/usr/sbin/nginx", os.X_OK):  # where tokend-bench looks for it
        want += ["nginx 1 worker", "nginx %d workers" % n]
    if names != want:
        fail("scale-workers: series %r" % names)
    m = doc["metrics"]
    if m.get("offered_rps") != float(args[args.index("--rate") + 1]) or m.get("workers") != n:
        fail("scale-workers: offered rate or workers %r" % m)
    for key in ["tokend_1w", "tokend_%dw" % n] + (["nginx_1w", "nginx_%dw" % n]
                                                  if len(want) == 4 else []):
        if not m.get(key + "_achieved_share", 0) > 0 or not m.get(key + "_server_us_per_req",
                                                                     0) > 0:
            fail("scale-workers: %s metrics %r" % (key, m))
    if not m.get("tokend_cpu_ratio_workers", 0) > 0:
        fail("scale-workers: no CPU ratio of %d workers to 1" % n)
    rows = doc["table"]["rows"]
    if doc["table"]["name"] != "workers" or [r[0] for r in rows] != [1, n]:
        fail("scale-workers: table %r" % doc["table"])


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        sys.stderr.write("skipped: no tokend-bench binary\n")
        sys.exit(77)
    bench = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        for i, (name, args) in enumerate(RUNS):
            js, page = (os.path.join(tmp, "%d-%s.json" % (i, name)),
                        os.path.join(tmp, "%d-%s.html" % (i, name)))
            tokend = os.path.join(os.path.dirname(os.path.abspath(bench)), "tokend")
            args = [tokend if a is None else a for a in args]
            cmd = [bench, name] + COMMON + args + ["--json", js, "--html", page]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=120, text=True)
            if proc.returncode != 0:
                fail("%s exited %d:\n%s\n%s" % (cmd, proc.returncode, proc.stdout, proc.stderr))
            with open(js) as f:
                doc = json.load(f)
            check_report(name, doc)
            if name == "cascade":
                check_cascade(doc)
            if name == "introspect-tls":
                check_tls(doc)
            if name == "token":
                check_token(doc, args)
            if name == "forward-auth":
                check_forward_auth(doc, args)
            if name == "forward-auth-dpop":
                check_forward_auth_dpop(doc)
            if name == "cluster" and (doc["metrics"].get("revocations") != 200 or
                                      doc["metrics"].get("background_wrong_answers") != 0 or
                                      "background_stale_503" not in doc["metrics"] or
                                      not 0 < doc["metrics"]["window_p50_us"] <=
                                      doc["metrics"]["window_max_us"]):
                fail("cluster: metrics %r" % doc["metrics"])
            if "--baseline" in args:
                check_baseline(name, doc, args)
            if name == "scale-workers":
                check_scale_workers(doc, args)
            if name == "introspect" and "--signed" in args and (
                    "ratio_signed_vs_plain" not in doc["metrics"] or
                                         "tokend signed (RFC 9701)" not in
                                         [s["name"] for s in doc["series"]]):
                fail("introspect --signed: no signed series or ratio")
            with open(page) as f:
                html = f.read()
            if "<svg" not in html or "http://" in html.replace("http://www.w3.org", ""):
                fail("%s: HTML page lacks SVG or refers to the network" % name)
            if ("--baseline" in args) != ("<h2>Before / after</h2>" in html):
                fail("%s: HTML before/after section present without --baseline or missing" %
                     name)
            print("ok %s: %s" % (name, ", ".join("%s %.0f req/s" % (s["name"], s["rps"])
                                                for s in doc["series"])))
        # The token checks can fail: codes that expire (tokend --code-ttl 1) before they are
        # redeemed come back 400 invalid_grant, and the run must say so and exit 1.
        env = dict(os.environ, TOKEND_BENCH_ARGS="--code-ttl 1")
        cmd = [bench, "token", "--grant", "code", "--tokens", "2000", "--duration", "2.5"] + \
            COMMON + TURNS
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                              text=True, env=env)
        if proc.returncode != 1 or "invalid_grant" not in proc.stderr:
            fail("expired codes were not reported as wrong answers (exit %d):\n%s" %
                 (proc.returncode, proc.stderr))
        print("ok token: expired codes reported as wrong answers")
    print("bench smoke: ok")


if __name__ == "__main__":
    main()
