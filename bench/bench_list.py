#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ListConnections with many live connections, and the PropertiesChanged
rate while they are opened.

An app in anserd's cgroup opens N TCP connections (default 10,000) to a
server in the test namespace and holds them; half are proxied (through
microsocks), half direct. While they open, `busctl monitor` counts the
PropertiesChanged signals anserd sends. With all of them open,
ListConnections is called R times through busctl; the time of a busctl
call of the constant Version property is measured the same way. anserd
logs what it spends from the call's arrival to the reply's sending (the
sock_diag dump, the join with the flow table, the proxy's byte counters,
the reply); that time, the column the acceptance bound is on, is the
median of the last R calls.

Usage (root, after ./dev.sh build): bench/bench_list.py [--conns N] [--rounds R]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from harness import S4  # noqa: E402

PORT = 7070
SERVER = """
import socket, sys, selectors
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", %d)); s.listen(4096); held = []
print("ready", flush=True)
while True:
    c, _ = s.accept(); held.append(c)
""" % PORT
HOLDER = """
import socket, sys, time
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
held = []
for i in range(n):
    c = socket.socket(); c.connect((host, port)); held.append(c)
print("opened", len(held), flush=True)
time.sleep(3600)
"""


def timed(cmd, rounds):
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = a.conns * 3 if hard == resource.RLIM_INFINITY else min(a.conns * 3, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    env = harness.Env("bench-list")
    try:
        env.setup_net()
        env.setup_cgroup()
        env.start_microsocks()
        env.start_bus()
        env.start_polkitd()
        srv = os.path.join(env.tmp, "server.py")
        hold = os.path.join(env.tmp, "holder.py")
        with open(srv, "w") as f:
            f.write(SERVER)
        with open(hold, "w") as f:
            f.write(HOLDER)
        env.spawn("server", env.nsexec("s") + ["sh", "-c", "ulimit -n %d; exec python3 %s"
                                               % (want, srv)])
        env.wait_for("server", lambda: "ready" in env.log("server"))
        cfg = env.write_config(
            "node { socks: 'socks5://10.77.0.2:1080' }\n"
            "group { proxy { policy: fixed(0) } }\n"
            "routing {\n  pname(holdP) -> proxy\n  fallback: direct\n}\n")
        env.start_anserd(cfg)
        mgr = ["org.anser.Anser1", "/org/anser/Anser1", "org.anser.Anser1.Manager"]
        busctl = ["busctl", "--address=" + env.bus]
        env.spawn("monitor", busctl + ["monitor",
                                       "--match=type='signal',member='PropertiesChanged'"])
        time.sleep(0.5)
        t0 = time.monotonic()
        holders = []
        for name, n in (("holdP", a.conns // 2), ("holdD", a.conns - a.conns // 2)):
            holders.append(env.app(name, hold, n, S4, PORT, binary="/usr/bin/python3",
                                   background=True))
        for h in holders:
            line = h.stdout.readline()
            if not line.startswith("opened"):
                sys.exit("holder failed: " + line + h.stdout.read())
        storm = time.monotonic() - t0
        time.sleep(2.5)  # the last announcement (at most a second later)
        signals = env.log("monitor").count("ActiveApps")
        listed = subprocess.run(busctl + ["call"] + mgr + ["ListConnections"], check=True,
                                capture_output=True, text=True).stdout
        n_listed = int(listed.split()[1])
        perf = None
        if os.environ.get("ANSER_PERF"):
            perf = subprocess.Popen(["perf", "record", "-g", "-o", os.environ["ANSER_PERF"],
                                     "-p", str(env.anserd.pid)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1)
        lst = timed(busctl + ["call"] + mgr + ["ListConnections"], a.rounds)
        if perf:
            perf.send_signal(2)
            perf.wait()
        base = timed(busctl + ["get-property"] + mgr + ["Version"], a.rounds)
        ml, mb = statistics.median(lst), statistics.median(base)
        import re
        inside = [float(x) for x in re.findall(
            r"ListConnections: \d+ connections in ([0-9.]+) ms", env.log("anserd"))]
        mi = statistics.median(inside[-a.rounds:])
        print("| live connections listed | ListConnections in anserd (median) | busctl call, "
              "total | busctl get-property Version | opening them | ActiveApps signals |")
        print("|---|---|---|---|---|---|")
        print("| %d | %.1f ms | %.1f ms | %.1f ms | %.1f s | %d (%.2f/s) |"
              % (n_listed, mi, ml, mb, storm, signals, signals / (storm + 2.5)))
        for h in holders:
            h.kill()
    finally:
        env.close()


if __name__ == "__main__":
    main()
