/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between the files of the proxy module only. */
#ifndef ANSER_PROXY_INTERNAL_H
#define ANSER_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../outbound/health.h"
#include "proxy.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* A generation as the proxy uses it: the routing generation plus the
 * node addresses resolved when it was installed, so the data path never
 * calls getaddrinfo(). Sessions hold a reference for their lifetime. */
struct pgen {
	atomic_uint refs;
	struct anser_gen *gen;
	struct sockaddr_storage *node_addr; /* [cfg->n_nodes]; ss_family 0: unresolved */
	struct anser_health *health;	    /* node health and group choices */
};

struct pgen *pgen_ref(struct pgen *g);
void pgen_unref(struct pgen *g);

struct worker;
struct sess;
struct udp_sess;

/* What epoll_event.data.ptr points to. `s` is NULL for listeners; events
 * for a session killed earlier in the same batch are skipped. */
struct handler {
	void (*fn)(struct worker *w, struct handler *h, uint32_t events);
	struct sess *s;
};

/* A short timer (sniffing): the worker keeps armed ones in `due` order
 * and runs them at the millisecond, not at the second its deadline scan
 * keeps. fn NULL when not armed. */
struct wtimer {
	uint64_t due; /* CLOCK_MONOTONIC ms */
	struct wtimer *prev, *next;
	void (*fn)(struct worker *w, struct wtimer *t);
};

/* Arm (or re-arm) t for `due`; stop it (a no-op when not armed). */
void wtimer_start(struct worker *w, struct wtimer *t, uint64_t due,
		  void (*fn)(struct worker *w, struct wtimer *t));
void wtimer_stop(struct worker *w, struct wtimer *t);

struct sess {
	struct sess *reg_prev, *reg_next; /* p->sessions, under p->lock */
	struct sess *w_prev, *w_next;	  /* worker's list, worker thread only */
	struct sess *dead_next;
	bool dead;
	bool registered;
	const char *proto; /* "tcp" / "udp" */
	struct anser_flow flow;
	struct sockaddr_storage src; /* the app's endpoint */
	struct pgen *gen;	     /* NULL for direct */
	int node;		     /* index in gen's config, -1 direct */
	char node_name[64];	     /* for logs: the node's name or "direct" */
	char domain[254];	     /* sniffed and used, "" if none; under p->lock */
	uint64_t deadline;	     /* CLOCK_MONOTONIC ms */
	struct wtimer timer;	     /* stopped by sess_kill */
	_Atomic uint64_t bytes_up, bytes_down;
	/* Closes the session's fds (and undoes datapath entries). */
	void (*close)(struct worker *w, struct sess *s, bool reset);
	void (*on_timeout)(struct worker *w, struct sess *s);
};

#define UDP_BUCKETS 256

struct worker {
	struct anser_proxy *p;
	unsigned idx;
	pthread_t thread;
	bool thread_started;
	int epfd, evfd;
	struct handler ev_h, tcp_h[2], udp_h[4];
	/* [0], [1]: this worker's SO_REUSEPORT member, v4 and v6; [2], [3]:
	 * gateway mode's LAN listeners (worker 0 only, else -1) */
	int udp_fd[4];
	int raw_fd[2]; /* lanreply.c, v4 and v6; -1 until needed */
	struct sess *sessions;
	struct sess *dead;
	struct wtimer *due_head, *due_tail; /* armed short timers, soonest first */
	struct qsniff *qs_table[64];	    /* udp-sniff.c, by flow id */
	size_t n_qs;
	struct udp_sess *udp_table[UDP_BUCKETS]; /* see udp.c */
	uint8_t *udp_buf;			 /* one datagram plus header room */
	uint8_t *udp_seal_buf;			 /* a datagram sealed for a node */
};

struct anser_proxy {
	struct anser_datapath *dp;
	struct anser_proxy_opts opts;
	struct anser_proxy_hooks hooks;
	int tcp_fd[2]; /* 127.0.0.1, ::1 */
	uint16_t tcp_port[2], udp_port[2];
	struct worker *workers;
	unsigned n_workers;
	bool started;

	pthread_mutex_t lock; /* slots and sessions */
	struct pgen *slots[ANSER_GENS];
	struct sess *sessions;
};

uint64_t now_ms(void);
struct pgen *proxy_gen_get(struct anser_proxy *p, unsigned slot);
socklen_t sa_len(const struct sockaddr_storage *ss);

/* Worker-owned session list and the shared registry that listings read. */
/* Fill what every session has; takes the reference on gen. */
void sess_init(struct sess *s, const char *proto, const struct anser_flow *flow,
	       const struct sockaddr_storage *src, struct pgen *gen, int node,
	       void (*close_fn)(struct worker *, struct sess *, bool),
	       void (*on_timeout)(struct worker *, struct sess *));
void sess_attach(struct worker *w, struct sess *s);
/* Route a session after the fact (once sniffing is done): gen (its
 * reference is taken), node, and the flow's rule and outbound, which
 * listings read. */
void sess_set_route(struct worker *w, struct sess *s, struct pgen *gen, int node,
		    const struct anser_flow *flow);

/* The name a session's flow was sniffed to be for (listings show it). */
void sess_set_domain(struct worker *w, struct sess *s, const char *name);
/* Unregisters, closes fds, defers the free to the end of the epoll batch
 * (later events of the batch may still point at the session). */
void sess_kill(struct worker *w, struct sess *s, bool reset);

int epoll_set(struct worker *w, int fd, struct handler *h, uint32_t *cur, uint32_t want);

/* Picks the node for flow f: 0 with *gen (ref) and *node set, -1/NULL
 * for direct; -errno (logged) when the flow cannot be served. */
int proxy_route(struct anser_proxy *p, const struct anser_flow *f, struct pgen **gen, int *node);
/* dial_mode domain++: decide f again as a flow to `name`; true (f's rule
 * and outbound changed) or false (the kernel's decision stands). */
bool proxy_reroute(struct anser_proxy *p, struct anser_flow *f, const char *name);
/* How long a flow f of cfg's waits for its first bytes to name its
 * server (0: it does not sniff): never under dial_mode ip, and under
 * domain only when DNS named f's address (no other name could be used). */
uint64_t proxy_sniff_ms(struct anser_proxy *p, const struct anser_config *cfg,
			const struct anser_flow *f);
/* Whether a sniffed name may be used under `mode`: domain takes only
 * what DNS said of daddr (an app may name one server and connect to
 * another); domain+ and domain++ take it as it is. */
bool proxy_name_usable(struct anser_proxy *p, enum anser_dial_mode mode, const uint8_t daddr[16],
		       const char *name);
/* The mark the rule that decided f asks for (0: none). */
uint32_t proxy_mark(const struct pgen *gen, const struct anser_flow *f);

/* IP_TRANSPARENT / IPV6_TRANSPARENT on fd: 0 or -errno. */
int proxy_set_transparent(int fd, int family);

/* Gateway mode: the flow of a LAN client's (src) connection or datagram
 * to dst (the hook, else the datapath). */
int proxy_lan_lookup(struct anser_proxy *p, int proto, const struct sockaddr *src,
		     const struct sockaddr *dst, struct anser_flow *f);

/* lanreply.c: gateway mode's UDP reply to a LAN client `to`, from the
 * remote `from` (same family). 0 or -errno. */
int lan_reply(struct worker *w, const struct sockaddr_storage *from,
	      const struct sockaddr_storage *to, const uint8_t *data, size_t len);
void lan_reply_fini(struct worker *w);

void tcp_on_accept(struct worker *w, struct handler *h, uint32_t events);
void udp_on_listener(struct worker *w, struct handler *h, uint32_t events);
int udp_worker_init(struct worker *w);
void udp_worker_fini(struct worker *w);
/* A datagram of flow f from the app at `app` on listener fam, sent on its
 * way (the flow's session is made if it has none). */
void udp_forward(struct worker *w, int fam, const struct sockaddr_storage *app,
		 const struct anser_flow *f, const char *name, const uint8_t *data, size_t len);

/* udp-sniff.c: the dial modes for QUIC. A flow whose first datagram is a
 * QUIC Initial is held (a few datagrams, at most sniffing_timeout) until
 * its ClientHello names the server; then, as dial_mode says, the node is
 * asked for the name (*name) and, under domain++, the flow is routed
 * again by it; every datagram of the flow follows. true: the datagram was
 * taken (held, or sent with the rest); false: send it on with *f (maybe
 * re-routed) and *name (NULL: the address). */
bool udp_sniff(struct worker *w, int fam, const struct sockaddr_storage *app, uint32_t id,
	       struct anser_flow *f, const char **name, const uint8_t *data, size_t len);
/* Drops routes no datagram used for the UDP idle timeout (from the
 * worker's 1 s scan). */
void udp_sniff_sweep(struct worker *w, uint64_t now);
void udp_sniff_fini(struct worker *w);

#endif
