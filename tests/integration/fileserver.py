#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Serves a directory over HTTP, or HTTPS when given a certificate and key:
fileserver.py IP PORT DIR [CERT KEY]. Logs each request to stdout."""
import functools
import http.server
import ssl
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


def main():
    ip, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    srv = http.server.ThreadingHTTPServer((ip, port), functools.partial(Handler, directory=d))
    if len(sys.argv) > 5:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
