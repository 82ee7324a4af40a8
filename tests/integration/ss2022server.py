#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A shadowsocks 2022 (SIP022) server for the integration tests, TCP and
UDP, for 2022-blake3-aes-128-gcm and 2022-blake3-aes-256-gcm.

This is a stand-in, and says so: Debian 12 ships no shadowsocks-2022
server (shadowsocks-libev 3.3.5 predates it, v2ray 4.34 rejects the
methods), and none can be built here. It is written from the SIP022
specification independently of anserd's C code, uses python3-cryptography
for AES-GCM and AES-ECB, and takes its BLAKE3 subkeys from Debian's b3sum
(the BLAKE3 team's tool), so anserd's BLAKE3 is not checked against
itself. It checks what a real server checks: the header types, the
timestamp window, the request salt echoed in the response, replayed
salts, the padding rule, chunk sizes; and it sends the first payload in
the response header, as real servers do.

Usage: ss2022server.py METHOD PSK_BASE64 LISTEN_ADDR PORT
Prints "ready" when listening, and one line per connection/session.
"""
import base64
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TAG = 16
SKEW = 30
SUBKEY = "shadowsocks 2022 session subkey"


def log(*a):
    print(*a, flush=True)


def subkey(psk, salt):
    r = subprocess.run(["b3sum", "--derive-key", SUBKEY, "--raw", "--length", str(len(psk))],
                       input=psk + salt, stdout=subprocess.PIPE, check=True)
    return r.stdout


class Nonce:
    """An AEAD with a 12-byte little-endian counter nonce."""

    def __init__(self, key):
        self.aead = AESGCM(key)
        self.n = 0

    def _nonce(self):
        v = self.n.to_bytes(12, "little")
        self.n += 1
        return v

    def seal(self, data):
        return self.aead.encrypt(self._nonce(), data, None)

    def open(self, data):
        return self.aead.decrypt(self._nonce(), data, None)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise EOFError("cut after %d of %d bytes" % (len(buf), n))
        buf += part
    return buf


def read_addr(data):
    """SOCKS5 ATYP ADDR PORT -> ((host, port), bytes used)."""
    atyp = data[0]
    if atyp == 1:
        host, off = socket.inet_ntop(socket.AF_INET, data[1:5]), 5
    elif atyp == 4:
        host, off = socket.inet_ntop(socket.AF_INET6, data[1:17]), 17
    elif atyp == 3:
        n = data[1]
        host, off = data[2:2 + n].decode(), 2 + n
    else:
        raise ValueError("bad address type %d" % atyp)
    return (host, struct.unpack(">H", data[off:off + 2])[0]), off + 2


def put_addr(addr):
    host, port = addr[0], addr[1]
    if ":" in host:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host) + struct.pack(">H", port)
    return b"\x01" + socket.inet_pton(socket.AF_INET, host) + struct.pack(">H", port)


def time_ok(t):
    return abs(int(time.time()) - t) <= SKEW


class Server:
    def __init__(self, method, psk, host, port):
        self.klen = {"2022-blake3-aes-128-gcm": 16, "2022-blake3-aes-256-gcm": 32}[method]
        self.psk = base64.b64decode(psk)
        if len(self.psk) != self.klen:
            raise SystemExit("the key must be %d bytes" % self.klen)
        self.host, self.port = host, port
        self.salts = set()
        self.lock = threading.Lock()
        self.udp_sessions = {}  # client session id -> (server session id, packet id, sockets)

    # -- TCP ---------------------------------------------------------------
    def tcp(self, c, peer):
        try:
            salt = recv_exact(c, self.klen)
            with self.lock:
                if salt in self.salts:
                    raise ValueError("replayed salt")
                self.salts.add(salt)
            dec = Nonce(subkey(self.psk, salt))
            fixed = dec.open(recv_exact(c, 11 + TAG))
            typ, ts, vlen = struct.unpack(">BQH", fixed)
            if typ != 0 or not time_ok(ts):
                raise ValueError("request header type %d, time off by %d s"
                                 % (typ, int(time.time()) - ts))
            var = dec.open(recv_exact(c, vlen + TAG))
            target, off = read_addr(var)
            pad = struct.unpack(">H", var[off:off + 2])[0]
            if pad > 900:
                raise ValueError("padding %d > 900" % pad)
            first = var[off + 2 + pad:]
            if pad == 0 and not first:
                raise ValueError("no padding and no payload")
        except Exception as e:  # noqa: BLE001 -- a bad client is logged and dropped
            log("tcp", peer[0], "rejected:", e)
            c.close()
            return
        log("tcp", peer[0], "->", "%s:%d" % target, "padding", pad)
        try:
            r = socket.create_connection(target, timeout=10)
            r.settimeout(None)
            if first:
                r.sendall(first)
        except OSError as e:  # the target, not the client
            log("tcp", peer[0], "cannot reach %s:%d:" % target, e)
            c.close()
            return
        threading.Thread(target=self.up, args=(c, r, dec), daemon=True).start()
        self.down(c, r, salt)

    def up(self, c, r, dec):
        """client chunks -> target"""
        try:
            while True:
                hdr = c.recv(1, socket.MSG_PEEK)
                if not hdr:
                    break
                n = struct.unpack(">H", dec.open(recv_exact(c, 2 + TAG)))[0]
                if n == 0:
                    raise ValueError("empty chunk")
                r.sendall(dec.open(recv_exact(c, n + TAG)))
        except Exception as e:  # noqa: BLE001
            log("tcp upstream ended:", e)
        try:
            r.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def down(self, c, r, req_salt):
        """target -> client: the response header carries the first payload"""
        salt = os.urandom(self.klen)
        enc = Nonce(subkey(self.psk, salt))
        try:
            data = r.recv(65535)
            head = struct.pack(">BQ", 1, int(time.time())) + req_salt + struct.pack(">H", len(data))
            c.sendall(salt + enc.seal(head) + enc.seal(data))
            while data:
                data = r.recv(65535)
                if data:
                    c.sendall(enc.seal(struct.pack(">H", len(data))) + enc.seal(data))
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            r.close()

    def serve_tcp(self):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        while True:
            c, peer = s.accept()
            threading.Thread(target=self.tcp, args=(c, peer), daemon=True).start()

    # -- UDP ---------------------------------------------------------------
    def ecb(self):
        return Cipher(algorithms.AES(self.psk), modes.ECB())

    def serve_udp(self):
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u.bind((self.host, self.port))
        while True:
            pkt, peer = u.recvfrom(65535)
            try:
                self.udp_in(u, pkt, peer)
            except Exception as e:  # noqa: BLE001
                log("udp from", peer[0], "rejected:", e)

    def udp_in(self, u, pkt, peer):
        d = self.ecb().decryptor()
        hdr = d.update(pkt[:16]) + d.finalize()
        csid, pid = struct.unpack(">QQ", hdr)
        body = AESGCM(subkey(self.psk, hdr[:8])).decrypt(hdr[4:], pkt[16:], None)
        typ, ts, pad = struct.unpack(">BQH", body[:11])
        if typ != 0 or not time_ok(ts):
            raise ValueError("packet type %d, time off by %d s" % (typ, int(time.time()) - ts))
        target, off = read_addr(body[11 + pad:])
        payload = body[11 + pad + off:]
        with self.lock:
            sess = self.udp_sessions.get(csid)
            if sess is None:
                ssid = struct.unpack(">Q", os.urandom(8))[0]
                sess = {"ssid": ssid, "pid": 0, "socks": {},
                        "key": subkey(self.psk, struct.pack(">Q", ssid))}
                self.udp_sessions[csid] = sess
                log("udp session", "%016x" % csid, "from", peer[0])
            if pid in sess.setdefault("seen", set()):
                raise ValueError("replayed packet id %d" % pid)
            sess["seen"].add(pid)
            sess["peer"] = peer
        fam = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        out = sess["socks"].get(fam)
        if out is None:
            out = socket.socket(fam, socket.SOCK_DGRAM)
            sess["socks"][fam] = out
            threading.Thread(target=self.udp_back, args=(u, out, csid, sess),
                             daemon=True).start()
        try:
            out.sendto(payload, target)
        except OSError as e:  # the target, not the client
            log("udp", peer[0], "cannot reach %s:%d:" % target, e)

    def udp_back(self, u, out, csid, sess):
        """replies from any remote -> the client, full cone"""
        while True:
            data, src = out.recvfrom(65535)
            with self.lock:
                pid = sess["pid"]
                sess["pid"] += 1
            hdr = struct.pack(">QQ", sess["ssid"], pid)
            body = (struct.pack(">BQQH", 1, int(time.time()), csid, 0) + put_addr(src) + data)
            e = self.ecb().encryptor()
            pkt = e.update(hdr) + e.finalize() + AESGCM(sess["key"]).encrypt(hdr[4:], body, None)
            u.sendto(pkt, sess["peer"])


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    srv = Server(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
    threading.Thread(target=srv.serve_udp, daemon=True).start()
    t = threading.Thread(target=srv.serve_tcp, daemon=True)
    t.start()
    time.sleep(0.2)
    log("ready")
    t.join()


if __name__ == "__main__":
    main()
