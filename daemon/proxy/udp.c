// SPDX-License-Identifier: GPL-2.0-or-later
/* UDP: full-cone NAT sessions keyed by (app source, generation, outbound).
 * Each datagram's destination comes from its mark, so one app socket can
 * talk to many remotes through one session: one SOCKS5 UDP ASSOCIATE, or
 * one socket to a shadowsocks node (each datagram carries its address). */
#include "proxy-internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../outbound/outbound.h"
#include "../outbound/shadowsocks.h"
#include "../outbound/socks5.h"
#include "../outbound/trojan.h"
#include "../outbound/vmess.h"
#include "../util/log.h"

#define UDP_MAX		65535
#define UDP_BATCH	64
#define MAX_DESTS	64
#define MAX_REPLY_SOCKS 64
#define MAX_PENDING	32

/* An address reduced to bytes that compare equal across families:
 * IPv4-mapped IPv6 address + port. */
struct ep {
	uint8_t addr[16];
	uint16_t port; /* BE */
};

struct dest {
	struct ep ep;
	bool connected; /* the app connect()ed to it: reply from the listener */
	/* dial_mode domain: the node is asked for name:port, not the
	 * address (malloc'd; NULL: the address). Its replies come from
	 * wherever the node resolved the name to, and are the app's from ep. */
	char *name;
};

struct reply_sock {
	struct ep remote;
	int fd;
	struct sockaddr_storage local;
};

struct pending {
	struct sockaddr_storage dst;
	size_t len;
	uint8_t data[];
};

enum udp_kind {
	UDP_DIRECT,
	UDP_SOCKS5,
	UDP_SS,
	UDP_STREAM,  /* trojan: datagrams framed in one TLS stream per session */
	UDP_PERDEST, /* VMess, VLESS: a UDP stream per destination */
};

#define MAX_VSTREAMS 16

/* UDP_PERDEST: the stream to one destination. Kept until the session ends
 * (events of the same epoll batch may still point at it). */
struct vstream {
	struct udp_sess *u;
	struct ep remote;
	struct anser_dial *dial; /* while connecting */
	struct anser_stream *st;
	int fd;
	bool dead;
	struct handler h;
	uint32_t ev;
	struct pending *queue[8];
	size_t nq;
};

struct udp_sess {
	struct sess s;
	struct udp_sess *hnext;
	int fam; /* 0: 127.0.0.1 listener, 1: ::1 */
	enum udp_kind kind;
	struct anser_ss_key ss;	 /* UDP_SS */
	uint8_t *seal_buf;	 /* UDP_SS, UDP_STREAM: the worker's buffer for one datagram */
	struct anser_stream *st; /* UDP_STREAM, once ready (owns ctl_fd) */
	uint8_t *pend;		 /* UDP_STREAM: the rest of a frame the stream did not take */
	size_t pend_off, pend_len;
	uint8_t *in; /* UDP_STREAM: frames read, not yet whole */
	size_t in_len;
	struct anser_dial *dial;
	int out_fd; /* direct: unconnected dual-stack socket; SOCKS5: connected to the relay;
		       shadowsocks: connected to the node */
	int ctl_fd; /* SOCKS5 control connection; its end is the session's end */
	struct handler out_h, ctl_h;
	uint32_t out_ev, ctl_ev;
	struct dest dests[MAX_DESTS];
	size_t n_dests, next_dest;
	struct reply_sock replies[MAX_REPLY_SOCKS];
	size_t n_replies;
	struct pending *queue[MAX_PENDING];
	size_t n_queue;
	struct vstream *vs[MAX_VSTREAMS]; /* UDP_PERDEST */
	size_t n_vs;
};

static void ep_from(const struct sockaddr_storage *ss, struct ep *e)
{
	memset(e, 0, sizeof(*e));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		e->addr[10] = e->addr[11] = 0xff;
		memcpy(e->addr + 12, &s->sin_addr, 4);
		e->port = s->sin_port;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		memcpy(e->addr, &s->sin6_addr, 16);
		e->port = s->sin6_port;
	}
}

static bool ep_is_v4(const struct ep *e)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(e->addr, prefix, 12) == 0;
}

/* e as an address of family `family` (-EAFNOSUPPORT if it has none). */
static int ep_to(const struct ep *e, int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		if (!ep_is_v4(e))
			return -EAFNOSUPPORT;
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, e->addr + 12, 4);
		s->sin_port = e->port;
		return 0;
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	memcpy(&s->sin6_addr, e->addr, 16);
	s->sin6_port = e->port;
	return 0;
}

static unsigned bucket(const struct ep *app, uint8_t gen, uint16_t outbound)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	const uint8_t *b = (const uint8_t *)app;
	for (size_t i = 0; i < sizeof(*app); i++)
		h = (h ^ b[i]) * 16777619u;
	h = (h ^ gen) * 16777619u;
	h = (h ^ outbound) * 16777619u;
	return h % UDP_BUCKETS;
}

static struct udp_sess **udp_slot(struct worker *w, const struct sockaddr_storage *app, int fam,
				  uint8_t gen, uint16_t outbound)
{
	struct ep e;
	ep_from(app, &e);
	struct udp_sess **pp = &w->udp_table[bucket(&e, gen, outbound)];
	for (; *pp; pp = &(*pp)->hnext) {
		struct ep o;
		ep_from(&(*pp)->s.src, &o);
		if ((*pp)->fam == fam && (*pp)->s.flow.gen == gen &&
		    (*pp)->s.flow.outbound == outbound && memcmp(&o, &e, sizeof(e)) == 0)
			break;
	}
	return pp;
}

static int rev_add(struct anser_proxy *p, const struct sockaddr_storage *local,
		   const struct sockaddr_storage *remote)
{
	if (p->hooks.udp_rev_add)
		return p->hooks.udp_rev_add(p->hooks.userdata, (const struct sockaddr *)local,
					    (const struct sockaddr *)remote);
	if (p->dp)
		return anser_datapath_udp_rev_add(p->dp, (const struct sockaddr *)local,
						  (const struct sockaddr *)remote);
	return 0;
}

static void rev_del(struct anser_proxy *p, const struct sockaddr_storage *local)
{
	int r = 0;
	if (p->hooks.udp_rev_del)
		r = p->hooks.udp_rev_del(p->hooks.userdata, (const struct sockaddr *)local);
	else if (p->dp)
		r = anser_datapath_udp_rev_del(p->dp, (const struct sockaddr *)local);
	if (r < 0)
		log_debug_errno(r, "Failed to remove a UDP reply mapping, ignoring: %m");
}

/* Keeps a copy of a datagram in queue (of cap entries) while its way out
 * is being set up; beyond cap it is dropped. */
static void hold(struct pending **queue, size_t *n, size_t cap, const struct sockaddr_storage *dst,
		 const uint8_t *data, size_t len)
{
	if (*n == cap)
		return;
	struct pending *q = malloc(sizeof(*q) + len);
	if (!q)
		return;
	q->dst = *dst;
	q->len = len;
	memcpy(q->data, data, len);
	queue[(*n)++] = q;
}

static void vs_close(struct vstream *v)
{
	v->dead = true;
	if (v->dial)
		anser_dial_free(v->dial); /* closes fd */
	else if (v->st)
		anser_stream_free(v->st); /* closes fd */
	v->dial = NULL;
	v->st = NULL;
	v->fd = -1;
	for (size_t i = 0; i < v->nq; i++)
		free(v->queue[i]);
	v->nq = 0;
}

static void udp_close(struct worker *w, struct sess *s, bool reset)
{
	struct udp_sess *u = container_of(s, struct udp_sess, s);

	struct udp_sess **pp = udp_slot(w, &s->src, u->fam, s->flow.gen, s->flow.outbound);
	if (*pp == u)
		*pp = u->hnext;
	if (u->dial)
		u->ctl_fd = -1; /* the dial's own fd, closed with it */
	anser_dial_free(u->dial);
	u->dial = NULL;
	if (u->st) {
		anser_stream_free(u->st); /* closes ctl_fd */
		u->st = NULL;
		u->ctl_fd = -1;
	}
	free(u->pend);
	free(u->in);
	u->pend = u->in = NULL;
	for (size_t i = 0; i < u->n_vs; i++) {
		vs_close(u->vs[i]);
		free(u->vs[i]);
	}
	u->n_vs = 0;
	if (u->out_fd >= 0)
		close(u->out_fd);
	if (u->ctl_fd >= 0)
		close(u->ctl_fd);
	u->out_fd = u->ctl_fd = -1;
	for (size_t i = 0; i < u->n_replies; i++) {
		rev_del(w->p, &u->replies[i].local);
		close(u->replies[i].fd);
	}
	u->n_replies = 0;
	for (size_t i = 0; i < u->n_queue; i++)
		free(u->queue[i]);
	u->n_queue = 0;
	for (size_t i = 0; i < u->n_dests; i++) {
		free(u->dests[i].name);
		u->dests[i].name = NULL;
	}
	explicit_bzero(&u->ss, sizeof(u->ss));
}

static void udp_timeout(struct worker *w, struct sess *s)
{
	struct udp_sess *u = container_of(s, struct udp_sess, s);
	char src[64];
	if (u->dial)
		log_warning("UDP session of %s (%s) via %s: dial timed out in stage %s",
			    anser_sockaddr_str(&s->src, src, sizeof(src)), s->flow.pname,
			    u->s.node_name, anser_dial_stage(u->dial));
	sess_kill(w, s, false);
}

static void touch(struct worker *w, struct udp_sess *u)
{
	u->s.deadline = now_ms() + (uint64_t)w->p->opts.udp_idle_timeout * 1000;
}

/* The destination dst of u, noted (name: what the node is asked for). */
static struct dest *note_dest(struct udp_sess *u, const struct sockaddr_storage *dst,
			      bool connected, const char *name)
{
	struct ep e;
	struct dest *d = NULL;
	ep_from(dst, &e);
	for (size_t i = 0; i < u->n_dests && !d; i++)
		if (memcmp(&u->dests[i].ep, &e, sizeof(e)) == 0)
			d = &u->dests[i];
	if (!d) {
		/* Beyond MAX_DESTS the oldest entry is recycled. */
		size_t i = u->n_dests < MAX_DESTS ? u->n_dests++ : u->next_dest++ % MAX_DESTS;
		d = &u->dests[i];
		free(d->name);
		d->name = NULL;
		d->ep = e;
	}
	d->connected = connected;
	if (name && (!d->name || strcmp(d->name, name) != 0)) {
		free(d->name);
		d->name = strdup(name);
	}
	return d;
}

/* A reply's source as the app must see it: an address the app sent to,
 * or -- for a reply to a name the node was asked for, which comes from
 * the address the node found (or names it) -- the address the app sent
 * that name's datagrams to, told by the port when one such destination
 * has it. NULL when the reply is for none of the app's destinations. */
static const struct dest *reply_dest(const struct udp_sess *u, const struct sockaddr_storage *from,
				     const char *from_name)
{
	struct ep e;
	const struct dest *by_port = NULL;
	int n_port = 0;

	ep_from(from, &e);
	for (size_t i = 0; i < u->n_dests; i++) {
		const struct dest *d = &u->dests[i];
		if (from->ss_family && memcmp(&d->ep, &e, sizeof(e)) == 0)
			return d;
		if (d->name && from_name && strcasecmp(d->name, from_name) == 0)
			return d;
		if (d->name && d->ep.port == e.port && n_port++ == 0)
			by_port = d;
	}
	return n_port == 1 ? by_port : NULL;
}

/* One datagram framed into the session's stream; a frame the stream
 * takes only in part is finished before any other (datagrams that come
 * meanwhile are dropped, as a full socket buffer would). */
static void stream_send(struct udp_sess *u, const struct sockaddr_storage *dst, const char *name,
			const uint8_t *data, size_t len)
{
	if (u->pend_len > 0) {
		log_debug("UDP via %s: the stream is busy, dropping a datagram", u->s.node_name);
		return;
	}
	ssize_t n = anser_trojan_udp_frame(u->seal_buf, UDP_MAX, (const struct sockaddr *)dst, name,
					   data, len);
	if (n < 0)
		return;
	size_t off = 0;
	while (off < (size_t)n) {
		ssize_t r = anser_stream_write(u->st, u->seal_buf + off, (size_t)n - off);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			log_debug_errno((int)r, "UDP via %s: stream write failed: %m",
					u->s.node_name);
			return;
		}
		off += (size_t)r;
	}
	if (off < (size_t)n) {
		u->pend = malloc((size_t)n - off);
		if (!u->pend)
			return;
		memcpy(u->pend, u->seal_buf + off, (size_t)n - off);
		u->pend_off = 0;
		u->pend_len = (size_t)n - off;
	}
	(void)anser_stream_flush(u->st);
	atomic_fetch_add_explicit(&u->s.bytes_up, len, memory_order_relaxed);
}

static void send_out(struct udp_sess *u, const struct sockaddr_storage *dst, const char *name,
		     const uint8_t *data, size_t len)
{
	ssize_t n;

	if (u->kind == UDP_DIRECT) {
		/* Direct: the out socket is AF_INET6 dual-stack. */
		struct ep e;
		struct sockaddr_storage to;
		ep_from(dst, &e);
		ep_to(&e, AF_INET6, &to);
		n = sendto(u->out_fd, data, len, 0, (struct sockaddr *)&to, sa_len(&to));
	} else if (u->kind == UDP_STREAM) {
		stream_send(u, dst, name, data, len);
		return;
	} else if (u->kind == UDP_SS) {
		ssize_t sl = anser_ss_udp_seal(&u->ss, (const struct sockaddr *)dst, name, data,
					       len, u->seal_buf, UDP_MAX);
		if (sl < 0) {
			log_debug_errno((int)sl, "UDP datagram of %s too big for %s, dropping: %m",
					u->s.flow.pname, u->s.node_name);
			return;
		}
		n = send(u->out_fd, u->seal_buf, (size_t)sl, 0);
	} else {
		uint8_t hdr[SOCKS5_UDP_HDR_MAX];
		ssize_t hl = anser_socks5_udp_header(hdr, sizeof(hdr), (const struct sockaddr *)dst,
						     name);
		if (hl < 0)
			return;
		struct iovec iov[2] = { { hdr, (size_t)hl }, { (void *)data, len } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		n = sendmsg(u->out_fd, &mh, 0);
	}
	if (n < 0)
		log_debug_errno(errno, "UDP send of %s via %s failed, dropping: %m",
				u->s.flow.pname, u->s.node_name);
	else
		atomic_fetch_add_explicit(&u->s.bytes_up, len, memory_order_relaxed);
}

static int reply_sock(struct worker *w, struct udp_sess *u, const struct ep *remote)
{
	for (size_t i = 0; i < u->n_replies; i++)
		if (memcmp(&u->replies[i].remote, remote, sizeof(*remote)) == 0)
			return u->replies[i].fd;
	if (u->n_replies == MAX_REPLY_SOCKS)
		return -ENOSPC;

	int family = u->fam ? AF_INET6 : AF_INET;
	struct sockaddr_storage rem;
	int r = ep_to(remote, family, &rem);
	if (r < 0)
		return r;

	struct reply_sock *rs = &u->replies[u->n_replies];
	memset(&rs->local, 0, sizeof(rs->local));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&rs->local;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&rs->local;
		s->sin6_family = AF_INET6;
		s->sin6_addr = in6addr_loopback;
	}
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	socklen_t sl = sizeof(rs->local);
	if (bind(fd, (struct sockaddr *)&rs->local, sa_len(&rs->local)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&rs->local, &sl) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* The mapping must exist before the first reply reaches the app. */
	r = rev_add(w->p, &rs->local, &rem);
	if (r < 0) {
		close(fd);
		return r;
	}
	rs->remote = *remote;
	rs->fd = fd;
	u->n_replies++;
	return fd;
}

/* from_name: the reply's source when the node gave it as a name */
static void deliver(struct worker *w, struct udp_sess *u, const struct sockaddr_storage *from,
		    const char *from_name, const uint8_t *data, size_t len)
{
	struct ep e;
	bool connected = false;
	int fd;

	const struct dest *d = reply_dest(u, from, from_name);
	if (d) {
		e = d->ep;
		connected = d->connected;
	} else if (from->ss_family) {
		ep_from(from, &e); /* full cone: any remote's reply reaches the app */
	} else {
		log_debug("UDP reply for %s named %s, which it never sent to, dropping",
			  u->s.flow.pname, from_name ? from_name : "?");
		return;
	}
	if (u->s.flow.flags & ANSER_FLOW_F_LAN) {
		/* a LAN client hears the remote from the remote's own address */
		struct sockaddr_storage rem;
		int r = ep_to(&e, u->fam ? AF_INET6 : AF_INET, &rem);
		if (r >= 0)
			r = lan_reply(w, &rem, &u->s.src, data, len);
		if (r < 0)
			log_debug_errno(r, "UDP reply to %s failed, dropping: %m", u->s.flow.pname);
		else
			atomic_fetch_add_explicit(&u->s.bytes_down, len, memory_order_relaxed);
		touch(w, u);
		return;
	}
	if (connected) {
		fd = w->udp_fd[u->fam];
	} else {
		fd = reply_sock(w, u, &e);
		if (fd < 0) {
			log_debug_errno(fd, "No reply socket for a UDP session of %s, dropping: %m",
					u->s.flow.pname);
			return;
		}
	}
	if (sendto(fd, data, len, 0, (const struct sockaddr *)&u->s.src, sa_len(&u->s.src)) < 0)
		log_debug_errno(errno, "UDP reply to %s failed, dropping: %m", u->s.flow.pname);
	else
		atomic_fetch_add_explicit(&u->s.bytes_down, len, memory_order_relaxed);
	touch(w, u);
}

static void udp_on_out(struct worker *w, struct handler *h, uint32_t events)
{
	struct udp_sess *u = container_of(h, struct udp_sess, out_h);
	uint8_t *buf = w->udp_buf;

	for (int i = 0; i < UDP_BATCH && !u->s.dead; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(u->out_fd, buf, UDP_MAX, 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			/* ICMP errors (ECONNREFUSED...) are per datagram: keep going. */
			if (errno == EAGAIN)
				return;
			continue;
		}
		if (u->kind == UDP_DIRECT) {
			deliver(w, u, &from, NULL, buf, (size_t)n);
			continue;
		}
		struct anser_socks5_addr src;
		if (u->kind == UDP_SS) {
			uint8_t *payload;
			ssize_t pl = anser_ss_udp_open(&u->ss, buf, (size_t)n, &payload, &src);
			if (pl < 0 || src.atyp == SOCKS5_ATYP_DOMAIN) {
				log_debug("Dropping a datagram from shadowsocks node %s that does "
					  "not open",
					  u->s.node_name);
				continue;
			}
			deliver(w, u, &src.sa, src.atyp == SOCKS5_ATYP_DOMAIN ? src.domain : NULL,
				payload, (size_t)pl);
			continue;
		}
		int hl = anser_socks5_udp_parse(buf, (size_t)n, &src);
		if (hl < 0 || src.atyp == SOCKS5_ATYP_DOMAIN) {
			log_debug("Dropping a malformed datagram from SOCKS5 node %s",
				  u->s.node_name);
			continue;
		}
		deliver(w, u, &src.sa, src.atyp == SOCKS5_ATYP_DOMAIN ? src.domain : NULL, buf + hl,
			(size_t)n - (size_t)hl);
	}
}

static void udp_on_ctl(struct worker *w, struct handler *h, uint32_t events);

/* ---- VMess and VLESS: a stream per destination ---- */

static void vs_write(struct udp_sess *u, struct vstream *v, const uint8_t *data, size_t len)
{
	bool vmess = u->s.gen->gen->cfg->nodes[u->s.node].proto == ANSER_NODE_VMESS;
	if (len > (vmess ? VMESS_MAX_DATAGRAM : 65535)) {
		log_debug("UDP via %s: a %zu-byte datagram is too big for the node, dropping",
			  u->s.node_name, len);
		return;
	}
	ssize_t r = anser_stream_write(v->st, data, len);
	if (r == (ssize_t)len)
		atomic_fetch_add_explicit(&u->s.bytes_up, len, memory_order_relaxed);
	else
		log_debug("UDP via %s: the stream is busy, dropping a datagram", u->s.node_name);
}

static void vs_watch(struct worker *w, struct vstream *v)
{
	uint32_t ev = v->dial ? anser_dial_events(v->dial)
			      : EPOLLIN | (anser_stream_pending(v->st) ? EPOLLOUT : 0);
	if (epoll_set(w, v->fd, &v->h, &v->ev, ev) < 0)
		vs_close(v);
}

static void vs_on_event(struct worker *w, struct handler *h, uint32_t events)
{
	struct vstream *v = container_of(h, struct vstream, h);
	struct udp_sess *u = v->u;
	if (v->dead)
		return;
	if (v->dial) {
		int r = anser_dial_step(v->dial);
		if (r == -EAGAIN) {
			vs_watch(w, v);
			return;
		}
		if (r < 0) {
			log_warning_errno(r, "UDP of %s via node %s: %s failed: %m",
					  u->s.flow.pname, u->s.node_name,
					  anser_dial_stage(v->dial));
			vs_close(v);
			return;
		}
		v->st = anser_dial_take_stream(v->dial);
		anser_dial_free(v->dial);
		v->dial = NULL;
		if (!v->st) {
			vs_close(v);
			return;
		}
		for (size_t i = 0; i < v->nq; i++) {
			vs_write(u, v, v->queue[i]->data, v->queue[i]->len);
			free(v->queue[i]);
		}
		v->nq = 0;
	}
	int f = anser_stream_flush(v->st);
	if (f < 0 && f != -EAGAIN) {
		vs_close(v);
		return;
	}
	struct sockaddr_storage from;
	ep_to(&v->remote, AF_INET6, &from);
	for (int i = 0; i < UDP_BATCH && !u->s.dead; i++) {
		ssize_t n = anser_stream_read(v->st, w->udp_buf, UDP_MAX);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			log_debug("UDP stream of %s via %s ended", u->s.flow.pname, u->s.node_name);
			vs_close(v);
			return;
		}
		/* (said at debug: a lost reply then tells "never came back"
		 * from "handed to the app") */
		log_debug("UDP reply of %zd bytes for %s from its stream via %s", n,
			  u->s.flow.pname, u->s.node_name);
		deliver(w, u, &from, NULL, w->udp_buf, (size_t)n);
	}
	if (!u->s.dead && !v->dead)
		vs_watch(w, v);
}

static void vmess_send(struct worker *w, struct udp_sess *u, const struct sockaddr_storage *dst,
		       const char *name, const uint8_t *data, size_t len)
{
	struct ep e;
	struct vstream *v = NULL;
	ep_from(dst, &e);
	for (size_t i = 0; i < u->n_vs && !v; i++)
		if (!u->vs[i]->dead && memcmp(&u->vs[i]->remote, &e, sizeof(e)) == 0)
			v = u->vs[i];
	if (!v) {
		if (u->n_vs == MAX_VSTREAMS) {
			log_debug("UDP of %s via %s: too many destinations, dropping",
				  u->s.flow.pname, u->s.node_name);
			return;
		}
		v = calloc(1, sizeof(*v));
		if (!v)
			return;
		u->vs[u->n_vs++] = v;
		v->u = u;
		v->remote = e;
		v->fd = -1;
		v->h = (struct handler){ .fn = vs_on_event, .s = &u->s };
		struct pgen *g = u->s.gen;
		int r = anser_dial_new(&g->gen->cfg->nodes[u->s.node],
				       (struct sockaddr *)&g->node_addr[u->s.node],
				       (const struct sockaddr *)dst, ANSER_DIAL_UDP,
				       proxy_mark(g, &u->s.flow), &v->dial);
		if (r == 0 && name)
			r = anser_dial_set_name(v->dial, name);
		if (r < 0) {
			log_warning_errno(r, "UDP of %s via %s: dial failed: %m", u->s.flow.pname,
					  u->s.node_name);
			v->dead = true;
			return;
		}
		v->fd = anser_dial_fd(v->dial);
		vs_watch(w, v);
		if (v->dead)
			return;
	}
	if (v->dial) {
		hold(v->queue, &v->nq, sizeof(v->queue) / sizeof(v->queue[0]), dst, data, len);
		return;
	}
	vs_write(u, v, data, len);
	vs_watch(w, v);
}

static void stream_watch(struct worker *w, struct udp_sess *u)
{
	uint32_t ev = EPOLLIN;
	if (u->pend_len > 0 || anser_stream_pending(u->st))
		ev |= EPOLLOUT;
	if (epoll_set(w, u->ctl_fd, &u->ctl_h, &u->ctl_ev, ev) < 0)
		sess_kill(w, &u->s, false);
}

/* A stream session's socket is ready: finish a pending frame, then read
 * and deliver every whole frame. */
static void stream_io(struct worker *w, struct udp_sess *u)
{
	while (u->pend_len > 0) {
		ssize_t r = anser_stream_write(u->st, u->pend + u->pend_off, u->pend_len);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			sess_kill(w, &u->s, false);
			return;
		}
		u->pend_off += (size_t)r;
		u->pend_len -= (size_t)r;
	}
	if (u->pend_len == 0) {
		free(u->pend);
		u->pend = NULL;
	}
	int f = anser_stream_flush(u->st);
	if (f < 0 && f != -EAGAIN) {
		sess_kill(w, &u->s, false);
		return;
	}
	if (!u->in && !(u->in = malloc(UDP_MAX + 64))) {
		sess_kill(w, &u->s, false);
		return;
	}
	for (int i = 0; i < UDP_BATCH; i++) {
		ssize_t r = anser_stream_read(u->st, u->in + u->in_len, UDP_MAX + 64 - u->in_len);
		if (r == -EAGAIN)
			break;
		if (r <= 0) {
			log_debug("UDP session of %s via %s closed by the node", u->s.flow.pname,
				  u->s.node_name);
			sess_kill(w, &u->s, false);
			return;
		}
		u->in_len += (size_t)r;
		size_t off = 0;
		for (;;) {
			struct anser_socks5_addr src;
			const uint8_t *p;
			size_t pl;
			int n = anser_trojan_udp_parse(u->in + off, u->in_len - off, &src, &p, &pl);
			if (n == -EAGAIN)
				break;
			if (n < 0 || src.atyp == SOCKS5_ATYP_DOMAIN) {
				log_debug("Bad UDP frame from node %s, ending the session",
					  u->s.node_name);
				sess_kill(w, &u->s, false);
				return;
			}
			deliver(w, u, &src.sa, src.atyp == SOCKS5_ATYP_DOMAIN ? src.domain : NULL,
				p, pl);
			off += (size_t)n;
		}
		memmove(u->in, u->in + off, u->in_len - off);
		u->in_len -= off;
	}
	stream_watch(w, u);
}

/* The datagrams held while the session was being set up, in order. */
static void send_held(struct udp_sess *u)
{
	for (size_t i = 0; i < u->n_queue; i++) {
		struct ep e;
		const char *name = NULL;
		ep_from(&u->queue[i]->dst, &e);
		for (size_t k = 0; k < u->n_dests && !name; k++)
			if (memcmp(&u->dests[k].ep, &e, sizeof(e)) == 0)
				name = u->dests[k].name;
		send_out(u, &u->queue[i]->dst, name, u->queue[i]->data, u->queue[i]->len);
		free(u->queue[i]);
	}
	u->n_queue = 0;
}

static void udp_ready(struct worker *w, struct udp_sess *u)
{
	if (u->kind == UDP_STREAM) {
		u->st = anser_dial_take_stream(u->dial);
		u->ctl_fd = u->st ? u->st->fd : -1;
		anser_dial_free(u->dial);
		u->dial = NULL;
		u->seal_buf = w->udp_seal_buf;
		touch(w, u);
		if (!u->st) {
			sess_kill(w, &u->s, false);
			return;
		}
		send_held(u);
		stream_io(w, u);
		return;
	}
	u->ctl_fd = anser_dial_take_fd(u->dial);
	u->out_fd = anser_dial_take_udp_fd(u->dial);
	anser_dial_free(u->dial);
	u->dial = NULL;
	touch(w, u);
	if (epoll_set(w, u->ctl_fd, &u->ctl_h, &u->ctl_ev, EPOLLIN) < 0 ||
	    epoll_set(w, u->out_fd, &u->out_h, &u->out_ev, EPOLLIN) < 0) {
		log_error_errno(errno, "Failed to watch a UDP session: %m");
		sess_kill(w, &u->s, false);
		return;
	}
	send_held(u);
}

static void udp_on_ctl(struct worker *w, struct handler *h, uint32_t events)
{
	struct udp_sess *u = container_of(h, struct udp_sess, ctl_h);

	if (u->dial) {
		int r = anser_dial_step(u->dial);
		if (r == -EAGAIN) {
			if (epoll_set(w, u->ctl_fd, &u->ctl_h, &u->ctl_ev,
				      anser_dial_events(u->dial)) < 0)
				sess_kill(w, &u->s, false);
			return;
		}
		if (r < 0) {
			uint8_t rep = anser_dial_socks_reply(u->dial);
			if (rep)
				log_warning("UDP ASSOCIATE for %s: SOCKS5 node %s refused: %s "
					    "(reply %u)",
					    u->s.flow.pname, u->s.node_name,
					    anser_socks5_reply_str(rep), rep);
			else
				log_warning_errno(r, "UDP ASSOCIATE for %s via %s: %s failed: %m",
						  u->s.flow.pname, u->s.node_name,
						  anser_dial_stage(u->dial));
			sess_kill(w, &u->s, false);
			return;
		}
		udp_ready(w, u);
		return;
	}
	if (u->kind == UDP_STREAM) {
		stream_io(w, u);
		return;
	}
	/* The server keeps the association while this connection lives;
	 * anything but more bytes means it is over. */
	uint8_t junk[256];
	ssize_t n = recv(u->ctl_fd, junk, sizeof(junk), 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		log_debug("UDP association of %s via %s closed by the node", u->s.flow.pname,
			  u->s.node_name);
		sess_kill(w, &u->s, false);
	}
}

/* A shadowsocks session: the node's key and a socket connected to it. */
static int udp_ss_open(struct worker *w, struct udp_sess *u, const struct anser_node *nd,
		       const struct sockaddr *node_addr, uint32_t mark)
{
	int r = anser_ss_key_init(&u->ss, (enum anser_cipher)nd->cipher, nd->pass);
	if (r < 0)
		return r;
	u->seal_buf = w->udp_seal_buf;
	u->out_fd = socket(node_addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->out_fd < 0)
		return -errno;
	if (mark && setsockopt(u->out_fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		return -errno;
	socklen_t sl = node_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							: sizeof(struct sockaddr_in);
	if (connect(u->out_fd, node_addr, sl) < 0)
		return -errno;
	return epoll_set(w, u->out_fd, &u->out_h, &u->out_ev, EPOLLIN);
}

static struct udp_sess *udp_new(struct worker *w, int fam, const struct sockaddr_storage *app,
				const struct anser_flow *flow)
{
	struct anser_proxy *p = w->p;
	struct pgen *gen;
	int node;

	if (proxy_route(p, flow, &gen, &node) < 0)
		return NULL;
	struct udp_sess *u = calloc(1, sizeof(*u));
	if (!u) {
		pgen_unref(gen);
		return NULL;
	}
	sess_init(&u->s, "udp", flow, app, gen, node, udp_close, udp_timeout);
	u->fam = fam;
	u->out_fd = u->ctl_fd = -1;
	u->out_h = (struct handler){ .fn = udp_on_out, .s = &u->s };
	u->ctl_h = (struct handler){ .fn = udp_on_ctl, .s = &u->s };
	sess_attach(w, &u->s);
	struct udp_sess **pp = udp_slot(w, app, fam, flow->gen, flow->outbound);
	u->hnext = *pp;
	*pp = u;

	int r;
	const struct anser_node *nd = gen ? &gen->gen->cfg->nodes[node] : NULL;
	u->kind = !nd								   ? UDP_DIRECT
		  : nd->proto == ANSER_NODE_SS					   ? UDP_SS
		  : nd->proto == ANSER_NODE_TROJAN				   ? UDP_STREAM
		  : nd->proto == ANSER_NODE_VMESS || nd->proto == ANSER_NODE_VLESS ? UDP_PERDEST
										   : UDP_SOCKS5;
	if (u->kind == UDP_PERDEST) {
		r = 0; /* streams are dialled per destination, as datagrams come */
		touch(w, u);
	} else if (u->kind == UDP_SS) {
		r = udp_ss_open(w, u, nd, (struct sockaddr *)&gen->node_addr[node],
				proxy_mark(gen, flow));
		touch(w, u);
	} else if (!gen) {
		int zero = 0;
		u->out_fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (u->out_fd < 0 ||
		    setsockopt(u->out_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
			r = -errno;
		else
			r = epoll_set(w, u->out_fd, &u->out_h, &u->out_ev, EPOLLIN);
		touch(w, u);
	} else {
		struct sockaddr_storage first;
		anser_flow_dst(flow, &first);
		r = anser_dial_new(
			&gen->gen->cfg->nodes[node], (struct sockaddr *)&gen->node_addr[node],
			(struct sockaddr *)&first, ANSER_DIAL_UDP, proxy_mark(gen, flow), &u->dial);
		if (r >= 0) {
			u->ctl_fd = anser_dial_fd(u->dial);
			r = epoll_set(w, u->ctl_fd, &u->ctl_h, &u->ctl_ev,
				      anser_dial_events(u->dial));
		}
		u->s.deadline = now_ms() + (uint64_t)p->opts.dial_timeout * 1000;
	}
	if (r < 0) {
		log_warning_errno(r, "Failed to open a UDP session for %s via %s: %m", flow->pname,
				  u->s.node_name);
		sess_kill(w, &u->s, false);
		return NULL;
	}
	return u;
}

static int udp_lookup(struct anser_proxy *p, uint32_t id, struct anser_flow *f)
{
	if (p->hooks.udp_lookup)
		return p->hooks.udp_lookup(p->hooks.userdata, id, f);
	if (p->dp)
		return anser_datapath_udp_lookup(p->dp, id, f);
	return -ENOENT;
}

void udp_forward(struct worker *w, int fam, const struct sockaddr_storage *app,
		 const struct anser_flow *f, const char *name, const uint8_t *data, size_t len)
{
	struct anser_flow flow = *f;

	if (flow.outbound == ANSER_OUT_BLOCK)
		return;
	struct udp_sess *u = *udp_slot(w, app, fam, flow.gen, flow.outbound);
	if (!u)
		u = udp_new(w, fam, app, &flow);
	if (!u)
		return;

	struct sockaddr_storage dst;
	anser_flow_dst(&flow, &dst);
	/* a direct session connects to the address whatever the mode */
	const struct dest *d = note_dest(u, &dst, flow.flags & ANSER_FLOW_F_CONNECTED,
					 u->kind == UDP_DIRECT ? NULL : name);
	if (u->kind == UDP_PERDEST) {
		vmess_send(w, u, &dst, d->name, data, len);
		touch(w, u);
		return;
	}
	if (!u->dial) {
		send_out(u, &dst, d->name, data, len);
		touch(w, u);
		return;
	}
	/* Hold a few datagrams while the association is being set up. */
	hold(u->queue, &u->n_queue, MAX_PENDING, &dst, data, len);
}

static void udp_datagram(struct worker *w, int fam, const struct sockaddr_storage *app,
			 uint32_t mark, const uint8_t *data, size_t len)
{
	struct anser_flow flow;
	char src[64];

	int r = udp_lookup(w->p, mark, &flow);
	if (r < 0) {
		log_debug_errno(r, "No flow for UDP id %u from %s, dropping: %m", mark,
				anser_sockaddr_str(app, src, sizeof(src)));
		return;
	}
	const char *name = NULL;
	if (flow.outbound >= ANSER_OUT_FIRST_GROUP &&
	    udp_sniff(w, fam, app, mark, &flow, &name, data, len))
		return; /* held until its name is known */
	udp_forward(w, fam, app, &flow, name, data, len);
}

/* Gateway mode: a LAN client's datagram to orig. */
static void udp_lan_datagram(struct worker *w, int fam, const struct sockaddr_storage *app,
			     const struct sockaddr_storage *orig, const uint8_t *data, size_t len)
{
	struct anser_proxy *p = w->p;
	struct anser_flow flow;
	char src[64];

	int r = orig->ss_family ? proxy_lan_lookup(p, IPPROTO_UDP, (const struct sockaddr *)app,
						   (const struct sockaddr *)orig, &flow)
				: -ENOENT;
	if (r < 0) {
		log_debug_errno(r, "No LAN flow for a UDP datagram from %s, dropping: %m",
				anser_sockaddr_str(app, src, sizeof(src)));
		return;
	}
	udp_forward(w, fam, app, &flow, NULL, data, len);
}

void udp_on_listener(struct worker *w, struct handler *h, uint32_t events)
{
	int idx = (int)(h - w->udp_h), fam = idx & 1;
	bool lan = idx >= 2;
	int fd = w->udp_fd[idx & 3];

	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage app, orig = { 0 };
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(uint32_t)) +
				  CMSG_SPACE(sizeof(struct sockaddr_in6))];
		} cbuf;
		struct iovec iov = { w->udp_buf, UDP_MAX };
		struct msghdr mh = {
			.msg_name = &app,
			.msg_namelen = sizeof(app),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = &cbuf,
			.msg_controllen = sizeof(cbuf),
		};
		ssize_t n = recvmsg(fd, &mh, 0);
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			continue;
		}
		uint32_t mark = 0;
		bool have_mark = false;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_MARK &&
			    c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
				memcpy(&mark, CMSG_DATA(c), sizeof(mark));
				have_mark = true;
			} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_ORIGDSTADDR &&
				   c->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in))) {
				memcpy(&orig, CMSG_DATA(c), sizeof(struct sockaddr_in));
			} else if (c->cmsg_level == IPPROTO_IPV6 &&
				   c->cmsg_type == IPV6_ORIGDSTADDR &&
				   c->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in6))) {
				memcpy(&orig, CMSG_DATA(c), sizeof(struct sockaddr_in6));
			}
		}
		if (lan) {
			udp_lan_datagram(w, fam, &app, &orig, w->udp_buf, (size_t)n);
			continue;
		}
		if (!have_mark || mark == 0) {
			log_debug("UDP datagram without a flow id on the listener, dropping");
			continue;
		}
		udp_datagram(w, fam, &app, mark, w->udp_buf, (size_t)n);
	}
}

int udp_worker_init(struct worker *w)
{
	w->udp_buf = malloc(UDP_MAX + 1);
	w->udp_seal_buf = malloc(UDP_MAX);
	if (!w->udp_buf || !w->udp_seal_buf)
		return -ENOMEM;
	for (int f = 0; f < 4; f++) {
		if (w->udp_fd[f] < 0)
			continue;
		w->udp_h[f].fn = udp_on_listener;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &w->udp_h[f] };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->udp_fd[f], &ev) < 0)
			return -errno;
	}
	return 0;
}

void udp_worker_fini(struct worker *w)
{
	udp_sniff_fini(w);
	free(w->udp_buf);
	free(w->udp_seal_buf);
	w->udp_buf = w->udp_seal_buf = NULL;
}
