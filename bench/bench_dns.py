#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""DNS forwarding caches side by side: anserd's dns service vs dnsmasq vs
unbound (as a forwarding cache), all in front of the same authoritative
unbound, measured with dnsperf in one run.

Topology (test namespaces, nothing on the host):
  ns s: unbound, authoritative for bench.test (N names) and a redirect zone
        miss.test (any name answers: endless cache misses)
  ns h: the three servers under test, each pinned to CPU 1, and dnsperf
        pinned to CPU 0
Per round (the order rotates):
  - cache hits: the N names asked once to warm the cache, then dnsperf
    over them for SECONDS (QPS, NOERROR share, and the server's CPU time
    per query, utime + stime of all its threads: the number that ranks
    servers when dnsperf is the limit);
  - latency: cache hits at a fixed rate (-Q RATE) with dnsperf -v, p50 and
    p99 of the per-query times;
  - cache misses: a fresh file of unique names under miss.test (QPS).
Then, with all three servers running at once (each still pinned to CPU 1,
idle while the others are asked), latency again, interleaved: SEGMENTS
runs of 2 s at RATE per server, the order rotating, every query's time
pooled per server, so the host's drift over minutes falls on all three
alike (the per-round p99 above is one 3 s sample each, which a VM's
scheduling hiccups move by several times); one segment each at the rate
goes first, not counted.
Median over ROUNDS, ratios to the better of dnsmasq and unbound. Whether
dnsperf is the limit of the cache-hit QPS: how busy the server's core was
during the hits (its CPU seconds over the load's run time, as dnsperf
reports it) and dnsperf's (its CPU seconds over the command's wall time:
it is pinned to one core and spins before and after the load); with
dnsperf's core full and the server's not, the QPS measures dnsperf, and
1 / CPU per hit -- what the server's one core could answer -- ranks the
servers instead (printed as a table of its own).

Usage: bench/bench_dns.py [--rounds 3] [--seconds 5] [--names 1000] [--rate 20000]
                          [--segments 6]
dnsperf's ceiling: in each round's rotation too, bench-dnsnull (a
responder that answers every query with one A record and does nothing
else, in batches as they come) alone, and again with anserd running
beside it -- its cgroup hooks and loopback program attached, which every
UDP datagram on the machine passes -- so the table shows the most any
server can reach with dnsperf here, and what anserd's hooks cost the
loopback path.

Cache hits again with bench-dnsq, in the same slot as dnsperf's: a lean
load generator of our own (bench/bench-dnsq.c: connected sockets, batched
sendmmsg/recvmmsg, 4 sockets x 32 queries outstanding, the same names
and the same query form as dnsperf's). It is there because dnsperf is
the limit here: against bench-dnsq the servers' cores fill first (its
table shows both cores), so its QPS ranks the servers themselves, and
the no-op responder's row shows how far above the servers its own
ceiling is. The same generator, pinned the same way, for every server.

Needs root, dnsperf, dnsmasq, unbound, and a build in ./build (or
ANSER_BUILD_DIR).
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from bench_direct import fmt_ratio  # noqa: E402
import unbound as unbound_conf  # noqa: E402
from harness import H4, S4, run  # noqa: E402

PORTS = {"anserd": 5353, "dnsmasq": 5354, "unbound": 5355}
# dnsperf's ceiling: bench-dnsnull, a responder that does no work, alone
# and with anserd running beside it (its cgroup hooks and loopback program
# attached, its cache idle)
NULL = os.path.join(harness.BUILD, "bench", "bench-dnsnull")
NULL_PORT = 5356
CEILS = ("no-op responder", "no-op, anserd running")
# the lean load generator, for when dnsperf is the limit
DNSQ = os.path.join(harness.BUILD, "bench", "bench-dnsq")

AUTH = """    verbosity: 0
    interface: %(s4)s@53
    num-threads: 1
    local-zone: "bench.test." static
    local-zone: "miss.test." redirect
    local-data: "miss.test. 3600 IN A 10.77.0.8"
%(names)s
"""

FWD = """    verbosity: 0
    interface: %(h4)s@%(port)d
    num-threads: 1
    msg-cache-size: 64m
    rrset-cache-size: 64m
    do-not-query-localhost: no
    domain-insecure: "test."
forward-zone:
    name: "."
    forward-addr: %(s4)s@53
"""

ANSER = """global {
    log_level: warning
}
dns {
    bind: 'udp://%(h4)s:%(port)d'
    max_cache_size: 100000
    upstream {
        auth: 'udp://%(s4)s:53'
    }
    routing {
        request {
            fallback: auth
        }
    }
}
routing {
    fallback: direct
}
"""


def dnsperf(env, port, datafile, seconds, extra=()):
    cmd = env.nsexec("h") + ["taskset", "-c", "0", "dnsperf", "-s", H4, "-p", str(port),
                             "-d", datafile, "-l", str(seconds), "-c", "8", "-q", "1000",
                             "-t", "2"] + list(extra)
    return run(cmd, check=False).stdout


def with_core_share(fn):
    """fn()'s result and how busy the load generator it ran kept its core:
    the waited-for children's CPU time over fn's wall time (the generator
    is pinned to one core and spins before and after the load too)."""
    g0, t0 = children_cpu(), time.monotonic()
    out = fn()
    return out, (children_cpu() - g0) / (time.monotonic() - t0)


def dnsq(env, port, datafile, seconds):
    """bench-dnsq's cache-hit run: (QPS, share of replies that were
    answers, the generator's core busy over the command's wall time)."""
    out, gen = with_core_share(lambda: run(env.nsexec("h") + [
        "taskset", "-c", "0", DNSQ, H4, str(port), datafile, str(seconds)], check=False).stdout)
    m = re.search(r"sent (\d+) answered (\d+) other (\d+) lost (\d+) seconds ([0-9.]+) "
                  r"qps ([0-9.]+)", out)
    if not m:
        raise RuntimeError("bench-dnsq: no result: %r" % out)
    sent, ans = int(m.group(1)), int(m.group(2))
    return float(m.group(6)), (100.0 * ans / sent if sent else 0.0), gen


def qps_of(out):
    m = re.search(r"Queries per second:\s+([0-9.]+)", out)
    ok = re.search(r"NOERROR (\d+) \(([0-9.]+)%\)", out)
    return (float(m.group(1)) if m else 0.0), (float(ok.group(2)) if ok else 0.0)


def children_cpu():
    """utime + stime of the waited-for children so far (dnsperf runs as
    one: nsenter and taskset exec it)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def server_pid(env, port):
    """The pid of what listens on UDP port in ns h."""
    out = run(env.nsexec("h") + ["ss", "-Hlunp", "sport = :%d" % port]).stdout
    return int(re.search(r"pid=(\d+)", out).group(1))


def samples(out):
    """The per-query latencies (s) of a dnsperf -v run."""
    return [float(line.split()[-1]) for line in out.splitlines() if line.startswith("> NOERROR")]


def pctl(ts):
    ts = sorted(ts)
    if not ts:
        return float("nan"), float("nan")
    return ts[len(ts) // 2] * 1e6, ts[min(len(ts) - 1, int(len(ts) * 0.99))] * 1e6


def latencies(out):
    return pctl(samples(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--names", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--segments", type=int, default=6)
    a = ap.parse_args()
    for tool in ("dnsperf", "unbound", "dnsmasq"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench_dns: %s is not installed" % tool)
    env = harness.Env("bench-dns")
    try:
        env.setup_net()
        env.setup_cgroup()
        d = env.tmp
        names = "\n".join('    local-data: "n%d.bench.test. 3600 IN A 10.77.%d.%d"'
                          % (i, i // 250, i % 250 + 1) for i in range(a.names))
        with open(os.path.join(d, "auth.conf"), "w") as f:
            f.write(unbound_conf.config(d, AUTH % {"s4": S4, "names": names}))
        env.spawn("auth", env.nsexec("s") + ["taskset", "-c", "0", "unbound", "-d", "-c",
                                             os.path.join(d, "auth.conf")])
        env.wait_for("the authoritative unbound", lambda: run(
            env.nsexec("s") + ["ss", "-Hlun", "sport = :53"], check=False).stdout.strip())
        hits = os.path.join(d, "hits.txt")
        with open(hits, "w") as f:
            for i in range(a.names):
                f.write("n%d.bench.test A\n" % i)

        def start(name):
            port = PORTS[name]
            if name == "anserd":
                cfg = env.write_config(ANSER % {"h4": H4, "s4": S4, "port": port})
                return env.start_anserd(cfg, wrapper=["taskset", "-c", "1"],
                                        extra=["--workers", "1"])
            if name == "dnsmasq":
                p = env.spawn(name, env.nsexec("h") + [
                    "taskset", "-c", "1", shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "-k",
                    "--conf-file=/dev/null", "--port=%d" % port, "--listen-address=" + H4,
                    "--bind-interfaces", "--no-resolv", "--no-hosts",
                    "--server=%s#53" % S4, "--cache-size=100000", "--dns-forward-max=5000",
                    "--user=root", "--group=root", "--pid-file=", "--log-facility=-"])
            else:
                conf = os.path.join(d, "fwd.conf")
                with open(conf, "w") as f:
                    f.write(unbound_conf.config(d, FWD % {"h4": H4, "s4": S4, "port": port}))
                p = env.spawn(name, env.nsexec("h") + ["taskset", "-c", "1", "unbound", "-d",
                                                       "-c", conf])
            env.wait_for(name, lambda: run(env.nsexec("h") + [
                "ss", "-Hlun", "sport = :%d" % port], check=False).stdout.strip())
            return p

        results = {n: {"hit": [], "miss": [], "p50": [], "p99": [], "ok": [], "cpu": [],
                       "busy": [], "gen": [], "qhit": [], "qbusy": [], "qgen": [], "qok": []}
                   for n in PORTS}
        ceil = {n: {"hit": [], "gen": [], "qhit": [], "qgen": []} for n in CEILS}

        def ceiling(name):
            nul = env.spawn("dnsnull", env.nsexec("h") + ["taskset", "-c", "1", NULL, H4,
                                                          str(NULL_PORT)])
            env.wait_for("bench-dnsnull", lambda: run(env.nsexec("h") + [
                "ss", "-Hlun", "sport = :%d" % NULL_PORT], check=False).stdout.strip())
            if name == CEILS[1]:
                start("anserd")
            try:
                out, gen = with_core_share(lambda: dnsperf(env, NULL_PORT, hits, a.seconds))
                hq, ok = qps_of(out)
                qq, qok, qgen = dnsq(env, NULL_PORT, hits, a.seconds)
            finally:
                if name == CEILS[1]:
                    env.stop_anserd()
                nul.terminate()
                nul.wait(10)
            if ok < 99 or qok < 99:
                raise RuntimeError("bench-dnsnull: %.1f%% NOERROR (bench-dnsq: %.1f%% answers)"
                                   % (ok, qok))
            ceil[name]["hit"].append(hq)
            ceil[name]["gen"].append(gen)
            ceil[name]["qhit"].append(qq)
            ceil[name]["qgen"].append(qgen)
            print("round %d %-8s hit %8.0f QPS (dnsperf's core busy %.0f%%)  bench-dnsq %8.0f "
                  "QPS (its core busy %.0f%%)" % (rnd + 1, name, hq, 100 * gen, qq, 100 * qgen),
                  flush=True)
            time.sleep(0.5)

        order = list(PORTS)
        every = order + list(CEILS)
        for rnd in range(a.rounds):
            for name in every[rnd % len(every):] + every[:rnd % len(every)]:
                if name in CEILS:
                    ceiling(name)
                    continue
                p = start(name)
                port = PORTS[name]
                dnsperf(env, port, hits, 2, ["-n", "1"])  # warm the cache
                pid = server_pid(env, port)
                c0 = harness.cpu_seconds(pid)
                hout, gen = with_core_share(lambda: dnsperf(env, port, hits, a.seconds))
                cpu = harness.cpu_seconds(pid) - c0
                # the server's share: over the load, as dnsperf times it
                rt = re.search(r"Run time \(s\):\s+([0-9.]+)", hout)
                busy = cpu / (float(rt.group(1)) if rt else float(a.seconds))
                hq, ok = qps_of(hout)
                sent = re.search(r"Queries completed:\s+(\d+)", hout)
                us_per_q = cpu * 1e6 / int(sent.group(1)) if sent and int(sent.group(1)) else 0
                # the same hits from the lean generator: the server's core
                # busy over its run
                c0, t0 = harness.cpu_seconds(pid), time.monotonic()
                qq, qok, qgen = dnsq(env, port, hits, a.seconds)
                qbusy = (harness.cpu_seconds(pid) - c0) / (time.monotonic() - t0)
                # latency before the misses: a server still working off
                # forwarded misses would measure its backlog, not its cache
                time.sleep(1)
                p50, p99 = latencies(dnsperf(env, port, hits, 3, ["-Q", str(a.rate), "-v"]))
                miss = os.path.join(d, "miss-%s-%d.txt" % (name, rnd))
                with open(miss, "w") as f:
                    for i in range(400000):
                        f.write("m%d-%s-%d.miss.test A\n" % (i, name, rnd))
                mq, _ = qps_of(dnsperf(env, port, miss, a.seconds, ["-n", "1"]))
                r = results[name]
                r["hit"].append(hq)
                r["cpu"].append(us_per_q)
                r["busy"].append(busy)
                r["gen"].append(gen)
                r["ok"].append(ok)
                r["miss"].append(mq)
                r["p50"].append(p50)
                r["p99"].append(p99)
                r["qhit"].append(qq)
                r["qok"].append(qok)
                r["qbusy"].append(qbusy)
                r["qgen"].append(qgen)
                print("round %d %-8s hit %8.0f QPS (%.1f%% NOERROR, %.2f us CPU/query; cores "
                      "busy: server %.0f%%, dnsperf %.0f%%)  miss %8.0f QPS  p50 %6.0f us  "
                      "p99 %6.0f us" % (rnd + 1, name, hq, ok, us_per_q, 100 * busy,
                                        100 * gen, mq, p50, p99), flush=True)
                print("round %d %-8s hit %8.0f QPS with bench-dnsq (%.1f%% answers; cores busy: "
                      "server %.0f%%, bench-dnsq %.0f%%)" % (rnd + 1, name, qq, qok, 100 * qbusy,
                                                              100 * qgen), flush=True)
                if name == "anserd":
                    env.stop_anserd()
                else:
                    p.terminate()
                    p.wait(10)
                time.sleep(0.5)
        # interleaved latency: all three up, asked in turn
        procs = {n: start(n) for n in PORTS}
        pooled = {n: [] for n in PORTS}
        for n in PORTS:
            dnsperf(env, PORTS[n], hits, 2, ["-n", "1"])
        time.sleep(1)
        # one segment each at the rate, not counted: the first timed run
        # after the start was the slowest, whoever it fell on
        for n in order:
            dnsperf(env, PORTS[n], hits, 2, ["-Q", str(a.rate)])
        for seg in range(a.segments):
            for n in order[seg % 3:] + order[:seg % 3]:
                ts = samples(dnsperf(env, PORTS[n], hits, 2, ["-Q", str(a.rate), "-v"]))
                pooled[n] += ts
                p50, p99 = pctl(ts)
                print("segment %d %-8s p50 %6.0f us  p99 %6.0f us" % (seg + 1, n, p50, p99),
                      flush=True)
        for n, p in procs.items():
            if n == "anserd":
                env.stop_anserd()
            else:
                p.terminate()
                p.wait(10)
        inter = {n: pctl(pooled[n]) for n in PORTS}
        med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
        best = {k: max(med["dnsmasq"][k], med["unbound"][k]) for k in ("hit", "miss")}
        low = {k: min(med["dnsmasq"][k], med["unbound"][k]) for k in ("p50", "p99", "cpu")}
        print()
        print("| server (median of %d) | cache-hit QPS | CPU per cache hit | cache-miss QPS | "
              "p50 at %d QPS | p99 |" % (a.rounds, a.rate))
        print("|---|---|---|---|---|---|")
        for n in PORTS:
            m = med[n]
            print("| %s | %.0f (%.2fx) | %.2f us (%.2fx) | %.0f (%.2fx) | %.0f us (%.2fx) | "
                  "%.0f us (%.2fx) |"
                  % (n, m["hit"], m["hit"] / best["hit"], m["cpu"], m["cpu"] / low["cpu"],
                     m["miss"], m["miss"] / best["miss"], m["p50"], m["p50"] / low["p50"],
                     m["p99"], m["p99"] / low["p99"]))
        print("(QPS ratios to the better of dnsmasq and unbound; CPU and latency ratios to the "
              "lower)")
        print()
        ilow = [min(inter["dnsmasq"][i], inter["unbound"][i]) for i in (0, 1)]
        print("| server (interleaved, %d x 2 s at %d QPS, pooled) | p50 | p99 | queries |"
              % (a.segments, a.rate))
        print("|---|---|---|---|")
        for n in PORTS:
            print("| %s | %.0f us (%.2fx) | %.0f us (%.2fx) | %d |"
                  % (n, inter[n][0], inter[n][0] / ilow[0], inter[n][1], inter[n][1] / ilow[1],
                     len(pooled[n])))
        # Is dnsperf the limit? Its core full while the server's is not
        # says so; then 1 / CPU per hit is what the server's core could
        # answer, and their ratio ranks the servers instead of QPS.
        print()
        print("| server (median of %d) | its core busy during hits | dnsperf's core busy | "
              "hits one core could answer (1 / CPU per hit) |" % a.rounds)
        print("|---|---|---|---|")
        cap = {n: 1e6 / med[n]["cpu"] if med[n]["cpu"] else 0 for n in PORTS}
        best_cap = max(cap["dnsmasq"], cap["unbound"])
        for n in PORTS:
            print("| %s | %.0f %% | %.0f %% | %.0f (%.2fx) |"
                  % (n, 100 * med[n]["busy"], 100 * med[n]["gen"], cap[n], cap[n] / best_cap))
        for n in PORTS:
            if med[n]["gen"] >= 0.9 and med[n]["busy"] < 0.9:
                print("note: against %s, dnsperf's core was %.0f %% busy and the server's %.0f %%:"
                      " dnsperf is the limit, and its QPS does not rank the server"
                      % (n, 100 * med[n]["gen"], 100 * med[n]["busy"]))
        # dnsperf's ceiling: what it reaches against a server that costs
        # nothing is the most any server can show with it here
        print()
        print("| dnsperf's ceiling (median of %d) | cache-hit QPS | dnsperf's core busy |"
              % a.rounds)
        print("|---|---|---|")
        cmed = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in ceil.items()}
        for n in CEILS:
            print("| %s | %.0f (%.2fx) | %.0f %% |" % (n, cmed[n]["hit"],
                                                     cmed[n]["hit"] / best["hit"],
                                                     100 * cmed[n]["gen"]))
        print("| anserd | %.0f (%.2fx) | %.0f %% |" % (med["anserd"]["hit"],
                                                     med["anserd"]["hit"] / best["hit"],
                                                     100 * med["anserd"]["gen"]))
        print("(ratios to the better of dnsmasq and unbound; anserd's hits are %.2fx the no-op "
              "responder's with anserd running)"
              % (med["anserd"]["hit"] / cmed[CEILS[1]]["hit"]))
        # the lean generator: the servers' cores fill first
        print()
        qbest = max(med["dnsmasq"]["qhit"], med["unbound"]["qhit"])
        print("| cache hits with bench-dnsq (median of %d) | QPS | server's core busy | "
              "bench-dnsq's core busy |" % a.rounds)
        print("|---|---|---|---|")
        for n in PORTS:
            print("| %s | %.0f (%.2fx) | %.0f %% | %.0f %% |"
                  % (n, med[n]["qhit"], med[n]["qhit"] / qbest, 100 * med[n]["qbusy"],
                     100 * med[n]["qgen"]))
        for n in CEILS:
            print("| %s | %.0f (%.2fx) | - | %.0f %% |"
                  % (n, cmed[n]["qhit"], cmed[n]["qhit"] / qbest, 100 * cmed[n]["qgen"]))
        print("(ratios to the better of dnsmasq and unbound)")
        per = [a_ / max(d, u) for a_, d, u in zip(results["anserd"]["qhit"],
                                                   results["dnsmasq"]["qhit"],
                                                   results["unbound"]["qhit"])]
        print("per round, anserd / the better of the two with bench-dnsq: %s; median %s"
              % (", ".join("%.3f" % x for x in per), fmt_ratio(per)))
        for n in PORTS:
            if med[n]["qbusy"] < 0.9:
                print("note: against %s, the server's core was only %.0f %% busy under "
                      "bench-dnsq: the generator, not the server, may be the limit"
                      % (n, 100 * med[n]["qbusy"]))
            if med[n]["qok"] < 99:
                print("note: %s answered only %.1f %% of bench-dnsq's queries"
                      % (n, med[n]["qok"]))
    finally:
        env.close()


if __name__ == "__main__":
    main()
