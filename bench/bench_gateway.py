#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Gateway mode: a LAN client's direct traffic through a gateway, side by
side in one run.

Namespaces client (10.88.1.2) -> gateway (lan0 | wan0, forwarding on) ->
server (10.88.2.2), as in tests/integration/test_gateway.py. The client
measures
  - TCP throughput: iperf3 -c for SECONDS, one stream and four (-P 4),
    receiver bits/s;
  - new connections per second: sequential connections to a C
    accept-and-close server, each until the server's close reaches the
    client (end to end: a proxy answers the handshake itself);
  - HTTP requests per second with wrk (4 connections, a new connection
    for each request) to a C server that answers one request and closes;
through the gateway in each mode:
  plain     the kernel forwards, nothing else runs;
  anserd    anserd with lan_interface lan0 and RULES rules (none of which
            holds for these flows: they are decided direct, in the kernel,
            and forwarded);
  v2ray     v2ray's tproxy inbound (nft tproxy in prerouting, policy
            routing to lo) with a freedom outbound, the usual way to make a
            v2ray gateway that splits traffic;
  redsocks  nft redirect to redsocks, which relays through microsocks on
            the gateway (redsocks speaks only to a proxy);
  rule      (not by default) plain forwarding with only the policy rule
            anserd adds in gateway mode (fwmark 0x80616e73 lookup 0x616e
            and its local route): what the rule alone costs;
  again     (not by default) plain forwarding once more: its ratio to
            plain is this host's noise floor (an A/A comparison).
Each round runs every mode once, in the given order on even rounds and
reversed on odd ones (ABBA), so a slow drift of the host weighs on every
mode alike; a ratio is the median over rounds of the round's mode / plain
ratio, with a distribution-free 95% confidence interval once there are 6
rounds.

iperf3's client and server share CPU 0 (--cpu same, the default), with
the gateway's forwarding, which runs in the sender's softirq: the stream
is bound by that one CPU, so every nanosecond a mode adds per packet
costs throughput. --cpu split puts the client on CPU 1 instead.

Usage: bench/bench_gateway.py [--rounds 3] [--seconds 3] [--connects 2000]
       [--rules 1000] [--modes plain,anserd,v2ray,redsocks] [--cpu same|split]
Needs root, iperf3, wrk, v2ray, redsocks, microsocks, nft, and a build in
./build (or ANSER_BUILD_DIR).
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import test_gateway as gw  # noqa: E402
from bench_direct import fmt_ratio, start_servers, wrk_args, wrk_rps  # noqa: E402

SINK = 8082
HTTP_SINK = 8083  # answers one HTTP request per connection, for wrk
TPROXY_PORT, REDSOCKS_PORT, SOCKS_PORT = 12345, 12346, 1080


def rules(n):
    """n rules that never hold for the bench's flows (10.88.2.2, ports
    5201 and 8082) yet make the kernel look: addresses, ports, both."""
    out = []
    for i in range(n):
        a, b = divmod(i, 250)
        kind = i % 4
        if kind == 0:
            out.append("dip(10.%d.%d.0/24) -> block" % (100 + a, b))
        elif kind == 1:
            out.append("dport(%d) && l4proto(udp) -> block" % (20000 + i))
        elif kind == 2:
            out.append("dip(172.%d.%d.%d/32) && dport(443) -> block" % (16 + a, b, i % 250))
        else:
            out.append("dip(fd00:%x::/48) -> block" % i)
    return "\n    ".join(out)


def start_anserd(env, n_rules):
    gw.start(env, text="global {\n    log_level: info\n    lan_interface: lan0\n}\n"
             "routing {\n    %s\n    fallback: direct\n}\n" % rules(n_rules))
    env.wait_for("lan0 decided", lambda: "Gateway: deciding" in env.log("anserd"), timeout=30)


def nft(env, text):
    path = os.path.join(env.tmp, "nft.conf")
    with open(path, "w") as f:
        f.write(text)
    harness.run(env.nsexec("g") + ["nft", "-f", path])


def start_v2ray(env):
    conf = {"log": {"loglevel": "none"},
            "inbounds": [{"port": TPROXY_PORT, "listen": "0.0.0.0", "protocol": "dokodemo-door",
                          "settings": {"network": "tcp", "followRedirect": True},
                          "streamSettings": {"sockopt": {"tproxy": "tproxy"}}}],
            "outbounds": [{"protocol": "freedom"}]}
    path = os.path.join(env.tmp, "v2ray.json")
    with open(path, "w") as f:
        json.dump(conf, f)
    env.spawn("v2ray", env.nsexec("g") + ["v2ray", "-config", path])
    env.wait_port("g", TPROXY_PORT)
    harness.run(env.nsexec("g") + ["ip", "rule", "add", "fwmark", "1", "lookup", "100"])
    harness.run(env.nsexec("g") + ["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo",
                                   "table", "100"])
    nft(env, "table ip bench_tp {\n chain pre {\n  type filter hook prerouting priority "
        "mangle; policy accept;\n  iifname \"lan0\" ip protocol tcp tproxy to :%d "
        "meta mark set 1 accept\n }\n}\n" % TPROXY_PORT)


def stop_v2ray(env):
    harness.run(env.nsexec("g") + ["nft", "delete", "table", "ip", "bench_tp"], check=False)
    harness.run(env.nsexec("g") + ["ip", "rule", "del", "fwmark", "1", "lookup", "100"],
                check=False)
    harness.run(env.nsexec("g") + ["ip", "route", "flush", "table", "100"], check=False)
    stop(env, "v2ray")


def start_redsocks(env):
    conf = os.path.join(env.tmp, "redsocks.conf")
    with open(conf, "w") as f:
        f.write("base {\n log_debug = off;\n log_info = off;\n log = stderr;\n daemon = off;\n"
                " redirector = iptables;\n}\nredsocks {\n local_ip = 0.0.0.0;\n"
                " local_port = %d;\n ip = 127.0.0.1;\n port = %d;\n type = socks5;\n}\n"
                % (REDSOCKS_PORT, SOCKS_PORT))
    env.spawn("microsocks", env.nsexec("g") + ["microsocks", "-i", "127.0.0.1", "-p",
                                               str(SOCKS_PORT)])
    env.wait_port("g", SOCKS_PORT)
    env.spawn("redsocks", env.nsexec("g") + ["redsocks", "-c", conf])
    env.wait_port("g", REDSOCKS_PORT)
    nft(env, "table ip bench_rs {\n chain pre {\n  type nat hook prerouting priority dstnat;"
        " policy accept;\n  iifname \"lan0\" ip protocol tcp redirect to :%d\n }\n}\n"
        % REDSOCKS_PORT)


def stop_redsocks(env):
    harness.run(env.nsexec("g") + ["nft", "delete", "table", "ip", "bench_rs"], check=False)
    stop(env, "redsocks")
    stop(env, "microsocks")


RULE = ["pref", "100", "fwmark", "0x80616e73", "lookup", "0x616e"]


def start_rule(env):
    for fam in ("-4", "-6"):
        harness.run(env.nsexec("g") + ["ip", fam, "route", "add", "local", "default", "dev", "lo",
                                       "table", "0x616e"])
        harness.run(env.nsexec("g") + ["ip", fam, "rule", "add"] + RULE)


def stop_rule(env):
    for fam in ("-4", "-6"):
        harness.run(env.nsexec("g") + ["ip", fam, "rule", "del"] + RULE, check=False)
        harness.run(env.nsexec("g") + ["ip", fam, "route", "flush", "table", "0x616e"],
                    check=False)


def stop(env, name):
    for n, p, _ in env.procs:
        if n == name and p.poll() is None:
            p.terminate()
            p.wait(10)


def iperf(env, seconds, streams, cpu):
    r = harness.run(env.nsexec("c") + ["iperf3", "-c", gw.S4, "-p", "5201", "-t", str(seconds),
                                       "-P", str(streams), "-J", "-A", cpu],
                    timeout=seconds + 30, check=False)
    data = json.loads(r.stdout[r.stdout.index("{"):])
    if "error" in data:
        raise RuntimeError("iperf3: %s" % data["error"])
    return data["end"]["sum_received"]["bits_per_second"]


def wrk_rate(env, seconds):
    """HTTP requests per second from wrk (4 connections, each request on a
    new connection: Connection: close) to a server that answers and
    closes: connection setup plus one request and answer."""
    r = harness.run(env.nsexec("c") + ["taskset", "-c", "1", "wrk"] +
                    wrk_args(seconds, "http://%s:%d/" % (gw.S4, HTTP_SINK)),
                    timeout=seconds + 60, check=False)
    return wrk_rps(r.stdout)


def conn_rate(env, n):
    """Sequential connections, each until the server's close reaches the
    client: end to end, so a proxy that answers the handshake itself does
    not look faster than the path it relays. The client ends its side at
    once (v2ray keeps a connection until both sides have)."""
    r = harness.run(env.nsexec("c") + ["taskset", "-c", "1", harness.CLIENT, "tcprr", gw.S4,
                                       str(SINK), str(n), "shut"], timeout=300, check=False)
    fields = dict(kv.split("=") for kv in r.stdout.split() if "=" in kv)
    if "per_s" not in fields:
        raise RuntimeError("tcprr failed: " + r.stdout)
    return float(fields["per_s"])


STATS = "/proc/sys/kernel/bpf_stats_enabled"


def prog_time(prefix="anser_lan_ing"):
    """(runs, ns) the kernel counted for the programs whose name starts
    with prefix (bpftool shows 15 characters of a name)."""
    r = harness.run(["bpftool", "-j", "prog", "show"])
    runs = ns = 0
    for p in json.loads(r.stdout):
        if p.get("name", "").startswith(prefix):
            runs += p.get("run_cnt", 0)
            ns += p.get("run_time_ns", 0)
    return runs, ns


def program_cost(env, a, cpu):
    """The gateway program's own time, as the kernel counts it
    (kernel.bpf_stats_enabled, on only for these runs: the counting itself
    costs two clock reads a packet), during one 1-stream iperf3 run, one
    run of sequential connections and one wrk run, against each run's
    time. The program runs in line, in the sender's softirq: a stream
    bound by one CPU loses at most that share of it, and a connection
    waits at most the program's time for its own packets. So each line is
    a bound on what the program alone takes from plain forwarding's rate
    (its caches' effect on the rest of the kernel aside)."""
    with open(STATS) as f:
        old = f.read().strip()
    start_anserd(env, a.rules)
    try:
        with open(STATS, "w") as f:
            f.write("1")
        conn_rate(env, 200)
        r0, t0 = prog_time()
        bits = iperf(env, a.seconds, 1, cpu)
        r1, t1 = prog_time()
        rate = conn_rate(env, a.connects)
        r2, t2 = prog_time()
        reqs = wrk_rate(env, a.seconds)
        r3, t3 = prog_time()
    finally:
        with open(STATS, "w") as f:
            f.write(old)
        env.stop_anserd()
    runs, ns = r1 - r0, t1 - t0
    print("anserd's program during a %d s 1-stream run (%.2f Gbit/s): %d packets, %.0f ns "
          "each, %.1f ms in all: %.2f%% of one CPU's %d s" %
          (a.seconds, bits / 1e9, runs, ns / max(runs, 1), ns / 1e6,
           100.0 * ns / (a.seconds * 1e9), a.seconds), flush=True)
    # (connections, their rate, packets, ns): a run lasts n / rate
    for what, n, per_s, runs, ns in (
            ("sequential connections", a.connects, rate, r2 - r1, t2 - t1),
            ("wrk requests", reqs * a.seconds, reqs, r3 - r2, t3 - t2)):
        print("anserd's program during %d %s (%.0f/s): %d packets, %.0f ns each, "
              "%.0f ns per connection: %.2f%% of the run's %.1f s" %
              (n, what, per_s, runs, ns / max(runs, 1), ns / max(n, 1),
               100.0 * ns * per_s / (n * 1e9), n / per_s), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--connects", type=int, default=2000)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--modes", default="plain,anserd,v2ray,redsocks")
    ap.add_argument("--cpu", choices=("same", "split"), default="same",
                    help="iperf3's client on the server's CPU (0) or on CPU 1")
    a = ap.parse_args()
    cpu = "0" if a.cpu == "same" else "1"
    modes = a.modes.split(",")
    if modes[0] != "plain":
        sys.exit("--modes must start with plain (the ratios' base)")
    need = {"plain": ["iperf3", "wrk"], "anserd": ["bpftool"], "v2ray": ["v2ray", "nft"],
            "redsocks": ["redsocks", "microsocks", "nft"], "rule": [], "again": []}
    for m in modes:
        if m not in need:
            sys.exit("unknown mode %s (one of %s)" % (m, ", ".join(need)))
        for tool in need[m]:
            if not shutil.which(tool):
                sys.exit("%s is needed for mode %s (apt-get install %s)" % (tool, m, tool))
    env = harness.Env("bench-gw")
    starts = {"anserd": lambda: start_anserd(env, a.rules), "v2ray": lambda: start_v2ray(env),
              "redsocks": lambda: start_redsocks(env), "rule": lambda: start_rule(env)}
    stops = {"anserd": env.stop_anserd, "v2ray": lambda: stop_v2ray(env),
             "redsocks": lambda: stop_redsocks(env), "rule": lambda: stop_rule(env)}
    metrics = ("1 stream Gbit/s", "4 streams Gbit/s", "connections/s",
               "wrk requests/s (new connection each)")
    res = {m: [] for m in modes}
    try:
        gw.topology(env)
        # thousands of connections a minute from one client: TIME_WAIT
        # ports reused (timestamps make it safe), and all of them usable
        # (the client's own namespace)
        harness.run(env.nsexec("c") + ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1",
                                       "net.ipv4.ip_local_port_range=1024 65000"])
        env.setup_cgroup()
        start_servers(env, SINK)
        env.spawn("httpsink", env.nsexec("s") + ["taskset", "-c", "0", harness.CLIENT,
                                                 "tcpsink", str(HTTP_SINK), "http"])
        env.wait_port("s", HTTP_SINK)
        conn_rate(env, 500)  # neighbours resolved, caches warm
        print("%d rounds; iperf3 -t %d (1 and 4 streams, client on CPU %s), %d sequential "
              "connects; anserd with %d rules" % (a.rounds, a.seconds, cpu, a.connects, a.rules),
              flush=True)
        for rnd in range(a.rounds):
            order = modes if rnd % 2 == 0 else modes[::-1]
            for mode in order:
                if mode in starts:
                    starts[mode]()
                try:
                    conn_rate(env, 200)  # warm-up after the start
                    v = (iperf(env, a.seconds, 1, cpu) / 1e9, iperf(env, a.seconds, 4, cpu) / 1e9,
                         conn_rate(env, a.connects), wrk_rate(env, a.seconds))
                finally:
                    if mode in stops:
                        stops[mode]()
                res[mode].append(v)
                print("round %d %-9s %8.2f %8.2f %9.0f %9.0f" % ((rnd + 1, mode) + v),
                      flush=True)
                time.sleep(0.5)
        print()
        print("| metric (%d rounds, median) | %s |" % (a.rounds, " | ".join(modes)))
        print("|---|%s" % ("---|" * len(modes)))
        for i, name in enumerate(metrics):
            cells = []
            for m in modes:
                med = statistics.median(x[i] for x in res[m])
                if m == "plain":
                    cells.append("%.2f" % med if i < 2 else "%.0f" % med)
                    continue
                ratios = [x[i] / y[i] for x, y in zip(res[m], res["plain"])]
                cells.append(("%.2f" % med if i < 2 else "%.0f" % med) + " (" +
                             fmt_ratio(ratios) + "x)")
            print("| %s | %s |" % (name, " | ".join(cells)))
        if "anserd" in modes:
            print()
            program_cost(env, a, cpu)
    finally:
        env.close()


if __name__ == "__main__":
    main()
