#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Gateway mode, its first part: anserd in a gateway namespace decides the
traffic a LAN client forwards through it (lan_interface), in the kernel.
Namespaces client (10.88.1.2, fd88:1::2) -> gateway (10.88.1.1 | 10.88.2.1,
forwarding on) -> server (10.88.2.2, fd88:2::2), routed, no NAT. One meson
test per case."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, run  # noqa: E402

C4, G4C, G4S, S4 = "10.88.1.2", "10.88.1.1", "10.88.2.1", "10.88.2.2"
C6, G6C, G6S, S6 = "fd88:1::2", "fd88:1::1", "fd88:2::1", "fd88:2::2"
WEB = 8080
SHUT = 9999  # blocked by the rules; a server listens there too

CONFIG = """global {
    log_level: debug
    lan_interface: %(lan)s%(extra)s
}
routing {
    dport(%(shut)d) -> block
    dip(%(s6)s) && dport(8081) -> block
    fallback: direct
}
"""

# "OK <what the server saw>" or "FAIL <error>", within 2 s; over TCP, or
# with a third argument "udp" one datagram (the server echoes
# "ECHO <address it saw> <payload>").
PROBE = """import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    if sys.argv[3:] == ["udp"]:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.sendto(b"x", (host, port))
        print("OK", s.recv(4096).split()[1].decode())
        sys.exit(0)
    s = socket.create_connection((host, port), timeout=2)
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    data = b""
    while True:
        part = s.recv(4096)
        if not part:
            break
        data += part
    print("OK", data.split(b"client=")[-1].decode().strip())
except OSError as e:
    print("FAIL", e)
"""


def topology(env):
    """client <-> gateway <-> server, with routes both ways."""
    for role in ("c", "g", "s"):
        run(["ip", "netns", "add", env.ns(role)])
        env.netns.append(env.ns(role))
        run(["ip", "-n", env.ns(role), "link", "set", "lo", "up"])
    run(["ip", "-n", env.ns("c"), "link", "add", "e0", "type", "veth", "peer", "name", "lan0",
         "netns", env.ns("g")])
    run(["ip", "-n", env.ns("s"), "link", "add", "e0", "type", "veth", "peer", "name", "wan0",
         "netns", env.ns("g")])
    for ns, dev, a4, a6 in (("c", "e0", C4, C6), ("g", "lan0", G4C, G6C),
                            ("g", "wan0", G4S, G6S), ("s", "e0", S4, S6)):
        run(["ip", "-n", env.ns(ns), "addr", "add", a4 + "/24", "dev", dev])
        run(["ip", "-n", env.ns(ns), "addr", "add", a6 + "/64", "dev", dev, "nodad"])
        run(["ip", "-n", env.ns(ns), "link", "set", dev, "up"])
    run(["ip", "-n", env.ns("c"), "route", "add", "default", "via", G4C])
    run(["ip", "-n", env.ns("c"), "-6", "route", "add", "default", "via", G6C])
    run(["ip", "-n", env.ns("s"), "route", "add", "default", "via", G4S])
    run(["ip", "-n", env.ns("s"), "-6", "route", "add", "default", "via", G6S])
    # forwarding in the gateway's own namespace only (set by the test here;
    # t_kparams has anserd set it)
    run(env.nsexec("g") + ["sysctl", "-qw", "net.ipv4.ip_forward=1",
                           "net.ipv6.conf.all.forwarding=1"])
    for port in (WEB, SHUT, 8081):
        env.spawn("web%d" % port, env.nsexec("s") + [harness.PY, harness.SERVER, str(port)])
    env.wait_for("the servers", lambda: all(
        "ready" in env.log("web%d" % port) for port in (WEB, SHUT, 8081)))


def probe(env, host, port, udp=False):
    path = os.path.join(env.tmp, "probe.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(PROBE)
    return run(env.nsexec("c") + [harness.PY, path, host, str(port)] + (["udp"] if udp else []),
               check=False).stdout.strip()


def reaches(env, host, port, want, udp=False):
    """probe() == want, allowing the first tries of a path (neighbour
    discovery) to time out."""
    for _ in range(3):
        out = probe(env, host, port, udp)
        if out == want:
            return True
    print("probe %s:%d gave %r, want %r" % (host, port, out, want))
    return False


def gw_config(lan, extra=""):
    text = CONFIG % {"lan": lan, "shut": SHUT, "s6": S6, "extra": extra}
    return text if lan else text.replace("    lan_interface: \n", "")


def start(env, lan="lan0", wrapper=(), extra="", text=None):
    if not env.cg:
        env.setup_cgroup()
    env.start_anserd(env.write_config(text or gw_config(lan, extra)), wrapper=wrapper, role="g")


def t_direct_block(env):
    """A LAN client's forwarded flows: direct ones reach the server with the
    client's own address (the kernel forwarded them), TCP and UDP, over
    IPv4 and IPv6; those a block rule names are dropped in the gateway, by
    port and by address and port."""
    topology(env)
    expect(reaches(env, S4, SHUT, "OK " + C4), "before anserd, all is forwarded")
    expect(reaches(env, S6, SHUT, "OK " + C6), "before anserd, all is forwarded (v6)")
    expect(reaches(env, S4, SHUT, "OK " + C4, udp=True), "before anserd, UDP is forwarded")
    expect(reaches(env, S6, 8081, "OK " + C6, udp=True), "before anserd, UDP v6 is forwarded")
    start(env)
    env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"))
    expect(reaches(env, S4, WEB, "OK " + C4), "direct v4")
    expect(reaches(env, S6, WEB, "OK " + C6), "direct v6")
    expect(probe(env, S4, SHUT).startswith("FAIL"), "blocked v4 by port")
    expect(probe(env, S6, SHUT).startswith("FAIL"), "blocked v6 by port")
    expect(probe(env, S6, 8081).startswith("FAIL"), "blocked v6 by address and port")
    expect(reaches(env, S4, 8081, "OK " + C4), "the v4 address is not blocked on 8081")
    # UDP: forwarded with the client's address, or dropped
    expect(reaches(env, S4, WEB, "OK " + C4, udp=True), "direct UDP v4")
    expect(reaches(env, S6, WEB, "OK " + C6, udp=True), "direct UDP v6")
    expect(probe(env, S4, SHUT, udp=True).startswith("FAIL"), "blocked UDP v4 by port")
    expect(probe(env, S6, 8081, udp=True).startswith("FAIL"), "blocked UDP v6 by address")


def t_kill9(env):
    """anserd killed with SIGKILL: a direct iperf3 stream through the
    gateway goes on through the kill, its links go with it, and the LAN's
    traffic is forwarded again, blocked ports too (fail open)."""
    topology(env)
    expect(reaches(env, S4, WEB, "OK " + C4), "the path works")
    start(env)
    env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"))
    expect(probe(env, S4, SHUT).startswith("FAIL"), "blocked while anserd runs")
    ids = env.prog_ids_of(env.anserd.pid)
    expect(ids, "anserd holds programs")
    # a direct iperf3 stream through the gateway, anserd killed in the middle
    env.spawn("iperf3", env.nsexec("s") + ["iperf3", "-s", "-p", "5201"])
    env.wait_port("s", 5201)
    stream = subprocess.Popen(env.nsexec("c") + ["iperf3", "-c", S4, "-p", "5201", "-t", "4",
                                                 "-i", "0.5", "-J"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.5)
        env.anserd.send_signal(signal.SIGKILL)
        env.anserd.wait(10)
        out, _ = stream.communicate(timeout=30)
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.wait()
    res = json.loads(out[out.index("{"):])
    expect("error" not in res, "the stream went on: %s" % res.get("error"))
    late = [i["sum"]["bits_per_second"] for i in res["intervals"] if i["sum"]["start"] >= 2.0]
    expect(late and min(late) > 0, "bytes flowed after the kill in every interval: %s" % late)
    env.wait_for("its programs gone", lambda: not env.prog_ids_exist(ids))
    expect(reaches(env, S4, SHUT, "OK " + C4), "forwarded once anserd is gone")


def t_glob_late(env):
    """lan_interface as a glob: an interface that appears after start and
    matches is watched at once; one that goes leaves nothing behind."""
    topology(env)
    expect(reaches(env, S4, WEB, "OK " + C4), "the path works")
    start(env, lan="'lan*'")
    env.wait_for("lan0 watched", lambda: "Gateway: deciding" in env.log("anserd"))
    run(["ip", "-n", env.ns("g"), "link", "add", "lan1", "type", "veth", "peer", "name", "x1"])
    run(["ip", "-n", env.ns("g"), "link", "set", "lan1", "up"])
    env.wait_for("lan1 watched", lambda: env.log("anserd").count("Gateway: deciding") >= 2)
    run(["ip", "-n", env.ns("g"), "link", "del", "lan1"])
    env.wait_for("lan1 let go", lambda: "Gateway: left interface" in env.log("anserd"))
    expect(probe(env, S4, SHUT).startswith("FAIL"), "lan0 still decided")


def t_reload(env):
    """lan_interface added by a reload: anserd says the gateway needs a
    restart (its program is loaded only when lan_interface is set at
    start) and forwards as before; after the restart it decides."""
    topology(env)
    expect(reaches(env, S4, WEB, "OK " + C4), "the path works")
    start(env, lan="")
    expect("Gateway: deciding" not in env.log("anserd"), "no LAN interface at first")
    env.write_config(gw_config("lan0"))
    env.anserd.send_signal(signal.SIGHUP)
    env.wait_for("the warning", lambda: "Gateway mode needs a restart" in env.log("anserd"))
    expect(reaches(env, S4, SHUT, "OK " + C4), "still forwarded")
    env.anserd.send_signal(signal.SIGTERM)
    env.anserd.wait(30)
    start(env, lan="lan0")
    env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"))
    expect(probe(env, S4, SHUT).startswith("FAIL"), "blocked after the restart")


def t_valgrind(env):
    """anserd under valgrind as a gateway: the glob, an interface that comes
    and goes, a blocked and a direct flow, exit: no errors, no definite
    leaks."""
    vlog = os.path.join(env.tmp, "valgrind.log")
    wrapper = harness.valgrind_wrapper(vlog)
    topology(env)
    expect(reaches(env, S4, WEB, "OK " + C4), "the path works")
    start(env, lan="'lan*'", wrapper=wrapper)
    env.wait_for("lan0 watched", lambda: "Gateway: deciding" in env.log("anserd"), timeout=60)
    run(["ip", "-n", env.ns("g"), "link", "add", "lan1", "type", "veth", "peer", "name", "x1"])
    env.wait_for("lan1 watched", lambda: env.log("anserd").count("Gateway: deciding") >= 2,
                 timeout=30)
    run(["ip", "-n", env.ns("g"), "link", "del", "lan1"])
    env.wait_for("lan1 let go", lambda: "Gateway: left interface" in env.log("anserd"),
                 timeout=30)
    expect(probe(env, S4, SHUT).startswith("FAIL"), "blocked under valgrind")
    expect(reaches(env, S4, WEB, "OK " + C4), "direct under valgrind")
    harness.stop_valgrind_anserd(env, vlog)


KPARAMS = {"net.ipv4.ip_forward": ("0", "1"), "net.ipv6.conf.all.forwarding": ("0", "1"),
           "net.ipv4.conf.all.send_redirects": ("1", "0"),
           "net.ipv4.conf.lan0.send_redirects": ("1", "0"),
           "net.ipv6.conf.wan0.accept_ra": ("1", "2")}


def sysctls(env):
    out = run(env.nsexec("g") + ["sysctl", "-n"] + list(KPARAMS)).stdout.split()
    return dict(zip(KPARAMS, out))


def t_kparams(env):
    """auto_config_kernel_parameter: anserd turns forwarding on, redirects
    off (all and lan0) and keeps router advertisements on the WAN side
    (accept_ra 1 -> 2), and puts all of it back on SIGTERM. Killed with
    SIGKILL it leaves them set (the LAN keeps being forwarded) and a
    record; the next anserd, whose config no longer asks, puts back the
    values from before the first."""
    topology(env)
    settings = ["%s=%s" % (k, v[0]) for k, v in KPARAMS.items()]
    run(env.nsexec("g") + ["sysctl", "-qw"] + settings)
    before = {k: v[0] for k, v in KPARAMS.items()}
    after = {k: v[1] for k, v in KPARAMS.items()}
    expect(sysctls(env) == before, "the test's starting values: %s" % sysctls(env))
    expect(probe(env, S4, WEB).startswith("FAIL"), "not forwarded while forwarding is off")
    auto = "\n    wan_interface: wan0\n    auto_config_kernel_parameter: true"
    start(env, extra=auto)
    env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"))
    env.wait_for("the parameters set", lambda: sysctls(env) == after)
    expect(reaches(env, S4, WEB, "OK " + C4), "forwarded v4 with the parameters anserd set")
    expect(reaches(env, S6, WEB, "OK " + C6), "forwarded v6 with the parameters anserd set")
    record = os.path.join(env.tmp, "state", "kernel-parameters")
    expect(os.path.exists(record), "a record of the old values while running")
    env.anserd.send_signal(signal.SIGTERM)
    env.anserd.wait(30)
    expect(sysctls(env) == before, "put back on SIGTERM: %s" % sysctls(env))
    expect(not os.path.exists(record), "no record after a clean exit")
    expect("Put back net.ipv4.ip_forward = 0" in env.log("anserd"), env.log("anserd")[-2000:])

    start(env, extra=auto)
    env.wait_for("the parameters set again", lambda: sysctls(env) == after)
    env.anserd.send_signal(signal.SIGKILL)
    env.anserd.wait(10)
    expect(sysctls(env) == after, "left set by a killed anserd: %s" % sysctls(env))
    expect(reaches(env, S4, WEB, "OK " + C4), "the LAN is forwarded after the kill")
    with open(record) as f:
        text = f.read()
    expect("net/ipv4/ip_forward 0" in text, "the record keeps the old values: " + text)
    start(env)  # auto_config_kernel_parameter no longer set
    env.wait_for("the old values back", lambda: sysctls(env) == before)
    expect("did not exit cleanly" in env.log("anserd"), env.log("anserd")[-2000:])
    expect(not os.path.exists(record), "the record gone once put back")
    env.anserd.send_signal(signal.SIGTERM)
    env.anserd.wait(30)
    expect(sysctls(env) == before, "unchanged by an anserd not asked to: %s" % sysctls(env))


SIP_CONFIG = """global {
    log_level: debug
    lan_interface: lan0
}
routing {
    sip(10.88.9.0/24) -> block
    mac(02:00:5e:00:53:01) -> block
    sip(%(c4)s) && dport(8081) -> block
    mac(%(mac)s) && dport(%(shut)d) -> block
    !sip(fd88:1::/64) && ipversion(6) -> block
    fallback: direct
}
"""


def t_sip_mac(env):
    """sip() and mac(): the rules see a forwarded packet's source address
    and source MAC. The client's own address and port, and its MAC and
    another port, are blocked (v4 and v6 alike for the MAC); rules for
    another network and another MAC leave it alone, and a negated v6
    source rule does not hold for it."""
    topology(env)
    expect(reaches(env, S4, 8081, "OK " + C4), "before anserd, all is forwarded")
    expect(reaches(env, S6, SHUT, "OK " + C6), "before anserd, all is forwarded (v6)")
    link = json.loads(run(["ip", "-n", env.ns("c"), "-j", "link", "show", "e0"]).stdout)
    start(env, text=SIP_CONFIG % {"c4": C4, "mac": link[0]["address"], "shut": SHUT})
    env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"))
    expect(probe(env, S4, 8081).startswith("FAIL"), "the client's source and port blocked")
    expect(probe(env, S4, SHUT).startswith("FAIL"), "the client's MAC and port blocked")
    expect(probe(env, S6, SHUT).startswith("FAIL"), "the client's MAC and port blocked (v6)")
    expect(reaches(env, S4, WEB, "OK " + C4), "its other ports forwarded")
    expect(reaches(env, S6, WEB, "OK " + C6), "v6: the negated source rule does not hold")
    expect(reaches(env, S6, 8081, "OK " + C6), "v6: the v4 source rule does not hold")


TESTS = {"direct_block": t_direct_block, "kill9": t_kill9, "glob_late": t_glob_late,
         "reload": t_reload, "valgrind": t_valgrind, "kparams": t_kparams, "sip_mac": t_sip_mac}

if __name__ == "__main__":
    harness.main(TESTS)
