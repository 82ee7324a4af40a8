// SPDX-License-Identifier: GPL-2.0-or-later
/* The proxy object: listeners, worker threads and their epoll loops,
 * generation slots, and the session registry that listings read. */
#include "proxy-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../outbound/outbound.h"
#include "../util/log.h"

#define MAX_WORKERS	 64
#define SCAN_INTERVAL_MS 1000

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* --- generations --- */

struct pgen *pgen_ref(struct pgen *g)
{
	if (g)
		atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	return g;
}

void pgen_unref(struct pgen *g)
{
	if (!g || atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	anser_gen_unref(g->gen);
	anser_health_unref(g->health);
	free(g->node_addr);
	free(g);
}

void anser_proxy_set_gen(struct anser_proxy *p, struct anser_gen *gen, struct anser_health *health)
{
	if (!gen || gen->slot >= ANSER_GENS)
		return;
	struct pgen *g = calloc(1, sizeof(*g));
	size_t n = gen->cfg ? gen->cfg->n_nodes : 0;
	if (g && n)
		g->node_addr = calloc(n, sizeof(*g->node_addr));
	if (!g || (n && !g->node_addr)) {
		/* Keeping the old slot is safer than leaving it empty. */
		log_error("Failed to install generation %llu: out of memory",
			  (unsigned long long)gen->number);
		free(g);
		return;
	}
	atomic_init(&g->refs, 1);
	g->gen = anser_gen_ref(gen);
	g->health = anser_health_ref(health);
	/* Resolve outside the lock: workers must never wait on DNS. */
	for (size_t i = 0; i < n; i++)
		(void)anser_node_resolve(&gen->cfg->nodes[i], &g->node_addr[i]);

	pthread_mutex_lock(&p->lock);
	struct pgen *old = p->slots[gen->slot];
	p->slots[gen->slot] = g;
	pthread_mutex_unlock(&p->lock);
	pgen_unref(old);
}

struct pgen *proxy_gen_get(struct anser_proxy *p, unsigned slot)
{
	if (slot >= ANSER_GENS)
		return NULL;
	pthread_mutex_lock(&p->lock);
	struct pgen *g = pgen_ref(p->slots[slot]);
	pthread_mutex_unlock(&p->lock);
	return g;
}

uint32_t proxy_mark(const struct pgen *gen, const struct anser_flow *f)
{
	if (!gen)
		return 0;
	const struct anser_config *cfg = gen->gen->cfg;
	if (f->rule == ANSER_RULE_FALLBACK)
		return cfg->fallback_mark;
	return f->rule < cfg->n_rules ? cfg->rules[f->rule].mark : 0;
}

uint64_t proxy_sniff_ms(struct anser_proxy *p, const struct anser_config *cfg,
			const struct anser_flow *f)
{
	if (cfg->dial_mode == ANSER_DIAL_IP || cfg->sniffing_timeout_ns <= 0 ||
	    !proxy_name_usable(p, cfg->dial_mode, f->daddr, NULL))
		return 0;
	uint64_t ms = (uint64_t)(cfg->sniffing_timeout_ns + 999999) / 1000000;
	return ms ? ms : 1;
}

bool proxy_name_usable(struct anser_proxy *p, enum anser_dial_mode mode, const uint8_t daddr[16],
		       const char *name)
{
	if (mode != ANSER_DIAL_DOMAIN)
		return true;
	return p->dp && anser_datapath_named(p->dp, daddr, name);
}

/* The outbound a rule of cfg's decides (rule: as the datapath reports
 * it; made ANSER_RULE_FALLBACK for the fallback). */
static unsigned rule_outbound(const struct anser_config *cfg, unsigned *rule)
{
	if (*rule == ANSER_RULE_BUILTIN)
		return ANSER_OUT_DIRECT;
	if (*rule == ANSER_RULE_FALLBACK || *rule >= cfg->n_rules) {
		*rule = ANSER_RULE_FALLBACK;
		return cfg->fallback;
	}
	return cfg->rules[*rule].outbound;
}

int anser_proxy_route_own(struct anser_proxy *p, const struct sockaddr *dst, bool udp,
			  const char *name, struct anser_flow *f)
{
	if (!p->dp)
		return 0;
	unsigned slot = anser_datapath_active_slot(p->dp);
	struct pgen *g = proxy_gen_get(p, slot);
	if (!g)
		return 0;
	memset(f, 0, sizeof(*f));
	f->family = (uint8_t)dst->sa_family;
	f->proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
	f->gen = (uint8_t)slot;
	f->pid = (uint32_t)getpid();
	f->flags = ANSER_FLOW_F_PROXIED | (udp ? ANSER_FLOW_F_CONNECTED : 0);
	snprintf(f->pname, sizeof(f->pname), "anserd");
	if (dst->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)dst;
		f->daddr[10] = f->daddr[11] = 0xff;
		memcpy(f->daddr + 12, &a->sin_addr, 4);
		f->dport = a->sin_port;
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)dst;
		memcpy(f->daddr, &a->sin6_addr, 16);
		f->dport = a->sin6_port;
	}
	/* as a flow of no process (pname() does not hold), named `name` */
	unsigned rule =
		anser_datapath_route_name(p->dp, slot, 0, "", f->daddr, ntohs(f->dport), udp, name);
	unsigned out = rule_outbound(g->gen->cfg, &rule);
	pgen_unref(g);
	f->rule = (uint16_t)rule;
	f->outbound = (uint16_t)out;
	if (out == ANSER_OUT_BLOCK)
		return -EACCES;
	return out >= ANSER_OUT_FIRST_GROUP;
}

bool proxy_reroute(struct anser_proxy *p, struct anser_flow *f, const char *name)
{
	if (!p->dp)
		return false;
	struct pgen *g = proxy_gen_get(p, f->gen);
	if (!g)
		return false;
	const struct anser_config *cfg = g->gen->cfg;
	unsigned rule = anser_datapath_route_name(p->dp, f->gen, f->pid, f->pname, f->daddr,
						  ntohs(f->dport), f->proto == IPPROTO_UDP, name);
	unsigned out = rule_outbound(cfg, &rule);
	bool changed = out != f->outbound || rule != f->rule;
	if (changed) {
		const char *on = anser_config_outbound_name(cfg, out);
		log_debug("%s flow of %s to %s re-routed by its name to %s",
			  f->proto == IPPROTO_UDP ? "UDP" : "TCP", f->pname, name, on ? on : "?");
		f->outbound = (uint16_t)out;
		f->rule = (uint16_t)rule;
	}
	pgen_unref(g);
	return changed;
}

int proxy_route(struct anser_proxy *p, const struct anser_flow *f, struct pgen **gen, int *node)
{
	*gen = NULL;
	*node = -1;
	if (f->outbound == ANSER_OUT_DIRECT)
		return 0;
	if (f->outbound == ANSER_OUT_BLOCK)
		return -EACCES;

	struct pgen *g = proxy_gen_get(p, f->gen);
	if (!g) {
		log_warning("Flow of %s (pid %u) names generation slot %u, which is empty",
			    f->pname, f->pid, f->gen);
		return -ESTALE;
	}
	const struct anser_config *cfg = g->gen->cfg;
	size_t group = (size_t)f->outbound - ANSER_OUT_FIRST_GROUP;
	enum anser_nettype t =
		(f->proto == IPPROTO_UDP ? ANSER_NT_UDP4 : ANSER_NT_TCP4) + (f->family == AF_INET6);
	int i = anser_group_pick(g->health, group, t);
	if (i < 0 && group < cfg->n_groups && cfg->groups[group].dead_direct) {
		/* when_dead: direct: the flow goes out directly, from anserd */
		log_debug("Flow of %s (pid %u): group %s has no live node for %s, going direct",
			  f->pname, f->pid, cfg->groups[group].name, anser_nettype_name(t));
		pgen_unref(g);
		return 0;
	}
	if (i < 0 || (size_t)i >= cfg->n_nodes) {
		log_warning("Flow of %s (pid %u) to group %s: no live node for %s, failing it",
			    f->pname, f->pid, group < cfg->n_groups ? cfg->groups[group].name : "?",
			    anser_nettype_name(t));
		pgen_unref(g);
		return -ENOENT;
	}
	if (g->node_addr[i].ss_family == 0) {
		log_warning("Node %s has no address (host '%s' did not resolve)",
			    cfg->nodes[i].name, cfg->nodes[i].host);
		pgen_unref(g);
		return -EHOSTUNREACH;
	}
	*gen = g;
	*node = i;
	return 0;
}

/* --- sessions --- */

static void set_route(struct sess *s, struct pgen *gen, int node)
{
	s->gen = gen;
	s->node = node;
	snprintf(s->node_name, sizeof(s->node_name), "%s",
		 gen ? gen->gen->cfg->nodes[node].name : "direct");
}

void sess_init(struct sess *s, const char *proto, const struct anser_flow *flow,
	       const struct sockaddr_storage *src, struct pgen *gen, int node,
	       void (*close_fn)(struct worker *, struct sess *, bool),
	       void (*on_timeout)(struct worker *, struct sess *))
{
	s->proto = proto;
	s->flow = *flow;
	s->src = *src;
	s->close = close_fn;
	s->on_timeout = on_timeout;
	set_route(s, gen, node);
}

void sess_set_route(struct worker *w, struct sess *s, struct pgen *gen, int node,
		    const struct anser_flow *flow)
{
	struct anser_proxy *p = w->p;
	struct pgen *old;

	pthread_mutex_lock(&p->lock);
	old = s->gen;
	set_route(s, gen, node);
	s->flow.rule = flow->rule;
	s->flow.outbound = flow->outbound;
	pthread_mutex_unlock(&p->lock);
	pgen_unref(old);
}

void sess_set_domain(struct worker *w, struct sess *s, const char *name)
{
	pthread_mutex_lock(&w->p->lock);
	snprintf(s->domain, sizeof(s->domain), "%s", name);
	pthread_mutex_unlock(&w->p->lock);
}

void wtimer_stop(struct worker *w, struct wtimer *t)
{
	if (!t->fn)
		return;
	if (t->prev)
		t->prev->next = t->next;
	else
		w->due_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		w->due_tail = t->prev;
	t->prev = t->next = NULL;
	t->fn = NULL;
}

void wtimer_start(struct worker *w, struct wtimer *t, uint64_t due,
		  void (*fn)(struct worker *w, struct wtimer *t))
{
	wtimer_stop(w, t);
	t->due = due;
	t->fn = fn;
	/* Timers of one worker mostly wait equally long: walk from the tail. */
	struct wtimer *after = w->due_tail;
	while (after && after->due > due)
		after = after->prev;
	t->prev = after;
	t->next = after ? after->next : w->due_head;
	if (t->next)
		t->next->prev = t;
	else
		w->due_tail = t;
	if (after)
		after->next = t;
	else
		w->due_head = t;
}

static void run_timers(struct worker *w, uint64_t now)
{
	while (w->due_head && w->due_head->due <= now) {
		struct wtimer *t = w->due_head;
		void (*fn)(struct worker *, struct wtimer *) = t->fn;
		wtimer_stop(w, t);
		fn(w, t);
	}
}

void sess_attach(struct worker *w, struct sess *s)
{
	s->w_prev = NULL;
	s->w_next = w->sessions;
	if (w->sessions)
		w->sessions->w_prev = s;
	w->sessions = s;

	struct anser_proxy *p = w->p;
	pthread_mutex_lock(&p->lock);
	s->reg_prev = NULL;
	s->reg_next = p->sessions;
	if (p->sessions)
		p->sessions->reg_prev = s;
	p->sessions = s;
	s->registered = true;
	pthread_mutex_unlock(&p->lock);
}

void sess_kill(struct worker *w, struct sess *s, bool reset)
{
	if (s->dead)
		return;
	s->dead = true;
	wtimer_stop(w, &s->timer);

	struct anser_proxy *p = w->p;
	if (s->registered) {
		pthread_mutex_lock(&p->lock);
		if (s->reg_prev)
			s->reg_prev->reg_next = s->reg_next;
		else
			p->sessions = s->reg_next;
		if (s->reg_next)
			s->reg_next->reg_prev = s->reg_prev;
		pthread_mutex_unlock(&p->lock);
		s->registered = false;
	}
	if (s->w_prev)
		s->w_prev->w_next = s->w_next;
	else if (w->sessions == s)
		w->sessions = s->w_next;
	if (s->w_next)
		s->w_next->w_prev = s->w_prev;

	s->close(w, s, reset);
	pgen_unref(s->gen);
	s->gen = NULL;
	s->dead_next = w->dead;
	w->dead = s;
}

static void reap(struct worker *w)
{
	while (w->dead) {
		struct sess *s = w->dead;
		w->dead = s->dead_next;
		free(s);
	}
}

int epoll_set(struct worker *w, int fd, struct handler *h, uint32_t *cur, uint32_t want)
{
	if (want == *cur)
		return 0;
	struct epoll_event ev = { .events = want, .data.ptr = h };
	int r;
	if (want == 0)
		r = epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
	else if (*cur == 0)
		r = epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
	else
		r = epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev);
	if (r < 0)
		return -errno;
	*cur = want;
	return 0;
}

unsigned anser_proxy_n_sessions(struct anser_proxy *p)
{
	unsigned n = 0;
	pthread_mutex_lock(&p->lock);
	for (struct sess *s = p->sessions; s; s = s->reg_next)
		n++;
	pthread_mutex_unlock(&p->lock);
	return n;
}

static void fill_names(struct anser_conn_info *c, const struct sess *s)
{
	const char *out = "direct";
	if (s->gen) {
		const struct anser_config *cfg = s->gen->gen->cfg;
		size_t group = (size_t)s->flow.outbound - ANSER_OUT_FIRST_GROUP;
		if (s->flow.outbound >= ANSER_OUT_FIRST_GROUP && group < cfg->n_groups)
			out = cfg->groups[group].name;
		if (s->node >= 0 && (size_t)s->node < cfg->n_nodes)
			snprintf(c->node, sizeof(c->node), "%s", cfg->nodes[s->node].name);
	}
	snprintf(c->outbound, sizeof(c->outbound), "%s", out);
	c->bytes_up = atomic_load_explicit(&s->bytes_up, memory_order_relaxed);
	c->bytes_down = atomic_load_explicit(&s->bytes_down, memory_order_relaxed);
}

void anser_proxy_list_sessions(struct anser_proxy *p, struct anser_conn_list *l)
{
	pthread_mutex_lock(&p->lock);
	for (struct sess *s = p->sessions; s; s = s->reg_next) {
		struct anser_conn_info *c = anser_conn_list_add(l);
		if (!c)
			break;
		c->cookie = s->flow.cookie;
		c->pid = s->flow.pid;
		snprintf(c->pname, sizeof(c->pname), "%.*s", (int)sizeof(s->flow.pname),
			 s->flow.pname);
		snprintf(c->proto, sizeof(c->proto), "%s", s->proto);
		c->src = s->src;
		anser_flow_dst(&s->flow, &c->dst);
		anser_flow_rule_label(&s->flow, c->rule, sizeof(c->rule));
		memcpy(c->domain, s->domain, sizeof(c->domain));
		c->proxied = true;
		fill_names(c, s);
	}
	pthread_mutex_unlock(&p->lock);
}

/* --- listeners --- */

int proxy_set_transparent(int fd, int family)
{
	int one = 1;
	bool v4 = family == AF_INET;

	return setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6,
			  v4 ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one, sizeof(one)) < 0
		       ? -errno
		       : 0;
}

/* transparent: gateway mode's (bpf/anser.bpf.c, anser_lan_ingress) */
static int open_listener(int family, int type, uint16_t port, bool reuseport, bool transparent,
			 int *fd_out, uint16_t *port_out)
{
	struct sockaddr_storage ss = { 0 };
	int one = 1, r;

	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		s->sin6_family = AF_INET6;
		s->sin6_addr = in6addr_loopback;
		s->sin6_port = htons(port);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			goto fail;
	}
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* marked as anserd's: fail_mode: closed steers only to sockets that
	 * carry it. It needs CAP_NET_ADMIN, as attaching the cgroup programs
	 * does: an anserd that can steer can always set it. */
	int prio = (int)ANSER_LISTENER_PRIORITY;
	if (setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio)) < 0)
		log_debug_errno(errno, "Proxy listener: SO_PRIORITY: %m");
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (type == SOCK_DGRAM) {
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
		/* The flow id rides in skb->mark; without it no datagram can be
		 * mapped back to its destination. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVMARK, &one, sizeof(one)) < 0)
			goto fail;
	}
	/* A LAN client's connection keeps its destination as its local
	 * address: the listener (and what it accepts) may answer from an
	 * address that is not the host's. Datagrams say where they went. */
	if (transparent) {
		bool v4 = family == AF_INET;
		if (proxy_set_transparent(fd, family) < 0)
			goto fail;
		if (type == SOCK_DGRAM && setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6,
						     v4 ? IP_RECVORIGDSTADDR : IPV6_RECVORIGDSTADDR,
						     &one, sizeof(one)) < 0)
			goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, sa_len(&ss)) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 4096) < 0)
		goto fail;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto fail;
	*port_out = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fd_out = fd;
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

int anser_proxy_new(struct anser_datapath *dp, const struct anser_proxy_opts *opts,
		    struct anser_proxy **out)
{
	static const int families[2] = { AF_INET, AF_INET6 };
	struct anser_proxy *p = calloc(1, sizeof(*p));
	int r = 0;

	if (!p)
		return -ENOMEM;
	p->dp = dp;
	if (opts)
		p->opts = *opts;
	if (!p->opts.tcp_idle_timeout)
		p->opts.tcp_idle_timeout = 300;
	if (!p->opts.udp_idle_timeout)
		p->opts.udp_idle_timeout = 60;
	if (!p->opts.dial_timeout)
		p->opts.dial_timeout = 10;
	p->n_workers = p->opts.workers;
	if (!p->n_workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		p->n_workers = n > 0 ? (unsigned)n : 1;
	}
	if (p->n_workers > MAX_WORKERS)
		p->n_workers = MAX_WORKERS;
	pthread_mutex_init(&p->lock, NULL);
	p->tcp_fd[0] = p->tcp_fd[1] = -1;

	p->workers = calloc(p->n_workers, sizeof(*p->workers));
	if (!p->workers) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		w->p = p;
		w->idx = i;
		w->epfd = w->evfd = -1;
		for (int f = 0; f < 4; f++)
			w->udp_fd[f] = -1;
		w->raw_fd[0] = w->raw_fd[1] = -1;
	}

	for (int f = 0; f < 2; f++) {
		r = open_listener(families[f], SOCK_STREAM, 0, false, p->opts.gateway,
				  &p->tcp_fd[f], &p->tcp_port[f]);
		if (r < 0 && f == 0)
			goto fail_log;
		if (r < 0) {
			log_warning_errno(r,
					  "No TCP listener on [::1], IPv6 flows stay direct: %m");
			continue;
		}
		/* One UDP socket per worker in one SO_REUSEPORT group: the kernel
		 * hashes the 4-tuple, so an app source always reaches the same
		 * worker and its NAT session needs no lock. */
		for (unsigned i = 0; i < p->n_workers; i++) {
			r = open_listener(families[f], SOCK_DGRAM, p->udp_port[f], true, false,
					  &p->workers[i].udp_fd[f], &p->udp_port[f]);
			if (r < 0)
				goto fail_log;
		}
		/* Gateway mode: one socket, no SO_REUSEPORT, so that every
		 * datagram of a LAN client reaches one session whatever its
		 * destination (a group would pick by the whole 4-tuple). */
		if (p->opts.gateway) {
			uint16_t port; /* (the kernel finds it in a sockmap) */
			r = open_listener(families[f], SOCK_DGRAM, 0, false, true,
					  &p->workers[0].udp_fd[2 + f], &port);
			if (r < 0)
				goto fail_log;
		}
	}
	*out = p;
	return 0;
fail_log:
	log_error_errno(r, "Failed to open the proxy listeners: %m");
fail:
	anser_proxy_free(p);
	return r;
}

void anser_proxy_set_hooks(struct anser_proxy *p, const struct anser_proxy_hooks *hooks)
{
	if (hooks)
		p->hooks = *hooks;
	else
		memset(&p->hooks, 0, sizeof(p->hooks));
}

int proxy_lan_lookup(struct anser_proxy *p, int proto, const struct sockaddr *src,
		     const struct sockaddr *dst, struct anser_flow *f)
{
	if (p->hooks.lan_lookup)
		return p->hooks.lan_lookup(p->hooks.userdata, proto, src, dst, f);
	return p->dp ? anser_datapath_lan_lookup(p->dp, proto, src, dst, f) : -ENOENT;
}

void anser_proxy_lan_socks(struct anser_proxy *p, int *udp4, int *udp6)
{
	*udp4 = p->workers[0].udp_fd[2];
	*udp6 = p->workers[0].udp_fd[3];
}

void anser_proxy_ports(struct anser_proxy *p, uint16_t *tcp4, uint16_t *tcp6, uint16_t *udp4,
		       uint16_t *udp6)
{
	if (tcp4)
		*tcp4 = p->tcp_port[0];
	if (tcp6)
		*tcp6 = p->tcp_port[1];
	if (udp4)
		*udp4 = p->udp_port[0];
	if (udp6)
		*udp6 = p->udp_port[1];
}

/* --- workers --- */

static void on_eventfd(struct worker *w, struct handler *h, uint32_t events)
{
	/* Nothing to do: the loop checks the counter after the batch. */
}

static void check_timeouts(struct worker *w, uint64_t now)
{
	struct sess *next;
	for (struct sess *s = w->sessions; s; s = next) {
		next = s->w_next;
		if (s->deadline && now >= s->deadline)
			s->on_timeout(w, s);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	char name[16];

	/* named in ps, top and thread dumps */
	snprintf(name, sizeof(name), "anser-w%u", w->idx);
	(void)pthread_setname_np(pthread_self(), name);
	uint64_t next_scan = now_ms() + SCAN_INTERVAL_MS;
	bool stop = false;

	while (!stop) {
		uint64_t now = now_ms();
		/* No sessions, no deadlines: sleep until an event (an idle
		 * laptop's CPU is not woken every second for nothing). Sessions
		 * are only attached by this thread, in the handlers below. */
		int timeout = !w->sessions ? -1 : next_scan > now ? (int)(next_scan - now) : 0;
		if (w->due_head && timeout != 0) {
			uint64_t d = w->due_head->due > now ? w->due_head->due - now : 0;
			if (timeout < 0 || d < (uint64_t)timeout)
				timeout = (int)d;
		}
		int n = epoll_wait(w->epfd, evs, 64, timeout);
		if (n < 0 && errno != EINTR) {
			log_error_errno(errno, "Worker %u: epoll_wait failed: %m", w->idx);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct handler *h = evs[i].data.ptr;
			if (h == &w->ev_h) {
				stop = true;
				continue;
			}
			if (h->s && h->s->dead)
				continue;
			h->fn(w, h, evs[i].events);
		}
		reap(w);
		now = now_ms();
		if (w->due_head && w->due_head->due <= now) {
			run_timers(w, now);
			reap(w);
		}
		if (now >= next_scan) {
			check_timeouts(w, now);
			udp_sniff_sweep(w, now);
			reap(w);
			next_scan = now + SCAN_INTERVAL_MS;
		}
	}
	while (w->sessions)
		sess_kill(w, w->sessions, false);
	reap(w);
	return NULL;
}

static int worker_setup(struct worker *w)
{
	struct anser_proxy *p = w->p;
	struct epoll_event ev;

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->evfd < 0)
		return -errno;
	w->ev_h.fn = on_eventfd;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &w->ev_h };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0)
		return -errno;
	for (int f = 0; f < 2; f++) {
		if (p->tcp_fd[f] < 0)
			continue;
		w->tcp_h[f].fn = tcp_on_accept;
		/* EXCLUSIVE: one worker wakes per connection, not all of them. */
		ev = (struct epoll_event){ .events = EPOLLIN | EPOLLEXCLUSIVE,
					   .data.ptr = &w->tcp_h[f] };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, p->tcp_fd[f], &ev) < 0)
			return -errno;
	}
	return udp_worker_init(w);
}

int anser_proxy_start(struct anser_proxy *p)
{
	int r;

	if (p->started)
		return -EALREADY;
	for (unsigned i = 0; i < p->n_workers; i++) {
		r = worker_setup(&p->workers[i]);
		if (r < 0)
			goto fail;
	}
	p->started = true;
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		r = -pthread_create(&w->thread, NULL, worker_main, w);
		if (r < 0)
			goto fail;
		w->thread_started = true;
	}
	log_debug("Proxy started: %u workers, tcp %u/%u udp %u/%u", p->n_workers, p->tcp_port[0],
		  p->tcp_port[1], p->udp_port[0], p->udp_port[1]);
	return 0;
fail:
	return log_error_errno(r, "Failed to start the proxy workers: %m");
}

void anser_proxy_free(struct anser_proxy *p)
{
	if (!p)
		return;
	for (unsigned i = 0; p->workers && i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		uint64_t one = 1;
		if (w->thread_started && write(w->evfd, &one, sizeof(one)) < 0)
			log_error_errno(errno, "Failed to stop worker %u: %m", i);
	}
	for (unsigned i = 0; p->workers && i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		if (w->thread_started)
			pthread_join(w->thread, NULL);
		udp_worker_fini(w);
		lan_reply_fini(w);
		for (int f = 0; f < 4; f++)
			if (w->udp_fd[f] >= 0)
				close(w->udp_fd[f]);
		if (w->evfd >= 0)
			close(w->evfd);
		if (w->epfd >= 0)
			close(w->epfd);
	}
	for (int f = 0; f < 2; f++)
		if (p->tcp_fd[f] >= 0)
			close(p->tcp_fd[f]);
	for (int i = 0; i < ANSER_GENS; i++)
		pgen_unref(p->slots[i]);
	pthread_mutex_destroy(&p->lock);
	free(p->workers);
	free(p);
}
