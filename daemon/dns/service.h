/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The DNS service: the dns section's `bind` listeners, and with upstreams
 * the takeover listeners the datapath sends the apps' DNS to, answer
 * queries on a thread of their own. A query is checked (message.h), answered from the
 * cache (cache.h) or routed (router.h) to an upstream; queries for one
 * name and type share one upstream query; answers are cached; when an
 * upstream does not answer (two tries, 2 s each) the asker gets a stale
 * answer if optimistic_cache allows one, else SERVFAIL -- never silence.
 * ipversion_prefer empties the other version's answers for names that
 * have the preferred one. The cache survives reloads.
 *
 * Every A and AAAA answered is handed to the routing (learn, below) before
 * the asker sees it, so domain() rules route the connection that follows.
 *
 * Upstreams: UDP, TCP, TLS and HTTPS (doh.c), each routed by the routing
 * section (hooks.via: direct, or through the proxy to a group's node).
 * `asis` sends an app's query taken over to the server the app sent it
 * to (hooks.orig_*).
 *
 * Upstreams given by name are resolved in the background (getaddrinfo_a)
 * when a setup is taken; their queries wait for it.
 *
 * Not yet: upstreams over HTTP/3 or QUIC.
 */
#ifndef ANSER_DNS_SERVICE_H
#define ANSER_DNS_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../config/config.h"

struct anser_dns_service;

/* Told, on the service's thread, every address of an answer before the
 * answer goes out: addr (v4 mapped) is name's for `seconds` (as long as
 * the answer may be served, stale ones included). For domain() rules. */
typedef void anser_dns_learn_fn(void *ud, const uint8_t addr[16], const char *name,
				uint32_t seconds);

/* What the service asks of the rest of anserd, on its thread (any may be
 * NULL). orig_udp: the server an app's datagram taken over was for, by
 * the id its mark carries; orig_tcp: the same for a connection accepted
 * from `peer` on the takeover listener at loopback `port`. 0 with *orig
 * set, or -errno. */
struct anser_dns_hooks {
	anser_dns_learn_fn *learn;
	int (*orig_udp)(void *ud, uint32_t mark, struct sockaddr_storage *orig);
	int (*orig_tcp)(void *ud, const struct sockaddr *peer, uint16_t port,
			struct sockaddr_storage *orig);
	/* The way of the service's own socket fd to upstream dst (udp or TCP;
	 * name: the host name it was given by, or NULL) by the routing rules:
	 * 0 direct; 1 through a proxy node, *to the address to connect fd to
	 * instead (called again before each UDP send); -errno, as -EACCES for
	 * a block rule, not at all. */
	int (*via)(void *ud, const struct sockaddr *dst, bool udp, const char *name, int fd,
		   struct sockaddr_storage *to);
	void *ud;
};

/* Listeners, upstreams and rules of cfg's dns section, applied at once
 * (the first call starts the thread, with its hooks, which may be NULL).
 * A config without `bind` stops the listeners. 0, or -errno with *why
 * (malloc'd): the running setup is kept. */
int anser_dns_service_apply(struct anser_dns_service **s, const struct anser_config *cfg,
			    const struct anser_dns_hooks *hooks, char **why);
/* With upstreams, the service also listens on 127.0.0.1 and ::1 (UDP and
 * TCP, ports of its choosing, kept over reloads) for the apps' DNS, which
 * the datapath steers there: those ports, 0 when it does not. */
void anser_dns_service_takeover_ports(const struct anser_dns_service *s, uint16_t *v4,
				      uint16_t *v6);
/* The DNS servers of the network the machine is on now (addresses, v4 or
 * v6; NULL-terminated, copied; NULL: none): `asis` sends there the
 * queries apps asked anserd itself (dns.bind, the virtual address). When
 * they change, the cache is emptied: answers of the old network's servers
 * may not hold on the new one. No-op on NULL s. */
void anser_dns_service_set_network(struct anser_dns_service *s, char *const *servers);
void anser_dns_service_free(struct anser_dns_service *s);

#endif
