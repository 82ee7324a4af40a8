// SPDX-License-Identifier: GPL-2.0-or-later
#include "checker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "../dns/message.h"
#include "../util/log.h"
#include "http.h"
#include "outbound.h"
#include "shadowsocks.h"
#include "socks5.h"
#include "trojan.h"

#define MAX_INFLIGHT 64
#define CHECK_MAX_MS 5000

enum stage { ST_DIAL, ST_SEND, ST_RECV };

struct check {
	struct anser_checker *c;
	size_t node;
	enum anser_nettype t;
	enum stage stage;
	struct anser_dial *dial;
	struct anser_stream *st;
	int fd;	    /* TCP: the stream's or the bare socket; UDP: the datagram socket */
	int ctl_fd; /* socks5 UDP: the association's control connection */
	struct anser_ss_key key;
	guint watch, timer;
	int64_t start_us;
	uint16_t qid;
	struct sockaddr_storage target;
	uint8_t out[1024];
	size_t out_len, out_off;
	uint8_t in[HTTP_MAX_HEAD];
	size_t in_len;
};

struct pending {
	size_t node;
	enum anser_nettype t;
};

struct done_cb {
	void (*fn)(void *ud, unsigned n);
	void *ud;
};

struct anser_checker {
	struct anser_gen *gen;
	struct anser_health *h;
	struct sockaddr_storage *addr; /* per node; family 0 when unresolved */
	GArray *queue;		       /* struct pending, still to start */
	GPtrArray *inflight;	       /* struct check */
	unsigned round_checks;
	bool running;
	bool starting; /* inside start_more() */
	guint next_round;
	GArray *waiters; /* struct done_cb */
	void (*on_change)(void *ud);
	void *on_change_ud;
	bool changed; /* in this round */
};

static void round_start(struct anser_checker *c);

static gboolean round_timer(gpointer ud)
{
	struct anser_checker *c = ud;
	c->next_round = 0;
	round_start(c);
	return G_SOURCE_REMOVE;
}

static int64_t check_timeout_ms(const struct anser_checker *c)
{
	int64_t iv = c->gen->cfg->check.interval_ns / 1000000;
	return iv < CHECK_MAX_MS ? iv : CHECK_MAX_MS;
}

static void check_free(struct check *k)
{
	if (k->watch)
		g_source_remove(k->watch);
	if (k->timer)
		g_source_remove(k->timer);
	/* While dialling, k->fd is the dial's own socket: closed with it. A
	 * second close() here once closed whatever socket another thread (a
	 * proxy worker's accept, say) had been given that number meanwhile. */
	if (k->dial)
		k->fd = -1;
	anser_dial_free(k->dial);
	if (k->st)
		anser_stream_free(k->st); /* closes fd */
	else if (k->fd >= 0)
		close(k->fd);
	if (k->ctl_fd >= 0)
		close(k->ctl_fd);
	explicit_bzero(&k->key, sizeof(k->key));
	g_free(k);
}

static void start_more(struct anser_checker *c);

static void round_end(struct anser_checker *c)
{
	c->running = false;
	if (anser_health_update(c->h) || c->changed) {
		if (c->on_change)
			c->on_change(c->on_change_ud);
	}
	c->changed = false;
	int64_t iv = c->gen->cfg->check.interval_ns / 1000000;
	/* +-10 % so that many anserds (or groups) do not check in step */
	int64_t ms = iv * 9 / 10 + (int64_t)g_random_int_range(0, (gint32)(iv / 5 + 1));
	c->next_round = g_timeout_add((guint)ms, round_timer, c);
	GArray *w = c->waiters;
	c->waiters = g_array_new(false, false, sizeof(struct done_cb));
	for (guint i = 0; i < w->len; i++) {
		struct done_cb *d = &g_array_index(w, struct done_cb, i);
		d->fn(d->ud, c->round_checks);
	}
	g_array_free(w, true);
}

/* Records the result and starts the next queued check. */
static void finish(struct check *k, bool ok)
{
	struct anser_checker *c = k->c;
	int64_t lat = ok ? (g_get_monotonic_time() - k->start_us) * 1000 : -1;
	if (!ok)
		log_debug("Node %s: %s check failed (%s)", c->gen->cfg->nodes[k->node].name,
			  anser_nettype_name(k->t),
			  k->dial		? anser_dial_stage(k->dial)
			  : k->stage == ST_SEND ? "request"
						: "response");
	anser_health_record(c->h, k->node, k->t, lat);
	if (!ok) /* leave a dead node now, not at the end of the round */
		c->changed |= anser_health_update(c->h);
	g_ptr_array_remove_fast(c->inflight, k);
	check_free(k);
	if (!c->starting)
		start_more(c);
}

static gboolean on_timeout(gpointer ud)
{
	struct check *k = ud;
	k->timer = 0;
	finish(k, false);
	return G_SOURCE_REMOVE;
}

static gboolean on_io(gint fd, GIOCondition cond, gpointer ud);

static void watch(struct check *k, uint32_t events)
{
	if (k->watch)
		g_source_remove(k->watch);
	GIOCondition cond = G_IO_ERR | G_IO_HUP;
	if (events & EPOLLIN)
		cond |= G_IO_IN;
	if (events & EPOLLOUT)
		cond |= G_IO_OUT;
	k->watch = g_unix_fd_add(k->fd, cond, on_io, k);
}

/* ---- TCP: an HTTP request through the node ---- */

/* Steps the dial: 1 ready, 0 waiting (watched), -1 failed. */
static int dial_ready(struct check *k)
{
	int r = anser_dial_step(k->dial);
	if (r == -EAGAIN) {
		watch(k, anser_dial_events(k->dial));
		return 0;
	}
	return r < 0 ? -1 : 1;
}

static bool tcp_step(struct check *k)
{
	const struct anser_check *ck = &k->c->gen->cfg->check;
	if (k->stage == ST_DIAL) {
		int r = dial_ready(k);
		if (r <= 0)
			return r == 0;
		const uint8_t *left;
		size_t n = anser_dial_leftover(k->dial, &left);
		if (n > sizeof(k->in))
			n = sizeof(k->in);
		memcpy(k->in, left, n);
		k->in_len = n;
		k->st = anser_dial_take_stream(k->dial);
		k->fd = k->st ? k->st->fd : anser_dial_take_fd(k->dial);
		anser_dial_free(k->dial);
		k->dial = NULL;
		char port[8] = "";
		bool v6host = strchr(ck->tcp.host, ':') != NULL;
		if (ck->tcp.port != 80)
			snprintf(port, sizeof(port), ":%u", ck->tcp.port);
		int len = snprintf((char *)k->out, sizeof(k->out),
				   "%s %s HTTP/1.1\r\nHost: %s%s%s%s\r\nUser-Agent: anser-check\r\n"
				   "Accept: */*\r\nConnection: close\r\n\r\n",
				   ck->method, ck->tcp.path, v6host ? "[" : "", ck->tcp.host,
				   v6host ? "]" : "", port);
		if (len < 0 || (size_t)len >= sizeof(k->out))
			return false;
		k->out_len = (size_t)len;
		k->stage = ST_SEND;
	}
	while (k->stage == ST_SEND) {
		ssize_t n;
		if (k->out_off < k->out_len) {
			n = anser_io_write(k->fd, k->st, k->out + k->out_off,
					   k->out_len - k->out_off);
			if (n == -EAGAIN) {
				watch(k, EPOLLOUT);
				return true;
			}
			if (n < 0)
				return false;
			k->out_off += (size_t)n;
			continue;
		}
		int r = k->st ? anser_stream_flush(k->st) : 0;
		if (r == -EAGAIN) {
			watch(k, EPOLLOUT);
			return true;
		}
		if (r < 0)
			return false;
		k->stage = ST_RECV;
	}
	for (;;) {
		int status;
		int h = anser_http_parse_head(k->in, k->in_len, &status);
		if (h > 0) {
			finish(k, status >= 200 && status < 400);
			return true;
		}
		if (h != -EAGAIN || k->in_len == sizeof(k->in))
			return false;
		ssize_t n =
			anser_io_read(k->fd, k->st, k->in + k->in_len, sizeof(k->in) - k->in_len);
		if (n == -EAGAIN) {
			watch(k, EPOLLIN);
			return true;
		}
		if (n <= 0)
			return false;
		k->in_len += (size_t)n;
	}
}

/* ---- UDP: a DNS query through the node ---- */

static enum anser_node_proto proto(const struct check *k)
{
	return k->c->gen->cfg->nodes[k->node].proto;
}

/* VMess and VLESS streams carry one datagram per read and write, trojan's
 * frame each with its address. */
static bool packets(const struct check *k)
{
	return proto(k) == ANSER_NODE_VMESS || proto(k) == ANSER_NODE_VLESS;
}

static bool udp_send_query(struct check *k)
{
	uint8_t q[300], pkt[600];
	ssize_t n = anser_dns_stub_query(k->c->gen->cfg->check.udp.host, 1 /* A */, k->qid, q,
					 sizeof(q));
	if (n < 0) {
		log_debug("udp_check_dns: '%s' is no DNS name", k->c->gen->cfg->check.udp.host);
		return false;
	}
	size_t ql = (size_t)n;
	if (k->st && packets(k)) {
		if (anser_stream_write(k->st, q, ql) != (ssize_t)ql)
			return false;
		int f = anser_stream_flush(k->st);
		return f == 0 || f == -EAGAIN;
	}
	if (k->st) {
		n = anser_trojan_udp_frame(pkt, sizeof(pkt), (struct sockaddr *)&k->target, NULL, q,
					   ql);
		if (n <= 0 || anser_stream_write(k->st, pkt, (size_t)n) != n)
			return false;
		int f = anser_stream_flush(k->st);
		return f == 0 || f == -EAGAIN;
	}
	if (proto(k) == ANSER_NODE_SS) {
		n = anser_ss_udp_seal(&k->key, (struct sockaddr *)&k->target, NULL, q, ql, pkt,
				      sizeof(pkt));
	} else {
		n = anser_socks5_udp_header(pkt, sizeof(pkt), (struct sockaddr *)&k->target, NULL);
		if (n > 0) {
			memcpy(pkt + n, q, ql);
			n += (ssize_t)ql;
		}
	}
	return n > 0 && send(k->fd, pkt, (size_t)n, 0) == n;
}

static bool is_answer(const struct check *k, const uint8_t *p, size_t pl)
{
	return pl >= 12 && (p[0] << 8 | p[1]) == k->qid && (p[2] & 0x80);
}

/* trojan, VMess, VLESS: the answer comes back in the stream */
static bool stream_recv_answer(struct check *k)
{
	for (;;) {
		struct anser_socks5_addr src;
		const uint8_t *p;
		size_t pl;
		if (packets(k)) {
			ssize_t r = anser_stream_read(k->st, k->in, sizeof(k->in));
			if (r == -EAGAIN) {
				watch(k,
				      anser_stream_pending(k->st) ? EPOLLIN | EPOLLOUT : EPOLLIN);
				return true;
			}
			if (r <= 0)
				return false;
			if (is_answer(k, k->in, (size_t)r)) {
				finish(k, true);
				return true;
			}
			continue;
		}
		int n = anser_trojan_udp_parse(k->in, k->in_len, &src, &p, &pl);
		if (n > 0) {
			if (is_answer(k, p, pl)) {
				finish(k, true);
				return true;
			}
			memmove(k->in, k->in + n, k->in_len - (size_t)n);
			k->in_len -= (size_t)n;
			continue;
		}
		if (n != -EAGAIN || k->in_len == sizeof(k->in))
			return false;
		ssize_t r = anser_stream_read(k->st, k->in + k->in_len, sizeof(k->in) - k->in_len);
		if (r == -EAGAIN) {
			watch(k, anser_stream_pending(k->st) ? EPOLLIN | EPOLLOUT : EPOLLIN);
			return true;
		}
		if (r <= 0)
			return false;
		k->in_len += (size_t)r;
	}
}

static bool udp_step(struct check *k)
{
	if (k->stage == ST_DIAL) {
		int r = dial_ready(k);
		if (r <= 0)
			return r == 0;
		k->st = anser_dial_take_stream(k->dial); /* trojan: frames in a stream */
		if (k->st) {
			k->fd = k->st->fd;
		} else {
			k->ctl_fd = anser_dial_take_fd(k->dial);
			k->fd = anser_dial_take_udp_fd(k->dial);
		}
		anser_dial_free(k->dial);
		k->dial = NULL;
		k->stage = ST_SEND;
	}
	if (k->stage == ST_SEND) {
		if (!udp_send_query(k))
			return false;
		k->stage = ST_RECV;
	}
	if (k->st)
		return stream_recv_answer(k);
	for (;;) {
		ssize_t n = recv(k->fd, k->in, sizeof(k->in), 0);
		if (n < 0 && errno == EAGAIN) {
			watch(k, EPOLLIN);
			return true;
		}
		if (n <= 0)
			return false;
		uint8_t *p = k->in;
		ssize_t pl = n;
		struct anser_socks5_addr src;
		if (proto(k) == ANSER_NODE_SS) {
			pl = anser_ss_udp_open(&k->key, k->in, (size_t)n, &p, &src);
		} else {
			int hl = anser_socks5_udp_parse(k->in, (size_t)n, &src);
			pl = hl < 0 ? -1 : n - hl;
			p = k->in + (hl < 0 ? 0 : hl);
		}
		/* an answer with our ID (anything else is dropped) */
		if (is_answer(k, p, (size_t)(pl < 0 ? 0 : pl))) {
			finish(k, true);
			return true;
		}
	}
}

static gboolean on_io(gint fd, GIOCondition cond, gpointer ud)
{
	struct check *k = ud;
	k->watch = 0;
	bool udp = k->t == ANSER_NT_UDP4 || k->t == ANSER_NT_UDP6;
	if (!(udp ? udp_step(k) : tcp_step(k)))
		finish(k, false);
	return G_SOURCE_REMOVE;
}

static bool target_for(const struct anser_check_target *t, bool v6, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (v6 && t->v6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, t->addr6, 16);
		s->sin6_port = htons(t->port);
		return true;
	}
	if (!v6 && t->v4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, t->addr4, 4);
		s->sin_port = htons(t->port);
		return true;
	}
	return false;
}

static void start_check(struct anser_checker *c, size_t node, enum anser_nettype t)
{
	const struct anser_config *cfg = c->gen->cfg;
	const struct anser_node *n = &cfg->nodes[node];
	bool udp = t == ANSER_NT_UDP4 || t == ANSER_NT_UDP6;
	bool v6 = t == ANSER_NT_TCP6 || t == ANSER_NT_UDP6;
	struct check *k = g_new0(struct check, 1);
	int r;

	k->c = c;
	k->node = node;
	k->t = t;
	k->fd = k->ctl_fd = -1;
	k->start_us = g_get_monotonic_time();
	gnutls_rnd(GNUTLS_RND_NONCE, &k->qid, sizeof(k->qid));
	if (!target_for(udp ? &cfg->check.udp : &cfg->check.tcp, v6, &k->target)) {
		/* no address of that family to check with: unknown, not dead */
		check_free(k);
		return;
	}
	g_ptr_array_add(c->inflight, k);
	if (c->addr[node].ss_family == 0) {
		finish(k, false);
		return;
	}
	if (udp && n->proto == ANSER_NODE_SS) {
		k->stage = ST_SEND;
		r = anser_ss_key_init(&k->key, (enum anser_cipher)n->cipher, n->pass);
		if (r == 0) {
			k->fd = socket(c->addr[node].ss_family,
				       SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			r = k->fd < 0 || connect(k->fd, (struct sockaddr *)&c->addr[node],
						 c->addr[node].ss_family == AF_INET6
							 ? sizeof(struct sockaddr_in6)
							 : sizeof(struct sockaddr_in)) < 0
				    ? -errno
				    : 0;
		}
	} else {
		r = anser_dial_new(n, (struct sockaddr *)&c->addr[node],
				   (struct sockaddr *)&k->target,
				   udp ? ANSER_DIAL_UDP : ANSER_DIAL_CONNECT, 0, &k->dial);
		if (r == 0)
			k->fd = anser_dial_fd(k->dial);
	}
	if (r == -EPROTONOSUPPORT) {
		/* this node cannot carry it (UDP over vmess...): not a failure
		 * worth a warning, but the group must not pick it for that */
		anser_health_record(c->h, node, t, -2);
		g_ptr_array_remove_fast(c->inflight, k);
		check_free(k);
		return;
	}
	if (r < 0) {
		finish(k, false);
		return;
	}
	k->timer = g_timeout_add((guint)check_timeout_ms(c), on_timeout, k);
	if (!(udp ? udp_step(k) : tcp_step(k)))
		finish(k, false);
}

/* Starts queued checks up to the limit (checks that fail at once come
 * back here through finish(): the flag keeps that from recursing), and
 * ends the round when nothing is left. */
static void start_more(struct anser_checker *c)
{
	c->starting = true;
	while (c->inflight->len < MAX_INFLIGHT && c->queue->len > 0) {
		struct pending p = g_array_index(c->queue, struct pending, c->queue->len - 1);
		g_array_set_size(c->queue, c->queue->len - 1);
		start_check(c, p.node, p.t);
	}
	c->starting = false;
	if (c->running && c->inflight->len == 0 && c->queue->len == 0)
		round_end(c);
}

static void round_start(struct anser_checker *c)
{
	const struct anser_config *cfg = c->gen->cfg;
	c->next_round = 0;
	if (c->running)
		return;
	c->running = true;
	c->round_checks = 0;
	bool *in_group = g_new0(bool, cfg->n_nodes + 1);
	for (size_t gi = 0; gi < cfg->n_groups; gi++)
		for (size_t k = 0; k < cfg->groups[gi].n_nodes; k++)
			in_group[cfg->groups[gi].nodes[k]] = true;
	for (size_t i = cfg->n_nodes; i-- > 0;) {
		if (!in_group[i])
			continue;
		for (int t = ANSER_NT_N; t-- > 0;) {
			struct pending p = { i, (enum anser_nettype)t };
			g_array_append_val(c->queue, p);
			c->round_checks++;
		}
	}
	g_free(in_group);
	start_more(c);
}

struct anser_checker *anser_checker_new(void)
{
	struct anser_checker *c = g_new0(struct anser_checker, 1);
	c->queue = g_array_new(false, false, sizeof(struct pending));
	c->inflight = g_ptr_array_new();
	c->waiters = g_array_new(false, false, sizeof(struct done_cb));
	return c;
}

static void stop(struct anser_checker *c)
{
	while (c->inflight->len > 0) {
		struct check *k = g_ptr_array_steal_index_fast(c->inflight, c->inflight->len - 1);
		check_free(k);
	}
	g_array_set_size(c->queue, 0);
	if (c->next_round)
		g_source_remove(c->next_round);
	c->next_round = 0;
	c->running = false;
	anser_gen_unref(c->gen);
	anser_health_unref(c->h);
	g_free(c->addr);
	c->gen = NULL;
	c->h = NULL;
	c->addr = NULL;
}

void anser_checker_set(struct anser_checker *c, struct anser_gen *gen, struct anser_health *h)
{
	stop(c);
	if (!gen || !h)
		return;
	c->gen = anser_gen_ref(gen);
	c->h = anser_health_ref(h);
	c->addr = g_new0(struct sockaddr_storage, gen->cfg->n_nodes + 1);
	for (size_t i = 0; i < gen->cfg->n_nodes; i++)
		(void)anser_node_resolve(&gen->cfg->nodes[i], &c->addr[i]);
	round_start(c);
}

int anser_checker_test(struct anser_checker *c, const char *group,
		       void (*done)(void *ud, unsigned n_checks), void *ud)
{
	if (!c->gen)
		return -ENOENT;
	const struct anser_config *cfg = c->gen->cfg;
	size_t gi = 0;
	for (; group && gi < cfg->n_groups; gi++)
		if (strcmp(cfg->groups[gi].name, group) == 0)
			break;
	if (group && gi == cfg->n_groups)
		return -ENOENT;
	struct done_cb d = { done, ud };
	g_array_append_val(c->waiters, d);
	if (c->running)
		return -EBUSY;
	if (c->next_round)
		g_source_remove(c->next_round);
	c->next_round = 0;
	round_start(c);
	return 0;
}

void anser_checker_on_change(struct anser_checker *c, void (*fn)(void *ud), void *ud)
{
	c->on_change = fn;
	c->on_change_ud = ud;
}

void anser_checker_free(struct anser_checker *c)
{
	if (!c)
		return;
	stop(c);
	for (guint i = 0; i < c->waiters->len; i++) {
		struct done_cb *d = &g_array_index(c->waiters, struct done_cb, i);
		d->fn(d->ud, 0);
	}
	g_array_free(c->waiters, true);
	g_array_free(c->queue, true);
	g_ptr_array_free(c->inflight, true);
	g_free(c);
}
