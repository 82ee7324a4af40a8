#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Direct traffic with anserd running vs. not running, side by side.

appB (not matched by any rule, so direct) measures
  - connect latency: sequential connect()s to a C accept-and-close server
    in another namespace, median and p99 per run (client pinned to CPU 1,
    server to CPU 0);
  - TCP throughput: iperf3 -c for SECONDS, receiver bits/s.
Every round runs three modes back to back, each with anserd started for
it and stopped after: "none" (no anserd), "anserd" (attached to appB's
cgroup) and "control" (anserd running with its hooks on an empty cgroup,
so no program of anserd runs for appB: its ratio shows how far this host
alone moves the numbers). Odd rounds run ABC, even ones CBA. The latency
rounds all run first, then the throughput rounds, so the modes' connect
runs are a few tenths of a second apart, not a whole iperf3 run.

A ratio is the median over rounds of the round's mode / none ratio:
pairing within a round cancels the host's drift, which over minutes is
larger than the effect measured. Each ratio comes with a distribution-free
95% confidence interval of that median (order statistics of the rounds).

Then, with anserd running, the "interleaved" rows: one client moves itself
every 100 connects between a cgroup with no hooks and anserd's cgroup
(ABBA), ROUNDS runs of 2 x CONNECTS; finer still, but it misses the
kernel's wrapper for sock_addr programs, which the hookless side pays too
once any such program is attached.

anserd runs with a config that proxies appA and has a few more rules, so
the hooks do real rule evaluation (a trie lookup included) for appB.

Usage: bench/bench_direct.py [--rounds 21] [--connects 10000] [--seconds 2]
       [--no-throughput]
Needs root, iperf3, and a build in ./build (or ANSER_BUILD_DIR).
"""
import argparse
import json
import math
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
    return float(fields["median_us"]), float(fields["p99_us"]), float(fields["mean_us"])


def start_servers(env, sink):
    """In the server namespace, on CPU 0: the accept-and-close server on
    `sink` and iperf3 -s on 5201."""
    env.spawn("sink", env.nsexec("s") + ["taskset", "-c", "0", harness.CLIENT, "tcpsink",
                                         str(sink)])
    env.wait_port("s", sink)
    env.spawn("iperf3", env.nsexec("s") + ["iperf3", "-s", "-p", "5201", "-A", "0"])
    env.wait_port("s", 5201)


def median_ci(xs):
    """Median of xs and a distribution-free ~95% confidence interval for
    it: the k-th smallest and k-th largest value, k the largest with
    P(Binomial(n, 1/2) < k) <= 2.5%."""
    n = len(xs)
    s = sorted(xs)
    k, below = 0, 0.0
    while k < n // 2:
        below += math.comb(n, k) / 2 ** n
        if below > 0.025:
            break
        k += 1
    if k == 0:
        return statistics.median(s), None, None  # too few rounds for an interval
    return statistics.median(s), s[k - 1], s[n - k]


def wrk_args(seconds, url):
    """wrk's arguments for requests each on a new connection: one thread,
    4 connections, Connection: close."""
    return ["-t", "1", "-c", "4", "-d", "%ds" % seconds, "-H", "Connection: close", url]


def wrk_rps(out):
    """Requests per second from wrk's output; socket errors are printed."""
    m = [l for l in out.splitlines() if l.startswith("Requests/sec:")]
    if not m or "Non-2xx" in out:
        raise RuntimeError("wrk failed: " + out)
    errs = [l for l in out.splitlines() if "Socket errors" in l]
    if errs and any(int(x.split()[-1]) for x in errs[0].split(",") if x.split()[-1].isdigit()):
        print("  (wrk: %s)" % errs[0].strip(), flush=True)
    return float(m[0].split()[1])


def fmt_ratio(xs):
    m, lo, hi = median_ci(xs)
    if lo is None:
        return "%.3f" % m
    return "%.3f (%.3f-%.3f)" % (m, lo, hi)


MODES = ("none", "anserd", "control")


def run_rounds(env, a, cfg, plain, name, measure):
    """ROUNDS rounds of the three modes, ABC then CBA; measure(env) gives a
    tuple of numbers. Returns {mode: [tuple per round]}."""
    res = {m: [] for m in MODES}
    for rnd in range(a.rounds):
        for mode in (MODES if rnd % 2 == 0 else MODES[::-1]):
            if mode == "anserd":
                env.start_anserd(cfg)
            elif mode == "control":
                env.start_anserd(cfg, cgroup=plain)
            try:
                v = measure(env)
            finally:
                if mode != "none":
                    env.stop_anserd()
            res[mode].append(v)
            print("%s round %2d %-7s  %s" % (name, rnd + 1, mode,
                                            "  ".join("%8.2f" % x for x in v)), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--connects", type=int, default=10000)
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
        start_servers(env, SINK)
        cfg = env.write_config(CONFIG)
        # The control: anserd running with its hooks on a cgroup of its own
        # that no app is in (see the docstring).
        plain = env.setup_cgroup("-plain")

        def latency(env):
            connects(env, 500)  # warm-up after anserd's start
            return connects(env, a.connects)

        print("connect latency: %d rounds of %d connects per mode (median, p99, mean in us)"
              % (a.rounds, a.connects), flush=True)
        lat = run_rounds(env, a, cfg, plain, "latency", latency)
        tput = None
        if not a.no_throughput:
            print("throughput: %d rounds of iperf3 -t %d per mode (Gbit/s)"
                  % (a.rounds, a.seconds), flush=True)
            tput = run_rounds(env, a, cfg, plain, "throughput",
                              lambda env: (iperf(env, a.seconds) / 1e9,))
        # Interleaved: one process, anserd running throughout, moving itself
        # every 100 connects between a cgroup of its own (no hooks: what a
        # machine without anserd runs) and anserd's cgroup.
        env.start_anserd(cfg)
        inter = []
        for rnd in range(a.rounds):
            r = env.app("appB", "tcpconn-ab", S4, SINK, 2 * a.connects, plain, env.cg,
                        timeout=300, cpu=1)
            f = dict(kv.split("=") for kv in r.stdout.split() if "=" in kv)
            if "a_median_us" not in f:
                raise RuntimeError("tcpconn-ab failed: " + r.stdout)
            inter.append([float(f[k]) for k in ("a_median_us", "b_median_us", "a_p99_us",
                                                "b_p99_us", "a_mean_us", "b_mean_us")])
            print("interleaved %2d  connect median %6.2f / %6.2f us  p99 %6.1f / %6.1f us"
                  "  mean %6.2f / %6.2f us" % ((rnd + 1,) + tuple(inter[-1])), flush=True)
        env.stop_anserd()

        def ratios(res, i, mode):
            return [x[i] / y[i] for x, y in zip(res[mode], res["none"])]

        def med(res, i, mode):
            return statistics.median(x[i] for x in res[mode])

        print()
        print("| metric (%d rounds) | no anserd | anserd running | ratio (95%% CI) |"
              " control ratio (95%% CI) |" % a.rounds)
        print("|---|---|---|---|---|")
        rows = [("appB connect latency, median", lat, 0, "%.2f us"),
                ("appB connect latency, mean", lat, 2, "%.2f us"),
                ("appB connect latency, p99", lat, 1, "%.1f us")]
        if tput:
            rows.append(("appB direct TCP throughput", tput, 0, "%.2f Gbit/s"))
        for name, res, i, fmt in rows:
            print(("| %s | " + fmt + " | " + fmt + " | %s | %s |")
                  % (name, med(res, i, "none"), med(res, i, "anserd"),
                     fmt_ratio(ratios(res, i, "anserd")), fmt_ratio(ratios(res, i, "control"))))
        col = list(zip(*inter))
        for name, i, fmt in (("median", 0, "%.2f us"), ("mean", 4, "%.2f us"),
                             ("p99", 2, "%.1f us")):
            print(("| appB connect latency, %s, interleaved | " + fmt + " | " + fmt
                   + " | %s | |") % (name, statistics.median(col[i]),
                                      statistics.median(col[i + 1]),
                                      fmt_ratio([b / a for a, b in zip(col[i], col[i + 1])])))
        # The goal: direct traffic within 2% of no anserd.
        lat_r = median_ci(ratios(lat, 0, "anserd"))[0]
        mean_r = median_ci(ratios(lat, 2, "anserd"))[0]
        verdict = ["connect median x%.3f" % lat_r, "connect mean x%.3f" % mean_r]
        ok = lat_r <= 1.02 and mean_r <= 1.02
        if tput:
            tput_r = median_ci(ratios(tput, 0, "anserd"))[0]
            verdict.append("throughput x%.3f" % tput_r)
            ok = ok and tput_r >= 0.98
        print()
        print("direct traffic within 2%% of no anserd: %s (%s)"
              % ("yes" if ok else "NO", ", ".join(verdict)))
    finally:
        env.close()


if __name__ == "__main__":
    main()
