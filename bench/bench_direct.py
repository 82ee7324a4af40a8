#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Direct traffic with anserd running vs. not running, side by side.

appB (not matched by any rule, so direct) measures
  - TCP throughput: iperf3 -c for SECONDS, receiver bits/s
  - connect latency: N sequential connect()s to a plain accept-and-close
    server, median and p99
in the same namespaces. Each round runs three modes back to back: "no
anserd", "anserd attached" and a control, anserd running with its hooks on
an empty cgroup (ABC, then CBA in the next round). In the control no
program of anserd runs for appB (only the kernel's wrapper for cgroup
sock_addr programs, which every connect() on the machine passes once any
is attached), so its ratio shows mostly how far this host alone moves the
numbers. Rounds run
with the client pinned to CPU 1 (iperf3's server to CPU 0). The ratio of a
metric is the median over rounds of the round's anserd / none ratio:
pairing within a round cancels the host's slow drift, which over minutes is
larger than the effect measured. Then, with anserd running, the
"interleaved" rows: one client moves itself every 100 connects between a
cgroup with no hooks and anserd's cgroup (ABBA), ROUNDS runs of 2N connects;
this resolves differences far below the rounds' noise, but misses the
kernel's sock_addr wrapper, which the hookless side pays too once any
such program is attached. anserd runs with a config that proxies
appA and has a few more rules, so the hooks do real rule evaluation for
appB's flows.

Usage: bench/bench_direct.py [--rounds 9] [--seconds 5] [--connects 5000]
       [--no-throughput]
Needs root, iperf3, and a build in ./build (or ANSER_BUILD_DIR).
"""
import argparse
import json
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from harness import S4  # noqa: E402

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


SINK = 8081


def iperf(env, seconds):
    r = env.app("appB", "-c", S4, "-p", "5201", "-t", str(seconds), "-J", "-A", "1",
                binary=shutil.which("iperf3"), timeout=seconds + 30)
    data = json.loads(r.stdout[r.stdout.index("{"):])
    return data["end"]["sum_received"]["bits_per_second"]


def connects(env, n):
    r = env.app("appB", "tcpconn", S4, SINK, n, timeout=120, cpu=1)
    fields = dict(kv.split("=") for kv in r.stdout.split() if "=" in kv)
    if "median_us" not in fields:
        raise RuntimeError("tcpconn failed: " + r.stdout)
    return float(fields["median_us"]), float(fields["p99_us"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connects", type=int, default=5000)
    ap.add_argument("--no-throughput", action="store_true", help="connect latency only")
    a = ap.parse_args()
    if a.rounds < 3:
        sys.exit("--rounds must be at least 3")
    if not shutil.which("iperf3"):
        sys.exit("iperf3 is needed (apt-get install iperf3)")
    env = harness.Env("bench")
    try:
        env.setup_net()
        env.setup_cgroup()
        env.spawn("sink", env.nsexec("s") + ["taskset", "-c", "0", harness.CLIENT, "tcpsink",
                                             str(SINK)])
        env.wait_port("s", SINK)
        env.spawn("iperf3", env.nsexec("s") + ["iperf3", "-s", "-p", "5201", "-A", "0"])
        env.wait_port("s", 5201)
        cfg = env.write_config(CONFIG)
        # The control: anserd running with its hooks on a cgroup of its own
        # that no app is in (see the docstring).
        plain = env.setup_cgroup("-plain")
        metrics = ("tput", "med", "p99")
        modes = ("none", "anserd", "control")
        res = {m: {k: [] for k in metrics} for m in modes}
        for rnd in range(a.rounds):
            # ABC then CBA, so no mode always runs first or last.
            for mode in (modes if rnd % 2 == 0 else modes[::-1]):
                if mode == "anserd":
                    env.start_anserd(cfg)
                elif mode == "control":
                    env.start_anserd(cfg, cgroup=plain)
                t = 0.0 if a.no_throughput else iperf(env, a.seconds)
                connects(env, 1000)  # warm-up after the pause and anserd's start
                med, p99 = connects(env, a.connects)
                if mode != "none":
                    env.stop_anserd()
                for k, v in zip(metrics, (t, med, p99)):
                    res[mode][k].append(v)
                print("round %d %-7s  %8.2f Gbit/s  connect median %7.1f us  p99 %7.1f us"
                      % (rnd + 1, mode, t / 1e9, med, p99), flush=True)
        # Interleaved: one process, anserd running throughout, moving itself
        # every 100 connects between a cgroup of its own (no hooks: what a
        # machine without anserd runs) and anserd's cgroup. Both sides see
        # the same host state, so this resolves far smaller differences than
        # the rounds above; it leaves out only anserd's idle process.
        env.start_anserd(cfg)
        inter = []
        for rnd in range(a.rounds):
            r = env.app("appB", "tcpconn-ab", S4, SINK, 2 * a.connects, plain, env.cg,
                        timeout=120, cpu=1)
            f = dict(kv.split("=") for kv in r.stdout.split() if "=" in kv)
            if "a_median_us" not in f:
                raise RuntimeError("tcpconn-ab failed: " + r.stdout)
            inter.append([float(f[k]) for k in ("a_median_us", "b_median_us", "a_p99_us",
                                                "b_p99_us")])
            print("interleaved %d  connect median %6.2f / %6.2f us  p99 %6.1f / %6.1f us"
                  % ((rnd + 1,) + tuple(inter[-1])), flush=True)
        env.stop_anserd()
        m = {mode: {k: statistics.median(v) for k, v in d.items()} for mode, d in res.items()}

        def ratio(k, mode="anserd"):
            return statistics.median(x / y for x, y in zip(res[mode][k], res["none"][k]))

        print()
        print("| metric (median of %d rounds) | no anserd | anserd running | ratio |"
              " control ratio |" % a.rounds)
        print("|---|---|---|---|---|")
        rows = [("appB direct TCP throughput", "tput", 1e9, "%.2f Gbit/s")] if not \
            a.no_throughput else []
        rows += [("appB connect latency, median", "med", 1, "%.1f us"),
                 ("appB connect latency, p99", "p99", 1, "%.1f us")]
        for name, k, div, fmt in rows:
            print(("| %s | " + fmt + " | " + fmt + " | %.3f | %.3f |")
                  % (name, m["none"][k] / div, m["anserd"][k] / div, ratio(k),
                     ratio(k, "control")))
        col = list(zip(*inter))
        print("| appB connect latency, median, interleaved | %.2f us | %.2f us | %.3f | |"
              % (statistics.median(col[0]), statistics.median(col[1]),
                 statistics.median(b / a for a, b in zip(col[0], col[1]))))
        print("| appB connect latency, p99, interleaved | %.1f us | %.1f us | %.3f | |"
              % (statistics.median(col[2]), statistics.median(col[3]),
                 statistics.median(b / a for a, b in zip(col[2], col[3]))))
    finally:
        env.close()


if __name__ == "__main__":
    main()
