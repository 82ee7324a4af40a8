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
};

/* Dumps TCP and UDP, IPv4 and IPv6 sockets of this network namespace;
 * skip_cgroup != 0: not those of that cgroup (the kernel filters). */
int anser_sockdiag_dump(uint64_t skip_cgroup, void (*cb)(const struct anser_diag_sock *s, void *ud),
			void *ud);

/* Cookie of the TCP socket with this local and remote address (one exact
 * sock_diag lookup), -ENOENT if there is none. */
int anser_sockdiag_tcp_cookie(const struct sockaddr *local, const struct sockaddr *remote,
			      uint64_t *cookie);

#endif
