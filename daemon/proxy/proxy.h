/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy: the transparent listeners on loopback that the BPF hooks steer
 * proxied flows to, and the relay engine (worker threads, one epoll loop
 * each) that carries them through an outbound.
 *
 * TCP: accept on 127.0.0.1/::1 -> anser_datapath_tcp_lookup(peer) -> the
 * original destination and outbound id -> dial via outbound -> relay with
 * half-close and idle timeout.
 * Gateway mode: a LAN client's proxied flow reaches the same TCP listener
 * (then its local address is the destination) or a UDP listener of its own
 * (IP_ORIGDSTADDR), and anser_datapath_lan_lookup() gives its flow; UDP
 * replies are sent from the remote's address on a raw socket (lanreply.c).
 * UDP: recvmsg on the UDP listeners with SO_RCVMARK; the mark is the flow id
 * -> anser_datapath_udp_lookup(id). One NAT session per app source; replies
 * are sent from a per-remote loopback socket registered with
 * anser_datapath_udp_rev_add() (or from the listener itself for sockets that
 * were connect()ed: the kernel then rewrites from the socket's storage).
 */
#ifndef ANSER_PROXY_H
#define ANSER_PROXY_H

#include <stdint.h>

#include "../datapath/datapath.h"
#include "../routing/routing.h"
#include "../util/conninfo.h"

struct anser_proxy;

struct anser_proxy_opts {
	unsigned workers;	   /* 0: one per online CPU */
	unsigned tcp_idle_timeout; /* seconds, default 300 */
	unsigned udp_idle_timeout; /* seconds, default 60 */
	unsigned dial_timeout;	   /* seconds, default 10 */
	/* gateway mode: the TCP listeners are IP_TRANSPARENT (a LAN client's
	 * connection keeps its destination as its local address) and worker
	 * 0 has UDP listeners for LAN flows (anser_proxy_lan_socks) */
	bool gateway;
};

/* Opens the listeners (ports chosen by the kernel). dp may be NULL in unit
 * tests that only use the outbounds. */
int anser_proxy_new(struct anser_datapath *dp, const struct anser_proxy_opts *opts,
		    struct anser_proxy **out);
/* How anserd's own connection to dst (udp or TCP; name: the host name it
 * was given by, or NULL) goes by the active routing rules, as a flow of
 * no process: 0 direct, 1 through a group (f is the flow to file for the
 * proxy to find), -EACCES blocked. Thread-safe (the DNS service routes
 * its upstreams with it). */
int anser_proxy_route_own(struct anser_proxy *p, const struct sockaddr *dst, bool udp,
			  const char *name, struct anser_flow *f);
void anser_proxy_ports(struct anser_proxy *p, uint16_t *tcp4, uint16_t *tcp6, uint16_t *udp4,
		       uint16_t *udp6);
/* Gateway mode's UDP listeners (-1: none). */
void anser_proxy_lan_socks(struct anser_proxy *p, int *udp4, int *udp6);
int anser_proxy_start(struct anser_proxy *p);
/* Install gen for its slot with the health its groups pick nodes by
 * (takes a reference on both; drops the previous ones of that slot when
 * no flow uses them any more). Thread-safe. */
struct anser_health;
void anser_proxy_set_gen(struct anser_proxy *p, struct anser_gen *gen, struct anser_health *health);
/* Appends an entry for every session (its flow, outbound, node and byte
 * counts) to l: a snapshot, safe from any thread. */
void anser_proxy_list_sessions(struct anser_proxy *p, struct anser_conn_list *l);
/* Stops the workers, closes every socket. */
void anser_proxy_free(struct anser_proxy *p);

/* Stand-ins for the datapath calls, for tests that run without BPF (dp
 * NULL): the listeners then learn flows from these. Any member may be NULL.
 * Call before anser_proxy_start(). */
struct anser_proxy_hooks {
	int (*tcp_lookup)(void *userdata, const struct sockaddr *peer, struct anser_flow *out);
	int (*udp_lookup)(void *userdata, uint32_t id, struct anser_flow *out);
	int (*udp_rev_add)(void *userdata, const struct sockaddr *reply_local,
			   const struct sockaddr *remote);
	int (*udp_rev_del)(void *userdata, const struct sockaddr *reply_local);
	/* gateway mode: anser_datapath_lan_lookup */
	int (*lan_lookup)(void *userdata, int proto, const struct sockaddr *src,
			  const struct sockaddr *dst, struct anser_flow *out);
	void *userdata;
};
void anser_proxy_set_hooks(struct anser_proxy *p, const struct anser_proxy_hooks *hooks);
/* Number of live sessions (TCP and UDP); for tests and status. */
unsigned anser_proxy_n_sessions(struct anser_proxy *p);

#endif
