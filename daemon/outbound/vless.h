/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VLESS (version 0, no flow): the client sends
 *   VER(0) UUID(16) ADDONS_LEN(0) CMD PORT(2) ATYP ADDR
 * with ATYP 1 = IPv4, 2 = domain, 3 = IPv6 (not SOCKS5's numbering), then
 * the payload; the server answers VER ADDONS_LEN ADDONS before its data.
 */
#ifndef ANSER_VLESS_H
#define ANSER_VLESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "stream.h"

#define VLESS_CMD_TCP 1
#define VLESS_CMD_UDP 2
#define VLESS_HDR_MAX (1 + 16 + 1 + 1 + 2 + 1 + 1 + 255)

/* name: non-NULL and non-empty (at most 255 bytes): address type domain,
 * with dst's port. */
ssize_t anser_vless_header(uint8_t *buf, size_t len, const uint8_t uuid[16], uint8_t cmd,
			   const struct sockaddr *dst, const char *name);
/* The server's response header at buf: its length, -EAGAIN, -EPROTO. */
int anser_vless_parse_response(const uint8_t *buf, size_t len);
/* udp: command 2, and the stream carries length-prefixed datagrams (a
 * write or a read is one datagram). */
int anser_vless_stream_new(int fd, struct anser_stream *inner, const uint8_t uuid[16],
			   const struct sockaddr *dst, const char *name, bool udp,
			   struct anser_stream **out);

#endif
