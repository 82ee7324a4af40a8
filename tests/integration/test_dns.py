#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""anserd's DNS codec against a real unbound, the reference for what a
careful server does with a malformed query (TESTING.md): the same bytes go
to unbound over UDP in a test namespace and to anserd's parser
(anser-dnscheck); both must agree on drop / answer / which error.

Usage: test_dns.py CASE (root; one meson test per case)."""
import os
import re
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import unbound as unbound_conf  # noqa: E402
from harness import H4, P4, S4, S6, WEB, expect, main, run, seen_as  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

DNSCHECK = os.path.join(harness.BUILD, "tests", "integration", "anser-dnscheck")

# the test zone (unbound_conf.config() adds the common options)
UNBOUND_ZONE = """    interface: %(ip)s@53
    interface: %(ip)s@5300
    local-zone: "zone.test." static
    local-data: "zone.test. 300 IN SOA ns.zone.test. admin.zone.test. 1 3600 600 86400 60"
    local-data: "www.zone.test. 300 IN A 10.77.0.3"
    local-data: "brief.zone.test. 1 IN A 10.77.0.9"
    local-data: "c1.zone.test. 300 IN A 10.77.0.4"
    local-data: "c2.zone.test. 300 IN A 10.77.0.5"
    local-data: "c3.zone.test. 300 IN A 10.77.0.6"
    local-data: "re.zone.test. 300 IN A 10.77.0.7"
    local-data: "bad.zone.test. 300 IN A 10.77.0.66"
    local-data: "alias.zone.test. 300 IN A 10.77.0.3"
    local-data: "dual.zone.test. 300 IN A 10.77.0.8"
    local-data: "dual.zone.test. 300 IN AAAA fd77::8"
    local-data: "six.zone.test. 300 IN AAAA fd77::9"
%(big)s
    log-queries: yes
"""


# 100 A records: 1.6 KB, over any UDP size: unbound answers TC over UDP
BIG = "\n".join('    local-data: "big.zone.test. 300 IN A 10.78.%d.%d"' % (i // 200, i % 200 + 1)
                for i in range(100))


def name(dotted):
    out = b""
    for label in dotted.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def hdr(flags=0x0100, qd=1, an=0, ns=0, ar=0, ident=0x2b2b):
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def opt(size=1232, version=0, owner=b"\0"):
    return owner + struct.pack(">HHBBHH", 41, size, 0, version, 0, 0)


Q = struct.pack(">HH", 1, 1)  # A IN
WWW = name("www.zone.test")

CASES = [
    ("good query", hdr() + WWW + Q),
    ("good query, EDNS", hdr(ar=1) + WWW + Q + opt()),
    ("good query, NXDOMAIN", hdr() + name("nope.zone.test") + Q),
    ("11 bytes", hdr()[:11]),
    ("QR=1", hdr(flags=0x8100) + WWW + Q),
    ("opcode 2 (STATUS)", hdr(flags=0x1100) + WWW + Q),
    ("QDCOUNT 0", hdr(qd=0)),
    ("QDCOUNT 2", hdr(qd=2) + WWW + Q + WWW + Q),
    ("cut qname", hdr() + WWW[:6]),
    ("cut qtype", hdr() + WWW + Q[:2]),
    ("label type 0x40", hdr() + b"\x41a\0" + Q),
    ("pointer loop", hdr() + b"\xc0\x0c" + Q),
    ("forward pointer", hdr() + b"\x01a\xc0\x20" + Q + b"\0" * 20),
    ("name over 255", hdr() + (b"\x3f" + b"x" * 63) * 5 + b"\0" + Q),
    ("two OPT", hdr(ar=2) + WWW + Q + opt() + opt()),
    ("EDNS version 1", hdr(ar=1) + WWW + Q + opt(version=1)),
    ("EDNS size 100", hdr(ar=1) + WWW + Q + opt(size=100)),
    ("OPT not at the root", hdr(ar=1) + WWW + Q + opt(owner=name("x"))),
    ("cut OPT", hdr(ar=1) + WWW + Q + opt()[:7]),
    ("ANCOUNT 1", hdr(an=1) + WWW + Q + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) +
     b"\1\2\3\4"),
    ("NSCOUNT 1", hdr(ns=1) + WWW + Q + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) +
     b"\1\2\3\4"),
    ("uppercase name", hdr() + name("WWW.Zone.TEST") + Q),
    ("root name", hdr() + b"\0" + struct.pack(">HH", 2, 1)),
]


def t_codec_vs_unbound(env):
    env.setup_net()
    start_unbound(env)
    # the asking socket lives in namespace h: a tiny client run there
    client = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.7)\n"
        "s.connect((sys.argv[1],53))\n"
        "for line in sys.stdin:\n"
        "    s.send(bytes.fromhex(line.strip()))\n"
        "    try:\n"
        "        r=s.recv(4096)\n"
        "    except socket.timeout:\n"
        "        print('-'); continue\n"
        "    print(r.hex())\n")
    hexes = "".join(m.hex() + "\n" for _, m in CASES)
    got = subprocess.run(env.nsexec("h") + [harness.PY, "-c", client, S4], input=hexes,
                         capture_output=True, text=True, check=True).stdout.split()
    ours = subprocess.run([DNSCHECK], input=hexes, capture_output=True, text=True,
                          check=True).stdout.splitlines()
    expect(len(got) == len(CASES) and len(ours) == len(CASES), "one answer per case")
    bad = []
    for (what, _), u, o in zip(CASES, got, ours):
        if u == "-":
            theirs = "drop"
        else:
            reply = bytes.fromhex(u)
            rcode = reply[3] & 0xF
            if len(reply) >= 11 and reply[-11] == 0 and reply[-10:-8] == b"\x00\x29":
                rcode |= reply[-6] << 4
            # FORMERR, NOTIMP and BADVERS judge the message; any other
            # rcode (NXDOMAIN, SERVFAIL for the root here) answers it
            theirs = "rcode %d" % rcode if rcode in (1, 4, 16) else "query"
        print("%-24s unbound: %-9s anserd: %s" % (what, theirs, o))
        if theirs != o:
            bad.append(what)
    expect(not bad, "anserd and unbound disagree on: %s" % ", ".join(bad))


def start_unbound(env, body=None, tcp_port=None):
    """A real unbound in ns s with the test zone (or `body`), checked with
    unbound-checkconf; waits for UDP :53 (or TCP tcp_port). (Popen, log)."""
    exe = shutil.which("unbound") or "/usr/sbin/unbound"
    if not os.path.exists(exe):
        raise harness.Skip("unbound not installed")
    d = os.path.join(env.tmp, "unbound")
    os.makedirs(d, exist_ok=True)
    conf, log = os.path.join(d, "unbound.conf"), os.path.join(d, "unbound.log")
    with open(conf, "w") as f:
        f.write(unbound_conf.config(d, body or UNBOUND_ZONE % {"ip": S4, "big": BIG}, log))
    chk = run(["unbound-checkconf", conf], check=False)
    expect(chk.returncode == 0, "unbound-checkconf: " + chk.stdout)
    p = env.spawn("unbound", env.nsexec("s") + [exe, "-d", "-c", conf])
    probe = ["ss", "-Hltn", "sport = :%d" % tcp_port] if tcp_port else ["ss", "-Hlun",
                                                                        "sport = :53"]
    env.wait_for("unbound listening", lambda: run(env.nsexec("s") + probe,
                                                   check=False).stdout.strip() != "")
    return p, log


ASK = """import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
t0 = time.monotonic()
for h in sys.argv[4:]:
    s.sendto(bytes.fromhex(h), (sys.argv[1], int(sys.argv[2])))
for h in sys.argv[4:]:
    try:
        print(s.recv(65535).hex(), "%.3f" % (time.monotonic() - t0))
    except socket.timeout:
        print("- %.3f" % (time.monotonic() - t0))
"""


def ask(env, msgs, timeout=6.0, port=5353):
    """Send the queries to anserd's listener from ns h; [(reply bytes or
    None, seconds)]."""
    r = run(env.nsexec("h") + [harness.PY, "-c", ASK, H4, str(port), str(timeout)] +
            [m.hex() for m in msgs])
    out = []
    for line in r.stdout.split("\n"):
        if line.strip():
            h, t = line.split()
            out.append((None if h == "-" else bytes.fromhex(h), float(t)))
    return out


TCP_ASK = """import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=6)
msgs = [bytes.fromhex(h) for h in sys.argv[3:]]
s.sendall(b"".join(struct.pack(">H", len(m)) + m for m in msgs))  # pipelined
buf = b""
for _ in msgs:
    while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
        part = s.recv(65535)
        if not part:
            sys.exit("closed early")
        buf += part
    n = struct.unpack(">H", buf[:2])[0]
    print(buf[2:2 + n].hex())
    buf = buf[2 + n:]
"""


def ask_tcp(env, msgs, port=5353):
    """The queries pipelined on one TCP connection; the replies in order
    of arrival."""
    r = run(env.nsexec("h") + [harness.PY, "-c", TCP_ASK, H4, str(port)] +
            [m.hex() for m in msgs])
    return [bytes.fromhex(h) for h in r.stdout.split()]


def summary(reply):
    """(rcode, [(ttl, a.b.c.d)]) of a reply to an A query."""
    rcode = reply[3] & 0xF
    an = struct.unpack(">H", reply[6:8])[0]
    pos = 12
    while reply[pos]:
        pos += reply[pos] + 1
    pos += 5
    answers = []
    for _ in range(an):
        if reply[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while reply[pos]:
                pos += reply[pos] + 1
            pos += 1
        typ, _, ttl, rdlen = struct.unpack(">HHIH", reply[pos:pos + 10])
        pos += 10
        if typ == 1:
            answers.append((ttl, ".".join(str(b) for b in reply[pos:pos + 4])))
        pos += rdlen
    return rcode, answers


def q(qname, ident=0x4242, qtype=1, edns=True):
    return (hdr(ident=ident, ar=1 if edns else 0) + name(qname) + struct.pack(">HH", qtype, 1) +
            (opt() if edns else b""))


def seen(log, qname, qtype="A"):
    """How many queries for qname (of qtype) reached unbound."""
    with open(log) as f:
        return sum(1 for line in f if " %s. %s IN" % (qname, qtype) in line)


FORWARD_CONFIG = """global {
    log_level: debug
}
dns {
    bind: 'tcp+udp://%(h4)s:5353'
    optimistic_cache: true
    optimistic_cache_ttl: 60s
    upstream {
        ub: 'tcp+udp://%(s4)s:53'
        ub2: 'udp://%(s4)s:5300'
    }
    routing {
        request {
            qname(suffix: blocked.test) -> reject
            fallback: ub
        }
        response {
            ip(10.77.0.66/32) -> reject
            upstream(ub) && qname(full: re.zone.test) -> ub2
            fallback: accept
        }
    }
}
routing {
    fallback: direct
}
"""


def t_forward(env):
    """anserd's dns bind listener in front of a real unbound: answers,
    the cache (one upstream query, TTLs counting down, negative answers),
    coalescing, reject, malformed queries, SERVFAIL when the upstream is
    gone, and a stale answer served then (optimistic_cache)."""
    env.setup_net()
    ub, log = start_unbound(env)
    env.setup_cgroup()
    env.start_anserd(env.write_config(FORWARD_CONFIG % {"h4": H4, "s4": S4}))
    env.wait_for("the DNS listener", lambda: "DNS service: 2 listeners" in env.log("anserd"))

    (r, _), = ask(env, [q("www.zone.test")])
    expect(r is not None and summary(r) == (0, [(300, "10.77.0.3")]), "first answer: %r" % r)
    expect(r[:2] == b"\x42\x42", "the asker's id")
    time.sleep(1.1)
    (r, _), = ask(env, [q("WWW.Zone.TEST", ident=7)])
    rc, ans = summary(r)
    expect(rc == 0 and len(ans) == 1 and ans[0][0] < 300 and ans[0][1] == "10.77.0.3",
           "cached answer, TTL counted down: %r" % ans)
    expect(r[:2] == b"\x00\x07", "the cached answer carries the new asker's id")
    expect(seen(log, "www.zone.test") == 1, "one upstream query for two asks")

    for _ in range(2):
        (r, _), = ask(env, [q("nope.zone.test")])
        expect(summary(r)[0] == 3, "NXDOMAIN")
    expect(seen(log, "nope.zone.test") == 1, "the NXDOMAIN came from the cache the second time")

    # 20 asks at once for one new name: one upstream query
    rs = ask(env, [q("c1.zone.test", ident=i) for i in range(20)])
    expect(all(r and summary(r) == (0, [(300, "10.77.0.4")]) for r, _ in rs), "20 answers")
    expect(seen(log, "c1.zone.test") == 1, "coalesced: %d upstream queries" %
           seen(log, "c1.zone.test"))

    # TCP (RFC 7766): two queries pipelined on one connection, answered
    # from the cache and by the upstream
    rs = ask_tcp(env, [q("www.zone.test", ident=1), q("c2.zone.test", ident=2)])
    expect(len(rs) == 2, "two answers over TCP: %r" % rs)
    by_id = {r[:2]: summary(r) for r in rs}
    expect(by_id.get(b"\x00\x01", (None,))[1][0][1] == "10.77.0.3" and
           by_id.get(b"\x00\x02", (None,))[1][0][1] == "10.77.0.5",
           "TCP answers: %r" % by_id)

    # too big for UDP: the upstream truncates, anserd asks it again over TCP
    # (tcp+udp), keeps the whole answer, gives UDP askers TC and TCP
    # askers all 100 records
    (r, _), = ask(env, [q("big.zone.test")])
    expect(r is not None and r[2] & 0x02 and summary(r) == (0, []),
           "TC over UDP: %r" % (r and summary(r),))
    rs = ask_tcp(env, [q("big.zone.test", ident=3)])
    expect(len(rs) == 1 and len(summary(rs[0])[1]) == 100,
           "100 records over TCP: %r" % (rs and len(summary(rs[0])[1]),))
    expect(seen(log, "big.zone.test") == 2, "asked once over UDP, once over TCP, then cached: "
           "%d" % seen(log, "big.zone.test"))

    (r, _), = ask(env, [q("ads.blocked.test")])
    expect(summary(r) == (0, []), "reject: an empty answer")

    # response rules: an answer with a rejected address becomes empty; one
    # from ub for re.zone.test is asked again through ub2 (both are ports
    # of the same unbound, which sees the name twice) and that one counts
    (r, _), = ask(env, [q("bad.zone.test")])
    expect(summary(r) == (0, []), "response reject: %r" % (summary(r),))
    (r, _), = ask(env, [q("re.zone.test")])
    expect(summary(r) == (0, [(300, "10.77.0.7")]), "asked again: %r" % (summary(r),))
    expect(seen(log, "re.zone.test") == 2, "re.zone.test reached unbound %d times"
           % seen(log, "re.zone.test"))
    expect(seen(log, "ads.blocked.test") == 0, "a rejected name never goes upstream")

    (r, _), = ask(env, [hdr(qd=2) + WWW + Q + WWW + Q])
    expect(r is not None and r[3] & 0xF == 1, "FORMERR for two questions")

    # a short TTL, cached; then the upstream goes away
    (r, _), = ask(env, [q("brief.zone.test")])
    expect(summary(r) == (0, [(1, "10.77.0.9")]), "brief: %r" % r)
    time.sleep(1.5)
    ub.terminate()
    ub.wait(10)
    rs = ask(env, [q("c3.zone.test", ident=1), q("d1.zone.test", ident=2),
                   q("d2.zone.test", ident=3)])
    expect(all(r is not None and summary(r)[0] == 2 for r, _ in rs),
           "SERVFAIL without an upstream: %r" % rs)
    print("SERVFAIL after %.2f s without an upstream" % max(t for _, t in rs))
    # three unanswered in a row: the upstream is down, the next query fails
    # at once instead of waiting through its tries
    (r, t), = ask(env, [q("d3.zone.test")])
    expect(r is not None and summary(r)[0] == 2 and t < 0.5,
           "SERVFAIL at once for a down upstream (%.2f s): %r" % (t, r))
    expect("DNS upstream ub does not answer" in env.log("anserd"), "the upstream logged down")
    (r, _), = ask(env, [q("brief.zone.test")])
    expect(r is not None and summary(r) == (0, [(30, "10.77.0.9")]),
           "the expired answer served stale (TTL 30): %r" % ((r and summary(r)),))
    out = env.log("anserd")
    expect("DNS service" in out, out)


def t_valgrind(env):
    """anserd's DNS service under valgrind: answers, cache hits, reject,
    a malformed query, an app's queries taken over, a reload while queries are in flight (the listener
    kept, the upstream socket replaced), SERVFAIL, exit: no errors, no
    definite leaks."""
    env.setup_net()
    ub, log = start_unbound(env)
    env.setup_cgroup()
    vlog = os.path.join(env.tmp, "valgrind.log")
    env.start_anserd(env.write_config(FORWARD_CONFIG % {"h4": H4, "s4": S4}),
                     wrapper=harness.valgrind_wrapper(vlog))
    env.wait_for("the DNS listener", lambda: "DNS service: 2 listeners" in env.log("anserd"),
                 timeout=60)
    for i in range(2):
        rs = ask(env, [q("www.zone.test", ident=i), q("ads.blocked.test"), q("nope.zone.test"),
                       hdr(qd=0)], timeout=10)
        expect(all(r is not None for r, _ in rs), "answers under valgrind: %r" % rs)
    # an app's own DNS, taken over (UDP and TCP)
    for mode in ("udp", "tcp"):
        out = app_query(env, "appQ", mode, S4, "www.zone.test")
        expect(out == "rcode=0 addrs=10.77.0.3 from=%s:53" % S4,
               "an app's query over %s under valgrind: %s" % (mode, out))
    # a reload right after a batch is sent: what is in flight then goes
    # out again through the new setup, answered on the kept listener
    import signal as sig
    p = subprocess.Popen(env.nsexec("h") + [harness.PY, "-c", ASK, H4, "5353", "10"] +
                         [q("c%d.zone.test" % k, ident=k).hex() for k in (1, 2)],
                         stdout=subprocess.PIPE, text=True)
    env.anserd.send_signal(sig.SIGHUP)
    out = p.communicate(timeout=30)[0]
    expect(out.count("-") == 0, "answers across the reload: " + out)
    env.wait_for("the reload", lambda: env.log("anserd").count("generation") >= 2, timeout=60)
    rs = ask(env, [q("www.zone.test", ident=9)], timeout=10)
    expect(rs[0][0] is not None, "answers after the reload")
    ub.terminate()
    ub.wait(10)
    (r, _), = ask(env, [q("gone.zone.test")], timeout=15)
    expect(r is not None and r[3] & 0xF == 2, "SERVFAIL under valgrind")
    harness.stop_valgrind_anserd(env, vlog)


DOT_UNBOUND = """    interface: %(ip)s@853
    tls-port: 853
    tls-service-key: "%(dir)s/leaf.key"
    tls-service-pem: "%(dir)s/leaf.pem"
    local-zone: "zone.test." static
    local-data: "dot.zone.test. 300 IN A 10.77.0.53"
    log-queries: yes
"""

DOT_CONFIG = """global {
    log_level: debug
}
dns {
    bind: 'udp://%(h4)s:5353'
    upstream {
        dot: 'tls://%(s4)s:853'
    }
    routing {
        request {
            fallback: dot
        }
    }
}
routing {
    fallback: direct
}
"""


def make_ca_and_leaf(d, ip):
    """A CA made for this run and a leaf for ip signed by it (TESTING.md)."""
    ca, cakey = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=anser-test-ca", "-keyout", cakey, "-out", ca,
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
         "keyUsage=critical,keyCertSign"])
    key, csr, pem = (os.path.join(d, n) for n in ("leaf.key", "leaf.csr", "leaf.pem"))
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=dns.test", "-keyout", key, "-out", csr])
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:%s,DNS:dns.test\n" % ip)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial",
         "-days", "2", "-out", pem, "-extfile", ext])
    for n in (key, pem, ca):
        os.chmod(n, 0o644)
    return ca


def tls_upstream(env, unbound_body, config, port, qname, ip, wrapper=()):
    """A real unbound that answers only over TLS on port (DoT or DoH),
    with a certificate for its address from a CA made for the run: while
    the CA is not trusted the handshake is refused and the asker gets
    SERVFAIL; trusted (anserd under wrapper), qname is answered (ip), then
    from the cache. Returns unbound's log."""
    env.setup_net()
    d = os.path.join(env.tmp, "unbound")
    os.mkdir(d)
    ca = make_ca_and_leaf(d, S4)
    _, log = start_unbound(env, unbound_body % {"dir": d, "ip": S4}, tcp_port=port)
    env.setup_cgroup()
    cfg = env.write_config(config % {"h4": H4, "s4": S4})
    env.start_anserd(cfg, environ=dict(os.environ, SSL_CERT_FILE="/nonexistent"))
    (r, _), = ask(env, [q(qname)], timeout=8)
    expect(r is not None and summary(r)[0] == 2, "an untrusted upstream: SERVFAIL: %r" % r)
    env.wait_for("the refusal logged", lambda: "TLS handshake failed" in env.log("anserd"))
    env.stop_anserd()
    env.start_anserd(cfg, environ=dict(os.environ, SSL_CERT_FILE=ca), wrapper=wrapper)
    if wrapper:
        env.wait_for("the DNS listener", lambda: "DNS service: 1 listener," in env.log("anserd"),
                     timeout=60)
    (r, _), = ask(env, [q(qname)], timeout=10 if wrapper else 6)
    expect(r is not None and summary(r) == (0, [(300, ip)]), "over TLS: %r" % r)
    (r, _), = ask(env, [q(qname, ident=5)])
    expect(r is not None and summary(r)[1][0][1] == ip, "again, from the cache")
    expect(seen(log, qname) == 1, "unbound (TLS only) saw the name once")
    return log


def t_dot(env):
    """An upstream over TLS (RFC 7858) to a real unbound that listens only
    for DNS over TLS (tls_upstream)."""
    tls_upstream(env, DOT_UNBOUND, DOT_CONFIG, 853, "dot.zone.test", "10.77.0.53")


BLAST = """import os, random, socket, struct, sys
# malformed and hostile datagrams, as fast as one socket sends them
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
dst = (sys.argv[1], int(sys.argv[2]))
n = int(sys.argv[3])
rnd = random.Random(7)
good = bytes.fromhex(sys.argv[4])
kinds = [
    lambda: os.urandom(rnd.randrange(0, 12)),                     # short: dropped
    lambda: bytes([good[0], good[1], good[2] | 0x80]) + good[3:],  # QR=1: dropped
    lambda: good[:12] + b"\\xc0\\x0c" + good[-4:],               # pointer loop: FORMERR
    lambda: os.urandom(rnd.randrange(12, 600)),                    # noise
    lambda: good[:4] + b"\\x00\\x05" + good[6:],                 # QDCOUNT 5
    lambda: bytes(good[:2]) + bytes([0x10]) + good[3:],            # opcode 2: NOTIMP
]
sent = 0
while sent < n:
    try:
        s.sendto(kinds[sent % len(kinds)](), dst)
        sent += 1
    except BlockingIOError:
        pass
    if sent % 1000 == 0:
        try:
            while True:
                s.recv(4096)
        except BlockingIOError:
            pass
print("sent", sent)
"""


def t_flood(env):
    """A million queries at anserd's listener -- cache hits, unique names
    (misses through a real unbound), malformed and hostile datagrams --
    leave its memory bounded and it answering, right again within the
    upstream's back-off."""
    if not shutil.which("dnsperf"):
        raise harness.Skip("dnsperf not installed")
    env.setup_net()
    ub, log = start_unbound(env)
    env.setup_cgroup()
    cfg = FORWARD_CONFIG.replace("log_level: debug", "log_level: warning")
    env.start_anserd(env.write_config(cfg % {"h4": H4, "s4": S4}))
    pid = int(run(env.nsexec("h") + ["ss", "-Hlunp", "sport = :5353"]).stdout.split(
        "pid=")[1].split(",")[0])
    (r, _), = ask(env, [q("www.zone.test")])
    before = harness.rss_kib(pid)
    hits = os.path.join(env.tmp, "hits.txt")
    with open(hits, "w") as f:
        f.write("www.zone.test A\nc1.zone.test A\nnope.zone.test A\n")
    misses = os.path.join(env.tmp, "misses.txt")
    with open(misses, "w") as f:
        for i in range(300000):
            f.write("m%d.nope.zone.test A\n" % i)
    perf = ["taskset", "-c", "0", "dnsperf", "-s", H4, "-p", "5353", "-c", "8", "-q", "500",
            "-t", "2"]
    out_h = run(env.nsexec("h") + perf + ["-d", hits, "-n", "150000"]).stdout    # 450,000
    out_m = run(env.nsexec("h") + perf + ["-d", misses, "-n", "1", "-l", "20"]).stdout
    bl = run(env.nsexec("h") + [harness.PY, "-c", BLAST, H4, "5353", "300000",
                                q("www.zone.test").hex()], timeout=300)
    sent = (int(re.search(r"Queries sent:\s+(\d+)", out_h).group(1)) +
            int(re.search(r"Queries sent:\s+(\d+)", out_m).group(1)) +
            int(bl.stdout.split()[-1]))
    after = harness.rss_kib(pid)
    print("%d queries: RSS %d KiB before, %d KiB after (cache %s)" % (
        sent, before, after, "bounded by max_cache_size"))
    expect(sent >= 1000000, "a million queries: %d" % sent)
    with open(harness.ANSERD, "rb") as f:
        asan = b"__asan_init" in f.read()
    # ASan keeps freed memory in quarantine (256 MiB): RSS says nothing there
    expect(asan or after - before < 64 * 1024, "RSS grew by %d KiB" % (after - before))
    hits_ok = re.search(r"Queries completed:\s+(\d+)", out_h)
    expect(hits_ok and int(hits_ok.group(1)) > 0.95 * 450000, "hits answered: " + out_h[-600:])
    # A flood can leave the upstream marked down (it stopped answering in
    # time): queries fail at once for 5 s, then one probe goes. Right
    # answers must come back within that back-off, not a minute later.
    deadline = time.monotonic() + 12
    while True:
        (r, _), = ask(env, [q("c2.zone.test", ident=77)])
        if r is not None and summary(r) == (0, [(300, "10.77.0.5")]):
            break
        expect(r is not None, "answered, if with SERVFAIL, while the upstream is down")
        expect(time.monotonic() < deadline, "right answers again within 12 s: %r" % r)
        time.sleep(0.5)
    expect(env.anserd.poll() is None, "anserd is up")
    # and idle once the flood is over: during one the service reads its
    # listeners after each hold instead of waiting on them, and must go
    # back to waiting (a service still reading would spin a core here)
    t0 = harness.cpu_seconds(pid)
    time.sleep(2)
    busy = (harness.cpu_seconds(pid) - t0) / 2
    print("after the flood anserd used %.0f %% of a core" % (busy * 100))
    expect(busy < 0.2, "anserd idle after the flood: %.0f %% of a core" % (busy * 100))

DOMAIN_CONFIG = """global {
    log_level: debug
}
node { socks: 'socks5://%(p4)s:1080' }
group { proxy { policy: fixed(0) } }
dns {
    bind: 'udp://%(h4)s:5353'
    upstream { ub: 'udp://%(s4)s:53' }
    routing { request { fallback: ub } }
}
routing {
    domain(www.zone.test) && pname(appA) -> proxy
    !domain(suffix: zone.test) && pname(appB) -> proxy
    domain(alias.zone.test) && pname(appC) -> proxy
    fallback: direct
}
"""


def t_domain_route(env):
    """domain() rules route by what anserd's DNS service answered: a
    connection to an address before its name was looked up goes direct;
    after the lookup through anserd, the next connection to it follows
    the domain rule (and a negated domain rule stops holding); names that
    share an address add up; a reload keeps what was learned."""
    env.setup_net()
    start_unbound(env)
    env.setup_cgroup()
    env.start_web()
    env.start_microsocks()
    cfg = env.write_config(DOMAIN_CONFIG % {"p4": P4, "h4": H4, "s4": S4})
    env.start_anserd(cfg)
    env.wait_for("the DNS listener", lambda: "DNS service: 1 listener," in env.log("anserd"))

    a = env.app("appA", "tcp", S4, WEB)
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == H4, "appA before any lookup: direct, " + a.stdout)
    expect(seen_as(b.stdout) == P4, "appB before any lookup: !domain holds, " + b.stdout)

    (r, _), = ask(env, [q("www.zone.test")])
    expect(r is not None and summary(r) == (0, [(300, S4)]), "the answer: %r" % r)
    a = env.app("appA", "tcp", S4, WEB)
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "appA after the lookup: via the node, " + a.stdout)
    expect(seen_as(b.stdout) == H4, "appB after the lookup: !domain no longer holds, " +
           b.stdout)
    # a second name for the same address: its rule holds too, the first's still
    c = env.app("appC", "tcp", S4, WEB)
    expect(seen_as(c.stdout) == H4, "appC before alias.zone.test: direct, " + c.stdout)
    (r, _), = ask(env, [q("alias.zone.test")])
    expect(r is not None and summary(r) == (0, [(300, S4)]), "the alias: %r" % r)
    a = env.app("appA", "tcp", S4, WEB)
    c = env.app("appC", "tcp", S4, WEB)
    expect(seen_as(c.stdout) == P4 and seen_as(a.stdout) == P4,
           "both names' rules hold for the address: " + a.stdout + c.stdout)

    os.kill(env.anserd.pid, signal.SIGHUP)
    env.wait_for("reload", lambda: "generation 2 active" in env.log("anserd"))
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "after a reload: still via the node, " + a.stdout)


TAKEOVER_CONFIG = """global {
    log_level: debug
}
node { socks: 'socks5://%(p4)s:1080' }
group { proxy { policy: fixed(0) } }
dns {
    upstream { ub: 'udp://%(s4)s:53' }
    virtual_address: '10.30.30.30', 'fd00:a5e::53'
    routing {
        request {
            qname(full: c3.zone.test) -> reject
            fallback: ub
        }
    }
}
routing {
    pname(appM) -> must_direct
    domain(www.zone.test) && pname(appA) -> proxy
    fallback: direct
}
"""

# An app's DNS query: "reply=HEX from=HOST:PORT" (or "error=...").
# udp: sendto() on an unconnected socket; conn: a connect()ed UDP socket
# (getpeername() shown); tcp: one query over TCP.
APP_QUERY = """import socket, struct, sys
mode, host, qname = sys.argv[1:4]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
q = struct.pack(">HHHHHH", 0x3131, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in qname.split(".")) + b"\\0"
q += struct.pack(">HH", 1, 1)
try:
    if mode == "tcp":
        s = socket.create_connection((host, 53), timeout=5)
        s.sendall(struct.pack(">H", len(q)) + q)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            part = s.recv(4096)
            if not part:
                break
            buf += part
        r, frm = buf[2:], s.getpeername()
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(5)
        if mode == "conn":
            s.connect((host, 53))
            s.send(q)
            r, frm = s.recv(4096), s.getpeername()
        else:
            s.sendto(q, (host, 53))
            r, frm = s.recvfrom(4096)
except OSError as e:
    print("error=%s" % e)
    sys.exit(0)
print("reply=%s from=%s:%d" % (r.hex(), frm[0], frm[1]))
"""


def app_query(env, name, mode, host, qname):
    script = os.path.join(env.tmp, "query.py")
    if not os.path.exists(script):
        with open(script, "w") as f:
            f.write(APP_QUERY)
    out = env.app(name, script, mode, host, qname, binary=harness.PY).stdout.strip()
    m = re.match(r"reply=([0-9a-f]+) from=(\S+)$", out)
    if not m:
        return out
    rcode, answers = summary(bytes.fromhex(m.group(1)))
    return "rcode=%d addrs=%s from=%s" % (rcode, ",".join(a for _, a in answers), m.group(2))


def t_takeover(env):
    """The apps' DNS (port 53, UDP and TCP, IPv4 and IPv6) goes to anserd's
    DNS service wherever they send it, and the answer comes back as from
    the server they asked; a must_direct rule keeps an app's DNS out of
    it; anserd's own queries to the same server are not taken (no loop);
    a name looked up that way routes the connection after it."""
    env.setup_net()
    ub, log = start_unbound(env)
    env.setup_cgroup()
    env.start_web()
    env.start_microsocks()
    env.start_anserd(env.write_config(TAKEOVER_CONFIG % {"p4": P4, "s4": S4}))
    env.wait_for("the takeover", lambda: "taking over the apps' DNS" in env.log("anserd"))

    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == H4, "appA before its lookup: direct, " + a.stdout)
    out = app_query(env, "appA", "udp", S4, "www.zone.test")
    expect(out == "rcode=0 addrs=10.77.0.3 from=%s:53" % S4, "appA's lookup: %s" % out)
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "appA after its lookup: via the node, " + a.stdout)

    # c3.zone.test is 10.77.0.6 in unbound; anserd's request rule rejects it
    for mode in ("udp", "conn", "tcp"):
        out = app_query(env, "appQ", mode, S4, "c3.zone.test")
        expect(out == "rcode=0 addrs= from=%s:53" % S4,
               "appQ over %s: anserd's answer, from the server asked: %s" % (mode, out))
    # nothing listens on fd77::3 port 53: only anserd can answer there
    out = app_query(env, "appQ", "udp", "fd77::3", "www.zone.test")
    expect(out == "rcode=0 addrs=10.77.0.3 from=fd77::3:53", "IPv6: %s" % out)
    out = app_query(env, "appQ", "tcp", "fd77::3", "www.zone.test")
    expect(out == "rcode=0 addrs=10.77.0.3 from=fd77::3:53", "IPv6 over TCP: %s" % out)
    # must_direct: unbound itself answers
    out = app_query(env, "appM", "udp", S4, "c3.zone.test")
    expect(out == "rcode=0 addrs=10.77.0.6 from=%s:53" % S4, "appM (must_direct): %s" % out)
    expect(seen(log, "c3.zone.test") == 1, "only appM's c3 query reached unbound")
    # the virtual address is answered by anserd, even for must_direct
    for mode, host in (("udp", "10.30.30.30"), ("tcp", "10.30.30.30"),
                       ("udp", "fd00:a5e::53"), ("conn", "fd00:a5e::53")):
        out = app_query(env, "appM", mode, host, "c3.zone.test")
        expect(out == "rcode=0 addrs= from=%s:53" % host,
               "appM to the virtual address %s over %s: %s" % (host, mode, out))



PREFER_CONFIG = """dns {
    bind: 'udp://%(h4)s:5353'
    ipversion_prefer: 4
    upstream { ub: 'udp://%(s4)s:53' }
    routing { request { fallback: ub } }
}
routing { fallback: direct }
"""


def counts(reply):
    """(rcode, answer count) of a reply."""
    return reply[3] & 0xF, struct.unpack(">H", reply[6:8])[0]


def t_prefer(env):
    """ipversion_prefer: 4 (dae's meaning): an AAAA query for a name that
    has A records gets an empty answer, asking the upstream for A (not
    AAAA); a name with AAAA only keeps them; A queries are untouched."""
    env.setup_net()
    ub, log = start_unbound(env)
    env.setup_cgroup()
    env.start_anserd(env.write_config(PREFER_CONFIG % {"h4": H4, "s4": S4}))
    env.wait_for("the DNS listener", lambda: "DNS service: 1 listener," in env.log("anserd"))

    (r, _), = ask(env, [q("dual.zone.test", qtype=28)])
    expect(r is not None and counts(r) == (0, 0), "AAAA of a name with A: empty, %r" % r)
    expect(seen(log, "dual.zone.test") == 1 and seen(log, "dual.zone.test", "AAAA") == 0,
           "anserd asked for A, not AAAA")
    (r, _), = ask(env, [q("dual.zone.test", qtype=1)])
    rc, ans = summary(r)
    expect(rc == 0 and [a for _, a in ans] == ["10.77.0.8"], "A of it: %r" % ((rc, ans),))
    (r, _), = ask(env, [q("six.zone.test", qtype=28)])
    expect(r is not None and counts(r) == (0, 1), "AAAA of an AAAA-only name: %r" % r)
    expect(seen(log, "six.zone.test", "AAAA") == 1, "its AAAA was asked")
    (r, _), = ask(env, [q("dual.zone.test", qtype=28, ident=9)])
    expect(counts(r) == (0, 0) and r[:2] == b"\x00\x09", "again, from the cache: %r" % r)
    expect(seen(log, "dual.zone.test") == 1, "one upstream query in all")


DOH_UNBOUND = """    interface: %(ip)s@443
    https-port: 443
    http-endpoint: "/q"
    tls-service-key: "%(dir)s/leaf.key"
    tls-service-pem: "%(dir)s/leaf.pem"
    local-zone: "zone.test." static
    local-data: "doh.zone.test. 300 IN A 10.77.0.54"
    local-data: "doh2.zone.test. 300 IN A 10.77.0.55"
    local-data: "doh3.zone.test. 300 IN A 10.77.0.56"
    log-queries: yes
"""

DOH_CONFIG = """global {
    log_level: debug
}
dns {
    bind: 'udp://%(h4)s:5353'
    upstream {
        doh: 'https://%(s4)s/q'
    }
    routing {
        request {
            fallback: doh
        }
    }
}
routing {
    fallback: direct
}
"""


def t_doh(env, wrapper=()):
    """An upstream over HTTPS (RFC 8484, HTTP/2) to a real unbound that
    listens only for DNS over HTTPS (tls_upstream), several queries at
    once on one connection."""
    tls_upstream(env, DOH_UNBOUND, DOH_CONFIG, 443, "doh.zone.test", "10.77.0.54", wrapper)
    rs = ask(env, [q("doh2.zone.test", ident=6), q("doh3.zone.test", ident=7)])
    got = sorted(summary(r)[1][0][1] for r, _ in rs if r)
    expect(got == ["10.77.0.55", "10.77.0.56"], "two at once: %r" % got)
    conns = run(env.nsexec("s") + ["ss", "-Htn", "state", "established", "sport = :443"],
                check=False).stdout.strip().splitlines()
    expect(len(conns) == 1, "one connection for all of them: %s" % conns)


def t_doh_valgrind(env):
    """t_doh with anserd under valgrind: the HTTP/2 session, its streams
    and the TLS connection, then exit: no errors, no definite leaks."""
    vlog = os.path.join(env.tmp, "valgrind.log")
    t_doh(env, harness.valgrind_wrapper(vlog))
    harness.stop_valgrind_anserd(env, vlog)


ASIS_CONFIG = """global {
    log_level: debug
}
dns {
    upstream { ub: 'udp://%(s4)s:53' }
    bind: 'udp://%(h4)s:%(port)d'
    routing {
        request {
            qname(suffix: zone.test) -> ub
        }
    }
}
routing {
    fallback: direct
}
"""
ASIS4, ASIS6 = "10.77.0.4", "fd77::4"


def t_asis(env, wrapper=()):
    """asis (the request rules' default fallback): an app's query taken
    over goes to the server the app sent it to -- a real dnsmasq on two
    addresses of its own, not anserd's upstream -- over UDP (unconnected
    and connected sockets) and TCP, IPv4 and IPv6, while names a rule
    sends to the upstream (unbound) still go there; a query to anserd's
    own bind listener has no other server and gets SERVFAIL."""
    env.setup_net()
    start_unbound(env)
    for a in ("%s/24" % ASIS4, "%s/64" % ASIS6):
        harness.run(["ip", "-n", env.ns("s"), "addr", "add", a, "dev", "e0", "nodad"]
                    if ":" in a else ["ip", "-n", env.ns("s"), "addr", "add", a, "dev", "e0"])
    dm = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    env.spawn("dnsmasq-asis", env.nsexec("s") + [
        dm, "-k", "--conf-file=/dev/null", "--port=53", "--listen-address=" + ASIS4,
        "--listen-address=" + ASIS6, "--bind-interfaces", "--no-resolv", "--no-hosts",
        "--address=/asis.test/10.9.9.9", "--address=/www.zone.test/10.9.9.8",
        "--user=root", "--group=root", "--pid-file=", "--log-facility=-", "--log-queries"])
    env.wait_for("dnsmasq", lambda: "started" in env.log("dnsmasq-asis"))
    env.setup_cgroup()
    port = 5355
    env.start_anserd(env.write_config(ASIS_CONFIG % {"s4": S4, "h4": H4, "port": port}),
                     wrapper=wrapper)
    env.wait_for("the DNS listener", lambda: "DNS service:" in env.log("anserd"), timeout=60)
    env.wait_for("the DNS listener", lambda: "DNS service:" in env.log("anserd"))
    for mode in ("udp", "conn", "tcp"):
        for server in (ASIS4, ASIS6):
            out = app_query(env, "appA", mode, server, "asis.test")
            want = "rcode=0 addrs=10.9.9.9 from=%s:53" % server
            expect(out == want, "asis over %s to %s: %r (want %r)" % (mode, server, out, want))
    # a name the rules send to the upstream: unbound's answer, not dnsmasq's
    out = app_query(env, "appA", "udp", ASIS4, "www.zone.test")
    expect(out == "rcode=0 addrs=%s from=%s:53" % (S4, ASIS4), "ub's answer: %r" % out)
    log = env.log("dnsmasq-asis")
    expect(log.count("query[A] asis.test") == 6, "dnsmasq asked 6 times:\n" + log)
    expect("www.zone.test" not in log, "dnsmasq not asked for www.zone.test")
    (r, _), = ask(env, [q("asis.test")], port=port)
    expect(r is not None and r[3] & 0xF == 2, "the bind listener's asis: SERVFAIL")


NAMED_CONFIG = """global {
    log_level: debug
}
dns {
    upstream {
        byname: 'tcp+udp://localhost:%(port)d'
        overtcp: 'tcp://localhost:%(port)d'
        nowhere: 'udp://name.invalid:53'
    }
    bind: 'udp://%(h4)s:5353'
    routing {
        request {
            qname(suffix: tcp.test) -> overtcp
            qname(suffix: invalid.test) -> nowhere
            fallback: byname
        }
    }
}
routing {
    fallback: direct
}
"""


def t_named_upstream(env, wrapper=()):
    """Upstreams given by name are resolved in the background when the
    setup is applied (localhost: /etc/hosts, no network), queries that
    come first wait for it, and answers come from the server the name
    resolved to (a real dnsmasq on anserd's loopback), over UDP and TCP.
    A name that does not resolve fails its queries (SERVFAIL), not the
    others', and anserd says why."""
    env.setup_net()
    port = 5399
    dm = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    env.spawn("dnsmasq-lo", env.nsexec("h") + [
        dm, "-k", "--conf-file=/dev/null", "--port=%d" % port, "--listen-address=127.0.0.1",
        "--listen-address=::1", "--bind-interfaces", "--no-resolv", "--no-hosts",
        "--address=/named.test/10.9.9.7", "--address=/tcp.test/10.9.9.6",
        "--user=root", "--group=root", "--pid-file=", "--log-facility=-", "--log-queries"])
    env.wait_for("dnsmasq", lambda: "started" in env.log("dnsmasq-lo"))
    env.setup_cgroup()
    env.start_anserd(env.write_config(NAMED_CONFIG % {"port": port, "h4": H4}),
                     wrapper=wrapper)
    env.wait_for("the DNS listener", lambda: "DNS service:" in env.log("anserd"), timeout=60)
    # at once: the first query may arrive before the name is resolved
    (r, _), = ask(env, [q("a.named.test")], timeout=10)
    expect(r is not None and summary(r) == (0, [(0, "10.9.9.7")]), "by name: %r" % (r,))
    env.wait_for("the name resolved", lambda: "byname: localhost is " in env.log("anserd"))
    (r, _), = ask(env, [q("b.tcp.test")], timeout=10)
    expect(r is not None and summary(r) == (0, [(0, "10.9.9.6")]), "over TCP: %r" % (r,))
    expect("query[A] b.tcp.test" in env.log("dnsmasq-lo"), "dnsmasq answered over TCP")
    env.wait_for("the failure said", lambda: "cannot resolve name.invalid" in env.log("anserd"),
                 timeout=30)
    (r, _), = ask(env, [q("x.invalid.test")], timeout=10)
    expect(r is not None and r[3] & 0xF == 2, "an unresolved upstream: SERVFAIL")
    (r, _), = ask(env, [q("c.named.test")], timeout=10)
    expect(r is not None and summary(r)[0] == 0, "the others still answer")


# an ss-server node and a group of it, for upstreams routed through it
VIA_HEAD = """global {
    log_level: debug
    tcp_check_url: 'http://%(s4)s:8080/'
    udp_check_dns: '%(s4)s:53'
    check_interval: 300s
}
node { ss: 'ss://aes-128-gcm:via-test-pw@%(p4)s:8388' }
group { proxy { policy: fixed(0) } }
"""
VIA_CONFIG = VIA_HEAD + """dns {
    upstream {
        viaudp: 'udp://%(s4)s:53'
        viatcp: 'tcp://%(s4)s:53'
        direct: 'udp://%(s4)s:5300'
        blocked: 'udp://[%(s6)s]:53'
    }
    bind: 'udp://%(h4)s:5353'
    routing {
        request {
            qname(suffix: c1.zone.test) -> viatcp
            qname(suffix: c2.zone.test) -> direct
            qname(suffix: c3.zone.test) -> blocked
            fallback: viaudp
        }
    }
}
routing {
    dip(%(s6)s) -> block
    dip(%(s4)s) && dport(5300) -> direct
    dip(%(s4)s) -> proxy
    fallback: direct
}
"""


def t_upstream_via(env, wrapper=()):
    """The upstreams' own traffic follows the routing section: queries to
    an upstream a rule sends to a group reach unbound from the node's
    address (a real ss-server), over UDP and TCP; an upstream routed
    direct is asked from anserd's host; one a block rule names gets no
    query at all and its askers SERVFAIL."""
    env.setup_net()
    ub, log = start_unbound(env)
    env.setup_cgroup()
    env.start_web()
    env.start_ss("aes-128-gcm", "via-test-pw")
    env.start_anserd(env.write_config(VIA_CONFIG % {"s4": S4, "s6": S6, "p4": P4, "h4": H4}),
                     wrapper=wrapper)
    env.wait_for("the DNS listener", lambda: "DNS service:" in env.log("anserd"), timeout=60)
    (r, _), = ask(env, [q("www.zone.test")])
    expect(r is not None and summary(r) == (0, [(300, S4)]), "via udp: %r" % (r,))
    (r, _), = ask(env, [q("c1.zone.test")])
    expect(r is not None and summary(r)[0] == 0, "via tcp: %r" % (r,))
    (r, _), = ask(env, [q("c2.zone.test")])
    expect(r is not None and summary(r)[0] == 0, "direct: %r" % (r,))
    (r, _), = ask(env, [q("c3.zone.test")], timeout=10)
    expect(r is not None and r[3] & 0xF == 2, "blocked: SERVFAIL: %r" % (r,))
    with open(log) as f:
        lines = f.read().splitlines()

    def client(name):
        return [ln.split()[-4] for ln in lines if " %s. A IN" % name in ln]
    expect(client("www.zone.test") == [P4], "udp via the node: %r" % client("www.zone.test"))
    expect(client("c1.zone.test") == [P4], "tcp via the node: %r" % client("c1.zone.test"))
    expect(client("c2.zone.test") == [H4], "direct: %r" % client("c2.zone.test"))
    expect(client("c3.zone.test") == [], "blocked: never asked")
    out = env.log("anserd")
    expect("DNS upstream viaudp goes through a proxy node" in out, "said so")
    expect("DNS upstream blocked: the routing blocks it" in out, "said so")


DOT_VIA_CONFIG = VIA_HEAD + """dns {
    bind: 'udp://%(h4)s:5353'
    upstream { dot: 'tls://%(s4)s:853' }
    routing { request { fallback: dot } }
}
routing {
    dip(%(s4)s) -> proxy
    fallback: direct
}
"""


def t_dot_via(env):
    """A DNS-over-TLS upstream routed to a group: the TLS session to a real
    unbound (a certificate from a CA made for the run, checked by anserd)
    runs inside the ss-server node's stream, and unbound sees the query
    from the node's address."""
    env.setup_net()
    d = os.path.join(env.tmp, "unbound")
    os.mkdir(d)
    ca = make_ca_and_leaf(d, S4)
    _, log = start_unbound(env, DOT_UNBOUND % {"dir": d, "ip": S4}, tcp_port=853)
    env.setup_cgroup()
    env.start_web()
    env.start_ss("aes-128-gcm", "via-test-pw")
    env.start_anserd(env.write_config(DOT_VIA_CONFIG % {"s4": S4, "p4": P4, "h4": H4}),
                     environ=dict(os.environ, SSL_CERT_FILE=ca))
    env.wait_for("the DNS listener", lambda: "DNS service:" in env.log("anserd"))
    (r, _), = ask(env, [q("dot.zone.test")], timeout=10)
    expect(r is not None and summary(r) == (0, [(300, "10.77.0.53")]), "over TLS: %r" % (r,))
    with open(log) as f:
        clients = [ln.split()[-4] for ln in f if " dot.zone.test. A IN" in ln]
    expect(clients == [P4], "unbound saw the query from the node: %r" % clients)
    expect("DNS upstream dot goes through a proxy node" in env.log("anserd"), "said so")


def valgrind_case(body):
    """body with anserd under valgrind, ended by a reload (what the setup
    made as it went -- asis servers, names being resolved or tried again
    -- goes with it) and exit: no errors, no definite leaks."""
    def t(env):
        vlog = os.path.join(env.tmp, "valgrind.log")
        body(env, harness.valgrind_wrapper(vlog))
        env.anserd.send_signal(signal.SIGHUP)
        env.wait_for("the reload", lambda: env.log("anserd").count("generation") >= 2,
                     timeout=60)
        harness.stop_valgrind_anserd(env, vlog)
    return t


TESTS = {"codec_vs_unbound": t_codec_vs_unbound, "forward": t_forward, "valgrind": t_valgrind,
         "dot": t_dot, "flood": t_flood, "domain_route": t_domain_route,
         "takeover": t_takeover, "prefer": t_prefer,
         "doh": t_doh, "doh_valgrind": t_doh_valgrind, "asis": t_asis,
         "named_upstream": t_named_upstream, "upstream_via": t_upstream_via,
         "dot_via": t_dot_via,
         "asis_valgrind": valgrind_case(t_asis), "named_valgrind": valgrind_case(t_named_upstream),
         "via_valgrind": valgrind_case(t_upstream_via)}

if __name__ == "__main__":
    main(TESTS)
