/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * outbound: turn (group, original destination) into a connected stream or
 * a datagram session. Non-blocking: each dial is a small state machine the
 * relay's epoll loop drives (dial -> handshake -> ready).
 *
 * Groups pick a node by policy and health (health.h).
 */
#ifndef ANSER_OUTBOUND_H
#define ANSER_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../config/config.h"
#include "stream.h"

/* The node's address: its literal IP, or its host resolved (blocking:
 * call where that is fine, when a generation is installed). */
int anser_node_resolve(const struct anser_node *n, struct sockaddr_storage *ss);

/*
 * A dial in progress. Usage: anser_dial_new(), register anser_dial_fd()
 * with epoll for anser_dial_events(), call anser_dial_step() whenever the
 * fd reports anything (and once right after new) until it returns 0
 * (ready) or an error other than -EAGAIN; then take the fds. The fd stays
 * the same for the whole dial, only the wanted events change. The caller
 * owns the deadline (dial timeout).
 */
enum anser_dial_cmd {
	ANSER_DIAL_CONNECT = 1, /* a stream to dst */
	ANSER_DIAL_UDP = 2,	/* SOCKS5 UDP ASSOCIATE (dst unused), trojan UDP (dst:
				   the first datagram's) */
};

struct anser_dial;

/* node NULL: direct connect to dst (CONNECT only). node_addr: the node's
 * resolved address and port. mark: SO_MARK of every socket the dial opens
 * (0: none). -errno if the first socket calls fail. */
int anser_dial_new(const struct anser_node *node, const struct sockaddr *node_addr,
		   const struct sockaddr *dst, enum anser_dial_cmd cmd, uint32_t mark,
		   struct anser_dial **out);
/* Through a node: ask it for name:port (dst's port) rather than dst's
 * address (dial_mode domain; a CONNECT, or a VMess/VLESS UDP stream);
 * NULL or "" for the address. Direct dials always connect to dst. Call
 * before the first anser_dial_step.
 * -EINVAL for a name longer than 255 bytes. */
int anser_dial_set_name(struct anser_dial *d, const char *name);
int anser_dial_fd(const struct anser_dial *d);
uint32_t anser_dial_events(const struct anser_dial *d);
/* 0: ready; -EAGAIN: wait for anser_dial_events(); other -errno: failed. */
int anser_dial_step(struct anser_dial *d);
/* Stage the dial is in or failed in: "connect", "greeting", "auth",
 * "request", "reply", "udp", "cipher", "tls", "ready". */
const char *anser_dial_stage(const struct anser_dial *d);
/* SOCKS5 REP of a refused request (0 if none). */
uint8_t anser_dial_socks_reply(const struct anser_dial *d);
/* Bytes that arrived right after the SOCKS5 reply: the start of the
 * remote's data, to be relayed before anything else. */
size_t anser_dial_leftover(const struct anser_dial *d, const uint8_t **data);
/* Why the TLS handshake failed ("certificate not trusted..."), or NULL. */
const char *anser_dial_tls_error(const struct anser_dial *d);
/* HTTP status of a refused CONNECT (0 if none). */
int anser_dial_http_status(const struct anser_dial *d);
/* The protocol stream of a ready dial (shadowsocks), which owns the fd;
 * NULL when the relay moves bytes on the fd itself (then take the fd). */
struct anser_stream *anser_dial_take_stream(struct anser_dial *d);
/* Move the stream (CONNECT) or control connection (UDP) out of d. */
int anser_dial_take_fd(struct anser_dial *d);
/* UDP: a datagram socket connected to the relay (BND.ADDR, or the node's
 * address when the server answers 0.0.0.0/::). */
int anser_dial_take_udp_fd(struct anser_dial *d);
void anser_dial_free(struct anser_dial *d);

#endif
