#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Groups and health checks end to end: two real SOCKS5 nodes (microsocks
binding their outgoing connections to 10.77.0.2 and 10.77.0.4, so the web
server's view says which node carried a flow), one of them slow (a delaying
relay in front, this kernel has no netem) or killed. One meson test per case."""
import base64
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import P4, S4, WEB, expect, seen_as  # noqa: E402

A4 = P4            # node A's outgoing address
B4 = "10.77.0.4"   # node B's (a second address in the proxy namespace)
INTERVAL = 2       # check_interval, seconds
RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "delayrelay.py")

CONFIG = """global {
    log_level: debug
    tcp_check_url: 'http://check.test:8080/', '%(s4)s'
    check_interval: %(interval)ds
    check_tolerance: 50ms
}
node {
    a: '%(a)s'
    b: 'socks5://%(b4)s:1081'
}
group {
    proxy {
        filter: name(a, b)
        policy: %(policy)s
    }
}
routing {
    pname(appA) -> proxy
    fallback: direct
}
"""


def setup(env, policy, slow_a=False):
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    harness.run(["ip", "-n", env.ns("p"), "addr", "add", B4 + "/24", "dev", "e0"])
    env.procs_a = env.spawn("microsocks-a", env.nsexec("p") + [
        "microsocks", "-i", A4, "-p", "1080", "-b", A4])
    env.procs_b = env.spawn("microsocks-b", env.nsexec("p") + [
        "microsocks", "-i", B4, "-p", "1081", "-b", B4])
    env.wait_port("p", 1080)
    env.wait_port("p", 1081)
    link_a = "socks5://%s:1080" % A4
    if slow_a:
        env.spawn("delay", env.nsexec("p") + [harness.PY, RELAY, A4, "2080", A4, "1080", "150"])
        env.wait_port("p", 2080)
        link_a = "socks5://%s:2080" % A4
    env.start_anserd(env.write_config(CONFIG % {
        "s4": S4, "interval": INTERVAL, "a": link_a, "b4": B4, "policy": policy}))


def via(env):
    a = env.app("appA", "tcp", S4, WEB, timeout=20)
    return seen_as(a.stdout), a


def wait_log(env, pattern, timeout):
    start = time.time()
    env.wait_for(pattern, lambda: re.search(pattern, env.log("anserd")), timeout=timeout)
    return time.time() - start


def t_min_slow_and_dead(env):
    """policy min: the slow node is avoided once checked; when the fast one
    dies, flows move to the slow one within check_interval + one check;
    when both are dead, new flows fail fast with a logged reason."""
    setup(env, "min", slow_a=True)
    wait_log(env, r"Group proxy now uses node b for tcp4|Node a .* tcp4", 10)
    # after the first round b (fast) carries the flows
    env.wait_for("b chosen", lambda: via(env)[0] == B4, timeout=10)
    for _ in range(3):
        expect(via(env)[0] == B4, "the fast node should carry new flows")
    env.procs_b.kill()
    killed = time.time()
    env.wait_for("a chosen", lambda: via(env)[0] == A4, timeout=INTERVAL * 1.1 + 5 + 3)
    took = time.time() - killed
    print("moved to the live node %.2f s after the kill (check_interval %d s)" % (took, INTERVAL))
    expect(took <= INTERVAL * 1.1 + 5 + 1, "took %.2f s" % took)
    expect(re.search(r"Node b failed its tcp4 check", env.log("anserd")), "b's death is logged")
    env.procs_a.kill()
    wait_log(env, r"Group proxy has no live node for tcp4", INTERVAL * 1.1 + 5 + 2)
    start = time.time()
    who, a = via(env)
    took = time.time() - start
    expect(who is None and a.returncode != 0, "a dead group must not carry flows: " + a.stdout)
    expect(took < 2, "a dead group fails fast (%.2f s)" % took)
    expect("no live node for tcp4, failing it" in env.log("anserd"), "the reason is logged")


def t_when_dead_direct(env):
    """when_dead: direct (our extension): with every node of the group dead,
    new flows go out directly instead of failing."""
    global CONFIG
    saved = CONFIG
    CONFIG = CONFIG.replace("        policy: %(policy)s\n",
                            "        policy: %(policy)s\n        when_dead: direct\n")
    try:
        setup(env, "min")
    finally:
        CONFIG = saved
    env.wait_for("a node chosen", lambda: via(env)[0] in (A4, B4), timeout=10)
    env.procs_a.kill()
    env.procs_b.kill()
    wait_log(env, r"Group proxy has no live node for tcp4", INTERVAL * 1.1 + 5 + 2)
    who, a = via(env)
    expect(who == harness.H4, "a dead group with when_dead: direct goes direct: " + a.stdout)


def t_random(env):
    """random spreads flows over both nodes, and skips a dead one."""
    setup(env, "random")
    seen = {via(env)[0] for _ in range(24)}
    expect(seen == {A4, B4}, "random should use both nodes, used %s" % seen)
    env.procs_a.kill()
    wait_log(env, r"Node a failed its tcp4 check", INTERVAL * 1.1 + 5 + 2)
    seen = [via(env)[0] for _ in range(12)]
    expect(set(seen) == {B4}, "random must skip the dead node: %s" % seen)


def t_fixed(env):
    """fixed(1) always uses the group's second node."""
    setup(env, "fixed(1)")
    seen = {via(env)[0] for _ in range(8)}
    expect(seen == {B4}, "fixed(1) should use b only: %s" % seen)


SS_CONFIG = """global {
    log_level: debug
    tcp_check_url: 'http://check.test:8080/', '%(s4)s'
    udp_check_dns: 'check.test:53', '%(s4)s'
    check_interval: 30s
}
node {
    ss: 'ss://aes-128-gcm:Anser-test-pw1@%(p4)s:8388'
}
group {
    proxy {
        policy: min
    }
}
routing {
    pname(appA) -> proxy
    fallback: direct
}
"""


def t_udp_check(env):
    """UDP is checked through the node (a DNS query to a real dnsmasq
    through ss-server): anserctl test-nodes shows tcp4 and udp4 latency;
    with dnsmasq gone udp4 fails and the group's UDP flows fail at once
    while its TCP flows still go through the node."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    dns = env.start_dnsmasq()
    env.start_ss("aes-128-gcm", "Anser-test-pw1")
    env.start_bus()
    env.start_polkitd()
    env.start_anserd(env.write_config(SS_CONFIG % {"s4": S4, "p4": P4}))
    out = env.anserctl("test-nodes").stdout
    expect("checks done" in out and "tcp4" in out and "udp4" in out, out)
    nd = json.loads(env.anserctl("--json", "nodes").stdout)[0]
    expect(nd["Checked"] is True and nd["Alive"] is True, nd)
    expect(set(nd["Latency"]) == {"tcp4", "udp4"}, nd)
    expect(nd["Dead"] == [], nd)  # tcp6/udp6: no v6 address to check with
    u = env.app("appA", "udp", S4, WEB, "hi")
    expect("reply=ECHO %s hi" % P4 in u.stdout, "UDP goes through the node: " + u.stdout)

    mon = subprocess.Popen(env.nsexec("h") + [harness.ANSERCTL, "--address", env.bus, "monitor"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.3)
    dns.kill()
    env.anserctl("test-nodes", "proxy")
    nd = json.loads(env.anserctl("--json", "nodes").stdout)[0]
    expect(nd["Dead"] == ["udp4"] and "tcp4" in nd["Latency"], nd)
    mon.terminate()
    out = mon.communicate(timeout=5)[0]
    expect("Groups changed" in out, "the group's new choice is signalled: " + out)
    u = env.app("appA", "udp", S4, WEB, "hi", timeout=10)
    expect("reply=" not in u.stdout, "the group has no live UDP node: " + u.stdout)
    expect("no live node for udp4, failing it" in env.log("anserd"), "the reason is logged")
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "TCP still goes through the node: " + a.stdout)
    r = env.anserctl("test-nodes", "nosuch", check=False)
    expect(r.returncode == 2 and "no group 'nosuch'" in r.stdout, r.stdout)


def udp_check_case(kind):
    """UDP checks through a trojan node (datagrams framed in its TLS stream,
    trojan-gfw), a VMess or a VLESS node (a UDP stream per destination,
    v2ray) to a real dnsmasq, and an app's UDP through the same node."""
    def t(env):
        env.setup_net()
        env.setup_cgroup()
        env.start_web()
        env.start_dnsmasq()
        if kind == "trojan":
            env.start_trojan("Anser-test-pw1")
            link = "trojan://Anser-test-pw1@%s:443?sni=prx.test&allowInsecure=1" % P4
        elif kind == "vmess":
            uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"
            env.start_v2ray({"listen": P4, "port": 10086, "protocol": "vmess",
                             "settings": {"clients": [{"id": uuid, "alterId": 0}]}})
            link = "vmess://%s@%s:10086?type=tcp" % (uuid, P4)
        else:
            uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"
            env.start_v2ray({"listen": P4, "port": 10087, "protocol": "vless",
                             "settings": {"clients": [{"id": uuid}], "decryption": "none"}})
            link = "vless://%s@%s:10087?encryption=none" % (uuid, P4)
        env.start_bus()
        env.start_polkitd()
        text = SS_CONFIG.replace("ss: 'ss://aes-128-gcm:Anser-test-pw1@%(p4)s:8388'",
                                 "n: '" + link + "'")
        env.start_anserd(env.write_config(text % {"s4": S4, "p4": P4}))
        env.anserctl("test-nodes")
        nd = json.loads(env.anserctl("--json", "nodes").stdout)[0]
        expect(set(nd["Latency"]) == {"tcp4", "udp4"} and nd["Dead"] == [], nd)
        u = env.app("appA", "udp", S4, WEB, "hi")
        expect("reply=ECHO %s hi" % P4 in u.stdout, "UDP goes through %s: %s" % (kind, u.stdout))
    return t


FILESERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fileserver.py")

SUB_CONFIG = """global {
    log_level: debug
    tcp_check_url: 'http://check.test:8080/', '%(s4)s'
}
subscription {
    web: '%(url)s'
    local: 'file://local.json'
}
group {
    viaweb {
        filter: subtag(web) && name(keyword: 'ss')
        policy: fixed(0)
    }
    vialocal {
        filter: subtag(local)
        policy: fixed(0)
    }
}
routing {
    pname(appA) -> viaweb
    pname(appB) -> vialocal
    fallback: direct
}
"""


def t_subscription(env):
    """Subscriptions fetched by anserd: a base64 link list over HTTPS (a
    test CA through SSL_CERT_FILE), a SIP008 file next to the config; their
    nodes carry traffic through real servers, subtag() selects them; when
    the web server is gone a reload uses the copy kept in persist.d."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_ss("aes-128-gcm", "Anser-test-pw1")
    env.start_microsocks()
    env.start_bus()
    env.start_polkitd()
    # a certificate for the server's IP, its own CA for anserd
    d = os.path.join(env.tmp, "www")
    os.makedirs(d)
    cert, key = os.path.join(env.tmp, "www.pem"), os.path.join(env.tmp, "www.key")
    harness.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + S4,
                 "-addext", "subjectAltName=IP:" + S4, "-keyout", key, "-out", cert])
    os.chmod(key, 0o644)
    ss = "ss://%s@%s:8388#ss-tokyo" % (
        base64.urlsafe_b64encode(b"aes-128-gcm:Anser-test-pw1").decode().rstrip("="), P4)
    body = "\n".join(["socks5://%s:1080#socks-osaka" % P4, ss, "vmess://bm9uc2Vuc2U=", ""])
    with open(os.path.join(d, "sub"), "w") as f:
        f.write(base64.b64encode(body.encode()).decode())
    web = env.spawn("fileserver", env.nsexec("s") + [harness.PY, FILESERVER, S4, "8443", d, cert,
                                                     key])
    env.wait_port("s", 8443)
    text = SUB_CONFIG % {"s4": S4, "url": "https-file://%s:8443/sub" % S4}
    cfg = env.write_config(text)
    with open(os.path.join(os.path.dirname(cfg), "local.json"), "w") as f:
        json.dump({"version": 1, "servers": [{
            "server": P4, "server_port": 8388, "password": "Anser-test-pw1",
            "method": "aes-128-gcm", "remarks": "ss-local"}]}, f)
    env.start_anserd(cfg, environ=dict(os.environ, SSL_CERT_FILE=cert))
    log = env.log("anserd")
    expect("Subscription web: fetched" in log, log[-2000:])
    expect(re.search(r"subscription 'web': 1 of 3 entries skipped", log), log[-2000:])
    nodes = json.loads(env.anserctl("--json", "nodes").stdout)
    names = sorted(n["Name"] for n in nodes)
    expect(names == ["socks-osaka", "ss-local", "ss-tokyo"], names)
    groups = json.loads(env.anserctl("--json", "groups").stdout)
    by = {g["Name"]: g for g in groups}
    expect(by["viaweb"]["Nodes"] == ["ss-tokyo"] and by["vialocal"]["Nodes"] == ["ss-local"],
           groups)
    a = env.app("appA", "tcp", S4, WEB)
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4 and seen_as(b.stdout) == P4,
           "both go through the subscription nodes: %s %s" % (a.stdout, b.stdout))
    kept = os.path.join(env.tmp, "state", "persist.d", "web.sub")
    expect(os.path.exists(kept) and os.stat(kept).st_mode & 0o777 == 0o600,
           "a private copy is kept in persist.d")
    # the server is gone: a reload keeps working from the copy
    web.kill()
    web.wait()
    env.anserctl("reload")
    expect("fetch failed" in env.log("anserd") and "using the copy kept on" in env.log("anserd"),
           env.log("anserd")[-1500:])
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "still through the kept copy's node: " + a.stdout)


TESTS = {
    "min_slow_and_dead": t_min_slow_and_dead,
    "random": t_random,
    "when_dead_direct": t_when_dead_direct,
    "fixed": t_fixed,
    "udp_check": t_udp_check,
    "subscription": t_subscription,
    "udp_check_trojan": udp_check_case("trojan"),
    "udp_check_vmess": udp_check_case("vmess"),
    "udp_check_vless": udp_check_case("vless"),
}

if __name__ == "__main__":
    harness.main(TESTS)
