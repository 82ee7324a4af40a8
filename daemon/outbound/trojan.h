/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trojan (trojan-gfw protocol, also trojan-go without its extensions):
 * over TLS, the client sends
 *   hex(SHA224(password)) CRLF CMD ATYP ADDR PORT CRLF
 * and then the payload; the server sends no reply header. CMD 1 is
 * CONNECT, 3 UDP ASSOCIATE (datagrams framed as ATYP ADDR PORT LEN CRLF
 * PAYLOAD in both directions).
 */
#ifndef ANSER_TROJAN_H
#define ANSER_TROJAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "socks5.h"
#include "stream.h"

#define TROJAN_CMD_CONNECT 1
#define TROJAN_CMD_UDP	   3
#define TROJAN_HDR_MAX	   (56 + 2 + 1 + SOCKS5_MAX_ADDR_MSG + 2)

/* name: as in anser_socks5_put_dest */
ssize_t anser_trojan_header(uint8_t *buf, size_t len, const char *password, uint8_t cmd,
			    const struct sockaddr *dst, const char *name);
/* A stream over inner, or over fd when inner is NULL (taken on success) that sends the header before
 * the first bytes (or alone, on flush). */
int anser_trojan_stream_new(int fd, struct anser_stream *inner, const char *password, uint8_t cmd,
			    const struct sockaddr *dst, const char *name,
			    struct anser_stream **out);

/* UDP framing: one datagram to dst (or name:port of dst, name as in
 * anser_socks5_put_dest) as ATYP ADDR PORT LEN CRLF PAYLOAD. */
ssize_t anser_trojan_udp_frame(uint8_t *buf, size_t len, const struct sockaddr *dst,
			       const char *name, const uint8_t *p, size_t n);
/* A datagram from the server at buf: bytes it takes in total (> 0) with
 * payload, plen and src set; -EAGAIN when buf holds only a prefix; -EPROTO. */
int anser_trojan_udp_parse(const uint8_t *buf, size_t len, struct anser_socks5_addr *src,
			   const uint8_t **payload, size_t *plen);

#endif
