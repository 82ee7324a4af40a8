/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SOCKS5 (RFC 1928) and username/password auth (RFC 1929) codec: pure
 * functions over byte buffers, no I/O, so every parser can be unit-tested
 * and fuzzed on its own.
 *
 * Builders return the number of bytes written, or -ENOBUFS / -EINVAL.
 * Parsers return the number of bytes consumed (> 0), -EAGAIN when the
 * buffer holds only a prefix of a valid message, or another -errno when
 * the bytes can never become valid (-EPROTO) or the server refused
 * (-EACCES for auth, the mapped reply code for requests).
 */
#ifndef ANSER_SOCKS5_H
#define ANSER_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SOCKS5_VERSION		   0x05
#define SOCKS5_AUTH_VERSION	   0x01

#define SOCKS5_METHOD_NONE	   0x00
#define SOCKS5_METHOD_USERPASS	   0x02
#define SOCKS5_METHOD_UNACCEPTABLE 0xff

#define SOCKS5_CMD_CONNECT	   0x01
#define SOCKS5_CMD_UDP_ASSOCIATE   0x03

#define SOCKS5_ATYP_IPV4	   0x01
#define SOCKS5_ATYP_DOMAIN	   0x03
#define SOCKS5_ATYP_IPV6	   0x04

/* Longest reply / UDP header: VER REP RSV ATYP LEN 255 PORT. */
#define SOCKS5_MAX_ADDR_MSG (4 + 1 + 255 + 2)
/* Largest UDP header we ever build (a 255-byte name). */
#define SOCKS5_UDP_HDR_MAX (3 + 1 + 1 + 255 + 2)

/* An address as a SOCKS5 server reports it: an IP (sa) or a domain name. */
struct anser_socks5_addr {
	uint8_t atyp;
	struct sockaddr_storage sa; /* AF_INET/AF_INET6 when atyp is an IP */
	char domain[256];	    /* NUL-terminated when atyp is DOMAIN */
	uint16_t port;		    /* host order, for every atyp */
};

/* ATYP ADDR PORT, the address form shadowsocks, trojan and others share.
 * put: dst AF_INET/AF_INET6 (v4-mapped written as IPv4); bytes written.
 * get: bytes used, -EAGAIN if buf holds only a prefix, -EPROTO. */
ssize_t anser_socks5_put_addr(uint8_t *buf, size_t len, const struct sockaddr *dst);
/* The port of an AF_INET/AF_INET6 address, in network order; -EAFNOSUPPORT
 * for other families. */
int anser_sockaddr_port_be(const struct sockaddr *sa, uint16_t *port);
/* The same for a stream's destination: with a name (non-NULL, non-empty,
 * at most 255 bytes) ATYP DOMAIN and name:port, the port taken from dst
 * (dial_mode domain); else put_addr. */
ssize_t anser_socks5_put_dest(uint8_t *buf, size_t len, const struct sockaddr *dst,
			      const char *name);
/* VMess's and VLESS's form of the same: PORT ATYP ADDR, with ATYP 1 for
 * IPv4, 2 for a (length-prefixed) name and 3 for IPv6. */
ssize_t anser_put_port_addr(uint8_t *buf, size_t len, const struct sockaddr *dst, const char *name);
int anser_socks5_get_addr(const uint8_t *buf, size_t len, struct anser_socks5_addr *a);

ssize_t anser_socks5_greeting(uint8_t *buf, size_t len, bool offer_userpass);
/* On success *method is NONE or USERPASS (only if it was offered). */
int anser_socks5_parse_method(const uint8_t *buf, size_t len, bool offered_userpass,
			      uint8_t *method);
/* -EINVAL if user or pass is empty or longer than 255 bytes. */
ssize_t anser_socks5_auth_request(uint8_t *buf, size_t len, const char *user, const char *pass);
int anser_socks5_parse_auth_reply(const uint8_t *buf, size_t len);
/* dst: AF_INET or AF_INET6 (IPv4-mapped IPv6 is sent as IPv4); name as
 * in anser_socks5_put_dest. */
ssize_t anser_socks5_request(uint8_t *buf, size_t len, uint8_t cmd, const struct sockaddr *dst,
			     const char *name);
/* On success *rep is 0 and bnd holds BND.ADDR/BND.PORT. A non-zero REP
 * returns anser_socks5_reply_errno(rep) with *rep set. */
int anser_socks5_parse_reply(const uint8_t *buf, size_t len, uint8_t *rep,
			     struct anser_socks5_addr *bnd);
int anser_socks5_reply_errno(uint8_t rep);
const char *anser_socks5_reply_str(uint8_t rep);

/* UDP request header (RSV RSV FRAG=0 ATYP ADDR PORT) for dst (or name,
 * as in anser_socks5_put_dest). */
ssize_t anser_socks5_udp_header(uint8_t *buf, size_t len, const struct sockaddr *dst,
				const char *name);
/* Parses the header of a datagram from the relay; returns its length (the
 * payload follows). Fragments (FRAG != 0) are refused with -EPROTO. A
 * truncated header is -EPROTO too: a datagram is never continued. */
int anser_socks5_udp_parse(const uint8_t *buf, size_t len, struct anser_socks5_addr *src);

#endif
