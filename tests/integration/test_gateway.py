#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Gateway mode, its first part: anserd in a gateway namespace decides the
traffic a LAN client forwards through it (lan_interface), in the kernel.
Namespaces client (10.88.1.2, fd88:1::2) -> gateway (10.88.1.1 | 10.88.2.1,
forwarding on) -> server (10.88.2.2, fd88:2::2), routed, no NAT. One meson
test per case."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, run  # noqa: E402
from testserver import pattern  # noqa: E402  (the /bytes/N body)

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

# Run in the client namespace (client_probe). "OK ..." or "FAIL <error>":
#   HOST PORT udp              one datagram; "OK <what the server saw>" (the
#                              server echoes "ECHO <address it saw> <payload>")
#   HOST PORT tcp SPORT DSCP   GET / from source port SPORT (0: any) with DSCP;
#                              "OK <what the server saw>"
#   HOST PORT bytes N          GET /bytes/N; "OK <sha256 of the body> <bytes>"
#   HOST PORT cone[:N]         one socket sends "hello" (or N bytes) to PORT and
#                              PORT + 1, checks each reply came from the address
#                              it was sent to: "OK <seen by the first> <by the
#                              second> <local port>" (full cone: one source)
PROBE = """import hashlib, socket, sys
host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
v6 = ":" in host
fam = socket.AF_INET6 if v6 else socket.AF_INET


def get(s, path):
    s.sendall(b"GET %s HTTP/1.0\\r\\n\\r\\n" % path)
    data = b""
    while True:
        part = s.recv(65536)
        if not part:
            return data
        data += part


try:
    s = socket.socket(fam, socket.SOCK_DGRAM if what.startswith(("udp", "cone"))
                      else socket.SOCK_STREAM)
    s.settimeout(2)
    if what == "udp":
        s.sendto(b"x", (host, port))
        print("OK", s.recv(4096).split()[1].decode())
    elif what.startswith("cone"):
        payload = b"x" * int(what[5:]) if what.startswith("cone:") else b"hello"
        seen = []
        for p in (port, port + 1):
            s.sendto(payload, (host, p))
            data, src = s.recvfrom(4096)
            if (src[0], src[1]) != (host, p):
                raise OSError("reply from %s, sent to %s" % (src, (host, p)))
            parts = data.split()
            if parts[0] != b"ECHO" or parts[-1] != payload:
                raise OSError("bad reply %r" % data)
            seen.append(parts[1].decode())
        print("OK", seen[0], seen[1], s.getsockname()[1])
    elif what == "bytes":
        s.settimeout(5)
        s.connect((host, port))
        body = get(s, b"/bytes/%d" % int(sys.argv[4])).split(b"\\r\\n\\r\\n", 1)[1]
        print("OK", hashlib.sha256(body).hexdigest(), len(body))
    else:
        sport, dscp = int(sys.argv[4]), int(sys.argv[5])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if v6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, dscp << 2)
        else:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
        s.bind(("::" if v6 else "0.0.0.0", sport))
        s.connect((host, port))
        print("OK", get(s, b"/").split(b"client=")[-1].decode().strip())
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


def client_probe(env, host, port, *how):
    """PROBE, run once in the client namespace."""
    path = os.path.join(env.tmp, "probe.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(PROBE)
    return run(env.nsexec("c") + [harness.PY, path, host, str(port)] + [str(x) for x in how],
               check=False).stdout.strip()


def probe(env, host, port, udp=False, sport=0, dscp=0):
    return client_probe(env, host, port, *(["udp"] if udp else ["tcp", sport, dscp]))


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
    sport(5555) -> block
    dscp(46) && dport(%(web)d) -> block
    fallback: direct
}
"""


def t_sip_mac(env):
    """sip(), mac(), sport() and dscp(): the rules see a forwarded packet's
    source address, source MAC, source port and DSCP. The client's own
    address and port, and its MAC and another port, are blocked (v4 and v6
    alike for the MAC); rules for another network and another MAC leave it
    alone, and a negated v6 source rule does not hold for it; a source port
    and a DSCP value (with a destination port) are blocked, v4 and v6, and
    their neighbours are not."""
    topology(env)
    expect(reaches(env, S4, 8081, "OK " + C4), "before anserd, all is forwarded")
    expect(reaches(env, S6, SHUT, "OK " + C6), "before anserd, all is forwarded (v6)")
    link = json.loads(run(["ip", "-n", env.ns("c"), "-j", "link", "show", "e0"]).stdout)
    start(env, text=SIP_CONFIG % {"c4": C4, "mac": link[0]["address"], "shut": SHUT, "web": WEB})
    env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"))
    expect(probe(env, S4, 8081).startswith("FAIL"), "the client's source and port blocked")
    expect(probe(env, S4, SHUT).startswith("FAIL"), "the client's MAC and port blocked")
    expect(probe(env, S6, SHUT).startswith("FAIL"), "the client's MAC and port blocked (v6)")
    expect(reaches(env, S4, WEB, "OK " + C4), "its other ports forwarded")
    expect(reaches(env, S6, WEB, "OK " + C6), "v6: the negated source rule does not hold")
    expect(reaches(env, S6, 8081, "OK " + C6), "v6: the v4 source rule does not hold")
    # sport() and dscp(): the source port and the DSCP of the first packet
    for host, me in ((S4, C4), (S6, C6)):
        expect(probe(env, host, WEB, sport=5555).startswith("FAIL"),
               "source port 5555 blocked (%s)" % host)
        expect(probe(env, host, WEB, sport=5556) == "OK " + me,
               "source port 5556 forwarded (%s)" % host)
        expect(probe(env, host, WEB, dscp=46).startswith("FAIL"),
               "DSCP 46 to %d blocked (%s)" % (WEB, host))
        expect(probe(env, host, WEB, dscp=10) == "OK " + me, "DSCP 10 forwarded (%s)" % host)
    expect(probe(env, S6, 8081, dscp=46) == "OK " + C6,
           "DSCP 46 to another port forwarded (the rule wants both)")


PROXY_CONFIG = """global {
    log_level: debug
    lan_interface: lan0%(extra)s
}
node {
    ss: 'ss://%(ui)s@%(s4)s:8388'
}
group {
    proxy { policy: fixed(0) }
}
routing {
    dport(%(shut)d) -> block
    dport(8082, 8083) -> proxy
    fallback: direct
}
"""

SS_PASSWORD = "Anser-gw-pw1"

def proxy_probe(env, host, port, what):
    """PROBE's cone test ("udp", "udp:N") or a fetch of N bytes (what: N),
    allowing the first tries of a path to fail."""
    how = ["cone" + what[3:]] if what.startswith("udp") else ["bytes", what]
    for _ in range(3):
        out = client_probe(env, host, port, *how)
        if out.startswith("OK"):
            break
    return out


def start_proxy_gw(env, extra="", wrapper=()):
    """ss-server (aes-128-gcm, TCP and UDP) in the server namespace, web
    servers on 8082 and 8083 that the rules send through it, and anserd
    with a bus (for its connection list)."""
    import base64
    if not harness.shutil.which("ss-server"):
        raise harness.Skip("shadowsocks-libev not installed")
    topology(env)
    for port in (8082, 8083):
        env.spawn("web%d" % port, env.nsexec("s") + [harness.PY, harness.SERVER, str(port)])
    env.spawn("ss-server", env.nsexec("s") + ["ss-server", "-s", S4, "-s", S6, "-p", "8388",
                                              "-k", SS_PASSWORD, "-m", "aes-128-gcm", "-u",
                                              "-t", "30", "-v"])
    env.wait_port("s", 8388)
    env.wait_for("the servers", lambda: all(
        "ready" in env.log("web%d" % port) for port in (8082, 8083)))
    ui = base64.urlsafe_b64encode(("aes-128-gcm:" + SS_PASSWORD).encode()).decode().rstrip("=")
    env.start_bus()
    env.start_polkitd()
    start(env, text=PROXY_CONFIG % {"ui": ui, "s4": S4, "shut": SHUT, "extra": extra},
          wrapper=wrapper)
    env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"),
                 timeout=60)


def t_proxy(env):
    """A LAN client's flows that the rules send to a group are handed to
    anserd in the kernel and reach the server through a real ss-server
    (the server sees the node's address), TCP with the body's hash
    checked and UDP, over IPv4 and IPv6; replies to UDP come from the
    address the client sent to, and one client socket talking to two
    remotes is one session (full cone: both see one source). Direct flows
    keep the client's address and never appear in anserd's connection
    list; blocked ones are dropped; the gateway's own services are reached
    as they are."""
    start_proxy_gw(env)
    n = 300000
    want = "OK %s %d" % (hashlib.sha256(pattern(n)).hexdigest(), n)
    for host in (S4, S6):
        expect(reaches(env, host, 8082, "OK " + S4 if host == S4 else "OK " + S6),
               "proxied TCP to %s: the server sees the node (ss-server)" % host)
        got = proxy_probe(env, host, 8082, str(n))
        expect(got == want, "proxied TCP to %s: %d bytes, hash checked: %s" % (host, n, got))
        got = proxy_probe(env, host, 8082, "udp")
        parts = got.split()
        expect(len(parts) == 4 and parts[1] == host and parts[2] == host,
               "proxied UDP to %s: both remotes answer, each from its own address, and "
               "see the node: %s" % (host, got))
        expect(reaches(env, host, WEB, "OK " + (C4 if host == S4 else C6)),
               "direct TCP to %s keeps the client's address" % host)
        expect(reaches(env, host, WEB, "OK " + (C4 if host == S4 else C6), udp=True),
               "direct UDP to %s keeps the client's address" % host)
        expect(probe(env, host, SHUT).startswith("FAIL"), "blocked TCP to %s" % host)
    # a service of the gateway's own on a port the rules proxy: the kernel
    # delivers it (not a forwarded flow, never anserd's)
    gwweb = env.spawn("gwweb", env.nsexec("g") + [harness.PY, harness.SERVER, "8082"])
    env.wait_for("the gateway's server", lambda: "ready" in env.log("gwweb"))
    expect(reaches(env, G4C, 8082, "OK " + C4), "the gateway's own address is not proxied")
    expect(reaches(env, G6C, 8082, "OK " + C6), "the gateway's own v6 address is not proxied")
    # anserd's UDP replies bind nothing: they go out from remotes' port
    # 8082 while the gateway's own server holds [::]:8082
    for host in (S4, S6):
        got = proxy_probe(env, host, 8082, "udp")
        expect(got.split()[1:3] == [host, host],
               "proxied UDP to %s beside a local server on the port: %s" % (host, got))
    # a reply larger than the LAN's MTU (the request is not): sent from a
    # socket bound for it, which fragments
    gwweb.kill()
    gwweb.wait()
    for ns, dev in (("g", "lan0"), ("c", "e0")):
        run(["ip", "-n", env.ns(ns), "link", "set", dev, "mtu", "1400"])
    for host, size in ((S4, 1365), (S6, 1345)):
        got = proxy_probe(env, host, 8082, "udp:%d" % size)
        parts = got.split()
        expect(len(parts) == 4 and parts[1] == host,
               "proxied UDP to %s with a reply above the MTU: %s" % (host, got))
    expect(env.log("anserd").count("above the MTU: sent from a bound socket") >= 2,
           "both replies took the socket")
    for ns, dev in (("g", "lan0"), ("c", "e0")):
        run(["ip", "-n", env.ns(ns), "link", "set", dev, "mtu", "1500"])
    # datagrams the client sends in fragments: the gateway's kernel puts
    # a proxied one together for anserd, and forwards a direct one's
    # (2400 bytes: ss-server cuts datagrams above 2794, sealed, and sends
    # none above its link's MTU: the server side gets jumbo frames)
    for ns, dev in (("g", "wan0"), ("s", "e0")):
        run(["ip", "-n", env.ns(ns), "link", "set", dev, "mtu", "9000"])
    for host, me in ((S4, C4), (S6, C6)):
        got = proxy_probe(env, host, 8082, "udp:2400")
        expect(got.split()[1:3] == [host, host],
               "proxied UDP to %s in fragments: %s" % (host, got))
        got = proxy_probe(env, host, WEB, "udp:2400")
        expect(got.split()[1:3] == [me, me], "direct UDP to %s in fragments: %s" % (host, got))
    # the sessions anserd lists while the client holds flows open
    hold = subprocess.Popen(env.nsexec("c") + [harness.PY, "-c", HOLD, S4],
                            stdout=subprocess.PIPE, text=True)
    try:
        ready = hold.stdout.readline()
        expect(ready.startswith("open"), "the client holds its connections: %r" % ready)
        rows = json.loads(env.anserctl("connections", "--json").stdout)
        dests = {r["destination"]: r for r in rows}
        expect("%s:8082" % S4 in dests, "the proxied connection is listed: %s" % rows)
        row = dests["%s:8082" % S4]
        expect(row["outbound"] == "proxy", "listed as through the group: %s" % row)
        expect(C4 in json.dumps(row), "listed with the client's address: %s" % row)
        expect("%s:%d" % (S4, WEB) not in dests,
               "the direct connection is not anserd's and not listed: %s" % rows)
    finally:
        hold.kill()
        hold.wait()
    expect("Gateway: cannot route" not in env.log("anserd"), "the policy rule was added")


# holds a proxied (8082) and a direct (WEB) TCP connection open
HOLD = """import socket, sys, time
host = sys.argv[1]
a = socket.create_connection((host, 8082), timeout=5)
b = socket.create_connection((host, %d), timeout=5)
print("open", flush=True)
time.sleep(30)
""" % WEB


def gens(env):
    """How many configuration generations anserd made active."""
    return env.log("anserd").count("Configuration generation")


def rules_of(env):
    return run(env.nsexec("g") + ["ip", "rule", "show"]).stdout + \
        run(env.nsexec("g") + ["ip", "-6", "rule", "show"]).stdout


def t_proxy_reload(env):
    """Decisions are kept per flow: a proxied UDP flow stays proxied and a
    direct one direct after a reload that swaps their rules (a flow keeps
    its path), new flows take the new rules, and a reload that blocks a
    cached flow stops it at once. anserd's policy rule is there while it
    runs and gone after it stops."""
    start_proxy_gw(env)
    expect("0x80616e73" in rules_of(env), "the policy rule is in place: " + rules_of(env))
    path = os.path.join(env.tmp, "flows.py")
    with open(path, "w") as f:
        f.write(FLOWS)
    flows = subprocess.Popen(env.nsexec("c") + [harness.PY, path, S4, str(WEB)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def step():
        flows.stdin.write("\n")
        flows.stdin.flush()
        return flows.stdout.readline().split()

    try:
        first = step()
        expect(first == [S4, C4], "before the reload: 8082 proxied, %d direct: %s" % (WEB, first))
        text = open(os.path.join(env.tmp, "config.dae")).read()
        text = text.replace("dport(8082, 8083) -> proxy",
                            "dport(%d) -> proxy" % WEB)
        env.write_config(text)
        env.anserd.send_signal(signal.SIGHUP)
        env.wait_for("the reload", lambda: gens(env) >= 2)
        again = step()
        expect(again == [S4, C4], "after it the same flows keep their paths: %s" % again)
        got = proxy_probe(env, S4, WEB, "udp")
        # (the probe's second datagram goes to WEB + 1, which stays direct)
        expect(got.split()[1:3] == [S4, C4], "a new flow to %d is proxied now: %s" % (WEB, got))
        expect(reaches(env, S4, 8082, "OK " + C4, udp=True), "a new flow to 8082 is direct")
        text = text.replace("dport(%d) -> block" % SHUT, "dport(%d, 8082) -> block" % SHUT)
        env.write_config(text)
        env.anserd.send_signal(signal.SIGHUP)
        env.wait_for("the second reload", lambda: gens(env) >= 3)
        last = step()
        expect(last[0] == "TIMEOUT", "the cached flow to 8082 is blocked now: %s" % last)
    finally:
        flows.kill()
        flows.wait()
    env.anserd.send_signal(signal.SIGTERM)
    env.anserd.wait(30)
    expect("0x80616e73" not in rules_of(env), "the policy rule gone after exit: " +
           rules_of(env))


# Two UDP flows from fixed sockets, one datagram each per line of stdin:
# prints what the servers on 8082 and on argv[2] saw (or TIMEOUT).
FLOWS = """import socket, sys
host, direct = sys.argv[1], int(sys.argv[2])
socks = []
for port in (8082, direct):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((host, port))
    socks.append(s)
for line in sys.stdin:
    out = []
    for s in socks:
        try:
            s.send(b"x")
            out.append(s.recv(4096).split()[1].decode())
        except OSError:
            out.append("TIMEOUT")
    print(" ".join(out), flush=True)
"""


def t_proxy_closed(env):
    """fail_mode: closed in gateway mode. anserd killed with SIGKILL leaves
    its LAN programs pinned: the LAN's proxied TCP and UDP are dropped
    (never forwarded direct), its direct flows go on and blocked ones stay
    blocked. The next anserd removes those pins and proxies again; a clean
    exit unpins them and the LAN is forwarded as before."""
    bpf = os.path.join(env.tmp, "bpf")
    os.makedirs(bpf)
    run(["mount", "-t", "bpf", "bpf", bpf])  # a bpf filesystem of the test's own
    try:
        start_proxy_gw(env, extra="\n    fail_mode: closed")
        expect(reaches(env, S4, 8082, "OK " + S4), "proxied while anserd runs")
        pins = sorted(n for n in os.listdir(bpf) if n.startswith("anser_lan_"))
        expect(len(pins) == 1, "the LAN link pinned: %s" % os.listdir(bpf))
        os.kill(env.anserd.pid, signal.SIGKILL)
        env.anserd.wait(10)
        expect(probe(env, S4, 8082).startswith("FAIL"), "proxied TCP dropped after the kill")
        expect(probe(env, S6, 8083, udp=True).startswith("FAIL"),
               "proxied UDP dropped after the kill")
        expect(reaches(env, S4, WEB, "OK " + C4), "direct goes on after the kill")
        expect(reaches(env, S6, WEB, "OK " + C6, udp=True), "direct UDP goes on after the kill")
        expect(probe(env, S4, SHUT).startswith("FAIL"), "blocked stays blocked")
        start(env, text=open(os.path.join(env.tmp, "config.dae")).read())
        env.wait_for("the LAN interface", lambda: "Gateway: deciding" in env.log("anserd"))
        expect("a stopped anserd left pinned" in env.log("anserd"), env.log("anserd")[-2000:])
        expect(reaches(env, S4, 8082, "OK " + S4), "proxied again by the next anserd")
        env.anserd.send_signal(signal.SIGTERM)
        env.anserd.wait(30)
        expect(not [n for n in os.listdir(bpf) if n.startswith("anser_")],
               "no pins after a clean exit: %s" % os.listdir(bpf))
        expect(reaches(env, S4, 8082, "OK " + C4), "forwarded once anserd is gone")
    finally:
        run(["umount", "-l", bpf], check=False)


def t_proxy_valgrind(env):
    """anserd under valgrind proxying the LAN: TCP and UDP, v4 and v6,
    through ss-server, then exit: no errors, no definite leaks."""
    vlog = os.path.join(env.tmp, "valgrind.log")
    start_proxy_gw(env, wrapper=harness.valgrind_wrapper(vlog))
    for host in (S4, S6):
        got = proxy_probe(env, host, 8082, "100000")
        expect(got.startswith("OK") and got.endswith(" 100000"),
               "proxied TCP to %s under valgrind: %s" % (host, got))
        got = proxy_probe(env, host, 8082, "udp")
        expect(got.split()[1:3] == [host, host], "proxied UDP to %s under valgrind: %s" %
               (host, got))
    harness.stop_valgrind_anserd(env, vlog)


TESTS = {"direct_block": t_direct_block, "kill9": t_kill9, "glob_late": t_glob_late,
         "reload": t_reload, "valgrind": t_valgrind, "kparams": t_kparams, "sip_mac": t_sip_mac,
         "proxy": t_proxy, "proxy_reload": t_proxy_reload,
         "proxy_closed": t_proxy_closed, "proxy_valgrind": t_proxy_valgrind}

if __name__ == "__main__":
    harness.main(TESTS)
