#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Proxied traffic through shadowsocks aes-128-gcm to a local ss-server:
anserd vs ss-redir (shadowsocks-libev) vs v2ray, side by side.

Each client captures the same application's traffic on the same host
namespace (h) and relays it through the same ss-server (namespace p,
pinned to CPU 0) to the servers in namespace s:
  - anserd: its cgroup hooks (pname(appA) -> the ss node);
  - ss-redir: an nftables REDIRECT in h's output hook for the server's
    address, to ss-redir's port;
  - v2ray 4.34: a dokodemo-door inbound with sockopt tproxy "tproxy" and
    a shadowsocks outbound, set up as v2ray's guides do for a host's own
    traffic: the app's packets marked in h's output hook, routed back in
    through lo by a policy rule (fwmark 1 -> a local default route), and
    handed to the inbound by nft tproxy in prerouting. (Before 2026-12-06
    it ran with tproxy "redirect" behind ss-redir's REDIRECT rule.)
First every client once, not counted (a warm-up: the first measurements
after the setup ran slow, and fell on round 1's first client). Then two
passes of rounds -- the first measures the three below, the second wrk
(after it: wrk's ~50,000 connections a run leave their ports in
TIME_WAIT, where sequential connections through ss-redir stalled) --
per round and client:
  - bulk TCP throughput: iperf3 -c for SECONDS (receiver bits/s);
  - CPU seconds per GB: utime + stime of the capturing process (all its
    threads) during that iperf3 run, over the bytes received;
  - new connections per second: CONNS sequential connect + wait for the
    server's close (a C accept-and-close server), so every connection is a
    full round trip through the client and ss-server;
  - wrk: HTTP requests per second, each on a new connection (4 at once,
    Connection: close), to a C server that answers one request and closes.
Rounds run the clients in the given order on even rounds and reversed on
odd ones (ABBA), so a slow drift of the host weighs on every client alike.
Results: the median over ROUNDS of each metric, and ratios to the better
peer; then, per peer, the median over rounds of each round's anserd / peer
ratio with a distribution-free 95% interval (from 6 rounds on). --again
adds ss-redir measured a second time as a client of its own ("again"):
its ratios to ss-redir are what this host's noise alone gives (an A/A
comparison), the resolution the other ratios are read against. The
crypto ceiling (openssl speed -evp aes-128-gcm, one core) is printed
beside them. A single-threaded ss-server caps throughput near 1.5-1.8
Gbit/s here, so throughput alone cannot rank the clients: CPU per GB is
the number that does. ss-server's own CPU per GB is printed with each
round: what the client's way of sending costs the node.

Placement (--placement): "split", the default, treats the two CPUs as two
machines: the far side (ss-server, the iperf3 server, the accept-and-close
server) on CPU 0, the client host (the app and the capturing process) on
CPU 1. "free" pins only ss-server, as before 2026-12-06. On this VM a
wakeup across CPUs is an IPI and a VM exit, and with "free" the far side's
servers go wherever the client leaves room: behind a client that uses
little CPU, the iperf3 server sleeps on CPU 1 and ss-server, the
bottleneck, pays a cross-CPU wakeup for every segment it hands on (perf:
13 % of ss-server's samples in sock_def_readable's wakeup; ss-server spent
5.0-5.7 CPU s per GB behind anserd against 4.0-4.4 behind ss-redir, whose
own load kept the iperf3 server next to ss-server). That measured where
the scheduler put the servers, not the client.
Since 2026-12-07 "split" also steers each namespace's received packets to
its own machine's CPU (RPS on its veth, see steer_rx): before, the kernel
worked a packet off on the CPU that sent it, into the receiving socket
and on through what that socket sent in answer, so ss-server's ACKs drove
the client's TCP (and sent its queued segments) on CPU 0, and the app's
data was taken into ss-server's socket on CPU 1. "split-procs" is the
placement before that (processes only), for comparison with earlier runs.

--compare BUILD adds anserd from another build directory as a client of
its own ("anserd-b", same config), so a change is measured against the
code before it in the same rounds: its per-round ratios to anserd are
printed with the others (below 1 on CPU per GB: the other build spends
less).

Usage: bench/bench_proxy.py [--rounds 3] [--seconds 5] [--conns 2000] [--again]
                            [--placement split|split-procs|free] [--compare BUILD]
Needs root, iperf3, shadowsocks-libev, v2ray, nftables, and a build in
./build (or ANSER_BUILD_DIR).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from bench_direct import fmt_ratio, wrk_args, wrk_rps  # noqa: E402
from harness import P4, S4  # noqa: E402

PW = "Anser-bench-pw1"
METHOD = "aes-128-gcm"
IPERF = 5201
SINK = 8081
HTTP = 8083  # answers one HTTP request per connection, for wrk
REDIR = 12345
TP_MARK, TP_TABLE = "1", "100"
TP_RULE = ["fwmark", TP_MARK, "lookup", TP_TABLE]

CONFIG = """global {
    log_level: warning
    tcp_check_url: 'http://10.77.0.3:8080/'
    check_interval: 300s
}
node { ss: 'ss://%s:%s@%s:8388' }
group { proxy { policy: fixed(0) } }
routing {
    pname(appA) -> proxy
    fallback: direct
}
""" % (METHOD, PW, P4)


def nft(env, on, tproxy=False):
    """Capture the app's connections to the servers for a peer: ss-redir's
    nft REDIRECT in the output hook, or (tproxy) v2ray's usual setup for
    a host's own traffic: marked in the output hook, routed back in
    through lo by a policy rule, and given to the tproxy inbound in
    prerouting."""
    ns = env.nsexec("h")
    ports = "{ %d, %d, %d }" % (IPERF, SINK, HTTP)
    if not on:
        harness.run(ns + ["nft", "delete", "table", "ip", "anserbench"], check=False)
        harness.run(ns + ["ip", "rule", "del"] + TP_RULE, check=False)
        harness.run(ns + ["ip", "route", "flush", "table", TP_TABLE], check=False)
        return
    if not tproxy:
        rules = ("table ip anserbench {\n chain out {\n  type nat hook output priority -100;\n"
                 "  ip daddr %s tcp dport %s redirect to :%d\n }\n}\n" % (S4, ports, REDIR))
    else:
        harness.run(ns + ["ip", "rule", "add"] + TP_RULE)
        harness.run(ns + ["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table",
                          TP_TABLE])
        rules = ("table ip anserbench {\n"
                 " chain out {\n  type route hook output priority mangle;\n"
                 "  ip daddr %s tcp dport %s meta mark set %s\n }\n"
                 " chain pre {\n  type filter hook prerouting priority mangle;\n"
                 "  iifname \"lo\" ip daddr %s tcp dport %s tproxy to :%d meta mark set %s\n"
                 " }\n}\n" % (S4, ports, TP_MARK, S4, ports, REDIR, TP_MARK))
    harness.run(ns + ["nft", "-f", "-"], input=rules)


# CPUs: the far side's and the client host's (--placement split), or None
FAR, NEAR = 0, 1


def steer_rx(env):
    """Each namespace's received packets processed on its own machine's
    CPU (RPS on its veth): the client host's on CPU 1, the far side's on
    CPU 0. Without it the kernel works a packet off on the CPU that sent
    it, all the way into the receiving socket -- and whatever that socket
    then sends in answer: ss-server's ACK, working through the client's
    socket on CPU 0, sent the client's queued segments there, so the far
    side's core did part of the client host's work. The switch's ports
    are left alone: a packet crosses the bridge on the sender's CPU, as a
    frame goes onto the wire."""
    for role, cpu in (("h", NEAR), ("p", FAR), ("s", FAR)):
        harness.run(["ip", "netns", "exec", env.ns(role), "sh", "-c",
                     "echo %x > /sys/class/net/e0/queues/rx-0/rps_cpus" % (1 << cpu)])


def pin(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


class Client:
    # anserd of another build (--compare), as "anserd-b"
    other_build = None

    def __init__(self, env, name, cpu=None):
        # "again" is ss-redir once more (the A/A comparison)
        self.env, self.name, self.proc = env, "ss-redir" if name == "again" else name, None
        self.cpu = cpu

    def start(self):
        env = self.env
        if self.name in ("anserd", "anserd-b"):
            # info, as the peers run: the harness's debug level logs
            # every connection
            other = self.name == "anserd-b"
            self.proc = env.start_anserd(
                env.write_config(CONFIG), wrapper=pin(self.cpu), extra=["--log-level", "info"],
                binary=os.path.join(Client.other_build, "anserd") if other else None)
            return
        if self.name == "ss-redir":
            self.proc = env.spawn("ss-redir", env.nsexec("h") + pin(self.cpu) + [
                "ss-redir", "-s", P4, "-p", "8388", "-k", PW, "-m", METHOD, "-b", "127.0.0.1",
                "-l", str(REDIR), "--reuse-port"])
        else:
            conf = os.path.join(env.tmp, "v2ray-client.json")
            with open(conf, "w") as f:
                json.dump({"log": {"loglevel": "warning"},
                           "inbounds": [{"listen": "0.0.0.0", "port": REDIR,
                                         "protocol": "dokodemo-door",
                                         "settings": {"network": "tcp", "followRedirect": True},
                                         "streamSettings": {"sockopt": {"tproxy": "tproxy"}}}],
                           "outbounds": [{"protocol": "shadowsocks", "settings": {"servers": [
                               {"address": P4, "port": 8388, "method": METHOD,
                                "password": PW}]}}]}, f)
            self.proc = env.spawn("v2ray-client",
                                  env.nsexec("h") + pin(self.cpu) + ["v2ray", "-config", conf])
        env.wait_port("h", REDIR)
        nft(env, True, tproxy=self.name == "v2ray")

    def stop(self):
        if self.name in ("anserd", "anserd-b"):
            self.env.stop_anserd()
        else:
            nft(self.env, False)
            self.proc.terminate()
            self.proc.wait()

    def pid(self):
        return self.proc.pid


def iperf(env, seconds, cpu):
    r = env.app("appA", "-c", S4, "-p", str(IPERF), "-t", str(seconds), "-J",
                binary=shutil.which("iperf3"), timeout=seconds + 30, cpu=cpu)
    data = json.loads(r.stdout[r.stdout.index("{"):])
    return data["end"]["sum_received"]["bits_per_second"], data["end"]["sum_received"]["bytes"]


def conn_rate(env, n, cpu):
    r = env.app("appA", "tcprr", S4, SINK, n, timeout=300, cpu=cpu)
    m = re.search(r"per_s=([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError("tcprr failed: " + r.stdout)
    return float(m.group(1))


def wrk_rate(env, seconds, cpu):
    """HTTP requests per second, each on a new connection, from wrk as the
    app (the captured process is named appA, like the others)."""
    r = env.app("appA", *wrk_args(seconds, "http://%s:%d/" % (S4, HTTP)),
                binary=shutil.which("wrk"), timeout=seconds + 60, cpu=cpu)
    return wrk_rps(r.stdout)


def measure(env, name, near, node, args, phase):
    """One client's run: bulk (throughput, CPU per GB, sequential
    connections/s) or wrk."""
    c = Client(env, name, near)
    c.start()
    try:
        # warm up the path (and check it goes through the proxy)
        conn_rate(env, 50, near)
        if phase == "wrk":
            return {"wrk": wrk_rate(env, args.seconds, near)}
        cpu0, node0 = harness.cpu_seconds(c.pid()), harness.cpu_seconds(node.pid)
        bps, nbytes = iperf(env, args.seconds, near)
        cpu = harness.cpu_seconds(c.pid()) - cpu0
        node_cpu = harness.cpu_seconds(node.pid) - node0
        rate = conn_rate(env, args.conns, near)
    finally:
        c.stop()
    return {"bps": bps, "cpu_gb": cpu / (nbytes / 1e9), "rate": rate,
            "node_gb": node_cpu / (nbytes / 1e9)}


def crypto_ceiling():
    r = subprocess.run(["openssl", "speed", "-seconds", "2", "-evp", "aes-128-gcm"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = [l for l in r.stdout.splitlines() if l.startswith("AES-128-GCM")]
    if not line:
        return None
    # the column for 16384-byte blocks, in kB/s
    return float(line[-1].split()[-1].rstrip("k")) * 1000 * 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--only", help="run one client (for experiments; no ratios)")
    ap.add_argument("--again", action="store_true",
                    help="measure ss-redir twice: the A/A ratio is the host's noise floor")
    ap.add_argument("--placement", choices=("split", "split-procs", "free"), default="split",
                    help="far side on CPU 0 and client host on CPU 1 (processes and each "
                    "namespace's receive processing; split-procs: processes only), or only "
                    "ss-server pinned")
    ap.add_argument("--compare", metavar="BUILD",
                    help="also measure anserd of another build directory (\"anserd-b\")")
    args = ap.parse_args()
    if args.compare:
        if not os.access(os.path.join(args.compare, "anserd"), os.X_OK):
            sys.exit("bench_proxy: no anserd in %s" % args.compare)
        Client.other_build = os.path.abspath(args.compare)
    far, near = (None, None) if args.placement == "free" else (FAR, NEAR)
    for tool in ("iperf3", "wrk", "ss-server", "ss-redir", "v2ray", "nft"):
        if not shutil.which(tool):
            sys.exit("bench_proxy: %s is not installed" % tool)

    env = harness.Env("bench-proxy")
    res = {}
    try:
        env.setup_net()
        if args.placement == "split":
            steer_rx(env)
        env.setup_cgroup()
        env.start_web()
        # thousands of new connections a second (wrk), from the app and
        # from ss-server: TIME_WAIT ports reused (timestamps make it safe),
        # and all of them usable (the bench's own namespaces)
        for role in ("h", "p"):
            harness.run(env.nsexec(role) + ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1",
                                            "net.ipv4.ip_local_port_range=1024 65000"])
        # and no TIME_WAIT on the client host: a client's closed
        # connections (~50,000 a wrk run) held ports that the next
        # client's new ones clashed with -- through ss-redir's REDIRECT a
        # SYN was then lost (a second's wait each), and its wrk rate fell
        # to 1,500-5,700 requests/s for several rounds in a row
        harness.run(env.nsexec("h") + ["sysctl", "-qw", "net.ipv4.tcp_max_tw_buckets=0"])
        node = env.spawn("ss-server", env.nsexec("p") + pin(FAR) + [
            "ss-server", "-s", P4, "-p", "8388", "-k", PW, "-m", METHOD])
        env.wait_port("p", 8388)
        env.spawn("iperf3-server", env.nsexec("s") + pin(far) + ["iperf3", "-s", "-p", str(IPERF)])
        env.wait_port("s", IPERF)
        env.spawn("sink", env.nsexec("s") + pin(far) + [harness.CLIENT, "tcpsink", str(SINK)])
        env.wait_port("s", SINK)
        env.spawn("httpsink", env.nsexec("s") + pin(far) + [harness.CLIENT, "tcpsink",
                                                             str(HTTP), "http"])
        env.wait_port("s", HTTP)
        names = [args.only] if args.only else ["anserd", "ss-redir", "v2ray"]
        if args.again and not args.only:
            names.append("again")
        if args.compare and not args.only:
            names.append("anserd-b")
        # A warm-up pass, not counted: the first measurements after the
        # namespaces and ss-server start ran ~10 % slow, and they always
        # fell on the first client of round 1.
        for name in names:
            c = Client(env, name, near)
            c.start()
            try:
                conn_rate(env, 500, near)
                iperf(env, 1, near)
            finally:
                c.stop()
        # two passes of ABBA rounds, wrk last (see the docstring)
        for phase in ("bulk", "wrk"):
            for rnd in range(args.rounds):
                order = names if rnd % 2 == 0 else names[::-1]
                for name in order:
                    v = measure(env, name, near, node, args, phase)
                    for k, x in v.items():
                        res.setdefault(name, {}).setdefault(k, []).append(x)
                    if phase == "bulk":
                        # three decimals: runs pooled later from these
                        # lines keep the precision the ratios had
                        print("round %d %-8s %6.3f Gbit/s  %.3f CPU s/GB  %7.0f conn/s  "
                              "(ss-server: %.3f CPU s/GB)" % (rnd + 1, name, v["bps"] / 1e9,
                                                              v["cpu_gb"], v["rate"],
                                                              v["node_gb"]), flush=True)
                    else:
                        print("round %d %-8s %7.0f wrk req/s" % (rnd + 1, name, v["wrk"]),
                              flush=True)
    finally:
        env.close()

    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in res.items()}
    if args.only:
        return
    # (key, column, format of a median, lower is better)
    cols = [("bps", "throughput", lambda x: "%.2f Gbit/s" % (x / 1e9), False),
            ("cpu_gb", "CPU s per GB", lambda x: "%.2f" % x, True),
            ("rate", "new conn/s", lambda x: "%.0f" % x, False),
            ("wrk", "wrk requests/s (new connection each)", lambda x: "%.0f" % x, False),
            ("node_gb", "ss-server's CPU s per GB", lambda x: "%.2f" % x, True)]
    best = {k: (min if low else max)(med["ss-redir"][k], med["v2ray"][k])
            for k, _, _, low in cols}
    print()
    print("| client (median of %d) | %s |" % (args.rounds, " | ".join(c[1] for c in cols)))
    print("|---|%s" % ("---|" * len(cols)))
    for n in names:
        print("| %s | %s |" % ("ss-redir again" if n == "again" else n, " | ".join(
            "%s (%.2fx)" % (f(med[n][k]), med[n][k] / best[k]) for k, _, f, _ in cols)))
    print("(ratios: to the better of ss-redir and v2ray; CPU: lower is better)")
    print()
    print("| paired, per round (median, 95%% interval; %d rounds) | %s |"
          % (args.rounds, " | ".join(c[1] for c in cols[:4])))
    print("|---|%s" % ("---|" * 4))
    pairs = [("anserd", "ss-redir"), ("anserd", "v2ray")]
    if "again" in res:
        pairs.append(("again", "ss-redir"))
    if "anserd-b" in res:
        pairs.append(("anserd-b", "anserd"))
    for a, b in pairs:
        cells = [fmt_ratio([x / y for x, y in zip(res[a][k], res[b][k])]) for k, *_ in cols[:4]]
        label = "ss-redir again / ss-redir (A/A)" if a == "again" else "%s / %s" % (a, b)
        print("| %s | %s |" % (label, " | ".join(cells)))
    ceil = crypto_ceiling()
    if ceil:
        print("crypto ceiling, openssl speed -evp aes-128-gcm, 16 KiB blocks, one core: "
              "%.1f Gbit/s" % (ceil / 1e9))


if __name__ == "__main__":
    main()
