#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Test web + UDP echo server for the integration tests.

Listens on [::]:PORT (dual stack) for TCP and UDP.
  GET /         -> "client=<address the server saw>\n"
  GET /bytes/N  -> N deterministic bytes (for hash-checked transfers)
  PUT /sink/N   -> reads N bytes, "put=ok len=N" if they are GET /bytes/N's
  UDP datagram  -> "ECHO <address the server saw> <payload>"
Prints one line per TCP connection and datagram: "tcp <ip>" / "udp <ip>".
"""
import socket
import sys
import threading


def client_ip(addr):
    ip = addr[0]
    return ip[7:] if ip.startswith("::ffff:") else ip


def pattern(n):
    out = bytearray()
    x = 12345
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out += x.to_bytes(4, "little")
    return bytes(out[:n])


def handle(conn, addr):
    ip = client_ip(addr)
    print("tcp", ip, flush=True)
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ")[1].decode()
        if path.startswith("/sink/"):
            n = int(path[6:])
            got = bytearray(data[data.index(b"\r\n\r\n") + 4:])
            while len(got) < n:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
            ok = len(got) == n and bytes(got) == pattern(n)
            body = ("put=%s len=%d\n" % ("ok" if ok else "bad", len(got))).encode()
        elif path.startswith("/bytes/"):
            body = pattern(int(path[7:]))
        else:
            body = ("client=%s\n" % ip).encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    finally:
        conn.close()


def tcp_loop(sock):
    while True:
        conn, addr = sock.accept()
        threading.Thread(target=handle, args=(conn, addr), daemon=True).start()


def udp_loop(sock):
    while True:
        data, addr = sock.recvfrom(65535)
        ip = client_ip(addr)
        print("udp", ip, flush=True)
        sock.sendto(b"ECHO " + ip.encode() + b" " + data, addr)


def main():
    port = int(sys.argv[1])
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", port))
    t.listen(4096)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", port))
    threading.Thread(target=udp_loop, args=(u,), daemon=True).start()
    print("ready", flush=True)
    tcp_loop(t)


if __name__ == "__main__":
    main()
