#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""anserd's DNS codec against a real unbound, the reference for what a
careful server does with a malformed query (TESTING.md): the same bytes go
to unbound over UDP in a test namespace and to anserd's parser
(anser-dnscheck); both must agree on drop / answer / which error.

Usage: test_dns.py CASE (root; one meson test per case)."""
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import S4, expect, main, run  # noqa: E402

DNSCHECK = os.path.join(harness.BUILD, "tests", "integration", "anser-dnscheck")

UNBOUND_CONF = """server:
    username: ""
    chroot: ""
    pidfile: ""
    directory: "%(dir)s"
    do-daemonize: no
    use-syslog: no
    logfile: "%(dir)s/unbound.log"
    module-config: "iterator"
    interface: %(ip)s@53
    access-control: 0.0.0.0/0 allow
    local-zone: "test." nodefault
    local-zone: "zone.test." static
    local-data: "zone.test. 300 IN SOA ns.zone.test. admin.zone.test. 1 3600 600 86400 60"
    local-data: "www.zone.test. 300 IN A 10.77.0.3"
remote-control:
    control-enable: no
"""


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
    unbound = shutil.which("unbound") or "/usr/sbin/unbound"
    if not os.path.exists(unbound):
        raise harness.Skip("unbound not installed")
    env.setup_net()
    d = os.path.join(env.tmp, "unbound")
    os.mkdir(d)
    conf = os.path.join(d, "unbound.conf")
    with open(conf, "w") as f:
        f.write(UNBOUND_CONF % {"dir": d, "ip": S4})
    chk = run(["unbound-checkconf", conf], check=False)
    expect(chk.returncode == 0, "unbound-checkconf: " + chk.stdout)
    env.spawn("unbound", env.nsexec("s") + [unbound, "-d", "-c", conf])
    env.wait_for("unbound on :53", lambda: run(env.nsexec("s") + ["ss", "-Hlun", "sport = :53"],
                                               check=False).stdout.strip() != "")
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


TESTS = {"codec_vs_unbound": t_codec_vs_unbound}

if __name__ == "__main__":
    main(TESTS)
