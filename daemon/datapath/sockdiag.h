/* SPDX-License-Identifier: GPL-2.0-or-later */
/* NETLINK_SOCK_DIAG dump of this network namespace's TCP and UDP sockets. */
#ifndef ANSER_SOCKDIAG_H
#define ANSER_SOCKDIAG_H

#include <stdint.h>
#include <sys/socket.h>

struct anser_diag_sock {
	uint64_t cookie;
	uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP */
	uint8_t state;
	struct sockaddr_storage src, dst;
	uint64_t bytes_sent, bytes_received; /* TCP only (tcp_info) */
	const void *storage; /* the socket's value in the requested sk_storage map */
	size_t storage_len;
};

/* Dumps TCP and UDP, IPv4 and IPv6. With storage_map_fd >= 0 only sockets
 * that have a value in that BPF sk_storage map are reported, with it. */
int anser_sockdiag_dump(int storage_map_fd, void (*cb)(const struct anser_diag_sock *s, void *ud),
			void *ud);

/* Cookie of the TCP socket with this local and remote address (one exact
 * sock_diag lookup), -ENOENT if there is none. */
int anser_sockdiag_tcp_cookie(const struct sockaddr *local, const struct sockaddr *remote,
			      uint64_t *cookie);

#endif
