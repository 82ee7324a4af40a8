#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A TCP relay that holds every chunk for DELAY ms before passing it on, in
both directions: a slow node in front of a real one (this kernel has no
netem). Usage: delayrelay.py LISTEN_IP LISTEN_PORT TARGET_IP TARGET_PORT DELAY_MS"""
import socket
import sys
import threading
import time


def pipe(src, dst, delay):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            time.sleep(delay)
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main():
    lip, lport, tip, tport, ms = sys.argv[1:6]
    fam = socket.AF_INET6 if ":" in lip else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((lip, int(lport)))
    ls.listen(128)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        try:
            t = socket.create_connection((tip, int(tport)))
        except OSError:
            c.close()
            continue
        for a, b in ((c, t), (t, c)):
            threading.Thread(target=pipe, args=(a, b, int(ms) / 1000.0), daemon=True).start()


if __name__ == "__main__":
    main()
