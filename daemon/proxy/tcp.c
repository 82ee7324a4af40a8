// SPDX-License-Identifier: GPL-2.0-or-later
/* TCP: accept a steered connection, dial its outbound, relay both ways
 * with half-close until both directions are done. */
#include "proxy-internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../outbound/outbound.h"
#include "../outbound/socks5.h"
#include "../util/alloc.h"
#include "../util/bigbuf.h"
#include "../util/log.h"
#include "sniff.h"

/* Each way of a session starts with RELAY_BUF of its own; one that keeps
 * filling it (GROW_AFTER reads that left no room) moves to RELAY_BIG from
 * the process's budget (util/bigbuf.h): a bulk flow then goes in 256 KiB
 * reads and writes, a quarter of the system calls and of the window
 * updates the app's side of the kernel answers. */
#define RELAY_BUF  (64 * 1024)
#define RELAY_BIG  (256 * 1024)
#define GROW_AFTER 4
/* Bound the work done for one session per wakeup so a fast pair of
 * sockets cannot starve the others on this worker. */
#define PUMP_ROUNDS  16
#define ACCEPT_BATCH 64
/* The most of an app's first bytes read for a name: a ClientHello with
 * post-quantum key shares is ~1.8 KiB, big HTTP heads a few KiB. */
#define SNIFF_MAX (16 * 1024)

struct pipe {
	size_t off, len, cap;
	unsigned fills; /* reads that filled buf, while it is the session's */
	bool eof;	/* read side saw EOF */
	bool shut;	/* EOF passed on with shutdown(SHUT_WR) */
	uint8_t *buf;	/* cap bytes: the session's RELAY_BUF, or RELAY_BIG
			   from the budget once grown */
};

struct tcp_sess {
	struct sess s;
	struct handler cli_h, srv_h;
	int cli, srv;
	struct anser_stream *st; /* the node's protocol stream over srv, or NULL */
	uint32_t cli_ev, srv_ev;
	struct anser_dial *dial;
	struct pipe up;	  /* app -> remote */
	struct pipe down; /* remote -> app */
	/* Waiting for the app's first bytes (dial_mode domain*): up holds
	 * them, and the dial starts when they name something, cannot, or
	 * the sniffing_timeout passes. */
	bool sniffing;
	enum anser_dial_mode mode;
	char name[ANSER_SNIFF_NAME_MAX + 1]; /* asked of the node; "" for the address */
	/* last: not zeroed when a session is made (ANSER_ALLOC_HEAD) */
	uint8_t up_buf[RELAY_BUF], down_buf[RELAY_BUF];
};

static void tcp_close(struct worker *w, struct sess *s, bool reset)
{
	struct tcp_sess *t = container_of(s, struct tcp_sess, s);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	struct pipe *pipes[] = { &t->up, &t->down };
	for (size_t i = 0; i < 2; i++) {
		if (pipes[i]->cap == RELAY_BIG)
			anser_bigbuf_put(pipes[i]->buf, RELAY_BIG);
		pipes[i]->buf = NULL;
		pipes[i]->cap = pipes[i]->len = 0;
	}

	if (t->dial)
		t->srv = -1; /* the dial's own fd, closed with it */
	anser_dial_free(t->dial);
	t->dial = NULL;
	if (t->st) {
		if (reset)
			(void)setsockopt(t->srv, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		anser_stream_free(t->st); /* closes srv */
		t->st = NULL;
		t->srv = -1;
	}
	for (int *fd = &t->cli; fd; fd = fd == &t->cli ? &t->srv : NULL) {
		if (*fd < 0)
			continue;
		/* An abort on one side becomes an abort on the other, as if
		 * the two endpoints were talking directly. */
		if (reset)
			(void)setsockopt(*fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(*fd);
		*fd = -1;
	}
}

static void tcp_timeout(struct worker *w, struct sess *s)
{
	struct tcp_sess *t = container_of(s, struct tcp_sess, s);
	char dst[64];
	struct sockaddr_storage ss;

	anser_flow_dst(&s->flow, &ss);
	if (t->dial)
		log_warning("TCP %s (%s) via %s: dial timed out in stage %s",
			    anser_sockaddr_str(&ss, dst, sizeof(dst)), s->flow.pname,
			    t->s.node_name, anser_dial_stage(t->dial));
	else
		log_debug("TCP %s (%s): idle timeout", anser_sockaddr_str(&ss, dst, sizeof(dst)),
			  s->flow.pname);
	sess_kill(w, s, true);
}

/* One side of the relay: a socket, or a protocol stream over one. The
 * results are the stream's: bytes, 0 for EOF, -EAGAIN, -errno. */
struct end {
	int fd;
	struct anser_stream *st;
};

/* FIN after whatever the stream still holds; -EAGAIN until it is out.
 * When the other way is done too (last), the session closes its sockets
 * next, and close() sends the FIN: no shutdown() for it. */
static int end_shutdown(struct end e, bool last)
{
	if (e.st) {
		int r = anser_stream_close_write(e.st);
		if (r < 0)
			return r;
	}
	if (last)
		return 0;
	return shutdown(e.fd, SHUT_WR) < 0 && errno != ENOTCONN ? -errno : 0;
}

static bool soft(ssize_t r)
{
	return r == -EAGAIN || r == -EINTR;
}

/* A read left no room: after GROW_AFTER of them, the big buffer, when
 * the budget has one (else the count starts again). */
static void pipe_filled(struct pipe *pp, const char *way)
{
	if (pp->cap == RELAY_BIG || ++pp->fills < GROW_AFTER)
		return;
	pp->fills = 0;
	uint8_t *b = anser_bigbuf_get(RELAY_BIG);
	if (!b)
		return;
	memcpy(b, pp->buf + pp->off, pp->len);
	pp->buf = b;
	pp->off = 0;
	pp->cap = RELAY_BIG;
	log_debug("TCP relay: a bulk flow, its %s buffer grown to %d KiB", way, RELAY_BIG / 1024);
}

/* Moves what it can between from and to; -errno on a hard error.
 *  - A side that said EAGAIN is not asked again in this call: epoll
 *    says when it has more (one system call a wakeup saved).
 *  - What a stream holds (its request header, say) goes out with the
 *    bytes read here when there are some -- one segment to the node, not
 *    the header alone and the app's first bytes after it -- and alone
 *    after the loop when there are none. */
static int pump_dir(struct end from, struct end to, struct pipe *pp, const struct pipe *other,
		    _Atomic uint64_t *ctr, const char *way, bool *progress)
{
	bool from_dry = false, to_full = false;

	for (int round = 0; round < PUMP_ROUNDS; round++) {
		bool moved = false;
		if (pp->len > 0 && !to_full) {
			ssize_t n = anser_io_write(to.fd, to.st, pp->buf + pp->off, pp->len);
			if (n > 0) {
				pp->off += (size_t)n;
				pp->len -= (size_t)n;
				if (pp->len == 0)
					pp->off = 0;
				moved = true;
			} else if (n < 0 && !soft(n)) {
				return (int)n;
			} else {
				to_full = true;
			}
		}
		if (!pp->eof && pp->len < pp->cap && !from_dry) {
			if (pp->off + pp->len == pp->cap) {
				memmove(pp->buf, pp->buf + pp->off, pp->len);
				pp->off = 0;
			}
			size_t room = pp->cap - pp->off - pp->len;
			ssize_t n =
				anser_io_read(from.fd, from.st, pp->buf + pp->off + pp->len, room);
			if (n > 0) {
				pp->len += (size_t)n;
				atomic_fetch_add_explicit(ctr, (uint64_t)n, memory_order_relaxed);
				moved = true;
				if (pp->len == pp->cap)
					pipe_filled(pp, way);
			} else if (n == 0) {
				pp->eof = true;
				moved = true;
			} else if (!soft(n)) {
				return (int)n;
			} else {
				from_dry = true;
			}
		}
		if (pp->eof && pp->len == 0 && !pp->shut) {
			int r = end_shutdown(to, other->shut);
			if (r < 0 && !soft(r))
				return r;
			pp->shut = r == 0;
		}
		if (!moved)
			break;
		*progress = true;
	}
	if (to.st && !to_full && anser_stream_pending(to.st)) {
		int r = anser_stream_flush(to.st);
		if (r < 0 && !soft(r))
			return r;
	}
	return 0;
}

static void tcp_update(struct worker *w, struct tcp_sess *t)
{
	uint32_t cli_ev = 0, srv_ev = 0;

	if (!t->up.eof && t->up.len < t->up.cap)
		cli_ev |= EPOLLIN;
	/* Plaintext the stream already holds is data for the app as much as
	 * bytes on the socket are: wait for the app to take it. */
	if (t->down.len > 0 ||
	    (t->st && !t->down.eof && t->down.len < t->down.cap && anser_stream_readable(t->st)))
		cli_ev |= EPOLLOUT;
	if (!t->down.eof && t->down.len < t->down.cap)
		srv_ev |= EPOLLIN;
	if (t->up.len > 0 || (t->st && anser_stream_pending(t->st)))
		srv_ev |= EPOLLOUT;
	/* An fd with nothing to wait for leaves epoll: a fully closed socket
	 * would otherwise report EPOLLHUP in a loop. */
	if (epoll_set(w, t->cli, &t->cli_h, &t->cli_ev, cli_ev) < 0 ||
	    epoll_set(w, t->srv, &t->srv_h, &t->srv_ev, srv_ev) < 0) {
		log_error_errno(errno, "Failed to update epoll for a TCP session: %m");
		sess_kill(w, &t->s, true);
	}
}

static void tcp_pump(struct worker *w, struct tcp_sess *t)
{
	bool progress = false;
	struct end cli = { t->cli, NULL }, srv = { t->srv, t->st };
	int r = pump_dir(cli, srv, &t->up, &t->down, &t->s.bytes_up, "upload", &progress);
	if (r >= 0)
		r = pump_dir(srv, cli, &t->down, &t->up, &t->s.bytes_down, "download", &progress);
	if (r < 0) {
		log_debug_errno(r, "TCP session of %s ended: %m", t->s.flow.pname);
		sess_kill(w, &t->s, true);
		return;
	}
	if (t->up.shut && t->down.shut) {
		log_debug("TCP session of %s via %s done: %llu bytes up, %llu down",
			  t->s.flow.pname, t->s.node_name, (unsigned long long)t->s.bytes_up,
			  (unsigned long long)t->s.bytes_down);
		sess_kill(w, &t->s, false);
		return;
	}
	if (progress)
		t->s.deadline = now_ms() + (uint64_t)w->p->opts.tcp_idle_timeout * 1000;
	tcp_update(w, t);
}

static void log_dial_failure(struct tcp_sess *t, int r)
{
	char dst[64];
	struct sockaddr_storage ss;
	uint8_t rep = anser_dial_socks_reply(t->dial);
	int status = anser_dial_http_status(t->dial);

	anser_flow_dst(&t->s.flow, &ss);
	anser_sockaddr_str(&ss, dst, sizeof(dst));
	const char *tls = anser_dial_tls_error(t->dial);
	if (tls)
		log_warning("TCP %s (%s) via %s: TLS handshake failed: %s", dst, t->s.flow.pname,
			    t->s.node_name, tls);
	else if (status && strcmp(anser_dial_stage(t->dial), "websocket") == 0)
		log_warning("TCP %s (%s) via %s: WebSocket upgrade refused with status %d", dst,
			    t->s.flow.pname, t->s.node_name, status);
	else if (status)
		log_warning("TCP %s (%s): HTTP node %s refused CONNECT with status %d", dst,
			    t->s.flow.pname, t->s.node_name, status);
	else if (rep)
		log_warning("TCP %s (%s): SOCKS5 node %s refused: %s (reply %u)", dst,
			    t->s.flow.pname, t->s.node_name, anser_socks5_reply_str(rep), rep);
	else
		log_warning_errno(r, "TCP %s (%s) via %s: %s failed: %m", dst, t->s.flow.pname,
				  t->s.node_name, anser_dial_stage(t->dial));
}

static void tcp_dial_step(struct worker *w, struct tcp_sess *t)
{
	int r = anser_dial_step(t->dial);
	if (r == -EAGAIN) {
		if (epoll_set(w, t->srv, &t->srv_h, &t->srv_ev, anser_dial_events(t->dial)) < 0) {
			log_error_errno(errno, "Failed to watch a dial: %m");
			sess_kill(w, &t->s, true);
		}
		return;
	}
	if (r < 0) {
		log_dial_failure(t, r);
		sess_kill(w, &t->s, true);
		return;
	}
	const uint8_t *left;
	size_t n = anser_dial_leftover(t->dial, &left);
	if (n > t->down.cap)
		n = t->down.cap;
	if (n) {
		memcpy(t->down.buf, left, n);
		t->down.len = n;
		atomic_fetch_add_explicit(&t->s.bytes_down, n, memory_order_relaxed);
	}
	t->st = anser_dial_take_stream(t->dial);
	t->srv = t->st ? t->st->fd : anser_dial_take_fd(t->dial);
	anser_dial_free(t->dial);
	t->dial = NULL;
	t->s.deadline = now_ms() + (uint64_t)w->p->opts.tcp_idle_timeout * 1000;
	tcp_pump(w, t);
}

static void tcp_sniff_read(struct worker *w, struct tcp_sess *t);

static void tcp_on_cli(struct worker *w, struct handler *h, uint32_t events)
{
	struct tcp_sess *t = container_of(h, struct tcp_sess, cli_h);
	if (t->sniffing) {
		tcp_sniff_read(w, t);
		return;
	}
	if (t->dial) {
		/* The app gave up (RST or close) before the remote answered. */
		sess_kill(w, &t->s, true);
		return;
	}
	tcp_pump(w, t);
}

static void tcp_on_srv(struct worker *w, struct handler *h, uint32_t events)
{
	struct tcp_sess *t = container_of(h, struct tcp_sess, srv_h);
	if (t->dial)
		tcp_dial_step(w, t);
	else
		tcp_pump(w, t);
}

/* A connection accepted with a local address that is not loopback is a
 * LAN client's (gateway mode): its local address is where it was going. */
static int tcp_lookup(struct anser_proxy *p, int fd, const struct sockaddr *peer,
		      struct anser_flow *f)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);

	if (p->opts.gateway && getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
	    !anser_sockaddr_is_loopback((struct sockaddr *)&local)) {
		return proxy_lan_lookup(p, IPPROTO_TCP, peer, (struct sockaddr *)&local, f);
	}
	if (p->hooks.tcp_lookup)
		return p->hooks.tcp_lookup(p->hooks.userdata, peer, f);
	if (p->dp)
		return anser_datapath_tcp_lookup(p->dp, peer, f);
	return -ENOENT;
}

/* Dial the session's route: its node (by t->name when set) or direct. */
static void tcp_dial(struct worker *w, struct tcp_sess *t)
{
	struct pgen *gen = t->s.gen;
	int node = t->s.node;
	char dst_s[64];
	struct sockaddr_storage dst;

	anser_flow_dst(&t->s.flow, &dst);
	int r = anser_dial_new(gen ? &gen->gen->cfg->nodes[node] : NULL,
			       gen ? (struct sockaddr *)&gen->node_addr[node] : NULL,
			       (struct sockaddr *)&dst, ANSER_DIAL_CONNECT,
			       proxy_mark(gen, &t->s.flow), &t->dial);
	if (r == 0 && gen && t->name[0])
		r = anser_dial_set_name(t->dial, t->name);
	if (r < 0) {
		log_warning_errno(r, "TCP %s (%s) via %s: dial failed: %m",
				  anser_sockaddr_str(&dst, dst_s, sizeof(dst_s)), t->s.flow.pname,
				  t->s.node_name);
		sess_kill(w, &t->s, true);
		return;
	}
	t->s.deadline = now_ms() + (uint64_t)w->p->opts.dial_timeout * 1000;
	/* The dial's fd is the remote side; it keeps its number once ready. */
	t->srv = anser_dial_fd(t->dial);
	/* Until the remote is ready only an abort of the app matters (ERR
	 * and HUP are always reported); data and a FIN wait in the kernel. */
	if (epoll_set(w, t->cli, &t->cli_h, &t->cli_ev, EPOLLERR) < 0 ||
	    epoll_set(w, t->srv, &t->srv_h, &t->srv_ev, anser_dial_events(t->dial)) < 0) {
		log_error_errno(errno, "Failed to watch a TCP session: %m");
		sess_kill(w, &t->s, true);
	}
}

/* domain++: the flow routed again by its sniffed name; 0 when the route
 * stands, 1 when it changed (t->s routed anew), -errno (logged) to end it. */
static int tcp_reroute(struct worker *w, struct tcp_sess *t)
{
	struct anser_flow f = t->s.flow;
	if (!proxy_reroute(w->p, &f, t->name))
		return 0;
	struct pgen *gen;
	int node;
	int r = proxy_route(w->p, &f, &gen, &node);
	if (r < 0)
		return r;
	sess_set_route(w, &t->s, gen, node, &f);
	return 1;
}

/* Sniffing is over (found: t->name holds what the app asked for). */
static void tcp_sniff_done(struct worker *w, struct tcp_sess *t, bool found)
{
	wtimer_stop(w, &t->s.timer);
	t->sniffing = false;
	if (!found)
		t->name[0] = '\0';
	else if (!proxy_name_usable(w->p, t->mode, t->s.flow.daddr, t->name))
		t->name[0] = '\0';
	else if (t->mode == ANSER_DIAL_DOMAIN_PLUS_PLUS) {
		int r = tcp_reroute(w, t);
		if (r < 0) {
			sess_kill(w, &t->s, true);
			return;
		}
	}
	if (t->name[0])
		sess_set_domain(w, &t->s, t->name);
	tcp_dial(w, t);
}

static void tcp_sniff_timeout(struct worker *w, struct wtimer *tm)
{
	tcp_sniff_done(w, container_of(tm, struct tcp_sess, s.timer), false);
}

static void tcp_sniff_read(struct worker *w, struct tcp_sess *t)
{
	struct pipe *pp = &t->up;
	ssize_t n = read(t->cli, pp->buf + pp->len, SNIFF_MAX - pp->len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		sess_kill(w, &t->s, true);
		return;
	}
	if (n == 0) {
		pp->eof = true;
	} else {
		pp->len += (size_t)n;
		atomic_fetch_add_explicit(&t->s.bytes_up, (uint64_t)n, memory_order_relaxed);
	}
	enum anser_sniff v = anser_sniff_stream(pp->buf, pp->len, t->name);
	if (v == ANSER_SNIFF_MORE && !pp->eof && pp->len < SNIFF_MAX)
		return; /* more of it is on the way */
	tcp_sniff_done(w, t, v == ANSER_SNIFF_FOUND);
}

static void tcp_start(struct worker *w, int fd, const struct sockaddr_storage *peer)
{
	struct anser_proxy *p = w->p;
	struct anser_flow flow;
	char src[64];

	int r = tcp_lookup(p, fd, (const struct sockaddr *)peer, &flow);
	if (r < 0) {
		log_debug_errno(r, "No flow for TCP connection from %s, closing: %m",
				anser_sockaddr_str(peer, src, sizeof(src)));
		close(fd);
		return;
	}
	struct pgen *gen;
	int node;
	if (proxy_route(p, &flow, &gen, &node) < 0) {
		close(fd);
		return;
	}

	struct tcp_sess *t = ANSER_ALLOC_HEAD(struct tcp_sess, up_buf);
	if (!t) {
		log_error("Out of memory for a TCP session");
		pgen_unref(gen);
		close(fd);
		return;
	}
	t->up.buf = t->up_buf;
	t->down.buf = t->down_buf;
	t->up.cap = t->down.cap = RELAY_BUF;
	sess_init(&t->s, "tcp", &flow, peer, gen, node, tcp_close, tcp_timeout);
	t->cli = fd;
	t->srv = -1;
	t->cli_h = (struct handler){ .fn = tcp_on_cli, .s = &t->s };
	t->srv_h = (struct handler){ .fn = tcp_on_srv, .s = &t->s };
	sess_attach(w, &t->s);

	uint64_t ms = gen ? proxy_sniff_ms(p, gen->gen->cfg, &flow) : 0;
	if (!ms) {
		tcp_dial(w, t);
		return;
	}
	t->sniffing = true;
	t->mode = gen->gen->cfg->dial_mode;
	uint64_t now = now_ms();
	wtimer_start(w, &t->s.timer, now + ms, tcp_sniff_timeout);
	t->s.deadline = now + ms + (uint64_t)p->opts.dial_timeout * 1000; /* a backstop */
	if (epoll_set(w, t->cli, &t->cli_h, &t->cli_ev, EPOLLIN) < 0) {
		log_error_errno(errno, "Failed to watch a TCP session: %m");
		sess_kill(w, &t->s, true);
		return;
	}
	/* The app may have written already (it usually has, by now). */
	tcp_sniff_read(w, t);
}

void tcp_on_accept(struct worker *w, struct handler *h, uint32_t events)
{
	int lfd = w->p->tcp_fd[h == &w->tcp_h[1]];
	int one = 1;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warning_errno(errno, "Failed to accept: %m");
			return;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		tcp_start(w, fd, &peer);
	}
}
