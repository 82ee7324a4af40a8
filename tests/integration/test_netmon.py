#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""anserd follows the network: a real NetworkManager in the test host's
namespace (nmenv.NMNet: two static profiles wan0/wan1 on two veths) on the
private system bus, anserd in the same namespace. What is checked is what a
settings panel sees on the bus: Interfaces, PrimaryConnection and Network,
and their PropertiesChanged signals, timed against NetworkManager's own
(both read from one `busctl monitor`).

Usage: test_netmon.py CASE (run as root; one meson test per case)."""
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ANSERCTL, BUILD, expect, main, run  # noqa: E402
from nmenv import NMNet  # noqa: E402

ANSER_PATH = "/org/anser/Anser1"
NM_PATH = "/org/freedesktop/NetworkManager"
CONFIG = "global {\n    log_level: info\n}\nrouting {\n    fallback: direct\n}\n"


class BusWatch:
    """`busctl monitor` (root may monitor the private bus): every
    PropertiesChanged with its bus timestamp, as (t, path, {prop: value})."""

    def __init__(self, env):
        self.events = []
        self.lock = threading.Lock()
        self.p = subprocess.Popen(["busctl", "--address=" + env.bus, "monitor", "--json=short"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  start_new_session=True)
        env.procs.append(("busctl-monitor", self.p, os.devnull))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("member") != "PropertiesChanged" or m.get("type") != "signal":
                continue
            data = m.get("payload", {}).get("data", [])
            if len(data) < 2:
                continue
            props = {k: v.get("data") for k, v in data[1].items()}
            for k in (data[2] if len(data) > 2 else []):
                props.setdefault(k, None)  # invalidated
            with self.lock:
                self.events.append((m.get("timestamp-realtime", 0) / 1e6, m.get("path"), props))

    def mark(self):
        with self.lock:
            return len(self.events)

    def wait(self, since, path, prop, pred=lambda v: True, timeout=10.0):
        """The first change of PROP on PATH after index SINCE whose value
        satisfies pred: (time, value)."""
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                for t, p, props in self.events[since:]:
                    if p == path and prop in props and pred(props[prop]):
                        return t, props[prop]
            time.sleep(0.01)
        raise AssertionError("no PropertiesChanged of %s on %s after event %d" %
                             (prop, path, since))


def prop(env, name, sig):
    r = env.busctl("--json=short", "get-property", "org.anser.Anser1", ANSER_PATH,
                   "org.anser.Anser1.Manager", name)
    return json.loads(r.stdout)["data"]


def start(env, nm=True):
    env.start_bus()
    net = NMNet(env)
    net.setup()
    if nm:
        net.start_nm()
    env.setup_cgroup()
    env.start_anserd(env.write_config(CONFIG))
    return net


def wait_prop(env, name, want, timeout=10.0):
    return env.wait_for("%s == %r" % (name, want),
                        lambda: prop(env, name, None) == want or None, timeout)


def test_nm_primary(env):
    """PrimaryConnection and Interfaces follow `nmcli con down/up`, each
    change in one PropertiesChanged soon after NetworkManager's own."""
    net = start(env)
    watch = BusWatch(env)
    wait_prop(env, "PrimaryConnection", "wan0")
    wait_prop(env, "Interfaces", [["wan0", "wan"], ["wan1", "wan"]])
    netp = prop(env, "Network", None)
    expect(netp["Type"]["data"] == "ethernet" and netp["Interface"]["data"] == "wan0" and
           netp["NetworkManager"]["data"] is True and len(netp["Uuid"]["data"]) == 36,
           "Network: %s" % netp)
    out = env.anserctl("status").stdout
    expect("Network: wan0 (ethernet on wan0)" in out and
           "Interfaces: wan0 (wan), wan1 (wan)" in out, "status: " + out)

    delays = []
    for i in range(5):
        # down: wan1 takes over; up: wan0 (the lower metric) is back
        for action, primary, ifaces in (("down", "wan1", [["wan1", "wan"]]),
                                        ("up", "wan0", [["wan0", "wan"], ["wan1", "wan"]])):
            since = watch.mark()
            net.nmcli("con", action, "wan0", check=True)
            t_nm, _ = watch.wait(since, NM_PATH, "PrimaryConnection")
            t_us, _ = watch.wait(since, ANSER_PATH, "PrimaryConnection",
                                 lambda v, want=primary: v == want)
            watch.wait(since, ANSER_PATH, "Interfaces", lambda v, want=ifaces: v == want)
            delays.append(t_us - t_nm)
            expect(prop(env, "Interfaces", None) == ifaces, "Interfaces after " + action)
            expect(prop(env, "PrimaryConnection", None) == primary, "primary after " + action)
    ms = sorted(d * 1000 for d in delays)
    print("PrimaryConnection: anserd's change after NetworkManager's, over %d switches: "
          "median %.1f ms, max %.1f ms" % (len(ms), statistics.median(ms), ms[-1]))
    expect(ms[-1] < 1000, "a switch took %.0f ms to reach the bus" % ms[-1])
    # one signal per switch for each property, not a storm
    n = sum(1 for _, p, props in watch.events if p == ANSER_PATH and "PrimaryConnection" in props)
    expect(n <= len(delays) + 2, "%d PrimaryConnection signals for %d switches" %
           (n, len(delays)))
    zh = run([ANSERCTL, "--address=" + env.bus, "status"],
             env=dict(os.environ, LC_ALL="C.UTF-8", LANGUAGE="zh_CN",
                      ANSER_LOCALEDIR=os.path.join(BUILD, "po"))).stdout
    expect("网络：wan0（ethernet，接口 wan0）" in zh and "网络接口：" in zh, "zh_CN status: " + zh)


def test_nm_restart(env):
    """NetworkManager stopped: anserd says so and keeps following the
    kernel; NetworkManager back: the primary connection is back."""
    net = start(env)
    wait_prop(env, "PrimaryConnection", "wan0")
    for kill in (False, True):
        net.stop_nm(kill=kill)
        wait_prop(env, "PrimaryConnection", "")
        expect(prop(env, "Network", None)["NetworkManager"]["data"] is False,
               "Network.NetworkManager after NM stopped")
        out = env.anserctl("status").stdout
        expect("Network: unknown (NetworkManager is not running)" in out, "status: " + out)
        # the kernel is still watched: a route change shows without NM
        have = sorted(i for i, _ in prop(env, "Interfaces", None))
        expect(have == sorted(net.default_route_ifaces()),
               "Interfaces %s, default routes on %s" % (have, net.default_route_ifaces()))
        run(env.nsexec("h") + ["ip", "link", "set", "wan1", "down"])
        wait_prop(env, "Interfaces", [["wan0", "wan"]] if "wan0" in have else [])
        run(env.nsexec("h") + ["ip", "link", "set", "wan1", "up"])
        net.start_nm()
        wait_prop(env, "PrimaryConnection", "wan0", timeout=30)
        wait_prop(env, "Interfaces", [["wan0", "wan"], ["wan1", "wan"]], timeout=30)
        expect(prop(env, "Network", None)["NetworkManager"]["data"] is True, "NM back")


def test_no_nm(env):
    """No NetworkManager on the bus at all: Interfaces from the kernel."""
    net = start(env, nm=False)
    expect(prop(env, "PrimaryConnection", None) == "", "no primary without NM")
    expect(prop(env, "Interfaces", None) == [], "no default route yet")
    h = env.nsexec("h")
    run(h + ["ip", "link", "set", "wan1", "up"])
    run(h + ["ip", "addr", "add", "10.79.0.1/24", "dev", "wan1"])
    run(h + ["ip", "route", "add", "default", "via", "10.79.0.254"])
    wait_prop(env, "Interfaces", [["wan1", "wan"]])
    run(h + ["ip", "route", "del", "default"])
    wait_prop(env, "Interfaces", [])
    del net


TESTS = {
    "nm_primary": test_nm_primary,
    "nm_restart": test_nm_restart,
    "no_nm": test_no_nm,
}

if __name__ == "__main__":
    main(TESTS)
