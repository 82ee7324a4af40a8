#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Sniffing and dial_mode end to end: real curl (TLS and HTTP/1) and real
ss-servers that log what they were asked to connect to ("connect to
x.test:4433" or "connect to 10.77.0.3:4433"), resolving names with a real
dnsmasq. The apps connect to the server's raw address and name x.test
only in their TLS server_name or HTTP Host. One meson test per case."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import P4, S4, expect  # noqa: E402
from test_dns import app_query  # noqa: E402

PW = "sniff-test-pw"
METHOD = "aes-128-gcm"
TLS_PORT = 4433
BANNER_PORT = 2525
# The apps' web server; the nodes' health checks go to the harness's on
# 8080, so what a node was asked for tells the two apart.
WEB = 8081
CURL = "/usr/bin/curl"

CONFIG = """global {
    log_level: debug
    dial_mode: %(mode)s
    sniffing_timeout: %(timeout)s
    tcp_check_url: 'http://%(s4)s:8080/'
    udp_check_dns: '%(s4)s:53'
    check_interval: 300s
}
node {
    a: 'ss://%(method)s:%(pw)s@%(p4)s:8388'
    b: 'ss://%(method)s:%(pw)s@%(p4)s:8389'
}
group {
    ga {
        filter: name(a)
        policy: fixed(0)
    }
    gb {
        filter: name(b)
        policy: fixed(0)
    }
}
%(dns)s
routing {
    domain(x.test) -> gb
    domain(blocked.test) -> block
    domain(direct.test) -> direct
    pname(appT) -> ga
    fallback: direct
}
"""

DNS = """dns {
    upstream { dm: 'udp://%s:53' }
    routing { request { fallback: dm } }
}""" % S4


def setup(env, mode, dns=False, timeout="100ms", udp=False, wrapper=(), bus=False):
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.spawn("web2", env.nsexec("s") + [harness.PY, harness.SERVER, str(WEB)])
    env.wait_for("web server 2", lambda: "ready" in env.log("web2"))
    env.start_dnsmasq(names=("x.test", "y.test", "blocked.test", "direct.test"),
                      addresses={"alt.test": ALT4})
    # Both nodes resolve the names they are asked for at dnsmasq.
    env.start_ss(METHOD, PW, port=8388, udp=udp, nameserver=S4)
    env.start_ss(METHOD, PW, port=8389, udp=udp, nameserver=S4)
    if bus:
        env.start_bus()
        env.start_polkitd()
    cfg = env.write_config(CONFIG % {"mode": mode, "timeout": timeout, "s4": S4, "p4": P4,
                                     "method": METHOD, "pw": PW, "dns": DNS if dns else ""})
    env.start_anserd(cfg, wrapper=wrapper)


def asked(env, port):
    """What ss-server on port was asked to connect to, in order."""
    out = []
    for line in env.log("ss-server-%d" % port).splitlines():
        i = line.find("connect to ")
        if i >= 0:
            out.append(line[i + len("connect to "):].strip())
    return out


def wait_asked(env, port, what):
    env.wait_for("ss-server %d to be asked for %s" % (port, what),
                 lambda: what in asked(env, port), timeout=10)


def curl_http(env, host, name="appT"):
    r = env.app(name, "-s", "--max-time", "10", "-H", "Host: " + host,
                "http://%s:%d/" % (S4, WEB), binary=CURL)
    return r.stdout.strip()


def start_tls_server(env):
    cert, key = env.make_cert("x.test")
    env.spawn("s_server", env.nsexec("s") + ["openssl", "s_server", "-quiet", "-www",
                                             "-accept", str(TLS_PORT), "-cert", cert,
                                             "-key", key])
    env.wait_port("s", TLS_PORT)


def curl_tls(env, name="appT", sni="x.test"):
    """curl to the server's raw address with `sni` as TLS server_name."""
    r = env.app(name, "-sk", "--max-time", "10", "--resolve",
                "%s:%d:%s" % (sni, TLS_PORT, S4), "https://%s:%d/" % (sni, TLS_PORT),
                binary=CURL)
    return r.returncode, r.stdout


def t_tls_domainpp(env):
    """domain++: a TLS flow to a raw address, decided for group ga by the
    kernel (pname), is routed again by its SNI x.test to group gb, whose
    node is asked for x.test:4433; the page comes back whole."""
    setup(env, "domain++")
    start_tls_server(env)
    rc, out = curl_tls(env)
    expect(rc == 0 and "s_server" in out, "curl through gb: rc %d, %r" % (rc, out[-300:]))
    wait_asked(env, 8389, "x.test:%d" % TLS_PORT)
    # (both nodes see the health checks' connections to the web server)
    expect(all(not a.endswith(":%d" % TLS_PORT) for a in asked(env, 8388)),
           "node a was not used: %r" % asked(env, 8388))
    expect("re-routed by its name to gb" in env.log("anserd"), "anserd logs the re-route")


def t_http_domainpp(env):
    """domain++ by HTTP/1 Host: to gb as x.test:8080; a Host that names a
    block rule ends the connection; one that names a direct rule goes out
    from anserd directly (the web server sees the host's address); a Host
    no rule names keeps the kernel's decision (ga)."""
    setup(env, "domain++")
    out = curl_http(env, "x.test")
    expect(out == "client=%s" % P4, "x.test via gb: %r" % out)
    wait_asked(env, 8389, "x.test:%d" % WEB)
    out = curl_http(env, "blocked.test")
    expect(out == "", "blocked.test gets nothing: %r" % out)
    out = curl_http(env, "direct.test")
    expect(out.startswith("client=") and out != "client=%s" % P4,
           "direct.test goes direct: %r" % out)
    out = curl_http(env, "y.test")
    expect(out == "client=%s" % P4, "y.test via ga: %r" % out)
    wait_asked(env, 8388, "y.test:%d" % WEB)
    expect(all(a != "blocked.test:%d" % WEB for a in asked(env, 8388) + asked(env, 8389)),
           "no node was asked for blocked.test")


def t_domain_plus(env):
    """domain+: the node is asked for the sniffed name, unchecked, and the
    route stays the kernel's (ga, although a rule names x.test)."""
    setup(env, "domain+")
    out = curl_http(env, "x.test")
    expect(out == "client=%s" % P4, "via ga: %r" % out)
    wait_asked(env, 8388, "x.test:%d" % WEB)
    expect("x.test:%d" % WEB not in asked(env, 8389), "gb unused: %r" % asked(env, 8389))


def t_domain_checked(env):
    """domain (dae's default): a sniffed name is used only when anserd's
    DNS tied it to the address. Before any lookup the flow goes to ga (by
    pname) and its node gets the address; after the app looked x.test up
    through anserd, the kernel sends the next connection to gb by the
    domain rule and gb's node gets x.test; a Host DNS never gave for the
    address (y.test was never asked) gets the address again."""
    setup(env, "domain", dns=True)
    env.wait_for("the DNS service", lambda: "DNS service:" in env.log("anserd"))
    out = curl_http(env, "x.test")
    expect(out == "client=%s" % P4, "before the lookup: %r" % out)
    wait_asked(env, 8388, "%s:%d" % (S4, WEB))
    res = app_query(env, "appQ", "udp", S4, "x.test")
    expect("addrs=%s" % S4 in res, "the app's lookup: %r" % res)
    out = curl_http(env, "x.test")
    expect(out == "client=%s" % P4, "after the lookup: %r" % out)
    wait_asked(env, 8389, "x.test:%d" % WEB)
    out = curl_http(env, "y.test")
    expect(out == "client=%s" % P4, "an unchecked Host: %r" % out)
    wait_asked(env, 8389, "%s:%d" % (S4, WEB))
    expect("y.test:%d" % WEB not in asked(env, 8389) + asked(env, 8388),
           "y.test was not what DNS said: the address, %r" % asked(env, 8389))


def t_ip_mode(env):
    """dial_mode ip: no sniffing; the node gets the address."""
    setup(env, "ip")
    out = curl_http(env, "x.test")
    expect(out == "client=%s" % P4, "via ga: %r" % out)
    wait_asked(env, 8388, "%s:%d" % (S4, WEB))
    expect("x.test" not in " ".join(asked(env, 8388) + asked(env, 8389)), "no name used")


BANNER_APP = """import socket, sys, time
t = time.monotonic()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
data = s.recv(100)
print("banner=%r after=%.3f" % (data, time.monotonic() - t))
"""


def start_banner(env):
    """A server that speaks first, in ns s; the app that waits for it."""
    script = os.path.join(env.tmp, "banner_server.py")
    with open(script, "w") as f:
        f.write("import socket\ns = socket.socket()\n"
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind(('0.0.0.0', %d))\ns.listen()\n"
                "while True:\n    c, _ = s.accept()\n    c.sendall(b'220 hello\\r\\n')\n"
                "    c.close()\n" % BANNER_PORT)
    env.spawn("banner", env.nsexec("s") + [harness.PY, script])
    env.wait_port("s", BANNER_PORT)
    app = os.path.join(env.tmp, "banner_app.py")
    with open(app, "w") as f:
        f.write(BANNER_APP)
    return app


def t_server_first(env):
    """A protocol where the server speaks first (SMTP-like): the app sends
    nothing, sniffing gives up after sniffing_timeout, the flow is dialled
    by address and the banner reaches the app."""
    setup(env, "domain++", timeout="300ms")
    app = start_banner(env)
    t = time.monotonic()
    r = env.app("appT", app, S4, BANNER_PORT, binary=harness.PY)
    expect("banner=b'220 hello\\r\\n'" in r.stdout, "the banner: %r" % r.stdout)
    expect(time.monotonic() - t < 8, "no stall")
    wait_asked(env, 8388, "%s:%d" % (S4, BANNER_PORT))


# An app sending QUIC Initial packets (RFC 9000/9001; v2: RFC 9369) built
# here, with python3-cryptography: a ClientHello naming argv[3], split over
# two Initial datagrams when argv[5] is "split" (a big padding extension
# first, so the server_name is in the second), then one short-header
# datagram of the same flow. Prints each echo the server sent back.
QUIC_APP = r"""import os, socket, struct, sys
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

host, port, sni, version, split = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
V = {"1": (1, bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), "quic", 0),
     "2": (0x6b3343cf, bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), "quicv2", 1)}
ver, salt, pfx, itype = V[version]

def hmac256(key, data):
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()

def expand_label(secret, label, n):
    full = b"tls13 " + label.encode()
    info = struct.pack(">HB", n, len(full)) + full + b"\0"
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac256(secret, t + info + bytes([i]))
        out += t
        i += 1
    return out[:n]

dcid = os.urandom(8)
client = expand_label(hmac256(salt, dcid), "client in", 32)
key = expand_label(client, pfx + " key", 16)
iv = expand_label(client, pfx + " iv", 12)
hp = expand_label(client, pfx + " hp", 16)

def ext(t, body):
    return struct.pack(">HH", t, len(body)) + body

name = sni.encode()
sni_ext = ext(0, struct.pack(">HBH", len(name) + 3, 0, len(name)) + name)
exts = ext(43, b"\x02\x03\x04") + ext(10, b"\x00\x02\x00\x1d")
if split == "split":
    exts = ext(21, bytes(1400)) + exts
exts += sni_ext
body = (b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" +
        struct.pack(">H", len(exts)) + exts)
hello = b"\x01" + len(body).to_bytes(3, "big") + body

def varint(v):
    return bytes([v]) if v < 64 else struct.pack(">H", 0x4000 | v)

def initial(pn, offset, data):
    frame = b"\x06" + varint(offset) + varint(len(data)) + data
    payload = frame + bytes(max(0, 1162 - len(frame)))  # PADDING: datagrams of 1200 bytes
    length = 4 + len(payload) + 16
    first = 0xC0 | (itype << 4) | 3
    hdr = (bytes([first]) + struct.pack(">I", ver) + bytes([len(dcid)]) + dcid + b"\x00" +
           b"\x00" + struct.pack(">H", 0x4000 | length))
    pn_off = len(hdr)
    hdr += struct.pack(">I", pn)
    nonce = iv[:8] + bytes(a ^ b for a, b in zip(iv[8:], struct.pack(">I", pn)))
    ct = AESGCM(key).encrypt(nonce, payload, hdr)
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(ct[:16]) + enc.finalize()
    out = bytearray(hdr + ct)
    out[0] ^= mask[0] & 0x0F
    for i in range(4):
        out[pn_off + i] ^= mask[1 + i]
    return bytes(out)

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect((host, port))
if split == "split":
    cut = len(hello) // 2 + 400
    pkts = [initial(0, 0, hello[:cut]), initial(1, cut, hello[cut:])]
else:
    pkts = [initial(0, 0, hello)]
# the Initials back to back, as clients send them; then a 1-RTT packet
def replies(n):
    for _ in range(n):
        try:
            print("reply", s.recv(4096).split(b" ")[1].decode(), flush=True)
        except OSError as e:
            print("error", e, flush=True)
for p in pkts:
    s.send(p)
replies(len(pkts))
s.send(bytes([0x40 | 3]) + dcid + os.urandom(40))
replies(1)
"""


def quic_app(env, sni, version, split):
    app = os.path.join(env.tmp, "quic_app.py")
    if not os.path.exists(app):
        with open(app, "w") as f:
            f.write(QUIC_APP)
    r = env.app("appT", app, S4, WEB, sni, version, split, binary=harness.PY)
    return r.stdout.split("\n")


def t_quic_domainpp(env):
    """domain++ for QUIC: an app's UDP flow to the server's raw address,
    decided for ga by the kernel, whose Initial packets name direct.test
    (v1; then v2 with the ClientHello split over two Initial datagrams)
    is routed again to direct: every datagram of it, the 1-RTT one after
    the Initials too, reaches the server from the host, not from the
    node. A flow whose Initial names y.test (no rule) stays with ga."""
    setup(env, "domain++", udp=True)
    out = quic_app(env, "y.test", "1", "one")
    expect(out[:2] == ["reply " + P4] * 2, "y.test via ga's node: %r" % out)
    for version, split in (("1", "one"), ("2", "split")):
        out = quic_app(env, "direct.test", version, split)
        n = 3 if split == "split" else 2
        expect(len(out) >= n and all(o.startswith("reply ") and o != "reply " + P4
                                     for o in out[:n]),
               "QUIC v%s (%s) naming direct.test goes direct: %r" % (version, split, out))
    log = env.log("anserd")
    expect(log.count("UDP flow of appT to direct.test re-routed by its name to direct") == 2,
           "both re-routes logged")
    expect("to y.test re-routed" not in log, "y.test kept its route")


UUID = "b831381d-6324-4d53-ad4f-8cda48b30811"
V2_TLS = {"network": "tcp", "security": "tls",
          "tlsSettings": {"certificates": [{"certificateFile": "@CERT@", "keyFile": "@KEY@"}]}}
NAMES_CONFIG = """global {
    log_level: debug
    dial_mode: domain+
    tcp_check_url: 'http://%(s4)s:8080/'
    udp_check_dns: '%(s4)s:53'
    check_interval: 300s
}
node {
%(nodes)s
}
group {
%(groups)s
}
routing {
%(rules)s
    fallback: direct
}
"""


def t_names_via_protocols(env):
    """domain+ asks each kind of node for the name: SOCKS5, HTTP CONNECT,
    trojan, VMess and VLESS nodes served by v2ray (which resolves x.test
    from its own hosts table and logs what it was asked for), and
    shadowsocks (ss-server). The page comes back through each."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.spawn("web2", env.nsexec("s") + [harness.PY, harness.SERVER, str(WEB)])
    env.wait_for("web server 2", lambda: "ready" in env.log("web2"))
    env.start_dnsmasq(names=("x.test",))
    env.start_ss(METHOD, PW, port=8388, udp=False, nameserver=S4)
    hosts = {"x.test": S4}
    kinds = {
        "socks": ({"port": 1085, "protocol": "socks", "settings": {"auth": "noauth"}},
                  "socks5://%s:1085" % P4),
        "http": ({"port": 8118, "protocol": "http", "settings": {}}, "http://%s:8118" % P4),
        "trojan": ({"port": 8443, "protocol": "trojan",
                    "settings": {"clients": [{"password": PW}]}, "streamSettings": V2_TLS},
                   "trojan://%s@%s:8443?sni=prx.test&allowInsecure=1" % (PW, P4)),
        "vmess": ({"port": 10086, "protocol": "vmess",
                   "settings": {"clients": [{"id": UUID, "alterId": 0}]}},
                  "vmess://%s@%s:10086?encryption=auto" % (UUID, P4)),
        "vless": ({"port": 10443, "protocol": "vless",
                   "settings": {"clients": [{"id": UUID}], "decryption": "none"},
                   "streamSettings": V2_TLS},
                  "vless://%s@%s:10443?encryption=none&security=tls&sni=prx.test"
                  "&allowInsecure=1" % (UUID, P4)),
    }
    for k, (inbound, _) in kinds.items():
        inbound = dict(inbound, listen=P4)
        env.start_v2ray(inbound, name="v2ray-" + k, hosts=hosts)
    links = dict((k, link) for k, (_, link) in kinds.items())
    links["ss"] = "ss://%s:%s@%s:8388" % (METHOD, PW, P4)
    names = sorted(links)
    cfg = env.write_config(NAMES_CONFIG % {
        "s4": S4,
        "nodes": "\n".join("    %s: '%s'" % (k, links[k]) for k in names),
        "groups": "\n".join("    g%s {\n        filter: name(%s)\n        policy: fixed(0)\n"
                            "    }" % (k, k) for k in names),
        "rules": "\n".join("    pname(app_%s) -> g%s" % (k, k) for k in names)})
    env.start_anserd(cfg)
    for k in names:
        out = curl_http(env, "x.test", name="app_" + k)
        expect(out == "client=%s" % P4, "through the %s node: %r" % (k, out))
    wait_asked(env, 8388, "x.test:%d" % WEB)
    for k in kinds:
        env.wait_for("v2ray-%s asked for x.test" % k,
                     lambda: "x.test:%d" % WEB in env.log("v2ray-" + k))


UDP_ECHO = """import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(b"ECHO " + addr[0].encode() + b" " + data, addr)
"""


ALT4 = "10.77.0.4"  # alt.test, for the nodes: an address of ns s no app sends to


def start_alt_echo(env):
    """ALT4 on ns s, with a UDP echo server on ALT4:8082 only."""
    harness.run(["ip", "-n", env.ns("s"), "addr", "add", ALT4 + "/24", "dev", "e0"])
    echo = os.path.join(env.tmp, "udp_echo.py")
    with open(echo, "w") as f:
        f.write(UDP_ECHO)
    env.spawn("echo4", env.nsexec("s") + [harness.PY, echo, ALT4, "8082"])
    env.wait_for("the echo server", lambda: harness.run(
        env.nsexec("s") + ["ss", "-Hlun", "sport = :8082"], check=False).stdout.strip())


def quic_names(mode):
    """QUIC under dial_mode `mode`: the node is asked for the name in the
    ClientHello. alt.test resolves (for the ss-server node, at dnsmasq)
    to 10.77.0.4, where the only UDP server on that port listens -- the
    address the app sent to has none -- so an answer means the node was
    asked for the name; it reaches the app's connected socket as from the
    address the app sent to (v1, and v2 split over two Initials)."""
    def t(env):
        setup(env, mode, udp=True)
        start_alt_echo(env)
        app = os.path.join(env.tmp, "quic_app.py")
        with open(app, "w") as f:
            f.write(QUIC_APP)
        for version, split in (("1", "one"), ("2", "split")):
            r = env.app("appT", app, S4, 8082, "alt.test", version, split, binary=harness.PY)
            out = r.stdout.split("\n")
            n = 3 if split == "split" else 2
            expect(out[:n] == ["reply " + P4] * n,
                   "%s, QUIC v%s: answers via the node from alt.test: %r" % (mode, version, out))
    return t


def t_valgrind(env):
    """anserd under valgrind while it sniffs: TLS and HTTP flows re-routed
    (to a node by name, to direct, to block), a server-first flow given
    up on at the timeout, QUIC v1 and split v2 flows held and re-routed,
    then exit: no errors, no definite leaks."""
    vlog = os.path.join(env.tmp, "valgrind.log")
    setup(env, "domain++", udp=True, timeout="300ms", wrapper=harness.valgrind_wrapper(vlog))
    start_tls_server(env)
    rc, out = curl_tls(env)
    expect(rc == 0 and "s_server" in out, "TLS via gb: rc %d" % rc)
    for host, want in (("x.test", "client=" + P4), ("blocked.test", "")):
        out = curl_http(env, host)
        expect(out == want, "%s: %r" % (host, out))
    out = curl_http(env, "direct.test")
    expect(out.startswith("client=") and out != "client=" + P4, "direct.test: %r" % out)
    for version, split in (("1", "one"), ("2", "split")):
        out = quic_app(env, "direct.test", version, split)
        expect(out[0].startswith("reply ") and out[0] != "reply " + P4, "QUIC: %r" % out)
    # a QUIC flow whose node is asked for the name (alt.test, at ALT4)
    start_alt_echo(env)
    r = env.app("appT", os.path.join(env.tmp, "quic_app.py"), S4, 8082, "alt.test", "2", "split",
                binary=harness.PY, timeout=60)
    expect(r.stdout.startswith("reply " + P4), "QUIC by name under valgrind: %r" % r.stdout)
    r = env.app("appT", start_banner(env), S4, BANNER_PORT, binary=harness.PY, timeout=30)
    expect("banner=b'220 hello\\r\\n'" in r.stdout, "server first: %r" % r.stdout)
    harness.stop_valgrind_anserd(env, vlog)


# Opens a connection to argv[1]:argv[2], sends a request head naming
# argv[3] but not its end, holds it argv[4] s, then ends it; prints the answer.
HOLD_APP = """import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
s.sendall(b"GET / HTTP/1.1\\r\\nHost: %s\\r\\nX-Wait: 1\\r\\n" % sys.argv[3].encode())
time.sleep(float(sys.argv[4]))
s.sendall(b"\\r\\n")
data = b""
while True:
    part = s.recv(4096)
    if not part:
        break
    data += part
print(data.decode(errors="replace").split("\\r\\n\\r\\n", 1)[-1].strip())
"""


def t_listing(env):
    """ListConnections shows each connection's domain: a proxied flow's
    sniffed name (domain++, re-routed to gb by it), and for any flow, the
    name anser's DNS answered for its destination (a direct one here,
    after the app's lookup); "-" where none is known."""
    setup(env, "domain++", dns=True, bus=True)
    env.wait_for("the DNS service", lambda: "DNS service:" in env.log("anserd"))
    app = os.path.join(env.tmp, "hold_app.py")
    with open(app, "w") as f:
        f.write(HOLD_APP)
    def rows():
        return json.loads(env.anserctl("connections", "--json").stdout)
    # appT's connection first: routed before any name is known (ga, by pname)
    held = env.app("appT", app, S4, WEB, "y.test", 5, binary=harness.PY, background=True)
    env.wait_for("appT sniffed", lambda: any(r["process"] == "appT" and r["domain"] == "y.test"
                                             for r in rows()))
    res = app_query(env, "appQ", "udp", S4, "direct.test")
    expect("addrs=%s" % S4 in res, "the lookup: %r" % res)
    direct = env.app("appD", "tcp", S4, WEB, 3000, background=True)
    env.wait_for("both listed", lambda: {"appT", "appD"} <= {r["process"] for r in rows()})
    by = {r["process"]: r for r in rows()}
    expect(by["appT"]["domain"] == "y.test" and by["appT"]["outbound"] == "ga",
           "the sniffed name: %s" % by["appT"])
    expect(by["appD"]["domain"] == "direct.test" and by["appD"]["outbound"] == "direct",
           "the name DNS gave the destination: %s" % by["appD"])
    table = env.anserctl("connections").stdout
    expect("DOMAIN" in table.splitlines()[0] and "y.test" in table, table)
    out, _ = held.communicate(timeout=30)
    expect("client=%s" % P4 in out, "the held request answered: %r" % out)
    direct.communicate(timeout=30)


TESTS = {"tls_domainpp": t_tls_domainpp, "http_domainpp": t_http_domainpp,
         "domain_plus": t_domain_plus, "domain_checked": t_domain_checked,
         "ip_mode": t_ip_mode, "server_first": t_server_first, "quic_domainpp": t_quic_domainpp,
         "names_via_protocols": t_names_via_protocols, "listing": t_listing,
         "quic_names_plus": quic_names("domain+"), "quic_names_plusplus": quic_names("domain++"),
         "valgrind": t_valgrind}

if __name__ == "__main__":
    harness.main(TESTS)
