#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Direct traffic with anserd running vs. not running, side by side.

appB (not matched by any rule, so direct) measures
  - TCP throughput: iperf3 -c for SECONDS, receiver bits/s
  - connect latency: N sequential connect()s, median and p99
in the same namespaces, alternating "no anserd" and "anserd attached" runs
in ABBA order, ROUNDS times (iperf3 client pinned to CPU 0, server to CPU 1);
prints medians and ratios (anserd / none). anserd runs with a
config that proxies appA and has a few more rules, so the hooks do real
rule evaluation for appB's flows.

Usage: bench/bench_direct.py [--rounds 3] [--seconds 5] [--connects 2000]
Needs root and a build in ./build (or ANSER_BUILD_DIR).
"""
import argparse
import json
import os
import shutil
import statistics
import time
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from harness import S4, WEB  # noqa: E402

CONFIG = """global { log_level: warning }
node { socks: 'socks5://10.77.0.2:1080' }
group { proxy { policy: fixed(0) } }
routing {
    pname(appA) -> proxy
    dip(192.0.2.0/24, 2001:db8::/32) -> block
    dport(6000-6100) && l4proto(udp) -> proxy
    !pname(curl, wget) && dip(198.51.100.0/24) -> proxy
    fallback: direct
}
"""


def iperf(env, seconds):
    r = env.app("appB", "-c", S4, "-p", "5201", "-t", str(seconds), "-J", "-A", "0",
                binary=shutil.which("iperf3"), timeout=seconds + 30)
    data = json.loads(r.stdout[r.stdout.index("{"):])
    return data["end"]["sum_received"]["bits_per_second"]


def connects(env, n):
    r = env.app("appC", "tcpconn", S4, WEB, n, timeout=120)
    fields = dict(kv.split("=") for kv in r.stdout.split() if "=" in kv)
    if "median_us" not in fields:
        raise RuntimeError("tcpconn failed: " + r.stdout)
    return float(fields["median_us"]), float(fields["p99_us"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connects", type=int, default=2000)
    ap.add_argument("--no-throughput", action="store_true", help="connect latency only")
    a = ap.parse_args()
    if not shutil.which("iperf3"):
        sys.exit("iperf3 is needed (apt-get install iperf3)")
    env = harness.Env("bench")
    try:
        env.setup_net()
        env.setup_cgroup()
        env.start_web()
        env.spawn("iperf3", env.nsexec("s") + ["iperf3", "-s", "-p", "5201", "-A", "1"])
        env.wait_port("s", 5201)
        cfg = env.write_config(CONFIG)
        res = {"none": {"tput": [], "med": [], "p99": []},
               "anserd": {"tput": [], "med": [], "p99": []}}
        for rnd in range(a.rounds):
            # ABBA order, and a pause before each phase, so neither side
            # always runs right after the other's connect storm.
            for mode in (("none", "anserd") if rnd % 2 == 0 else ("anserd", "none")):
                time.sleep(2)
                if mode == "anserd":
                    env.start_anserd(cfg)
                t = 0.0 if a.no_throughput else iperf(env, a.seconds)
                med, p99 = connects(env, a.connects)
                if mode == "anserd":
                    env.stop_anserd()
                res[mode]["tput"].append(t)
                res[mode]["med"].append(med)
                res[mode]["p99"].append(p99)
                print("round %d %-6s  %8.2f Gbit/s  connect median %7.1f us  p99 %7.1f us"
                      % (rnd + 1, mode, t / 1e9, med, p99), flush=True)
        m = {k: {q: statistics.median(v) for q, v in d.items()} for k, d in res.items()}
        print()
        print("| metric (median of %d) | no anserd | anserd running | ratio |" % a.rounds)
        print("|---|---|---|---|")
        if not a.no_throughput:
            print("| appB direct TCP throughput | %.2f Gbit/s | %.2f Gbit/s | %.3f |"
                  % (m["none"]["tput"] / 1e9, m["anserd"]["tput"] / 1e9,
                     m["anserd"]["tput"] / m["none"]["tput"]))
        print("| appB connect latency, median | %.1f us | %.1f us | %.3f |"
              % (m["none"]["med"], m["anserd"]["med"], m["anserd"]["med"] / m["none"]["med"]))
        print("| appB connect latency, p99 | %.1f us | %.1f us | %.3f |"
              % (m["none"]["p99"], m["anserd"]["p99"], m["anserd"]["p99"] / m["none"]["p99"]))
    finally:
        env.close()


if __name__ == "__main__":
    main()
