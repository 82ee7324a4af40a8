#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Proxy protocols end to end: an app in the test cgroup is routed to a node
served by a real Debian server (ss-server, tinyproxy, ...) in its own
namespace; the web server in a third namespace must see the node's address,
and a transfer's hash must match the direct one. One meson test per case."""
import base64
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H4, H6, P4, P6, S4, S6, WEB, expect, seen_as  # noqa: E402

# Health checks go through the node to the test's own servers (the web
# server and dnsmasq in ns s): dae's defaults (1.1.1.1, 8.8.8.8) cannot be
# reached from the test namespaces, and a node whose UDP check failed
# would turn new UDP flows away.
CHECKS = """    tcp_check_url: 'http://check.test:8080/', '%s'
    udp_check_dns: 'check.test:53', '%s'
""" % (S4, S4)

CONFIG = """global {
    log_level: debug
""" + CHECKS + """}
node {
    n1: '%(link)s'
}
group {
    proxy {
        policy: fixed(0)
    }
}
routing {
    pname(appA) -> proxy
    fallback: direct
}
"""

PASSWORD = "Anser-test-pw1"  # base64 free of '=', '+', '/' in every flavour


def start(env, link):
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_dnsmasq()
    return link


def run_anserd(env, link):
    env.start_anserd(env.write_config(CONFIG % {"link": link}))


def check_tcp(env, via=(P4, P6)):
    """appA reaches v4 and v6 servers through the node, appB goes direct,
    4 MiB arrive intact through the node, and 8 MiB go up intact."""
    for server, node_addr, host_addr in ((S4, via[0], H4), (S6, via[1], H6)):
        a = env.app("appA", "tcp", server, WEB)
        b = env.app("appB", "tcp", server, WEB)
        expect(a.returncode == 0, "appA to %s failed: %s" % (server, a.stdout))
        expect(seen_as(a.stdout) == node_addr,
               "appA should reach %s via the node (%s), server saw %s"
               % (server, node_addr, seen_as(a.stdout)))
        expect(seen_as(b.stdout) == host_addr, "appB should go direct: " + b.stdout)
    size = 4 * 1024 * 1024 + 12345
    a = env.app("appA", "tcpget", S4, WEB, "/bytes/%d" % size, timeout=60)
    b = env.app("appB", "tcpget", S4, WEB, "/bytes/%d" % size, timeout=60)
    expect(a.returncode == 0 and "len=%d " % size in a.stdout, "short transfer: " + a.stdout)
    expect(a.stdout.split()[-1] == b.stdout.split()[-1],
           "hash via the node %s != direct %s" % (a.stdout, b.stdout))
    check_upload(env)


def check_upload(env):
    """8 MiB uploaded through the node arrive whole; a bulk flow, its
    relay buffer grew on the way (daemon/proxy/tcp.c, RELAY_BIG) and went
    back to the budget when it ended."""
    size = 8 * 1024 * 1024 + 4321
    a = env.app("appA", "tcpput", S4, WEB, size, timeout=60)
    expect("put=ok len=%d" % size in a.stdout, "upload via the node: " + a.stdout)
    expect("its upload buffer grown" in env.log("anserd"),
           "the bulk upload should have moved to the big relay buffer")


def check_udp(env, via=(P4, P6)):
    """Datagrams of appA reach v4 and v6 servers through the node and the
    replies come back from the server's address (sendto/recvfrom and a
    connect()ed socket); appB's go direct."""
    for server, node_addr, host_addr in ((S4, via[0], H4), (S6, via[1], H6)):
        shown = server if ":" not in server else "[%s]" % server
        for mode in ("udp", "udpc"):
            a = env.app("appA", mode, server, WEB, "hello")
            expect(a.returncode == 0, "appA UDP (%s) to %s got no reply: %s"
                   % (mode, server, a.stdout))
            expect("reply=ECHO %s hello" % node_addr in a.stdout,
                   "appA UDP should reach %s via the node (%s): %s"
                   % (server, node_addr, a.stdout))
            expect("from=%s" % shown in a.stdout,
                   "the reply's source should be the server: " + a.stdout)
        b = env.app("appB", "udp", server, WEB, "hi")
        expect("reply=ECHO %s hi" % host_addr in b.stdout, "appB UDP goes direct: " + b.stdout)


def ss_case(method, form="sip002"):
    def t(env):
        start(env, None)
        env.start_ss(method, PASSWORD)
        if form == "sip002":
            ui = base64.urlsafe_b64encode(("%s:%s" % (method, PASSWORD)).encode()).decode()
            link = "ss://%s@%s:8388#ss" % (ui.rstrip("="), P4)
        else:  # the legacy all-base64 form
            body = base64.b64encode(("%s:%s@%s:8388" % (method, PASSWORD, P4)).encode())
            link = "ss://%s#ss" % body.decode()
        run_anserd(env, link)
        check_tcp(env)
        check_udp(env)
    return t


SS2022_SERVER = os.path.join(harness.SRC, "tests", "integration", "ss2022server.py")


def start_ss2022(env, method, psk, port=8389):
    """The SIP022 stand-in server (ss2022server.py: Debian has no real one)."""
    import shutil
    if not shutil.which("b3sum"):
        raise harness.Skip("b3sum not installed")
    env.spawn("ss2022", env.nsexec("p") + [harness.PY, SS2022_SERVER, method, psk, "::",
                                          str(port)])
    env.wait_for("ss2022 server", lambda: "ready" in env.log("ss2022"))


def ss2022_case(method, klen):
    """TCP (4 MiB both ways hashed, v4 and v6) and UDP (full cone) through
    a shadowsocks 2022 node; the server saw padded, timely requests."""
    def t(env):
        start(env, None)
        psk = base64.b64encode(os.urandom(klen)).decode()
        start_ss2022(env, method, psk)
        run_anserd(env, "ss://%s:%s@%s:8389#ss22" % (method, urllib.parse.quote(psk, safe=""),
                                                     P4))
        check_tcp(env)
        check_udp(env)
        log = env.log("ss2022")
        expect("rejected" not in log, "the 2022 server rejected something:\n" + log)
        expect(" padding " in log and "udp session" in log, log)
    return t


def t_ss2022_wrong_key(env):
    """A 2022 node with another key: the server rejects the request, the
    app gets nothing through, anserd stays up and direct works."""
    start(env, None)
    start_ss2022(env, "2022-blake3-aes-128-gcm", base64.b64encode(os.urandom(16)).decode())
    other = urllib.parse.quote(base64.b64encode(os.urandom(16)).decode(), safe="")
    run_anserd(env, "ss://2022-blake3-aes-128-gcm:%s@%s:8389" % (other, P4))
    a = env.app("appA", "tcp", S4, WEB, timeout=20)
    expect(seen_as(a.stdout) is None, "a wrong key must not get through: " + a.stdout)
    env.wait_for("the server's rejection", lambda: "rejected" in env.log("ss2022"))
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(b.stdout) == H4, "direct still works: " + b.stdout)


def t_ss_wrong_password(env):
    """A node with the wrong key: the server drops us; the app sees the
    connection end, anserd logs it and stays up."""
    start(env, None)
    env.start_ss("aes-128-gcm", PASSWORD)
    run_anserd(env, "ss://aes-128-gcm:wrong@%s:8388" % P4)
    # ss-server keeps a connection with a bad key open and silent until its
    # timeout (against probing), so the app only has to get nothing.
    try:
        a = env.app("appA", "tcp", S4, WEB, timeout=5)
        expect(seen_as(a.stdout) is None, "a wrong key must not get through: " + a.stdout)
    except subprocess.TimeoutExpired:
        pass
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(b.stdout) == H4, "direct still works: " + b.stdout)


def t_http_connect(env):
    start(env, None)
    env.start_tinyproxy()
    run_anserd(env, "http://%s:8888#tiny" % P4)
    check_tcp(env)


def t_http_auth(env):
    start(env, None)
    env.start_tinyproxy(user="alice", password="s3cret")
    # the wrong password first: tinyproxy answers 401 (not 407), anserd logs it
    cfg = env.write_config(CONFIG % {"link": "http://alice:nope@%s:8888" % P4})
    env.start_anserd(cfg)
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) is None, "a refused CONNECT must not get through: " + a.stdout)
    env.wait_for("the refusal in anserd's log",
                 lambda: "refused CONNECT with status 401" in env.log("anserd"))
    env.stop_anserd()
    run_anserd(env, "http://alice:%s@%s:8888" % (urllib.parse.quote("s3cret"), P4))
    check_tcp(env)


def t_trojan(env):
    start(env, None)
    env.start_trojan(PASSWORD)
    run_anserd(env, "trojan://%s@%s:443?sni=prx.test&allowInsecure=1#tj" % (PASSWORD, P4))
    check_tcp(env)
    check_udp(env)


def t_trojan_verify(env):
    """Without allowInsecure the self-signed certificate is refused: the app
    gets nothing, anserd says why."""
    start(env, None)
    env.start_trojan(PASSWORD)
    run_anserd(env, "trojan://%s@%s:443?sni=prx.test#tj" % (PASSWORD, P4))
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) is None, "an untrusted certificate must not pass: " + a.stdout)
    env.wait_for("the TLS failure in anserd's log",
                 lambda: "TLS handshake failed" in env.log("anserd"))
    log = env.log("anserd")
    expect("not trusted" in log or "issuer" in log or "signer" in log,
           "the log should say the certificate is not trusted: " + log[-600:])


TLS = {"network": "tcp", "security": "tls",
       "tlsSettings": {"serverName": "prx.test", "alpn": ["http/1.1"],
                       "certificates": [{"certificateFile": "@CERT@", "keyFile": "@KEY@"}]}}


def t_https_connect(env):
    """HTTP CONNECT over TLS, against v2ray's http inbound with TLS."""
    start(env, None)
    env.start_v2ray({"listen": P4, "port": 8443, "protocol": "http", "settings": {},
                     "streamSettings": TLS})
    run_anserd(env, "https://%s:8443?sni=prx.test&allowInsecure=1" % P4)
    check_tcp(env)


def t_v2ray_trojan(env):
    start(env, None)
    env.start_v2ray({"listen": P4, "port": 443, "protocol": "trojan",
                     "settings": {"clients": [{"password": PASSWORD}]},
                     "streamSettings": TLS})
    run_anserd(env, "trojan://%s@%s:443?sni=prx.test&allowInsecure=1" % (PASSWORD, P4))
    check_tcp(env)
    check_udp(env)


def t_v2ray_ss(env):
    start(env, None)
    env.start_v2ray({"listen": P4, "port": 8388, "protocol": "shadowsocks",
                     "settings": {"method": "aes-128-gcm", "password": PASSWORD,
                                  "network": "tcp,udp"}})
    run_anserd(env, "ss://aes-128-gcm:%s@%s:8388" % (PASSWORD, P4))
    check_tcp(env)
    check_udp(env)


UUID = "b831381d-6324-4d53-ad4f-8cda48b30811"
WS = {"network": "ws", "wsSettings": {"path": "/ray"}}
WS_TLS = dict(TLS, network="ws", wsSettings={"path": "/ray"})


def vless_case(stream, query):
    def t(env):
        start(env, None)
        env.start_v2ray({"listen": P4, "port": 443, "protocol": "vless",
                         "settings": {"clients": [{"id": UUID}], "decryption": "none"},
                         "streamSettings": stream})
        run_anserd(env, "vless://%s@%s:443?encryption=none&%s#v" % (UUID, P4, query))
        check_tcp(env)
        check_udp(env)  # a UDP stream per destination, as VMess
    return t


def vmess_case(stream, query, scy="auto"):
    def t(env):
        start(env, None)
        env.start_v2ray({"listen": P4, "port": 10086, "protocol": "vmess",
                         "settings": {"clients": [{"id": UUID, "alterId": 0}]},
                         "streamSettings": stream})
        run_anserd(env, "vmess://%s@%s:10086?encryption=%s&%s#vm" % (UUID, P4, scy, query))
        check_tcp(env)
        # VMess carries UDP one destination per stream: replies come from
        # each destination the app sent to (not from any remote)
        check_udp(env)
    return t


def t_v2ray_trojan_ws(env):
    start(env, None)
    env.start_v2ray({"listen": P4, "port": 443, "protocol": "trojan",
                     "settings": {"clients": [{"password": PASSWORD}]},
                     "streamSettings": WS_TLS})
    run_anserd(env, "trojan://%s@%s:443?sni=prx.test&allowInsecure=1&type=ws&path=%%2Fray"
               % (PASSWORD, P4))
    check_tcp(env)


def t_ws_wrong_path(env):
    """A WebSocket path the server does not serve: the upgrade is refused
    and anserd says so."""
    start(env, None)
    env.start_v2ray({"listen": P4, "port": 443, "protocol": "vless",
                     "settings": {"clients": [{"id": UUID}], "decryption": "none"},
                     "streamSettings": WS})
    run_anserd(env, "vless://%s@%s:443?type=ws&path=%%2Fnope" % (UUID, P4))
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) is None, "a refused upgrade must not pass: " + a.stdout)
    env.wait_for("the refusal in anserd's log",
                 lambda: "WebSocket upgrade refused with status 404" in env.log("anserd"))


def fds_of(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def t_many(env):
    """2,000 proxied connections open at once through shadowsocks: every one
    gets its answer, anserd's descriptors return to where they were after
    they close, and its RSS with all of them open is printed."""
    start(env, None)
    env.start_ss("aes-128-gcm", PASSWORD)
    # meson's MALLOC_PERTURB_ writes every allocation: the RSS would show
    # the whole of every buffer, not what connections use
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}
    env.start_anserd(env.write_config(CONFIG % {"link": "ss://aes-128-gcm:%s@%s:8388"
                                                % (PASSWORD, P4)}), environ=environ)
    pid = env.anserd.pid
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "through the node: " + a.stdout)
    time.sleep(0.5)
    fds0, rss0 = fds_of(pid), harness.rss_kib(pid)
    n = 2000
    p = env.app("appA", "tcpmany", S4, WEB, n, 10000, background=True)
    line = p.stdout.readline()
    expect(line.startswith("open=%d failed=0" % n), "all %d should open: %s" % (n, line))
    # open for the app means queued at anserd's listener: wait until anserd
    # has taken and dialled every one
    env.wait_for("2 descriptors per connection", lambda: fds_of(pid) >= fds0 + 2 * n,
                 timeout=30)
    fds1, rss1 = fds_of(pid), harness.rss_kib(pid)
    out, _ = p.communicate(timeout=120)
    expect(p.returncode == 0 and "ok=%d fail=0" % n in out, "every connection answered: " + out)
    print("anserd with %d connections open: %d fds (%d idle), RSS %.1f MiB (%.1f MiB idle, "
          "%.1f KiB per connection)" % (n, fds1, fds0, rss1 / 1024, rss0 / 1024,
                                       (rss1 - rss0) / n))
    env.wait_for("descriptors back", lambda: fds_of(pid) <= fds0 + 2, timeout=15)
    # (health checks to dae's default URLs fail here: no route out of the test)
    errors = [l for l in env.log("anserd").splitlines()
              if l.startswith(("<3>", "<4>")) and " check" not in l]
    expect(not errors, "no warnings or errors in anserd's log: %s" % errors[:5])


VG_CONFIG = """global {
    log_level: debug
""" + CHECKS.replace("%", "%%") + """    check_interval: 2s
}
subscription {
    sub: 'file://sub.txt'
}
node {
    ss: 'ss://aes-128-gcm:%(pw)s@%(p4)s:8388'
}
group {
    viass { filter: name(ss) policy: min }
    viatj { filter: subtag(sub) policy: random }
    viavm { filter: name(vm) policy: fixed(0) }
}
routing {
    pname(appA) -> viass
    pname(appB) -> viatj
    pname(appC) -> viavm
    fallback: direct
}
"""


def t_valgrind_protocols(env):
    """anserd under valgrind through shadowsocks (TCP and UDP), trojan from
    a subscription (TLS), VMess over WebSocket (TCP and UDP), with health
    checks running, a reload, and exit: no errors, no definite leaks."""
    start(env, None)
    env.start_ss("aes-128-gcm", PASSWORD)
    env.start_trojan(PASSWORD, port=8443)
    env.start_v2ray({"listen": P4, "port": 10086, "protocol": "vmess",
                     "settings": {"clients": [{"id": UUID, "alterId": 0}]},
                     "streamSettings": WS})
    env.start_bus()
    env.start_polkitd()
    cfg = env.write_config(VG_CONFIG % {"s4": S4, "pw": PASSWORD, "p4": P4})
    with open(os.path.join(os.path.dirname(cfg), "sub.txt"), "w") as f:
        f.write("trojan://%s@%s:8443?sni=prx.test&allowInsecure=1#tj\n" % (PASSWORD, P4))
        f.write("vmess://%s@%s:10086?type=ws&path=%%2Fray#vm\n" % (UUID, P4))
    vlog = os.path.join(env.tmp, "valgrind.log")
    env.start_anserd(cfg, wrapper=harness.valgrind_wrapper(vlog))
    for app in ("appA", "appB", "appC"):
        # Under valgrind on a loaded machine a node's first check can
        # outlast its 2 s timeout: the group is then dead and its flows
        # fail fast (as they should) until the next round passes.
        for _ in range(4):
            a = env.app(app, "tcpget", S4, WEB, "/bytes/300000", timeout=60)
            if "len=300000 " in a.stdout or "no live node" not in env.log("anserd"):
                break
            time.sleep(3)
        expect("len=300000 " in a.stdout, "%s through its node: %s" % (app, a.stdout))
    for app in ("appA", "appC"):
        # up to 3 datagrams, 3 s each: under valgrind on a loaded machine
        # the first session's setup can outlast one wait
        u = env.app(app, "udp", S4, WEB, "hi", 3, timeout=30)
        expect("reply=ECHO %s hi" % P4 in u.stdout, "%s UDP: %s" % (app, u.stdout))
    out = env.anserctl("test-nodes").stdout
    expect("checks done" in out, out)
    env.anserctl("reload")
    a = env.app("appB", "tcp", S4, WEB, timeout=60)
    expect(seen_as(a.stdout) == P4, "after the reload: " + a.stdout)
    harness.stop_valgrind_anserd(env, vlog)


DRAIN = """import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
def drain(c):
    while c.recv(65536):
        pass
while True:
    threading.Thread(target=drain, args=(s.accept()[0],), daemon=True).start()
"""

SENDER = """import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buf = b"x" * 65536
end = time.monotonic() + float(sys.argv[3])
try:
    while time.monotonic() < end:
        c.sendall(buf)
    print("sent until the end")
except OSError as e:
    print("cut:", e)
"""


def t_node_dies(env):
    """A TLS node (trojan) killed while an app sends through it costs the
    app its connection, not anserd: writes to the dead connection fail
    with EPIPE, no SIGPIPE; the next connection works once the node is
    back."""
    start(env, None)
    env.start_trojan(PASSWORD)
    run_anserd(env, "trojan://%s@%s:443?sni=prx.test&allowInsecure=1#tj" % (PASSWORD, P4))
    env.spawn("drain", env.nsexec("s") + [harness.PY, "-c", DRAIN, "9099"])
    env.wait_port("s", 9099)
    script = os.path.join(env.tmp, "sender.py")
    with open(script, "w") as f:
        f.write(SENDER)
    p = env.app("appA", script, S4, 9099, 4, binary=harness.PY, background=True)
    time.sleep(1.0)
    tj = [pr for name, pr, _ in env.procs if name == "trojan"][0]
    tj.kill()
    tj.wait(10)
    out, _ = p.communicate(timeout=30)
    expect(env.anserd.poll() is None, "anserd survives the node's death (%s)" % out.strip())
    env.start_trojan(PASSWORD)
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "through the node again: " + a.stdout)


TESTS = {
    "ss_aes_128_gcm": ss_case("aes-128-gcm"),
    "ss_aes_256_gcm": ss_case("aes-256-gcm"),
    "ss_chacha20": ss_case("chacha20-ietf-poly1305"),
    "ss_legacy_link": ss_case("aes-256-gcm", form="legacy"),
    "ss_wrong_password": t_ss_wrong_password,
    "ss2022_aes_128_gcm": ss2022_case("2022-blake3-aes-128-gcm", 16),
    "ss2022_aes_256_gcm": ss2022_case("2022-blake3-aes-256-gcm", 32),
    "ss2022_wrong_key": t_ss2022_wrong_key,
    "many": t_many,
    "valgrind_protocols": t_valgrind_protocols,
    "http_connect": t_http_connect,
    "http_auth": t_http_auth,
    "https_connect": t_https_connect,
    "trojan": t_trojan,
    "node_dies": t_node_dies,
    "trojan_verify": t_trojan_verify,
    "v2ray_trojan": t_v2ray_trojan,
    "v2ray_ss": t_v2ray_ss,
    "vless_tls": vless_case(TLS, "security=tls&sni=prx.test&allowInsecure=1"),
    "vless_ws": vless_case(WS, "type=ws&path=%2Fray&host=prx.test"),
    "vless_ws_tls": vless_case(WS_TLS, "security=tls&sni=prx.test&allowInsecure=1&type=ws&"
                                       "path=%2Fray"),
    "v2ray_trojan_ws": t_v2ray_trojan_ws,
    "vmess_tcp": vmess_case({"network": "tcp"}, "type=tcp"),
    "vmess_chacha": vmess_case({"network": "tcp"}, "type=tcp", scy="chacha20-poly1305"),
    "vmess_none": vmess_case({"network": "tcp"}, "type=tcp", scy="none"),
    "vmess_tls": vmess_case(TLS, "security=tls&sni=prx.test&allowInsecure=1"),
    "vmess_ws": vmess_case(WS, "type=ws&path=%2Fray"),
    "vmess_ws_tls": vmess_case(WS_TLS, "security=tls&sni=prx.test&allowInsecure=1&type=ws&"
                                       "path=%2Fray"),
    "ws_wrong_path": t_ws_wrong_path,
}

if __name__ == "__main__":
    harness.main(TESTS)
