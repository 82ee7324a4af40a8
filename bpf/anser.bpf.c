// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Anser's local-app datapath: cgroup hooks that decide each flow's route
 * once (at connect() or at the first sendmsg() to a destination) and steer
 * proxied flows to anserd's loopback listeners.
 *
 *  TCP  connect4/6 rewrites the destination to the TCP listener, keeps the
 *       original in socket storage and files the flow under the socket's
 *       cookie in `tcp_redir`; after accept() anserd finds the app socket's
 *       cookie with one sock_diag lookup of the connection's 4-tuple.
 *  UDP  connect4/6 and sendmsg4/6 rewrite to the UDP listener and give the
 *       (socket, destination) pair a flow id; cgroup_skb/egress stamps the
 *       id into skb->mark, which anserd reads with SO_RCVMARK. recvmsg4/6
 *       turn the source of replies back into the remote's address.
 *
 * Direct flows cost one small ring buffer record (for the connection list)
 * and nothing else; no per-packet work happens for them. What depends
 * only on the process (its name, the pname() conditions it meets) is
 * worked out once per thread and rule generation and kept in task storage.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "anser_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET	    2
#define AF_INET6    10
#define SOCK_STREAM 1
#define SOCK_DGRAM  2

/* Set by anserd before load. */
const volatile __u32 self_tgid = 0;
const volatile __u64 netns_cookie = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE); /* anserd stores single fields */
	__type(key, __u32);
	__type(value, struct anser_ctl);
} ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_GENS);
	__type(key, __u32);
	__type(value, struct anser_gen_info);
} gen_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_GENS *ANSER_MAX_MATCHERS);
	__type(key, __u32);
	__type(value, struct anser_matcher);
} matchers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct anser_lpm_key);
	__type(value, struct anser_bits);
} match_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct anser_pname_key);
	__type(value, __u8);
} pname_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* the app socket's cookie */
	__type(value, struct anser_flow);
} tcp_redir SEC(".maps");

struct udp_id_val {
	__u32 id; /* 0 for flows not proxied */
	__u16 outbound;
	__u16 rule;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct anser_udp_key);
	__type(value, struct udp_id_val);
} udp_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct anser_flow);
} udp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct anser_rev_key);
	__type(value, struct anser_rev_val);
} udp_rev SEC(".maps");

/* Every decision (direct ones included) is reported here for the
 * connection list; anserd drains it lazily: no wakeup per record, only when
 * the ring is half full or a client asks for the list. */
#define FLOW_EVENTS_SIZE (1 << 20)
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOW_EVENTS_SIZE);
} flow_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct anser_sk);
} sk_store SEC(".maps");

/* What the rule engine looks at. The address lives in lkey.data so the
 * DIP lookup needs no copy. */
struct decide {
	struct anser_bits pbits;    /* pname() conditions that hold */
	struct anser_bits dbits;    /* dip() conditions that hold */
	struct anser_bits portbits; /* dport() conditions that hold */
	struct anser_lpm_key lkey;  /* data = destination, v4 mapped */
	__u32 gen;
	__u32 n;
	__u32 ok;
	__u16 out;
	__u16 rule;
	__u8 family; /* AF_INET for v4 and v4-mapped destinations */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 dport; /* BE */
	__u64 cookie;
};

/* Per thread: the process's name and which process conditions of the
 * active rules it meets. Trusted while the thread still has the same mm
 * and argv address (exec() replaces both) and the rules the same version. */
struct proc_info {
	__u64 mm;
	__u64 arg_start;
	__u32 version;
	__u32 pad;
	struct anser_bits pbits;
	char name[ANSER_PNAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct proc_info);
} proc_store SEC(".maps");

static __always_inline struct anser_ctl *get_ctl(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&ctl, &zero);
}

static __always_inline int has_bit(const struct anser_bits *b, __u32 bit)
{
	return bit < 8 * sizeof(b->w) && ((b->w[(bit >> 6) & 1] >> (bit & 63)) & 1);
}

static __always_inline int match_one(const struct anser_matcher *m, struct decide *d)
{
	switch (m->type) {
	case ANSER_M_TRUE:
		return 1;
	case ANSER_M_PNAME:
		return has_bit(&d->pbits, m->arg);
	case ANSER_M_DIP:
		return has_bit(&d->dbits, m->arg);
	case ANSER_M_DPORT:
		return has_bit(&d->portbits, m->arg);
	case ANSER_M_L4PROTO:
		return !!(m->arg & (d->proto == IPPROTO_TCP ? ANSER_L4_TCP : ANSER_L4_UDP));
	case ANSER_M_IPVERSION:
		return !!(m->arg & (d->family == AF_INET ? ANSER_IPV_4 : ANSER_IPV_6));
	}
	return 0;
}

/* Matcher i of generation slot gen with n matchers, or NULL past the end. */
static __always_inline struct anser_matcher *matcher_at(__u32 gen, __u32 n, __u32 i)
{
	__u32 key;

	if (i >= n || i >= ANSER_MAX_MATCHERS)
		return NULL;
	key = gen * ANSER_MAX_MATCHERS + i;
	return bpf_map_lookup_elem(&matchers, &key);
}

static long eval_step(__u32 i, void *data)
{
	struct decide *d = data;
	struct anser_matcher *m = matcher_at(d->gen, d->n, i);

	if (!m)
		return 1;
	if (d->ok && match_one(m, d) == m->negate)
		d->ok = 0;
	if (m->rule_end) {
		if (d->ok) {
			d->out = m->outbound;
			d->rule = m->rule;
			return 1;
		}
		d->ok = 1;
	}
	return 0;
}

/* First matching rule wins; no rule at all (cannot happen with a valid
 * config, which always ends in fallback) means direct. */
/* The dip() and dport() bits of the destination: one trie lookup each. */
static __noinline void lookup_dst_bits(struct decide *d, __u32 slot, __u32 lookups)
{
	struct anser_lpm_key pk = {};
	struct anser_bits *b;

	if (lookups & ANSER_LOOKUP_DIP) {
		d->lkey.prefixlen = 32 + 128;
		d->lkey.set = (slot << 31) | ANSER_LPM_DIP;
		b = bpf_map_lookup_elem(&match_lpm, &d->lkey);
		if (b)
			d->dbits = *b;
	}
	if (lookups & ANSER_LOOKUP_DPORT) {
		pk.prefixlen = 32 + 16;
		pk.set = (slot << 31) | ANSER_LPM_DPORT;
		pk.data[0] = d->dport & 0xff; /* dport is BE: low byte first */
		pk.data[1] = d->dport >> 8;
		b = bpf_map_lookup_elem(&match_lpm, &pk);
		if (b)
			d->portbits = *b;
	}
}

static __always_inline void evaluate(struct decide *d, __u32 slot, const struct anser_gen_info *gi)
{
	if (gi->lookups)
		lookup_dst_bits(d, slot & 1, gi->lookups);
	d->out = ANSER_OUT_DIRECT;
	d->rule = ANSER_RULE_FALLBACK;
	d->gen = slot;
	d->n = gi->n_matchers;
	d->ok = 1;
	bpf_loop(ANSER_MAX_MATCHERS, eval_step, d, 0);
}

struct pbits_scan {
	struct anser_pname_key key;
	struct anser_bits bits;
	__u32 gen;
	__u32 n;
};

static long pbits_step(__u32 i, void *data)
{
	struct pbits_scan *p = data;
	struct anser_matcher *m = matcher_at(p->gen, p->n, i);

	if (!m)
		return 1;
	if (m->type == ANSER_M_PNAME && m->arg < ANSER_PROC_BITS) {
		p->key.set = m->set;
		if (bpf_map_lookup_elem(&pname_set, &p->key))
			p->bits.w[(m->arg >> 6) & 1] |= 1ULL << (m->arg & 63);
	}
	return 0;
}

/* Which process conditions of slot's rules the process `name` meets. */
static __noinline void compute_pbits(const char *name, __u32 slot, __u32 n, struct anser_bits *out)
{
	struct pbits_scan p = {};

	__builtin_memcpy(p.key.name, name, ANSER_PNAME_LEN);
	p.gen = slot & 1;
	p.n = n;
	bpf_loop(ANSER_MAX_MATCHERS, pbits_step, &p, 0);
	*out = p.bits;
}

/* argv[0] is read in chunks so the buffer stays small: the verifier's
 * 512-byte stack limit spans the whole call chain. */
#define ARGV_CHUNK  64
#define ARGV_CHUNKS 8

struct argv_scan {
	char buf[ARGV_CHUNK];
	long n;	   /* bytes read into buf, including the NUL */
	long off;  /* offset of buf in argv[0] */
	long base; /* offset of the basename in argv[0] */
};

static long scan_slash(__u32 i, void *data)
{
	struct argv_scan *a = data;
	char ch;

	if (i >= a->n)
		return 1;
	ch = a->buf[i & (ARGV_CHUNK - 1)];
	if (!ch)
		return 1;
	if (ch == '/')
		a->base = a->off + i + 1;
	return 0;
}

/* Basename of the current process's argv[0] into out (the thread's comm
 * is only 15 bytes and is the thread's name, not the program's). */
static __noinline void read_pname(char *out, unsigned long arg_start)
{
	struct argv_scan a;

	__builtin_memset(out, 0, ANSER_PNAME_LEN);
	if (!arg_start) {
		bpf_get_current_comm(out, 16);
		return;
	}
	a.base = 0;
	for (int chunk = 0; chunk < ARGV_CHUNKS; chunk++) {
		/* A chunk holds ARGV_CHUNK - 1 bytes of text and a NUL. */
		a.off = chunk * (ARGV_CHUNK - 1);
		a.n = bpf_probe_read_user_str(a.buf, sizeof(a.buf), (void *)(arg_start + a.off));
		if (a.n <= 1)
			break;
		bpf_loop(ARGV_CHUNK, scan_slash, &a, 0);
		if (a.n < ARGV_CHUNK)
			break;
	}
	/* Read the basename straight from the process again: simpler for the
	 * verifier than a variable-offset copy out of the stack buffer. */
	if ((a.base == 0 && a.off == 0 && a.n <= 1) ||
	    bpf_probe_read_user_str(out, ANSER_PNAME_LEN, (void *)(arg_start + (a.base & 1023))) <
		    0)
		bpf_get_current_comm(out, 16);
}

static __always_inline void emit_proc(const struct proc_info *p)
{
	struct anser_proc_event *e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);

	if (!e)
		return; /* anserd falls back to /proc for this process */
	e->type = ANSER_EV_PROC;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	__builtin_memcpy(e->pname, p->name, ANSER_PNAME_LEN);
	bpf_ringbuf_submit(e, 0);
}

/* The calling thread's proc_info, current for the rules of `slot`; NULL
 * only when the kernel has no memory for it (the caller fails open). */
static __always_inline struct proc_info *get_proc(__u32 slot, const struct anser_gen_info *gi)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct proc_info *p;

	p = bpf_task_storage_get(&proc_store, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return NULL;
	/* Plain loads through the BTF pointer (the verifier makes them fault-
	 * safe): much cheaper than bpf_probe_read_kernel() calls. */
	struct mm_struct *mm = task->mm;
	__u64 arg_start = mm ? mm->arg_start : 0;
	if (p->mm != (__u64)mm || p->arg_start != arg_start) {
		read_pname(p->name, arg_start);
		p->mm = (__u64)mm;
		p->arg_start = arg_start;
		p->version = 0;
		emit_proc(p);
	}
	if (p->version != gi->version) {
		compute_pbits(p->name, slot, gi->n_matchers, &p->pbits);
		p->version = gi->version;
	}
	return p;
}

static __always_inline int is_v4_builtin_direct(__u32 ip /* BE */)
{
	__u8 first = ip & 0xff;
	/* loopback, 0.0.0.0/8, multicast and broadcast never go to a proxy */
	return first == 127 || first == 0 || (first & 0xf0) == 0xe0 || ip == 0xffffffff;
}

static __always_inline int is_v6_builtin_direct(const __u8 *a)
{
	__u32 w0 = 0, w1 = 0, w2 = 0, w3 = 0;
	__builtin_memcpy(&w0, a, 4);
	__builtin_memcpy(&w1, a + 4, 4);
	__builtin_memcpy(&w2, a + 8, 4);
	__builtin_memcpy(&w3, a + 12, 4);
	if (!w0 && !w1 && !w2 && (w3 == 0 || w3 == bpf_htonl(1)))
		return 1; /* :: and ::1 */
	if (a[0] == 0xff)
		return 1; /* multicast */
	if (!w0 && !w1 && w2 == bpf_htonl(0xffff))
		return is_v4_builtin_direct(w3);
	return 0;
}

static __always_inline int skip_socket(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 1;
	if (netns_cookie && bpf_get_netns_cookie(ctx) != netns_cookie)
		return 1;
	return 0;
}

static __always_inline void set_v4(__u8 *a, __u32 ip)
{
	__builtin_memset(a, 0, 10);
	a[10] = 0xff;
	a[11] = 0xff;
	__builtin_memcpy(a + 12, &ip, 4);
}

/* The decision's fields, shared by struct anser_flow and the ring's
 * struct anser_flow_event (same names, different layouts). */
#define SET_FLOW_FIELDS(f, d, fl)                                                                  \
	do {                                                                                       \
		(f)->cookie = (d)->cookie;                                                         \
		(f)->pid = bpf_get_current_pid_tgid() >> 32;                                       \
		(f)->family = (d)->family;                                                         \
		(f)->proto = (d)->proto;                                                           \
		(f)->outbound = (d)->out;                                                          \
		(f)->rule = (d)->rule;                                                             \
		(f)->gen = (d)->gen;                                                               \
		(f)->flags = (fl);                                                                 \
		(f)->dport = (d)->dport;                                                           \
		__builtin_memcpy((f)->daddr, (d)->lkey.data, 16);                                  \
	} while (0)

static __always_inline void fill_flow(struct anser_flow *f, const struct decide *d, __u32 flags,
				      const struct proc_info *p)
{
	SET_FLOW_FIELDS(f, d, flags);
	__builtin_memcpy(f->pname, p->name, ANSER_PNAME_LEN);
}

static __always_inline void emit_flow(const struct decide *d, __u32 flags)
{
	struct anser_flow_event *f = bpf_ringbuf_reserve(&flow_events, sizeof(*f), 0);
	__u64 wake;

	if (!f)
		return; /* ring full: the list misses this flow, routing does not */
	f->type = ANSER_EV_FLOW;
	f->pad = 0;
	SET_FLOW_FIELDS(f, d, flags);
	wake = bpf_ringbuf_query(&flow_events, BPF_RB_AVAIL_DATA) > FLOW_EVENTS_SIZE / 2
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(f, wake);
}

/* Not inlined: its flow must not share a stack frame with the caller's
 * rule state (the verifier's 512-byte limit spans the call chain). */
static __noinline int record_flow(void *map, const void *key, const struct decide *d, __u32 flags,
				  const struct proc_info *p)
{
	struct anser_flow f = {};

	fill_flow(&f, d, flags, p);
	return bpf_map_update_elem(map, key, &f, BPF_ANY);
}

/* The active slot's rules, or NULL. */
static __always_inline struct anser_gen_info *active_rules(const struct anser_ctl *c, __u32 *slot)
{
	*slot = c->active_gen & 1;
	return bpf_map_lookup_elem(&gen_info, slot);
}

/* Read the destination of ctx into d. Returns 1 if the flow is one the
 * hooks must leave alone (builtin direct). */
static __always_inline int load_dst(struct bpf_sock_addr *ctx, struct decide *d, int v6)
{
	d->dport = (__u16)ctx->user_port;
	d->proto = ctx->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
	if (!v6) {
		__u32 ip = ctx->user_ip4;
		set_v4(d->lkey.data, ip);
		d->family = AF_INET;
		return is_v4_builtin_direct(ip);
	}
	__u32 w[4];
	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	__builtin_memcpy(d->lkey.data, w, 16);
	d->family = (!w[0] && !w[1] && w[2] == bpf_htonl(0xffff)) ? AF_INET : AF_INET6;
	return is_v6_builtin_direct(d->lkey.data);
}

static __always_inline void rewrite_to_listener(struct bpf_sock_addr *ctx, int v6, __u16 port)
{
	if (!v6) {
		ctx->user_ip4 = bpf_htonl(0x7f000001);
	} else {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(port);
}

static __always_inline __u32 alloc_udp_id(struct anser_ctl *c)
{
	__u32 id = __sync_fetch_and_add(&c->next_udp_id, 1) + 1;
	return id ? id : __sync_fetch_and_add(&c->next_udp_id, 1) + 1;
}

static __always_inline int do_connect(struct bpf_sock_addr *ctx, int v6)
{
	struct decide d = {};
	struct anser_gen_info *gi;
	struct proc_info *p;
	struct anser_ctl *c;
	struct anser_sk *s;
	__u32 slot;

	if (ctx->type != SOCK_STREAM && ctx->type != SOCK_DGRAM)
		return 1;
	if (skip_socket(ctx))
		return 1;
	c = get_ctl();
	if (!c || !c->enabled)
		return 1;
	/* A socket re-connected elsewhere loses its old steering. */
	s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, 0);
	if (s) {
		s->redirected = 0;
		s->udp_id = 0;
	}
	if (load_dst(ctx, &d, v6))
		return 1;
	gi = active_rules(c, &slot);
	if (!gi)
		return 1;
	p = get_proc(slot, gi);
	if (!p)
		return 1; /* no memory: fail open */
	d.pbits = p->pbits;
	evaluate(&d, slot, gi);
	d.cookie = bpf_get_socket_cookie(ctx);

	if (d.out == ANSER_OUT_BLOCK)
		return 0; /* connect() fails with EPERM */

	__u16 port = d.proto == IPPROTO_TCP ? (v6 ? c->tcp6_port : c->tcp4_port)
					    : (v6 ? c->udp6_port : c->udp4_port);
	int proxied = d.out >= ANSER_OUT_FIRST_GROUP && port;
	__u8 flags = proxied ? ANSER_FLOW_F_PROXIED : 0;
	if (d.proto == IPPROTO_UDP)
		flags |= ANSER_FLOW_F_CONNECTED;

	emit_flow(&d, flags);
	if (!proxied)
		return 1;
	/* Steered sockets keep their flow in their own storage, for
	 * getpeername(), recvmsg() and the listener's lookup. */
	s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return 1; /* no memory: fail open */
	fill_flow(&s->flow, &d, flags, p);
	if (d.proto == IPPROTO_UDP) {
		__u32 id = alloc_udp_id(c);
		bpf_map_update_elem(&udp_flows, &id, &s->flow, BPF_ANY);
		s->udp_id = id;
	} else {
		/* anserd finds it by the cookie of the socket it accepted from. */
		bpf_map_update_elem(&tcp_redir, &d.cookie, &s->flow, BPF_ANY);
	}
	s->redirected = 1;
	rewrite_to_listener(ctx, v6, port);
	return 1;
}

SEC("cgroup/connect4")
int anser_connect4(struct bpf_sock_addr *ctx)
{
	return do_connect(ctx, 0);
}

SEC("cgroup/connect6")
int anser_connect6(struct bpf_sock_addr *ctx)
{
	return do_connect(ctx, 1);
}

static __always_inline int do_sendmsg(struct bpf_sock_addr *ctx, int v6)
{
	struct decide d = {};
	struct anser_udp_key k = {};
	struct udp_id_val v = {};
	struct udp_id_val *cached;
	struct anser_gen_info *gi;
	struct proc_info *p;
	struct anser_ctl *c;
	struct anser_sk *s;
	__u32 slot;

	if (skip_socket(ctx))
		return 1;
	c = get_ctl();
	if (!c || !c->enabled)
		return 1;
	if (load_dst(ctx, &d, v6)) {
		s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, 0);
		if (s)
			s->udp_id = 0;
		return 1;
	}
	k.cookie = bpf_get_socket_cookie(ctx);
	d.cookie = k.cookie;
	k.dport = d.dport;
	__builtin_memcpy(k.daddr, d.lkey.data, 16);
	cached = bpf_map_lookup_elem(&udp_ids, &k);
	if (cached) {
		v = *cached;
	} else {
		__u8 flags = 0;
		gi = active_rules(c, &slot);
		if (!gi)
			return 1;
		p = get_proc(slot, gi);
		if (!p)
			return 1;
		d.pbits = p->pbits;
		evaluate(&d, slot, gi);
		v.outbound = d.out;
		v.rule = d.rule;
		if (d.out >= ANSER_OUT_FIRST_GROUP && (v6 ? c->udp6_port : c->udp4_port)) {
			v.id = alloc_udp_id(c);
			flags = ANSER_FLOW_F_PROXIED;
			record_flow(&udp_flows, &v.id, &d, flags, p);
		}
		/* The connection list shows a socket by its first destination. */
		if (d.out != ANSER_OUT_BLOCK)
			emit_flow(&d, flags);
		bpf_map_update_elem(&udp_ids, &k, &v, BPF_ANY);
	}
	if (v.outbound == ANSER_OUT_BLOCK)
		return 0; /* sendmsg() fails with EPERM: the datagram is dropped */
	if (!v.id) {
		s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, 0);
		if (s)
			s->udp_id = 0;
		return 1;
	}
	s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return 1;
	s->udp_id = v.id;
	rewrite_to_listener(ctx, v6, v6 ? c->udp6_port : c->udp4_port);
	return 1;
}

SEC("cgroup/sendmsg4")
int anser_sendmsg4(struct bpf_sock_addr *ctx)
{
	return do_sendmsg(ctx, 0);
}

SEC("cgroup/sendmsg6")
int anser_sendmsg6(struct bpf_sock_addr *ctx)
{
	return do_sendmsg(ctx, 1);
}

/* Report addr:port (16-byte form) to the app through ctx. A v4 socket can
 * only be shown an IPv4 address. */
static __always_inline int set_user_addr(struct bpf_sock_addr *ctx, int v6, __u8 family,
					 const __u8 *addr, __u16 port)
{
	if (!v6) {
		if (family != AF_INET)
			return 1;
		__u32 ip;
		__builtin_memcpy(&ip, addr + 12, 4);
		ctx->user_ip4 = ip;
	} else {
		__u32 w[4];
		__builtin_memcpy(w, addr, 16);
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	}
	ctx->user_port = port;
	return 1;
}

/* Show the app the remote's address as the source of a reply. */
static __always_inline int do_recvmsg(struct bpf_sock_addr *ctx, int v6)
{
	struct anser_rev_key k = {};
	struct anser_rev_val *rv;
	struct anser_ctl *c;
	struct anser_sk *s;

	if (!v6) {
		if (ctx->user_ip4 != bpf_htonl(0x7f000001))
			return 1;
	} else {
		if (ctx->user_ip6[0] || ctx->user_ip6[1] || ctx->user_ip6[2] ||
		    ctx->user_ip6[3] != bpf_htonl(1))
			return 1;
	}
	k.family = v6 ? AF_INET6 : AF_INET;
	k.port = (__u16)ctx->user_port;
	rv = bpf_map_lookup_elem(&udp_rev, &k);
	if (rv)
		return set_user_addr(ctx, v6, rv->family, rv->addr, rv->port);
	/* A connect()ed socket hears from the listener itself. */
	c = get_ctl();
	if (!c || bpf_ntohs(k.port) != (v6 ? c->udp6_port : c->udp4_port))
		return 1;
	s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, 0);
	if (!s || !s->redirected)
		return 1;
	return set_user_addr(ctx, v6, s->flow.family, s->flow.daddr, s->flow.dport);
}

SEC("cgroup/recvmsg4")
int anser_recvmsg4(struct bpf_sock_addr *ctx)
{
	return do_recvmsg(ctx, 0);
}

SEC("cgroup/recvmsg6")
int anser_recvmsg6(struct bpf_sock_addr *ctx)
{
	return do_recvmsg(ctx, 1);
}

/* getpeername() of a steered socket reports the original destination. */
static __always_inline int do_getpeername(struct bpf_sock_addr *ctx, int v6)
{
	struct anser_sk *s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, 0);

	if (!s || !s->redirected)
		return 1;
	return set_user_addr(ctx, v6, s->flow.family, s->flow.daddr, s->flow.dport);
}

SEC("cgroup/getpeername4")
int anser_getpeername4(struct bpf_sock_addr *ctx)
{
	return do_getpeername(ctx, 0);
}

SEC("cgroup/getpeername6")
int anser_getpeername6(struct bpf_sock_addr *ctx)
{
	return do_getpeername(ctx, 1);
}

/* Stamp a steered UDP socket's datagram with its flow id. */
static __always_inline void mark_udp(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct anser_sk *s;

	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_UDP)
		return;
	s = bpf_sk_storage_get(&sk_store, sk, 0, 0);
	if (s && s->udp_id)
		skb->mark = s->udp_id;
}

/* Preferred: a tcx egress program on loopback only (the link dies with
 * anserd). Steered datagrams only ever go to the loopback listener, so no
 * other packet of any flow runs a program. */
SEC("tc")
int anser_lo_egress(struct __sk_buff *skb)
{
	mark_udp(skb);
	return -1; /* TCX_NEXT: let other programs decide */
}

/* Fallback for kernels without tcx (< 6.6): the cgroup's egress hook,
 * which runs for every packet of the cgroup's sockets. */
SEC("cgroup_skb/egress")
int anser_egress(struct __sk_buff *skb)
{
	/* lo is ifindex 1 in every netns: leave everything else at once. */
	if (skb->ifindex == 1)
		mark_udp(skb);
	return 1;
}

/*
 * Test entry: the rule engine on a struct anser_eval_ctx passed as packet
 * data through BPF_PROG_TEST_RUN. Returns (rule << 16) | outbound.
 */
SEC("tc")
int anser_eval(struct __sk_buff *skb)
{
	struct anser_eval_ctx e;
	struct decide d = {};
	struct anser_gen_info *gi;
	struct anser_ctl *c;
	__u32 slot;

	if (bpf_skb_load_bytes(skb, 0, &e, sizeof(e)) < 0)
		return -1;
	c = get_ctl();
	if (!c)
		return -1;
	gi = active_rules(c, &slot);
	if (!gi)
		return -1;
	d.family = e.family;
	d.proto = e.proto;
	d.dport = e.dport;
	__builtin_memcpy(d.lkey.data, e.daddr, 16);
	compute_pbits(e.pname, slot, gi->n_matchers, &d.pbits);
	evaluate(&d, slot, gi);
	return ((__u32)d.rule << 16) | d.out;
}
