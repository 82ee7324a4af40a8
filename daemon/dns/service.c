// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The DNS service thread: one epoll loop over the listeners, one UDP
 * socket per upstream, an eventfd (a new setup, or stop) and a timer
 * (retries and timeouts). Queries in flight are keyed by (upstream, id)
 * for the answers and by question for coalescing.
 */
#include "service-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../bpf/anser_abi.h"
#include "../util/log.h"

#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif

/* CLOCK_MONOTONIC in microseconds. */
static uint64_t mono_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

int64_t dns_now_ms(void)
{
	return (int64_t)(mono_us() / 1000u);
}

/* The time the thread's current wakeup began, read once for all the
 * queries it handles: a cache hit is a few microseconds, a clock read a
 * tenth of that, and TTLs count in seconds. */
static int64_t wakeup_ms(const struct anser_dns_service *s)
{
	return (int64_t)(s->woke_us / 1000u);
}

static void conf_free(struct conf *c)
{
	if (!c)
		return;
	anser_dns_router_free(c->router);
	for (size_t i = 0; i < c->n_ups; i++) {
		if (c->ups[i].fd >= 0)
			close(c->ups[i].fd);
		dns_h2_close(&c->ups[i]);
		if (c->ups[i].tls)
			anser_stream_free(c->ups[i].tls); /* and its fd */
		else if (c->ups[i].tfd >= 0)
			close(c->ups[i].tfd);
		if (c->ups[i].tout)
			g_byte_array_unref(c->ups[i].tout);
		g_free(c->ups[i].tin);
		g_free(c->ups[i].name);
	}
	g_free(c->ups);
	for (size_t i = 0; i < c->n_listeners; i++)
		close(c->listeners[i]);
	g_free(c->listeners);
	g_free(c->is_tcp);
	g_free(c->bind);
	if (c->fixed_ttl)
		g_hash_table_unref(c->fixed_ttl);
	g_free(c);
}

static void pending_free(struct pending *p)
{
	g_free(p->key);
	g_free(p->name);
	g_array_unref(p->waiters);
	g_free(p);
}

/* ------------------------------------------------------------- replies */

/* Replies made while a batch of queries is handled go out together with
 * one sendmmsg(); bigger ones, or outside a batch, at once. */
void dns_flush(struct anser_dns_service *s)
{
	struct out_batch *b = &s->outq;
	unsigned done = 0;

	while (done < b->n) {
		int r = sendmmsg(b->fd, b->m + done, b->n - done, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* that one reply is lost (a full socket buffer, a link
			 * with an MTU under 1260 for a 1232-byte reply with DF),
			 * not the ones after it */
			log_debug_errno(errno, "A DNS reply not sent: %m");
			r = 1;
		}
		done += (unsigned)r;
	}
	b->n = 0;
}

static void send_to(struct anser_dns_service *s, const struct waiter *w, const uint8_t *msg,
		    size_t len)
{
	struct out_batch *b = &s->outq;

	if (w->conn) {
		dns_tconn_send(s, w->conn, msg, len);
		return;
	}
	if (w->fd < 0) /* its listener went away in a reload */
		return;
	if (!s->batching || len > sizeof(b->buf[0])) {
		if (sendto(w->fd, msg, len, MSG_DONTWAIT, (const struct sockaddr *)&w->peer,
			   w->peer_len) < 0)
			log_debug_errno(errno, "DNS reply not sent: %m");
		return;
	}
	if (b->n && b->fd != w->fd)
		dns_flush(s);
	unsigned i = b->n++;
	b->fd = w->fd;
	memcpy(b->buf[i], msg, len);
	memcpy(&b->peer[i], &w->peer, w->peer_len);
	b->iov[i] = (struct iovec){ b->buf[i], len };
	b->m[i].msg_hdr = (struct msghdr){ .msg_name = &b->peer[i],
					   .msg_namelen = w->peer_len,
					   .msg_iov = &b->iov[i],
					   .msg_iovlen = 1 };
	if (b->n == BATCH)
		dns_flush(s);
}

static void reply_rcode(struct anser_dns_service *s, const struct waiter *w, int rcode)
{
	uint8_t out[600];
	ssize_t n = anser_dns_error_reply(&w->q, rcode, out, sizeof(out));
	if (n > 0)
		send_to(s, w, out, (size_t)n);
}

/* A response for w: its id, no OPT unless it asked with EDNS, and only
 * the header and question with TC when the whole does not fit its size. */
static void reply_answer(struct anser_dns_service *s, const struct waiter *w, const uint8_t *msg,
			 size_t len)
{
	if (msg != s->out) /* a cached answer is there already */
		memcpy(s->out, msg, len);
	s->out[0] = (uint8_t)(w->q.id >> 8);
	s->out[1] = (uint8_t)w->q.id;
	ssize_t n = (ssize_t)len;
	if (!w->q.edns)
		n = anser_dns_strip_opt(s->out, len);
	if (n < 0)
		return;
	if (!w->conn && (size_t)n > w->q.udp_size) {
		uint8_t tc[600];
		ssize_t t = anser_dns_error_reply(&w->q, ANSER_DNS_NOERROR, tc, sizeof(tc));
		if (t > 0) {
			tc[2] |= 0x02;
			send_to(s, w, tc, (size_t)t);
		}
		return;
	}
	send_to(s, w, s->out, (size_t)n);
}

/* ------------------------------------------------------------ upstream */

static uint16_t fresh_id(struct anser_dns_service *s, int up)
{
	for (;;) {
		uint16_t id;
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = (uint16_t)g_random_int();
		if (!g_hash_table_contains(s->by_id, GUINT_TO_POINTER((guint)up << 16 | id)))
			return id;
	}
}

/* (Re)sends p to its upstream under a new id. false: it cannot go. */
static bool send_pending(struct anser_dns_service *s, struct pending *p)
{
	const struct upstream *u = &s->conf->ups[p->up];
	uint8_t q[600];
	bool tcp = p->tcp || u->ep.scheme == ANSER_DNS_TCP || u->ep.scheme == ANSER_DNS_TLS ||
		   u->ep.scheme == ANSER_DNS_HTTPS;

	if (u->fd < 0 && !tcp)
		return false;
	g_hash_table_remove(s->by_id, GUINT_TO_POINTER((guint)p->up << 16 | p->id));
	p->id = fresh_id(s, p->up);
	ssize_t n = anser_dns_build_query(&p->q, p->id, q, sizeof(q));
	if (n < 0)
		return false;
	struct sockaddr_storage to;
	if (!tcp && u->via && s->hooks.via && /* filed again: the proxy must find it */
	    s->hooks.via(s->hooks.ud, (const struct sockaddr *)&u->ep.addr, true,
			 u->ep.literal ? NULL : u->ep.host, u->fd, &to) < 0)
		return false;
	if (tcp ? !dns_up_tcp_send(s, p->up, q, (size_t)n)
		: send(u->fd, q, (size_t)n, MSG_DONTWAIT) < 0)
		return false;
	g_hash_table_insert(s->by_id, GUINT_TO_POINTER((guint)p->up << 16 | p->id), p);
	p->sent_ms = dns_now_ms();
	p->tries++;
	return true;
}

/* No answer for w: a stale one if allowed, else SERVFAIL. */
static void fail_waiter(struct anser_dns_service *s, const struct waiter *w)
{
	size_t len = 0;
	struct anser_dns_lookup l = { w->q.qname, w->q.qname_len,   w->q.qtype, w->q.qclass,
				      w->q.id,	  s->conf->stale_s, STALE_TTL };
	if (s->conf->optimistic && anser_dns_cache_get(s->cache, &l, dns_now_ms(), s->out,
						       sizeof(s->out), &len) != ANSER_DNS_MISS) {
		reply_answer(s, w, s->out, len);
		return;
	}
	reply_rcode(s, w, ANSER_DNS_SERVFAIL);
}

static void fail_pending(struct anser_dns_service *s, struct pending *p)
{
	for (guint i = 0; i < p->waiters->len; i++)
		fail_waiter(s, &g_array_index(p->waiters, struct waiter, i));
}

/* An upstream left a query unanswered through all its tries: after 3 in
 * a row it is taken as down for 5 s, doubling to 60 s while probes fail. */
static void upstream_failed(struct anser_dns_service *s, int up)
{
	struct upstream *u = &s->conf->ups[up];

	if (++u->fails < 3 || u->down_until > dns_now_ms())
		return; /* queries sent before it went down fail too: that is one failure */
	u->backoff_ms = u->backoff_ms ? MIN(u->backoff_ms * 2, 60000) : 5000;
	u->down_until = dns_now_ms() + u->backoff_ms;
	log_warning("DNS upstream %s does not answer (%d queries): its queries fail at once for "
		    "%.0f s, then one is tried",
		    u->name, u->fails, (double)u->backoff_ms / 1000);
}

static void upstream_answered(struct upstream *u)
{
	if (u->down_until)
		log_info("DNS upstream %s answers again", u->name);
	u->fails = 0;
	u->down_until = 0;
	u->backoff_ms = 0;
}

static void drop_pending(struct anser_dns_service *s, struct pending *p)
{
	g_hash_table_remove(s->by_id, GUINT_TO_POINTER((guint)p->up << 16 | p->id));
	g_hash_table_remove(s->by_key, p->key);
	pending_free(p);
}

static bool same_question(const struct anser_dns_response *r, const struct anser_dns_query *q)
{
	if (r->qname_len != q->qname_len || r->qtype != q->qtype || r->qclass != q->qclass)
		return false;
	return g_ascii_strncasecmp((const char *)r->qname, (const char *)q->qname, q->qname_len) ==
	       0;
}

static int64_t fixed_ttl_for(const struct conf *c, const char *name)
{
	if (!c->fixed_ttl)
		return -1;
	gpointer v;
	return g_hash_table_lookup_extended(c->fixed_ttl, name, NULL, &v) ? GPOINTER_TO_INT(v) : -1;
}

/* An upstream's answer (msg may be reused after): to the cache and every
 * asker, or over TCP again when UDP truncated it and tcp+udp allows. */
static void prefer_probe_done(struct anser_dns_service *s, struct waiter *w,
			      const struct anser_dns_response *r, const char *name);

void dns_handle_answer(struct anser_dns_service *s, int up, const uint8_t *msg, size_t n,
		       bool via_tcp)
{
	struct anser_dns_response r;
	if (anser_dns_parse_response(msg, n, &r) < 0)
		return;
	struct pending *p = g_hash_table_lookup(s->by_id, GUINT_TO_POINTER((guint)up << 16 | r.id));
	/* a spoofed or late answer does not match a question in flight; a
	 * late one still says the upstream is there (after a flood it
	 * answers late for a while: it is slow, not down) */
	if (!p || !same_question(&r, &p->q)) {
		if (s->conf->ups[up].down_until)
			upstream_answered(&s->conf->ups[up]);
		return;
	}
	upstream_answered(&s->conf->ups[up]);
	if (r.tc && !via_tcp && s->conf->ups[up].ep.scheme == ANSER_DNS_TCP_UDP) {
		p->tcp = true;
		p->tries = 0;
		if (send_pending(s, p))
			return;
	}
	/* response rules: accept, reject, or ask another upstream */
	uint8_t addrs[ANSER_DNS_MAX_ADDRS][16];
	int rule;
	for (size_t i = 0; i < r.n_addrs; i++)
		memcpy(addrs[i], r.addrs[i].addr, 16);
	int act = anser_dns_router_response(s->conf->router, p->name, p->q.qtype,
					    (const uint8_t(*)[16])addrs, r.n_addrs, up, &rule);
	if (act >= 0) {
		g_hash_table_remove(s->by_id, GUINT_TO_POINTER((guint)up << 16 | p->id));
		p->up = act;
		p->tcp = false;
		p->tries = 0;
		if (++p->depth <= MAX_DEPTH && send_pending(s, p))
			return;
		log_debug("DNS %s: response rules asked again %d times, giving up", p->name,
			  p->depth - 1);
		for (guint i = 0; i < p->waiters->len; i++)
			reply_rcode(s, &g_array_index(p->waiters, struct waiter, i),
				    ANSER_DNS_SERVFAIL);
		drop_pending(s, p);
		return;
	}
	if (act == ANSER_DNS_REJECT) { /* an empty answer, as for request rules */
		for (guint i = 0; i < p->waiters->len; i++)
			reply_rcode(s, &g_array_index(p->waiters, struct waiter, i),
				    ANSER_DNS_NOERROR);
		drop_pending(s, p);
		return;
	}
	int64_t life = anser_dns_cache_lifetime(&r, fixed_ttl_for(s->conf, p->name));
	if (life >= 0)
		anser_dns_cache_put(s->cache, msg, n, &r, life, dns_now_ms());
	/* the routing first: the asker connects as soon as it has this */
	if (s->hooks.learn && r.rcode == ANSER_DNS_NOERROR) {
		int64_t secs = (life > 0 ? life : (int64_t)r.min_ttl) +
			       (s->conf->optimistic ? s->conf->stale_s : 0);
		for (size_t i = 0; i < r.n_addrs; i++)
			s->hooks.learn(s->hooks.ud, r.addrs[i].addr, p->name,
				       secs > UINT32_MAX ? UINT32_MAX : (uint32_t)secs);
	}
	for (guint i = 0; i < p->waiters->len; i++) {
		struct waiter *w = &g_array_index(p->waiters, struct waiter, i);
		if (w->q.qtype != p->q.qtype)
			prefer_probe_done(s, w, &r, p->name);
		else
			reply_answer(s, w, msg, n);
	}
	drop_pending(s, p);
}

static void on_upstream(struct anser_dns_service *s, int up)
{
	s->batching = true;
	for (;;) {
		ssize_t n = recv(s->conf->ups[up].fd, s->buf, sizeof(s->buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ECONNREFUSED) /* the upstream is down: the timer tells */
				continue;
			break;
		}
		dns_handle_answer(s, up, s->buf, (size_t)n, false);
	}
	dns_flush(s);
	s->batching = false;
}

/* ------------------------------------------------------------- queries */

/* Ask the upstream, or join the query already asking it. */
static void forward(struct anser_dns_service *s, int up, const struct waiter *w, const char *name,
		    uint16_t qtype, bool refresh)
{
	/* an asis server's answer is its own: not shared with other servers' */
	g_autofree char *key =
		(size_t)up < s->conf->n_cfg_ups
			? g_strdup_printf("%s/%u/%u", name, qtype, w->q.qclass)
			: g_strdup_printf("%s/%u/%u@%d", name, qtype, w->q.qclass, up);
	struct pending *p = g_hash_table_lookup(s->by_key, key);
	if (p) {
		if (!refresh && p->waiters->len < MAX_WAITERS) {
			g_array_append_val(p->waiters, *w);
		} else if (!refresh) {
			reply_rcode(s, w, ANSER_DNS_SERVFAIL);
		}
		return;
	}
	const struct upstream *u = &s->conf->ups[up];
	bool naming = !u->ep.literal && !u->resolved; /* its name is not resolved (yet) */
	if (u->down_until > dns_now_ms() || (naming && !u->resolve)) {
		if (!refresh)
			fail_waiter(s, w);
		return;
	}
	if (g_hash_table_size(s->by_key) >= MAX_PENDING) {
		/* bounded: a flood gets answers, not memory */
		if (!refresh)
			reply_rcode(s, w, ANSER_DNS_SERVFAIL);
		return;
	}
	p = g_new0(struct pending, 1);
	p->key = g_steal_pointer(&key);
	p->name = g_strdup(name);
	p->up = up;
	p->q = w->q;
	p->q.qtype = qtype; /* w may wait on another type's answer (prefer_probe) */
	p->waiters = g_array_new(FALSE, FALSE, sizeof(struct waiter));
	if (!refresh)
		g_array_append_val(p->waiters, *w);
	g_hash_table_insert(s->by_key, p->key, p);
	if (naming) { /* sent when the name is resolved (resolve_flush) */
		p->sent_ms = dns_now_ms();
		return;
	}
	if (!send_pending(s, p)) { /* refused at once (ICMP unreachable): a failure too */
		upstream_failed(s, up);
		fail_pending(s, p);
		drop_pending(s, p);
	}
}

/* ipversion_prefer: the type whose records, when a name has them, make
 * the other type's answer empty (dae's meaning); 0 when w's query is not
 * of that other type. */
static uint16_t preferred_over(const struct anser_dns_service *s, const struct waiter *w)
{
	if (s->conf->prefer == 4 && w->q.qtype == QTYPE_AAAA)
		return QTYPE_A;
	if (s->conf->prefer == 6 && w->q.qtype == QTYPE_A)
		return QTYPE_AAAA;
	return 0;
}

/* Whether the cache holds addresses of name of type t (with w's class). */
static enum anser_dns_hit cached_addrs(struct anser_dns_service *s, const struct waiter *w,
				       uint16_t t, bool *has)
{
	size_t n = 0;
	struct anser_dns_response r;
	struct anser_dns_lookup l = { w->q.qname, w->q.qname_len, t, w->q.qclass, w->q.id,
				      0,	  STALE_TTL };
	enum anser_dns_hit hit =
		anser_dns_cache_get(s->cache, &l, wakeup_ms(s), s->out, sizeof(s->out), &n);
	*has = hit != ANSER_DNS_MISS && anser_dns_parse_response(s->out, n, &r) == 0 &&
	       r.rcode == ANSER_DNS_NOERROR && r.n_addrs > 0;
	return hit;
}

static void watch(struct anser_dns_service *s, int fd, uint32_t kind, uint32_t index);
static int open_upstream(struct anser_dns_service *s, struct upstream *u);

/* ------------------------------------------------------------- names */

/* Everything glibc's thread reads is in here: it may outlive the setup. */
struct resolve {
	struct gaicb cb;
	struct addrinfo hints;
	char host[256], port[8];
};

static void resolve_start(struct upstream *u)
{
	struct resolve *r = g_new0(struct resolve, 1);
	struct gaicb *list[1] = { &r->cb };

	r->hints.ai_socktype = SOCK_STREAM; /* one entry per address */
	r->hints.ai_flags = AI_ADDRCONFIG;
	snprintf(r->port, sizeof(r->port), "%u", u->ep.port);
	snprintf(r->host, sizeof(r->host), "%s", u->ep.host);
	r->cb.ar_name = r->host;
	r->cb.ar_service = r->port;
	r->cb.ar_request = &r->hints;
	int e = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (e) {
		log_warning("DNS upstream %s: cannot resolve %s: %s", u->name, u->ep.host,
			    gai_strerror(e));
		g_free(r);
		u->resolve_at = dns_now_ms() + RESOLVE_RETRY_MS;
		return;
	}
	u->resolve = r;
	u->resolve_at = 0;
}

/* A resolve no upstream waits for any more: freed once it has finished
 * (getaddrinfo_a's thread writes into it until then). */
static bool resolve_finished(struct resolve *r)
{
	if (gai_error(&r->cb) == EAI_INPROGRESS)
		return false;
	if (r->cb.ar_result)
		freeaddrinfo(r->cb.ar_result);
	g_free(r);
	return true;
}

static void resolve_orphan(struct anser_dns_service *s, struct upstream *u)
{
	if (!u->resolve)
		return;
	(void)gai_cancel(&u->resolve->cb);
	if (!resolve_finished(u->resolve)) {
		if (!s->orphans)
			s->orphans = g_ptr_array_new();
		g_ptr_array_add(s->orphans, u->resolve);
	}
	u->resolve = NULL;
}

static bool send_pending(struct anser_dns_service *s, struct pending *p);
static void fail_pending(struct anser_dns_service *s, struct pending *p);
static void drop_pending(struct anser_dns_service *s, struct pending *p);

/* The queries that waited for upstream `up`'s name: sent, or failed. */
static void resolve_flush(struct anser_dns_service *s, int up, bool ok)
{
	GList *all = g_hash_table_get_values(s->by_key);
	for (GList *l = all; l; l = l->next) {
		struct pending *p = l->data;
		if (p->up != up || p->tries)
			continue;
		if (!ok || !send_pending(s, p)) {
			fail_pending(s, p);
			drop_pending(s, p);
		}
	}
	g_list_free(all);
}

/* On every tick: the names resolved since, and those to try again. */
static void resolve_poll(struct anser_dns_service *s)
{
	struct conf *c = s->conf;
	int64_t t = dns_now_ms();

	for (guint i = 0; s->orphans && i < s->orphans->len;)
		if (resolve_finished(g_ptr_array_index(s->orphans, i)))
			g_ptr_array_remove_index_fast(s->orphans, i);
		else
			i++;
	for (size_t i = 0; c && i < c->n_cfg_ups; i++) {
		struct upstream *u = &c->ups[i];
		if (u->resolve_at && t >= u->resolve_at)
			resolve_start(u);
		if (!u->resolve || gai_error(&u->resolve->cb) == EAI_INPROGRESS)
			continue;
		int e = gai_error(&u->resolve->cb);
		struct addrinfo *ai = e == 0 ? u->resolve->cb.ar_result : NULL;
		if (ai && ai->ai_addrlen <= sizeof(u->ep.addr)) {
			memcpy(&u->ep.addr, ai->ai_addr, ai->ai_addrlen);
			u->ep.addr_len = ai->ai_addrlen;
			u->resolved = true;
		}
		resolve_finished(u->resolve);
		u->resolve = NULL;
		int r = u->resolved ? open_upstream(s, u) : -EHOSTUNREACH;
		if (r == 0 && u->fd >= 0)
			watch(s, u->fd, EV_UPSTREAM, (uint32_t)i);
		if (u->resolved && r == 0) {
			char a[INET6_ADDRSTRLEN] = "?";
			const struct sockaddr *sa = (const struct sockaddr *)&u->ep.addr;
			inet_ntop(
				sa->sa_family,
				sa->sa_family == AF_INET6
					? (const void *)&((const struct sockaddr_in6 *)sa)
						  ->sin6_addr
					: (const void *)&((const struct sockaddr_in *)sa)->sin_addr,
				a, sizeof(a));
			log_info("DNS upstream %s: %s is %s", u->name, u->ep.host, a);
		} else {
			log_warning("DNS upstream %s: cannot resolve %s (%s); its queries fail, "
				    "tried again in %d s",
				    u->name, u->ep.host, e ? gai_strerror(e) : strerror(-r),
				    RESOLVE_RETRY_MS / 1000);
			u->resolved = false;
			u->resolve_at = t + RESOLVE_RETRY_MS;
		}
		resolve_flush(s, (int)i, u->resolved && r == 0);
	}
}

/* `asis`: the upstream that is the server w's app sent its query to (made
 * the first time: over UDP, or TCP for a query that came over TCP) -- for
 * an app that asked anserd itself, the network's first DNS server -- or
 * -1 when there is none or MAX_ASIS servers are in use. */
static int asis_upstream(struct anser_dns_service *s, const struct waiter *w)
{
	struct conf *c = s->conf;
	bool tcp = w->fd < 0;
	/* an app that asked anserd itself: the network's first server */
	const struct sockaddr_storage *o = w->orig.ss_family ? &w->orig : &s->net_server;
	socklen_t len = o->ss_family == AF_INET6  ? sizeof(struct sockaddr_in6)
			: o->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						  : 0;

	if (!len)
		return -1;
	for (size_t i = c->n_cfg_ups; i < c->n_ups; i++)
		if (c->ups[i].ep.addr_len == len && memcmp(&c->ups[i].ep.addr, o, len) == 0 &&
		    (c->ups[i].ep.scheme == ANSER_DNS_TCP) == tcp)
			return (int)i;
	if (c->n_ups >= c->n_cfg_ups + MAX_ASIS) {
		log_debug("DNS: asis: %d servers in use already", MAX_ASIS);
		return -1;
	}
	struct upstream *u = &c->ups[c->n_ups];
	char host[INET6_ADDRSTRLEN];
	const void *a = o->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)o)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)o)->sin6_addr;
	inet_ntop(o->ss_family, a, host, sizeof(host));
	*u = (struct upstream){ .fd = -1, .tfd = -1 };
	u->ep.scheme = tcp ? ANSER_DNS_TCP : ANSER_DNS_UDP;
	snprintf(u->ep.host, sizeof(u->ep.host), "%s", host);
	u->ep.literal = true;
	memcpy(&u->ep.addr, o, len);
	u->ep.addr_len = len;
	u->ep.port = ntohs(o->ss_family == AF_INET ? ((const struct sockaddr_in *)o)->sin_port
						   : ((const struct sockaddr_in6 *)o)->sin6_port);
	u->name = g_strdup_printf("asis:%s%s", tcp ? "tcp:" : "", host);
	int r = open_upstream(s, u);
	if (r < 0) {
		log_warning_errno(r, "DNS: asis: cannot ask %s: %m", host);
		g_free(u->name);
		return -1;
	}
	if (u->fd >= 0)
		watch(s, u->fd, EV_UPSTREAM, (uint32_t)c->n_ups);
	log_debug("DNS: asis: asking %s as apps did (%s)", host, tcp ? "TCP" : "UDP");
	return (int)c->n_ups++;
}

/* w's question (name: its text), after the checks: request rules, the
 * preferred IP version (unless checked already), the cache, upstream. */
static void resolve(struct anser_dns_service *s, struct waiter *w, const char *name,
		    bool prefer_checked)
{
	int rule;
	int up = anser_dns_router_request(s->conf->router, name, w->q.qtype, &rule);
	if (up == ANSER_DNS_REJECT) { /* dae's reject: an empty answer */
		reply_rcode(s, w, ANSER_DNS_NOERROR);
		return;
	}
	if (up == ANSER_DNS_ASIS) {
		/* the server the app asked, if it asked another than us */
		up = asis_upstream(s, w);
		if (up < 0) {
			reply_rcode(s, w, ANSER_DNS_SERVFAIL);
			return;
		}
	}
	uint16_t pref = prefer_checked ? 0 : preferred_over(s, w);
	if (pref) {
		int pup = anser_dns_router_request(s->conf->router, name, pref, &rule);
		bool has = false;
		if (pup >= 0 && cached_addrs(s, w, pref, &has) == ANSER_DNS_MISS) {
			/* ask for the preferred type first; the answer decides
			 * (prefer_probe_done) */
			forward(s, pup, w, name, pref, false);
			return;
		}
		if (has) { /* the name has the preferred type: nothing of this one */
			reply_rcode(s, w, ANSER_DNS_NOERROR);
			return;
		}
	}
	size_t n = 0;
	struct anser_dns_lookup l = { w->q.qname, w->q.qname_len,
				      w->q.qtype, w->q.qclass,
				      w->q.id,	  s->conf->optimistic ? s->conf->stale_s : 0,
				      STALE_TTL };
	enum anser_dns_hit hit =
		anser_dns_cache_get(s->cache, &l, wakeup_ms(s), s->out, sizeof(s->out), &n);
	if (hit != ANSER_DNS_MISS) {
		reply_answer(s, w, s->out, n);
		if (hit == ANSER_DNS_STALE) /* RFC 8767: refresh behind the answer */
			forward(s, up, w, name, w->q.qtype, true);
		return;
	}
	forward(s, up, w, name, w->q.qtype, false);
}

/* w waited on the answer r for its name's preferred type: with addresses
 * in it, w's own type gets an empty answer; else w is answered as usual. */
static void prefer_probe_done(struct anser_dns_service *s, struct waiter *w,
			      const struct anser_dns_response *r, const char *name)
{
	if (r->rcode == ANSER_DNS_NOERROR && r->n_addrs > 0)
		reply_rcode(s, w, ANSER_DNS_NOERROR);
	else
		resolve(s, w, name, true);
}

void dns_on_query(struct anser_dns_service *s, struct waiter *w, const uint8_t *msg, size_t len)
{
	enum anser_dns_verdict v = anser_dns_parse_query(msg, len, &w->q);
	char name[4 * ANSER_DNS_MAX_NAME + 2];

	if (v == ANSER_DNS_DROP)
		return;
	if (v == ANSER_DNS_REPLY_ERR) {
		reply_rcode(s, w, w->q.rcode);
		return;
	}
	if (anser_dns_name_text(w->q.qname, w->q.qname_len, name, sizeof(name)) < 0) {
		reply_rcode(s, w, ANSER_DNS_FORMERR);
		return;
	}
	resolve(s, w, name, false);
}

/* The server an app sent a datagram to, from the flow id its mark carries. */
static void orig_of(struct anser_dns_service *s, struct msghdr *mh, struct waiter *w)
{
	uint32_t mark = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_MARK &&
		    c->cmsg_len >= CMSG_LEN(sizeof(uint32_t)))
			memcpy(&mark, CMSG_DATA(c), sizeof(mark));
	if (mark && s->hooks.orig_udp && s->hooks.orig_udp(s->hooks.ud, mark, &w->orig) < 0)
		w->orig.ss_family = 0;
}

/* The network's DNS servers, on the service's thread: the first address
 * among them is kept for `asis`, and when it is not the one of before,
 * the cache is emptied (its answers may not hold on this network). */
static void adopt_network(struct anser_dns_service *s, char *const *servers)
{
	struct sockaddr_storage a = { 0 };

	for (size_t i = 0; servers && servers[i]; i++) {
		if (anser_dns_literal_addr(servers[i], 53, &a))
			break;
		log_debug("DNS: the network's server '%s' is no address, skipped", servers[i]);
	}
	if (memcmp(&a, &s->net_server, sizeof(a)) == 0)
		return;
	s->net_server = a;
	size_t dropped = anser_dns_cache_size(s->cache);
	anser_dns_cache_clear(s->cache);
	g_autofree char *list = servers ? g_strjoinv(" ", (char **)servers) : NULL;
	log_info("DNS: the network's servers are now %s; %zu cached answer%s dropped",
		 a.ss_family ? list : "none", dropped, dropped == 1 ? "" : "s");
}

/* Whether listener i of c is one of the takeover listeners (the last ones). */
static bool is_takeover(const struct conf *c, size_t i)
{
	return i >= c->n_listeners - c->n_takeover;
}

/* Up to BATCH queries per recvmmsg(), their replies in one sendmmsg():
 * two system calls for a burst instead of two per query. */
static void on_listener(struct anser_dns_service *s, int fd, bool takeover)
{
	struct in_batch *b = &s->inq;

	s->batching = true;
	for (int turn = 0; turn < 8; turn++) { /* then a turn for the others */
		for (unsigned i = 0; i < BATCH; i++) {
			b->iov[i] = (struct iovec){ b->buf[i], sizeof(b->buf[i]) };
			b->m[i].msg_hdr = (struct msghdr){ .msg_name = &b->peer[i],
							   .msg_namelen = sizeof(b->peer[i]),
							   .msg_iov = &b->iov[i],
							   .msg_iovlen = 1 };
			if (takeover) {
				b->m[i].msg_hdr.msg_control = &b->ctl[i];
				b->m[i].msg_hdr.msg_controllen = sizeof(b->ctl[i]);
			}
		}
		int n = recvmmsg(fd, b->m, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		s->burst += (unsigned)n;
		for (int i = 0; i < n; i++) {
			struct waiter w = { .fd = fd, .peer_len = b->m[i].msg_hdr.msg_namelen };
			memcpy(&w.peer, &b->peer[i], sizeof(w.peer));
			if (takeover)
				orig_of(s, &b->m[i].msg_hdr, &w);
			dns_on_query(s, &w, b->buf[i], b->m[i].msg_len);
		}
		if (n < BATCH)
			break;
	}
	dns_flush(s);
	s->batching = false;
}

static void on_tick(struct anser_dns_service *s)
{
	int64_t t = dns_now_ms();
	GPtrArray *late = g_ptr_array_new();
	GHashTableIter it;
	gpointer k, v;

	resolve_poll(s);
	g_hash_table_iter_init(&it, s->by_key);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (t - ((struct pending *)v)->sent_ms >= TRY_MS &&
		    !s->conf->ups[((struct pending *)v)->up].resolve) /* waits for its name */
			g_ptr_array_add(late, v);
	for (guint i = 0; i < late->len; i++) {
		struct pending *p = g_ptr_array_index(late, i);
		if (p->tries < TRIES && send_pending(s, p))
			continue;
		upstream_failed(s, p->up);
		fail_pending(s, p);
		drop_pending(s, p);
	}
	g_ptr_array_unref(late);
	GPtrArray *idle = g_ptr_array_new();
	g_hash_table_iter_init(&it, s->conns);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (t - ((struct tconn *)v)->last_ms >= IDLE_MS && !((struct tconn *)v)->out->len)
			g_ptr_array_add(idle, v);
	for (guint i = 0; i < idle->len; i++)
		dns_tconn_close(s, g_ptr_array_index(idle, i));
	g_ptr_array_unref(idle);
}

/* ------------------------------------------------------------- thread */

static void watch(struct anser_dns_service *s, int fd, uint32_t kind, uint32_t index)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)kind << 32 | index };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_warning_errno(errno, "DNS service: cannot watch a socket: %m");
}

/* A new setup: watch its sockets, point the askers waiting on the old
 * listeners at the same new ones (the same bind: duplicates, in order),
 * send what was in flight again through the new routes, free the old. */
static void adopt(struct anser_dns_service *s, struct conf *c)
{
	struct conf *old = s->conf;

	s->conf = c;
	s->polling = false; /* the new listeners are all watched below */
	if (old) {
		/* duplicates share the old registrations: take those out first */
		for (size_t i = 0; i < old->n_listeners; i++)
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, old->listeners[i], NULL);
		for (size_t i = 0; i < old->n_ups; i++)
			if (old->ups[i].fd >= 0)
				epoll_ctl(s->epfd, EPOLL_CTL_DEL, old->ups[i].fd, NULL);
	}
	for (size_t i = 0; i < c->n_listeners; i++)
		watch(s, c->listeners[i], EV_LISTENER, (uint32_t)i);
	for (size_t i = 0; i < c->n_ups; i++)
		if (c->ups[i].fd >= 0)
			watch(s, c->ups[i].fd, EV_UPSTREAM, (uint32_t)i);
	for (size_t i = 0; i < c->n_ups; i++)
		if (!c->ups[i].ep.literal)
			resolve_start(&c->ups[i]);
	if (old)
		for (size_t i = 0; i < old->n_ups; i++)
			resolve_orphan(s, &old->ups[i]);
	if (!old)
		return;
	bool same = g_strcmp0(old->bind, c->bind) == 0 && old->n_listeners == c->n_listeners;
	GList *all = g_hash_table_get_values(s->by_key);
	g_hash_table_remove_all(s->by_id);
	for (GList *l = all; l; l = l->next) {
		struct pending *p = l->data;
		for (guint i = 0; i < p->waiters->len; i++) {
			struct waiter *w = &g_array_index(p->waiters, struct waiter, i);
			size_t k = 0;
			while (k < old->n_listeners && old->listeners[k] != w->fd)
				k++;
			w->fd = same && k < c->n_listeners ? c->listeners[k] : -1;
		}
		int rule;
		p->up = anser_dns_router_request(c->router, p->name, p->q.qtype, &rule);
		p->tries = 0;
		if (p->up < 0 || !send_pending(s, p)) {
			fail_pending(s, p);
			g_hash_table_remove(s->by_key, p->key);
			pending_free(p);
		}
	}
	g_list_free(all);
	conf_free(old);
}

/* After a wakeup that read s->burst queries, when they come at HOLD_QPS
 * or more: waits out what is left of HOLD_US since the wakeup began
 * (service-private.h). */
static void hold_for_more(struct anser_dns_service *s)
{
	uint64_t t = mono_us();
	uint64_t span = t - s->win_start_us;
	s->win_count += s->burst;
	if (span >= HOLD_WINDOW_US) {
		s->hot = (uint64_t)s->win_count * 1000000u >= (uint64_t)HOLD_QPS * span;
		s->win_start_us = t;
		s->win_count = 0;
	}
	uint64_t took = t - s->woke_us;
	if (s->hot && s->burst >= HOLD_BATCH && took < HOLD_US) {
		struct timespec hold = { 0, (long)(HOLD_US - took) * 1000L };
		(void)clock_nanosleep(CLOCK_MONOTONIC, 0, &hold, NULL);
	}
}

/* A flood's start and end (service-private.h): the UDP listeners out
 * of the epoll set, read after every hold, or back in it. Adding one that
 * has queries waiting reports it at once: nothing is missed. */
static void set_polling(struct anser_dns_service *s, bool on)
{
	struct conf *c = s->conf;

	if (on == s->polling)
		return;
	s->polling = on;
	for (size_t i = 0; i < c->n_listeners; i++) {
		if (c->is_tcp[i])
			continue;
		if (!on)
			watch(s, c->listeners[i], EV_LISTENER, (uint32_t)i);
		else if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->listeners[i], NULL) < 0)
			log_debug_errno(errno, "DNS service: cannot unwatch a listener: %m");
	}
}

static void poll_listeners(struct anser_dns_service *s)
{
	struct conf *c = s->conf;

	for (size_t i = 0; i < c->n_listeners; i++)
		if (!c->is_tcp[i])
			on_listener(s, c->listeners[i], is_takeover(c, i));
}

static void *service_main(void *ud)
{
	struct anser_dns_service *s = ud;
	struct epoll_event evs[64];

	/* the hold below is HOLD_US, not that plus the default 50 us slack */
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
	for (;;) {
		if (s->burst)
			hold_for_more(s);
		set_polling(s, s->hot && s->burst >= HOLD_BATCH);
		s->burst = 0;
		int n = epoll_wait(s->epfd, evs, 64, s->polling ? 0 : -1);
		if (n < 0 && errno != EINTR)
			break;
		s->woke_us = mono_us();
		if (s->polling)
			poll_listeners(s);
		for (int i = 0; i < n; i++) {
			uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
			uint32_t idx = (uint32_t)evs[i].data.u64;
			if (kind == EV_WAKE) {
				uint64_t v;
				if (read(s->evfd, &v, sizeof(v)) < 0) {
					/* counted wakes: nothing lost */
				}
				pthread_mutex_lock(&s->lock);
				struct conf *c = s->next;
				bool stop = s->stop, net = s->net_pending;
				char **servers = s->net_next;
				s->next = NULL;
				s->net_next = NULL;
				s->net_pending = false;
				pthread_mutex_unlock(&s->lock);
				if (net)
					adopt_network(s, servers);
				g_strfreev(servers);
				if (stop) {
					conf_free(c);
					return NULL;
				}
				if (c)
					adopt(s, c);
				break; /* the events' indexes may belong to the old setup */
			} else if (kind == EV_TIMER) {
				uint64_t v;
				if (read(s->timerfd, &v, sizeof(v)) > 0)
					on_tick(s);
			} else if (kind == EV_LISTENER && idx < s->conf->n_listeners) {
				bool takeover = is_takeover(s->conf, idx);
				if (s->conf->is_tcp[idx])
					dns_on_accept(s, s->conf->listeners[idx], takeover);
				else
					on_listener(s, s->conf->listeners[idx], takeover);
			} else if (kind == EV_CONN) {
				dns_on_conn(s, idx, evs[i].events);
			} else if (kind == EV_UPTCP && idx < s->conf->n_ups) {
				dns_on_upstream_tcp(s, (int)idx, evs[i].events);
			} else if (kind == EV_UPSTREAM && idx < s->conf->n_ups) {
				on_upstream(s, (int)idx);
			}
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ setup */

static const char *option(const struct anser_dns *d, const char *key)
{
	for (size_t i = 0; i < d->n_options; i++)
		if (strcmp(d->options[i].key, key) == 0)
			return d->options[i].value;
	return NULL;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	return ss->ss_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static int open_socket(const struct anser_dns_endpoint *ep, const char *url, bool tcp,
		       bool takeover, int *out, char **why)
{
	int one = 1;
	int fd = socket(ep->addr.ss_family,
			(tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A datagram the datapath steered here carries its flow's id. Only
	 * there: a mark handed up with every datagram costs ~3 % of a
	 * cache hit's time on the other listeners, which never read it. */
	if (!tcp && takeover && setsockopt(fd, SOL_SOCKET, SO_RCVMARK, &one, sizeof(one)) < 0)
		log_debug_errno(errno, "DNS listener: no SO_RCVMARK (asis cannot work): %m");
	if (ep->addr.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* Replies with DF: at most 1232 bytes (anser_dns_parse_query), they
	 * need no fragmenting, and a datagram with DF needs no IP ID from
	 * the kernel's shared generator (~2 % of a cache hit's time). */
	int probe = IP_PMTUDISC_PROBE;
	if (!tcp && ep->addr.ss_family == AF_INET &&
	    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof(probe)) < 0)
		log_debug_errno(errno, "DNS listener: IP_MTU_DISCOVER: %m");
	if (is_loopback(&ep->addr)) {
		/* what the datapath steers to: marked as anserd's (fail_mode:
		 * closed steers only to sockets that carry it) */
		int prio = (int)ANSER_LISTENER_PRIORITY;
		if (setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio)) < 0)
			log_debug_errno(errno, "DNS listener: SO_PRIORITY: %m");
	}
	if (bind(fd, (const struct sockaddr *)&ep->addr, ep->addr_len) < 0 ||
	    (tcp && listen(fd, 128) < 0)) {
		int r = -errno;
		*why = g_strdup_printf("dns bind '%s' (%s): %s", url, tcp ? "tcp" : "udp",
				       strerror(-r));
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

/* One bind URL: a UDP socket, a TCP one, or both (tcp+udp). */
static int open_listener(struct conf *c, const char *url, bool takeover, char **why)
{
	struct anser_dns_endpoint ep;
	const char *w = NULL;

	if (anser_dns_endpoint_parse(url, &ep, &w) < 0) {
		*why = g_strdup_printf("dns bind '%s': %s", url, w);
		return -EINVAL;
	}
	bool udp = ep.scheme == ANSER_DNS_UDP || ep.scheme == ANSER_DNS_TCP_UDP;
	bool tcp = ep.scheme == ANSER_DNS_TCP || ep.scheme == ANSER_DNS_TCP_UDP;
	if (!ep.literal || (!udp && !tcp)) {
		*why = g_strdup_printf("dns bind '%s': listeners are udp://, tcp:// or tcp+udp:// "
				       "on an IP address",
				       url);
		return -EINVAL;
	}
	for (int t = 0; t < 2; t++) {
		if (!(t ? tcp : udp))
			continue;
		int fd = -1, r = open_socket(&ep, url, t, takeover, &fd, why);
		if (r < 0)
			return r;
		c->is_tcp[c->n_listeners] = t;
		c->listeners[c->n_listeners++] = fd;
	}
	return 0;
}

/* c->bind: "udp://a:53,udp://[b]:53" */
static int open_listeners(struct conf *c, char **why)
{
	g_auto(GStrv) urls = g_strsplit(c->bind, ",", -1);
	size_t n = g_strv_length(urls);

	c->listeners = g_new0(int, 2 * n + 1);
	c->is_tcp = g_new0(bool, 2 * n + 1);
	for (size_t i = 0; urls[i]; i++) {
		char *u = g_strstrip(urls[i]);
		if (!*u)
			continue;
		/* the takeover listeners are the last two URLs */
		int r = open_listener(c, u, c->n_takeover && i + 2 >= n, why);
		if (r < 0)
			return r;
	}
	return 0;
}

int dns_up_connect(struct anser_dns_service *s, struct upstream *u, int fd, bool udp)
{
	struct sockaddr_storage to;
	const struct sockaddr *a = (const struct sockaddr *)&u->ep.addr;
	socklen_t len = u->ep.addr_len;
	int r = s->hooks.via ? s->hooks.via(s->hooks.ud, a, udp, u->ep.literal ? NULL : u->ep.host,
					    fd, &to)
			     : 0;

	if (r < 0)
		return r;
	if (r > 0 && !u->via)
		log_info("DNS upstream %s goes through a proxy node, as the routing says", u->name);
	u->via = r > 0;
	if (u->via) {
		a = (const struct sockaddr *)&to;
		len = to.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					       : sizeof(struct sockaddr_in);
	}
	return connect(fd, a, len) < 0 && errno != EINPROGRESS ? -errno : 0;
}

static int open_upstream(struct anser_dns_service *s, struct upstream *u)
{
	if (!u->ep.literal && !u->resolved)
		return 0; /* its socket comes once the name is resolved */
	if (u->ep.scheme == ANSER_DNS_TCP || u->ep.scheme == ANSER_DNS_TLS ||
	    u->ep.scheme == ANSER_DNS_HTTPS)
		return 0; /* its connection is made with the first query */
	if (u->ep.scheme != ANSER_DNS_UDP && u->ep.scheme != ANSER_DNS_TCP_UDP) {
		log_warning("DNS upstream %s: %s:// is not spoken yet; its queries get SERVFAIL",
			    u->name, anser_dns_scheme_name(u->ep.scheme));
		return 0;
	}
	int fd = socket(u->ep.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = dns_up_connect(s, u, fd, true);
	if (r == -EACCES) {
		log_warning("DNS upstream %s: the routing blocks it; its queries get SERVFAIL",
			    u->name);
		close(fd);
		return 0;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	u->fd = fd;
	return 0;
}

/* A port free on loopback now for both UDP and TCP, 0 if none found: the
 * kernel picks one for UDP, and it is taken only if TCP can have the same
 * number too (a TCP listener of anserd's own proxy, or of anything else,
 * may hold it: the listeners would then fail with EADDRINUSE). */
static uint16_t free_loopback_port(int family)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len =
		family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	for (int tries = 0; tries < 16; tries++) {
		uint16_t port = 0;
		socklen_t l = len;
		int u = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int t = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = 0;
		if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&ss, len) == 0 &&
		    getsockname(u, (struct sockaddr *)&ss, &l) == 0 &&
		    bind(t, (struct sockaddr *)&ss, len) == 0)
			port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						       : ((struct sockaddr_in6 *)&ss)->sin6_port);
		if (u >= 0)
			close(u);
		if (t >= 0)
			close(t);
		if (port || u < 0 || t < 0)
			return port;
	}
	return 0;
}

static struct conf *conf_new(struct anser_dns_service *s, const struct anser_config *cfg,
			     char **why)
{
	const struct anser_dns *d = &cfg->dns;
	struct conf *c = g_new0(struct conf, 1);
	const char *v;

	if (anser_dns_router_new(d, &c->router, why) < 0)
		goto fail;
	c->ups = g_new0(struct upstream, d->n_upstreams + MAX_ASIS + 1);
	for (size_t i = 0; i < d->n_upstreams; i++) {
		struct upstream *u = &c->ups[c->n_ups++];
		const char *w = NULL;
		u->fd = -1;
		u->tfd = -1;
		u->name = g_strdup(d->upstreams[i].name);
		if (anser_dns_endpoint_parse(d->upstreams[i].url, &u->ep, &w) < 0) {
			*why = g_strdup_printf("upstream %s: %s", u->name, w);
			goto fail;
		}
		int r = open_upstream(s, u);
		if (r < 0) {
			*why = g_strdup_printf("upstream %s: %s", u->name, strerror(-r));
			goto fail;
		}
	}
	c->n_cfg_ups = c->n_ups;
	v = option(d, "optimistic_cache");
	c->optimistic = v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
	v = option(d, "optimistic_cache_ttl");
	c->stale_s = 60; /* dae's default */
	if (v) {
		int64_t ns = 0;
		if (g_ascii_string_to_signed(v, 10, 0, INT64_MAX, &ns, NULL))
			c->stale_s = ns;
		else {
			char *end;
			double x = g_ascii_strtod(v, &end);
			if (end != v)
				c->stale_s = (int64_t)(x * (*end == 'h'	  ? 3600
							    : *end == 'm' ? 60
									  : 1));
		}
	}
	v = option(d, "ipversion_prefer"); /* 0, 4 or 6: the parser checked */
	c->prefer = v ? atoi(v) : 0;
	v = option(d, "max_cache_size");
	c->cache_size = v ? (size_t)g_ascii_strtoull(v, NULL, 10) : DEFAULT_CACHE;
	if (d->n_fixed_ttl) {
		c->fixed_ttl = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		for (size_t i = 0; i < d->n_fixed_ttl; i++)
			g_hash_table_insert(c->fixed_ttl, g_ascii_strdown(d->fixed_ttl[i].key, -1),
					    GINT_TO_POINTER(atoi(d->fixed_ttl[i].value)));
	}
	const char *bind = option(d, "bind") ? option(d, "bind") : "";
	if (c->n_ups) {
		/* the apps' DNS (port 53) comes to listeners on loopback: the
		 * ones of the running setup, or on free ports */
		c->takeover4 = s->cur_takeover4 ? s->cur_takeover4 : free_loopback_port(AF_INET);
		c->takeover6 = s->cur_takeover6 ? s->cur_takeover6 : free_loopback_port(AF_INET6);
	}
	if (c->takeover4 && c->takeover6) {
		c->bind = g_strdup_printf("%s%stcp+udp://127.0.0.1:%u,tcp+udp://[::1]:%u", bind,
					  *bind ? "," : "", c->takeover4, c->takeover6);
		c->n_takeover = 4;
	} else {
		c->takeover4 = c->takeover6 = 0;
		c->bind = g_strdup(bind);
	}
	if (g_strcmp0(c->bind, s->cur_bind) == 0) {
		/* the same listeners: the new setup gets their duplicates */
		c->listeners = g_new0(int, s->n_cur_listeners + 1);
		c->is_tcp = g_memdup2(s->cur_is_tcp, (s->n_cur_listeners + 1) * sizeof(bool));
		for (size_t i = 0; i < s->n_cur_listeners; i++) {
			int fd = fcntl(s->cur_listeners[i], F_DUPFD_CLOEXEC, 0);
			if (fd < 0) {
				*why = g_strdup_printf("dns bind: %s", strerror(errno));
				goto fail;
			}
			c->listeners[c->n_listeners++] = fd;
		}
		return c;
	}
	if (open_listeners(c, why) < 0)
		goto fail;
	return c;
fail:
	conf_free(c);
	return NULL;
}

int anser_dns_service_apply(struct anser_dns_service **sp, const struct anser_config *cfg,
			    const struct anser_dns_hooks *hooks, char **why)
{
	struct anser_dns_service *s = *sp;
	bool fresh = !s;

	*why = NULL;
	if (!s) {
		if (!cfg->dns.present)
			return 0;
		s = g_new0(struct anser_dns_service, 1);
		if (hooks)
			s->hooks = *hooks;
		pthread_mutex_init(&s->lock, NULL);
		s->epfd = epoll_create1(EPOLL_CLOEXEC);
		s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		s->by_id = g_hash_table_new(NULL, NULL);
		s->by_key = g_hash_table_new(g_str_hash, g_str_equal);
		s->conns = g_hash_table_new(NULL, NULL);
	}
	struct conf *c = conf_new(s, cfg, why);
	if (!c) {
		if (fresh)
			anser_dns_service_free(s);
		return -EINVAL;
	}
	/* what the caller's side knows of the listeners, for the next reload */
	g_free(s->cur_bind);
	s->cur_bind = g_strdup(c->bind);
	g_free(s->cur_listeners);
	s->cur_listeners = g_memdup2(c->listeners, (c->n_listeners + 1) * sizeof(int));
	g_free(s->cur_is_tcp);
	s->cur_is_tcp = g_memdup2(c->is_tcp, (c->n_listeners + 1) * sizeof(bool));
	s->n_cur_listeners = c->n_listeners;
	s->cur_takeover4 = c->takeover4;
	s->cur_takeover6 = c->takeover6;
	if (fresh) {
		s->cache = anser_dns_cache_new(c->cache_size);
		struct itimerspec t = { { 0, TICK_MS * 1000000L }, { 0, TICK_MS * 1000000L } };
		timerfd_settime(s->timerfd, 0, &t, NULL);
		watch(s, s->evfd, EV_WAKE, 0);
		watch(s, s->timerfd, EV_TIMER, 0);
		adopt(s, c);
		if (pthread_create(&s->thread, NULL, service_main, s) != 0) {
			anser_dns_service_free(s);
			*why = g_strdup("cannot start the DNS thread");
			return -EAGAIN;
		}
		s->running = true;
		*sp = s;
		size_t n = c->n_listeners - c->n_takeover;
		log_info("DNS service: %zu listener%s, %zu upstream%s%s", n, n == 1 ? "" : "s",
			 c->n_ups, c->n_ups == 1 ? "" : "s",
			 c->n_takeover ? ", taking over the apps' DNS" : "");
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	conf_free(s->next); /* a setup the thread had not taken yet */
	s->next = c;
	pthread_mutex_unlock(&s->lock);
	uint64_t one = 1;
	if (write(s->evfd, &one, sizeof(one)) < 0)
		log_warning_errno(errno, "DNS service: cannot wake the thread: %m");
	return 0;
}

void anser_dns_service_takeover_ports(const struct anser_dns_service *s, uint16_t *v4, uint16_t *v6)
{
	*v4 = s ? s->cur_takeover4 : 0;
	*v6 = s ? s->cur_takeover6 : 0;
}

void anser_dns_service_set_network(struct anser_dns_service *s, char *const *servers)
{
	if (!s || !s->running)
		return;
	pthread_mutex_lock(&s->lock);
	g_strfreev(s->net_next);
	s->net_next = g_strdupv((char **)servers);
	s->net_pending = true;
	pthread_mutex_unlock(&s->lock);
	uint64_t one = 1;
	if (write(s->evfd, &one, sizeof(one)) < 0)
		log_warning_errno(errno, "DNS service: cannot wake the thread: %m");
}

void anser_dns_service_free(struct anser_dns_service *s)
{
	if (!s)
		return;
	if (s->running) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_mutex_unlock(&s->lock);
		uint64_t one = 1;
		if (write(s->evfd, &one, sizeof(one)) < 0) {
			/* the thread is gone already */
		}
		pthread_join(s->thread, NULL);
	}
	conf_free(s->next);
	g_strfreev(s->net_next);
	if (s->by_key) {
		GHashTableIter it;
		gpointer k, v;
		g_hash_table_iter_init(&it, s->by_key);
		while (g_hash_table_iter_next(&it, &k, &v))
			pending_free(v);
		g_hash_table_unref(s->by_key);
		g_hash_table_unref(s->by_id);
	}
	if (s->conns) {
		GHashTableIter it;
		gpointer k, v;
		g_hash_table_iter_init(&it, s->conns);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			struct tconn *c = v;
			close(c->fd);
			g_byte_array_unref(c->out);
			g_free(c);
		}
		g_hash_table_unref(s->conns);
	}
	for (size_t i = 0; s->conf && i < s->conf->n_ups; i++)
		resolve_orphan(s, &s->conf->ups[i]);
	conf_free(s->conf);
	if (s->orphans) {
		/* a lookup still running (the resolver waits for a server):
		 * its thread writes into it, so it stays, reachable from here */
		static GPtrArray *running;
		for (guint i = 0; i < s->orphans->len; i++) {
			struct resolve *r = g_ptr_array_index(s->orphans, i);
			if (!resolve_finished(r)) {
				if (!running)
					running = g_ptr_array_new();
				g_ptr_array_add(running, r);
			}
		}
		g_ptr_array_unref(s->orphans);
	}
	anser_dns_cache_free(s->cache);
	close(s->epfd);
	close(s->evfd);
	close(s->timerfd);
	g_free(s->cur_bind);
	g_free(s->cur_listeners);
	g_free(s->cur_is_tcp);
	pthread_mutex_destroy(&s->lock);
	g_free(s);
}
