// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Anser's local-app datapath: cgroup hooks that decide each flow's route
 * once (at connect() or at the first sendmsg() to a destination) and steer
 * proxied flows to anserd's loopback listeners.
 *
 *  TCP  connect4/6 rewrites the destination to the TCP listener, keeps the
 *       original in socket storage and files the flow under the socket's
 *       cookie in `tcp_redir`; when the SYN goes out, sockops moves it to
 *       the connection's source in `tcp_src`, where anserd finds it after
 *       accept() (or, for a socket the move missed, finds the cookie with
 *       a sock_diag lookup of the connection's 4-tuple).
 *  UDP  connect4/6 and sendmsg4/6 rewrite to the UDP listener and give the
 *       (socket, destination) pair a flow id; cgroup_skb/egress stamps the
 *       id into skb->mark, which anserd reads with SO_RCVMARK. recvmsg4/6
 *       turn the source of replies back into the remote's address.
 *
 * Direct flows cost one flow log record (for the connection list) and
 * nothing else; no per-packet work happens for them. What depends
 * only on the process (its name, the pname() conditions it meets) is
 * worked out once per thread and rule generation and kept in task storage.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "anser_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET	    2
#define AF_INET6    10
#define SOCK_STREAM 1
#define SOCK_DGRAM  2
#define SOL_SOCKET  1
#define SO_MARK	    36

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
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ANSER_LPM_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct anser_lpm_key);
	__type(value, struct anser_rules);
} match_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct anser_pname_key);
	__type(value, struct anser_rules);
} pname_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct anser_cg_key);
	__type(value, struct anser_rules);
} cg_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_GENS *ANSER_PORT_CLASS_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} port_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_GENS *ANSER_MAX_PORT_CLASSES);
	__type(key, __u32);
	__type(value, struct anser_rules);
} port_rules SEC(".maps");

/* Gateway mode's sport() and dscp() sets (bpf/anser_abi.h); one entry
 * each unless gateway mode. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_GENS *ANSER_PORT_CLASS_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} sport_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_GENS *ANSER_MAX_PORT_CLASSES);
	__type(key, __u32);
	__type(value, struct anser_rules);
} sport_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_GENS *ANSER_DSCP_VALUES);
	__type(key, __u32);
	__type(value, struct anser_rules);
} dscp_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* the app socket's cookie */
	__type(value, struct anser_flow);
} tcp_redir SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct anser_tcp_src);
	__type(value, struct anser_flow);
} tcp_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ANSER_DOM_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct anser_lpm_key);
	__type(value, struct anser_rules);
} dom_ip SEC(".maps");

struct udp_id_val {
	__u32 id; /* 0 for flows not proxied */
	__u16 outbound;
	__u16 rule;
	__u32 dns; /* 1: to the DNS service (port 53, no must rule) */
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

/* Process names and flow log wakeups (bpf/anser_abi.h). */
#define FLOW_EVENTS_SIZE (1 << 18)
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOW_EVENTS_SIZE);
} flow_events SEC(".maps");

/* The flow log; anserd sizes both to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct anser_log_head);
} log_heads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_LOG_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct anser_log_rec);
} flow_log SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct anser_sk);
} sk_store SEC(".maps");

/* What the rule engine looks at, and its verdict. The address lives in
 * lkey.data so the DIP lookup needs no copy. */
struct decide {
	struct anser_lpm_key lkey; /* data = destination, v4 mapped */
	__u32 gen;
	__u16 out;
	__u16 rule;
	__u8 family; /* AF_INET for v4 and v4-mapped destinations */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 dport; /* BE */
	__u32 pid;   /* tgid of the caller */
	__u16 bit;   /* the rule set bit that decided (rule is the config's rule) */
	__u16 pad;
	__u64 cookie;
};

/* Per thread: the process's name and the rules its name leaves possible
 * under the rules of `version`. Trusted while the thread has not exec()ed
 * since (the kernel counts a task's execs) and the rules are the same. */
struct proc_info {
	__u64 exec_id;
	__u64 cg_id; /* the thread's cgroup when `rules` was worked out (app/cgroup rules only) */
	__u32 version;
	__u32 cg_version;
	struct anser_rules rules;
	/* The name, kept as the pname_set key it is looked up with, and the
	 * cg_set key: lookup keys live here, in the thread's own storage,
	 * because the hooks' stacks are full and a per-CPU buffer could be
	 * overwritten by another thread when this one is preempted. */
	struct anser_pname_key key;
	struct anser_cg_key cg_key;
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

/* Index of the lowest bit of x != 0 by de Bruijn multiplication: x & -x
 * times the constant puts a distinct 6-bit pattern in the top bits for
 * each bit position. No branches, so the verifier walks one path with an
 * unknown result instead of 64 with constant ones (which took it seconds). */
/* clang-format off */
static const __u8 debruijn_pos[64] = {
	 0,  1, 56,  2, 57, 49, 28,  3, 61, 58, 42, 50, 38, 29, 17,  4,
	62, 47, 59, 36, 45, 43, 51, 22, 53, 39, 33, 30, 24, 18, 12,  5,
	63, 55, 48, 27, 60, 41, 37, 16, 46, 35, 44, 21, 52, 32, 23, 11,
	54, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19,  9, 13,  8,  7,  6,
};
/* clang-format on */

static __always_inline __u32 lowest_bit(__u64 x)
{
	return debruijn_pos[((x & -x) * 0x03f79d71b4ca8b09ULL) >> 58];
}

/* The lowest rule in all of a, b, c, d and e: the first matching rule. */
static __always_inline __u32 first_rule(const struct anser_rules *a, const struct anser_rules *b,
					const struct anser_rules *c, const struct anser_rules *d,
					const struct anser_rules *e)
{
	__u64 x = 0;
	__u32 i;

	/* A word at a time: most flows stop in the first. */
	for (i = 0; i < ANSER_RULE_WORDS; i++) {
		x = a->w[i] & b->w[i] & c->w[i] & d->w[i] & e->w[i];
		if (x)
			break;
	}
	if (!x)
		return ANSER_MAX_RULES; /* none: cannot happen, fallback is in every set */
	return i * 64 + lowest_bit(x);
}

/* The rules a port leaves possible, from a class map and its rules. */
static __always_inline const struct anser_rules *port_table(void *class_map, void *rules_map,
							    __u32 slot, __u16 port_be)
{
	__u32 port = bpf_ntohs(port_be), key = slot * ANSER_PORT_CLASS_WORDS + (port >> 3);
	__u64 *classes = bpf_map_lookup_elem(class_map, &key);

	if (!classes)
		return NULL;
	key = slot * ANSER_MAX_PORT_CLASSES + ((*classes >> ((port & 7) * 8)) & 0xff);
	return bpf_map_lookup_elem(rules_map, &key);
}

/* The rules the destination port leaves possible. */
static __always_inline const struct anser_rules *port_set(__u32 slot, __u16 dport_be)
{
	return port_table(&port_class, &port_rules, slot, dport_be);
}

/*
 * First matching rule: AND of the rules the process, the protocol and IP
 * version, the address and the port leave possible. When the first rule
 * the process and protocol allow has no dip() or dport(), the address and
 * port cannot rule it out, and neither lookup is needed.
 */
/* The rules match_lpm's `set` leaves possible for the address in k->data
 * (its longest prefix there), or dflt when no prefix holds it. */
static __always_inline const struct anser_rules *
lpm_rules(struct anser_lpm_key *k, __u32 slot, __u32 set, const struct anser_rules *dflt)
{
	k->prefixlen = 32 + 128;
	k->set = (slot << 31) | set;
	const struct anser_rules *r = bpf_map_lookup_elem(&match_lpm, k);
	return r ? r : dflt;
}

/* lan: forwarded traffic (gateway mode), for which sip() can hold. */
static __always_inline void evaluate_as(struct decide *d, __u32 slot,
					const struct anser_gen_info *gi,
					const struct anser_rules *proc, int lan)
{
	const struct anser_rules *l4, *dst = &gi->dip_default, *port = &gi->port_default;
	const struct anser_rules *dom = &gi->dom_default;
	__u32 r, i = ANSER_L4_INDEX(d->proto == IPPROTO_UDP, d->family == AF_INET6);

	l4 = lan ? &gi->lan_l4[i & 3] : &gi->l4[i & 3];
	r = first_rule(proc, l4, proc, l4, proc);
	if (r >= ANSER_MAX_RULES ||
	    !((gi->dst_free.w[(r / 64) & (ANSER_RULE_WORDS - 1)] >> (r % 64)) & 1)) {
		if (gi->lookups & ANSER_LOOKUP_DIP) {
			d->lkey.prefixlen = 32 + 128;
			d->lkey.set = (slot << 31) | ANSER_LPM_DIP;
			dst = bpf_map_lookup_elem(&match_lpm, &d->lkey);
			if (!dst)
				dst = &gi->dip_default;
		}
		if (gi->lookups & ANSER_LOOKUP_DPORT) {
			port = port_set(slot, d->dport);
			if (!port)
				port = &gi->port_default;
		}
		if (gi->lookups & ANSER_LOOKUP_DOMAIN) {
			d->lkey.prefixlen = 32 + 128;
			d->lkey.set = (slot << 31) | ANSER_SET_DOMAIN;
			dom = bpf_map_lookup_elem(&dom_ip, &d->lkey);
			if (!dom)
				dom = &gi->dom_default;
		}
		r = first_rule(proc, l4, dst, port, dom);
	}
	d->gen = slot;
	if (r >= gi->n_rules || r >= ANSER_MAX_RULES) {
		d->out = ANSER_OUT_DIRECT;
		d->rule = ANSER_RULE_FALLBACK;
		d->bit = gi->n_rules - 1;
		return;
	}
	d->out = gi->outbound[r];
	d->bit = r;
	d->rule = gi->rule_of[r & (ANSER_MAX_RULES - 1)];
}

static __always_inline void evaluate(struct decide *d, __u32 slot, const struct anser_gen_info *gi,
				     const struct anser_rules *proc)
{
	evaluate_as(d, slot, gi, proc, 0);
}

/* The rules a process of this name leaves possible under slot's rules. */
static __always_inline void name_rules(struct anser_pname_key *key, __u32 slot,
				       const struct anser_gen_info *gi, struct anser_rules *out)
{
	const struct anser_rules *r;

	key->set = slot;
	r = bpf_map_lookup_elem(&pname_set, key);
	if (!r)
		r = &gi->pname_default;
	__builtin_memcpy(out, r, sizeof(*out));
}

/* The rules of a cgroup's entry, ANDed into out; NULL entry: cg_default. */
static __always_inline void and_cg_rules(const struct anser_rules *r,
					 const struct anser_gen_info *gi, struct anser_rules *out)
{
	if (!r)
		r = &gi->cg_default;
	for (__u32 w = 0; w < ANSER_RULE_WORDS; w++)
		out->w[w] &= r->w[w];
}

/* The calling thread's cgroup `id`, or its nearest ancestor with an entry
 * (bpf/anser_abi.h). Not inlined: it runs once per thread and change. */
static __noinline void cgroup_rules(struct task_struct *task, struct proc_info *p, __u64 id,
				    __u32 slot, const struct anser_gen_info *gi)
{
	struct anser_cg_key *key;
	struct anser_rules *r;

	if (!p)
		return;
	key = &p->cg_key;
	key->set = slot;
	key->pad = 0;
	key->id = id;
	r = bpf_map_lookup_elem(&cg_set, key);
	if (!r) {
		int level = task->cgroups->dfl_cgrp->level;
		for (int up = 1; up <= ANSER_CG_MAX_UP && !r && level - up >= 0; up++) {
			key->id = bpf_get_current_ancestor_cgroup_id(level - up);
			r = bpf_map_lookup_elem(&cg_set, key);
		}
	}
	and_cg_rules(r, gi, &p->rules);
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
	__builtin_memcpy(e->pname, p->key.name, ANSER_PNAME_LEN);
	bpf_ringbuf_submit(e, 0);
}

/* The calling thread's proc_info, current for the rules of `slot`; NULL
 * only when the kernel has no memory for it (the caller fails open). */
static __always_inline struct proc_info *get_proc(struct task_struct *task, __u32 slot,
						  const struct anser_gen_info *gi,
						  const struct anser_ctl *c)
{
	struct proc_info *p;
	__u64 cg = 0;

	p = bpf_task_storage_get(&proc_store, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return NULL;
	/* Plain loads through the BTF pointer (the verifier makes them fault-
	 * safe): much cheaper than bpf_probe_read_kernel() calls. exec()
	 * bumps self_exec_id; +1 so that a fresh entry (0) never matches. */
	__u64 exec_id = task->self_exec_id + 1;
	if (p->exec_id != exec_id) {
		struct mm_struct *mm = task->mm;
		read_pname(p->key.name, mm ? mm->arg_start : 0);
		p->exec_id = exec_id;
		p->version = 0;
		emit_proc(p);
	}
	/* app() and cgroup(): also when the thread moved to another cgroup,
	 * or anserd filed a new cgroup's set */
	if (gi->lookups & ANSER_LOOKUP_CGROUP)
		cg = bpf_get_current_cgroup_id();
	if (p->version != gi->version ||
	    (cg && (p->cg_id != cg || p->cg_version != c->cg_version))) {
		name_rules(&p->key, slot, gi, &p->rules);
		if (cg)
			cgroup_rules(task, p, cg, slot, gi);
		p->version = gi->version;
		p->cg_id = cg;
		p->cg_version = c->cg_version;
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

/* The calling thread, its tgid noted in d for the flow record; NULL for
 * anserd's own threads, whose sockets the hooks leave alone. One helper
 * call: the tgid is a plain load through the task's BTF pointer. */
static __always_inline struct task_struct *caller(struct decide *d)
{
	struct task_struct *task = bpf_get_current_task_btf();

	d->pid = task->tgid;
	return d->pid == self_tgid ? NULL : task;
}

/* Sockets of other network namespaces are not steered or blocked:
 * anserd's listeners are in its own. Asked only before doing either, so a
 * direct connect() does not pay for it; such a socket's direct flow is
 * recorded, and the connection list drops it when it does not find the
 * socket in anserd's namespace. */
static __always_inline int foreign_netns(void *ctx)
{
	return netns_cookie && bpf_get_netns_cookie(ctx) != netns_cookie;
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
		(f)->pid = (d)->pid;                                                               \
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
	__builtin_memcpy(f->pname, p->key.name, ANSER_PNAME_LEN);
}

/* A log record's fields must be visible before its seq. x86 keeps stores
 * in order (the JIT emits plain moves), so there a compiler barrier is
 * enough; elsewhere an atomic exchange orders them. */
static __always_inline void publish_seq(__u64 *seq, __u64 v)
{
#ifdef __TARGET_ARCH_x86
	asm volatile("" ::: "memory");
	*(volatile __u64 *)seq = v;
#else
	__sync_lock_test_and_set(seq, v);
#endif
}

static __always_inline void emit_flow(const struct decide *d, __u32 flags)
{
	__u32 cpu = bpf_get_smp_processor_id(), key;
	struct anser_log_head *h = bpf_map_lookup_elem(&log_heads, &cpu);
	struct anser_log_rec *rec;
	__u64 idx;

	if (!h)
		return; /* the list misses this flow, routing does not */
	idx = __sync_fetch_and_add(&h->head, 1);
	key = cpu * ANSER_LOG_SLOTS + (idx & (ANSER_LOG_SLOTS - 1));
	rec = bpf_map_lookup_elem(&flow_log, &key);
	if (!rec)
		return;
	rec->ev.type = ANSER_EV_FLOW;
	rec->ev.pad = 0;
	SET_FLOW_FIELDS(&rec->ev, d, flags);
	publish_seq(&rec->seq, idx + 1);
	/* Wake anserd only when it lags; it reads on its own timer. */
	if ((idx & (ANSER_LOG_WAKE_EVERY - 1)) == 0 &&
	    idx - *(volatile __u64 *)&h->tail >= ANSER_LOG_WAKE_FILL) {
		struct anser_wake_event w = { .type = ANSER_EV_WAKE };
		bpf_ringbuf_output(&flow_events, &w, sizeof(w), BPF_RB_FORCE_WAKEUP);
	}
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

/* t for a lookup of the socket bound to 127.0.0.1:port (::1 for v6); its
 * length. */
static __always_inline __u32 loopback_tuple(struct bpf_sock_tuple *t, __u32 v6, __u32 port)
{
	if (v6) {
		t->ipv6.daddr[3] = bpf_htonl(1);
		t->ipv6.dport = bpf_htons(port);
		return sizeof(t->ipv6);
	}
	t->ipv4.daddr = bpf_htonl(0x7f000001);
	t->ipv4.dport = bpf_htons(port);
	return sizeof(t->ipv4);
}

/* Whether anserd's listener on loopback:port is there (fail_mode: closed,
 * where the programs outlive anserd): a socket bound there that carries
 * ANSER_LISTENER_PRIORITY. A global function: the verifier walks it once,
 * not once per path that reaches a call. */
__attribute__((noinline)) int listener_alive(struct bpf_sock_addr *ctx, __u32 v6, __u32 port,
					     __u32 udp)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 len;

	len = loopback_tuple(&t, v6, port);
	sk = udp ? bpf_sk_lookup_udp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0)
		 : bpf_sk_lookup_tcp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	int ok = sk->priority == ANSER_LISTENER_PRIORITY;
	bpf_sk_release(sk);
	return ok;
}

/* Send the flow to anserd's listener on `port`: the program's verdict (1,
 * or 0 to refuse it when fail_mode: closed and anserd is gone). */
static __always_inline int steer(struct bpf_sock_addr *ctx, const struct anser_ctl *c, int v6,
				 __u16 port, int udp)
{
	if (c->fail_closed && !listener_alive(ctx, v6, port, udp))
		return 0;
	if (!v6) {
		ctx->user_ip4 = bpf_htonl(0x7f000001);
	} else {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(port);
	return 1;
}

static __always_inline int same16(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* DNS the service takes over: to port 53, the service listening, and the
 * deciding rule without (must). */
static __always_inline __u16 dns_port_for(const struct anser_ctl *c,
					  const struct anser_gen_info *gi, const struct decide *d,
					  int v6)
{
	__u16 port = v6 ? c->dns6_port : c->dns4_port;
	__u32 r = d->bit;

	if (d->dport != bpf_htons(53) || !port)
		return 0;
	for (__u32 i = 0; i < 2; i++)
		if (i < c->n_vdns && same16(c->vdns[i], d->lkey.data))
			return port; /* the virtual DNS address: always answered */
	if ((gi->must.w[(r / 64) & (ANSER_RULE_WORDS - 1)] >> (r % 64)) & 1)
		return 0;
	return port;
}

static __always_inline __u32 alloc_udp_id(struct anser_ctl *c)
{
	/* never 0, never with ANSER_LAN_MARK's top bit */
	__u32 id = (__sync_fetch_and_add(&c->next_udp_id, 1) + 1) & ANSER_UDP_ID_MASK;
	return id ? id : (__sync_fetch_and_add(&c->next_udp_id, 1) + 1) & ANSER_UDP_ID_MASK;
}

static __always_inline int do_connect(struct bpf_sock_addr *ctx, int v6)
{
	struct decide d = {};
	struct task_struct *task;
	struct anser_gen_info *gi;
	struct proc_info *p;
	struct anser_ctl *c;
	struct anser_sk *s;
	__u32 slot;

	if (ctx->type != SOCK_STREAM && ctx->type != SOCK_DGRAM)
		return 1;
	task = caller(&d);
	if (!task)
		return 1;
	c = get_ctl();
	if (!c || !c->enabled)
		return 1;
	/* A socket re-connected elsewhere loses its old steering. */
	s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, 0);
	if (s) {
		s->redirected = 0;
		s->udp_id = 0;
		s->dns = 0;
	}
	if (load_dst(ctx, &d, v6))
		return 1;
	gi = active_rules(c, &slot);
	if (!gi)
		return 1;
	p = get_proc(task, slot, gi, c);
	if (!p)
		return 1; /* no memory: fail open */
	evaluate(&d, slot, gi, &p->rules);
	if (d.out != ANSER_OUT_DIRECT && foreign_netns(ctx))
		return 1;
	d.cookie = bpf_get_socket_cookie(ctx);

	if (d.out == ANSER_OUT_BLOCK)
		return 0; /* connect() fails with EPERM */

	__u16 dns = dns_port_for(c, gi, &d, v6);
	if (dns && !foreign_netns(ctx)) {
		emit_flow(&d, d.proto == IPPROTO_UDP ? ANSER_FLOW_F_CONNECTED : 0);
		s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!s)
			return 1; /* no memory: fail open */
		fill_flow(&s->flow, &d, 0, p);
		/* which server the app asked, for the service (`asis`): by the
		 * datagrams' id, or by the cookie of the connection it accepts */
		if (d.proto == IPPROTO_UDP) {
			s->udp_id = alloc_udp_id(c);
			bpf_map_update_elem(&udp_flows, &s->udp_id, &s->flow, BPF_ANY);
		} else {
			bpf_map_update_elem(&tcp_redir, &d.cookie, &s->flow, BPF_ANY);
		}
		s->redirected = 1;
		s->dns = 1;
		return steer(ctx, c, v6, dns, d.proto == IPPROTO_UDP);
	}

	__u16 port = d.proto == IPPROTO_TCP ? (v6 ? c->tcp6_port : c->tcp4_port)
					    : (v6 ? c->udp6_port : c->udp4_port);
	int proxied = d.out >= ANSER_OUT_FIRST_GROUP && port;
	__u8 flags = proxied ? ANSER_FLOW_F_PROXIED : 0;
	if (d.proto == IPPROTO_UDP)
		flags |= ANSER_FLOW_F_CONNECTED;

	emit_flow(&d, flags);
	if (d.out == ANSER_OUT_DIRECT && (gi->lookups & ANSER_LOOKUP_MARK)) {
		/* direct(mark: N): the socket carries N, for policy routing */
		__u32 r = d.bit;
		__u32 mark = gi->mark[r & (ANSER_MAX_RULES - 1)];
		if (mark)
			bpf_setsockopt(ctx, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	}
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
	return steer(ctx, c, v6, port, d.proto == IPPROTO_UDP);
}

/* The connection's source, as struct anser_tcp_src; -1 for a family
 * other than IPv4 and IPv6. */
static __always_inline int tcp_src_key(struct bpf_sock_ops *ops, struct anser_tcp_src *k)
{
	k->port = (__u16)ops->local_port;
	if (ops->family == AF_INET) {
		set_v4(k->addr, ops->local_ip4);
	} else if (ops->family == AF_INET6) {
		__u32 a[4] = { ops->local_ip6[0], ops->local_ip6[1], ops->local_ip6[2],
			       ops->local_ip6[3] };
		__builtin_memcpy(k->addr, a, 16);
	} else {
		return -1;
	}
	return 0;
}

/* A steered connection's source port is known once the kernel sends its
 * SYN: its flow moves from the cookie to the source (struct anser_tcp_src),
 * which anserd has from accept(). Without this program (or when the move
 * fails) anserd looks the cookie up with sock_diag. Until the handshake
 * ends the socket reports its state changes here: one that closes before
 * it was established (refused, timed out, or closed by the app) is never
 * accepted, so its entry goes with it rather than waiting for the LRU. */
SEC("sockops")
int anser_sockops(struct bpf_sock_ops *ops)
{
	struct anser_tcp_src k = {};

	if (ops->op == BPF_SOCK_OPS_STATE_CB) {
		__u32 to = ops->args[1];
		if (to == BPF_TCP_CLOSE && ops->args[0] == BPF_TCP_SYN_SENT &&
		    tcp_src_key(ops, &k) == 0)
			bpf_map_delete_elem(&tcp_src, &k);
		if (to == BPF_TCP_ESTABLISHED || to == BPF_TCP_CLOSE)
			bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags &
							       ~BPF_SOCK_OPS_STATE_CB_FLAG);
		return 1;
	}
	if (ops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(ops);
	struct anser_flow *f = bpf_map_lookup_elem(&tcp_redir, &cookie);
	if (!f || tcp_src_key(ops, &k) < 0)
		return 1;
	if (bpf_map_update_elem(&tcp_src, &k, f, BPF_ANY) == 0) {
		bpf_map_delete_elem(&tcp_redir, &cookie);
		bpf_sock_ops_cb_flags_set(ops,
					  ops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	}
	return 1;
}

/* Cgroups made and removed anywhere: anserd files the rule sets of new
 * ones for app() and cgroup() (bpf/anser_abi.h). Rare events; a lost one
 * (ring full) leaves the new cgroup with its parent's set. cgroup v1
 * hierarchies report here too: anserd keeps only paths whose directory
 * in the cgroup2 mount has the id. */
static __always_inline void emit_cgroup(struct cgroup *cgrp, const char *path, __u8 removed)
{
	struct anser_cgroup_event *e;

	e = bpf_ringbuf_reserve(&flow_events, sizeof(*e), 0);
	if (!e)
		return;
	e->type = ANSER_EV_CGROUP;
	e->removed = removed;
	e->pad = 0;
	e->pad2 = 0;
	e->id = cgrp->kn->id;
	if (bpf_probe_read_kernel_str(e->path, sizeof(e->path), path) < 0)
		e->path[0] = 0;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(anser_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	emit_cgroup(cgrp, path, 0);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(anser_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	emit_cgroup(cgrp, path, 1);
	return 0;
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
	struct task_struct *task;
	struct anser_gen_info *gi;
	struct proc_info *p;
	struct anser_ctl *c;
	struct anser_sk *s;
	__u32 slot;

	task = caller(&d);
	if (!task)
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
		if (foreign_netns(ctx))
			return 1; /* not cached: rare, and cheap enough */
		gi = active_rules(c, &slot);
		if (!gi)
			return 1;
		p = get_proc(task, slot, gi, c);
		if (!p)
			return 1;
		evaluate(&d, slot, gi, &p->rules);
		v.outbound = d.out;
		v.rule = d.rule;
		v.dns = d.out != ANSER_OUT_BLOCK && dns_port_for(c, gi, &d, v6);
		/* to the DNS service (the id tells it which server the app
		 * asked, for `asis`), or to a node; one call site of
		 * record_flow, which the verifier walks once */
		if (!v.dns && d.out >= ANSER_OUT_FIRST_GROUP && (v6 ? c->udp6_port : c->udp4_port))
			flags = ANSER_FLOW_F_PROXIED;
		if (v.dns || flags) {
			v.id = alloc_udp_id(c);
			record_flow(&udp_flows, &v.id, &d, flags, p);
		}
		/* The connection list shows a socket by its first destination. */
		if (d.out != ANSER_OUT_BLOCK)
			emit_flow(&d, flags);
		bpf_map_update_elem(&udp_ids, &k, &v, BPF_ANY);
	}
	if (v.outbound == ANSER_OUT_BLOCK)
		return 0; /* sendmsg() fails with EPERM: the datagram is dropped */
	__u16 dns = v.dns ? (v6 ? c->dns6_port : c->dns4_port) : 0;
	if (dns) {
		s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!s)
			return 1;
		/* the server this datagram was for: its reply comes from it */
		s->udp_id = v.id;
		s->dns = 1;
		s->flow.family = d.family;
		s->flow.dport = d.dport;
		__builtin_memcpy(s->flow.daddr, d.lkey.data, 16);
		return steer(ctx, c, v6, dns, 1);
	}
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
	return steer(ctx, c, v6, v6 ? c->udp6_port : c->udp4_port, 1);
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
	/* A connect()ed socket hears from the listener itself; DNS from the
	 * DNS service's. */
	c = get_ctl();
	if (!c)
		return 1;
	__u16 port = bpf_ntohs(k.port);
	int from_dns = port && port == (v6 ? c->dns6_port : c->dns4_port);
	if (!from_dns && port != (v6 ? c->udp6_port : c->udp4_port))
		return 1;
	s = bpf_sk_storage_get(&sk_store, ctx->sk, 0, 0);
	if (!s || (from_dns ? !s->dns : !s->redirected))
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

/*
 * Gateway mode: forwarded traffic that arrives on a LAN interface
 * (lan_interface) is decided by the same rules, as flows of no process
 * (pname(), app() and cgroup() do not hold; sip() and mac() do), once
 * per flow (bpf/anser_abi.h, lan_flows). direct goes on as the kernel
 * forwards it, block is dropped here, and a proxied flow is handed to
 * anserd's loopback listener: bpf_sk_assign() gives the packet the
 * listener's socket (TCP: the SYN; the kernel finds the connection for
 * the rest) and ANSER_LAN_MARK has the policy rule deliver it locally,
 * where the kernel takes the assigned socket instead of looking one up.
 * The listeners are IP_TRANSPARENT, so the connection anserd accepts has
 * the original destination as its local address. No netfilter rule, no
 * second network stack: a direct flow costs a hash lookup per packet.
 */
#define TCX_NEXT_ACT	  (-1)
#define TCX_DROP_ACT	  2
#define ETH_HDR_LEN	  14
#define ETH_P_IPV4	  0x0800
#define ETH_P_IPV6_	  0x86DD
#define TCP_FLAG_SYN	  0x02
#define TCP_FLAG_ACK	  0x10
#define IPPROTO_FRAGMENT_ 44

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ANSER_MAX_LAN_IFACES);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* ANSER_LAN_F_* */
} lan_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ANSER_LAN_IF_SMALL);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* ANSER_LAN_F_* */
} lan_if_small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ANSER_LAN_FLOWS); /* 1 unless gateway mode (set by anserd) */
	__type(key, struct anser_lan_key);
	__type(value, struct anser_lan_flow);
} lan_flows SEC(".maps");

/* Fragments of flows that do not go as the kernel forwards them: a
 * first fragment's decision, for the later ones (which carry no ports). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ANSER_LAN_FRAGS); /* 1 unless gateway mode */
	__type(key, struct anser_frag_key);
	__type(value, __u32); /* outbound */
} lan_frags SEC(".maps");

/* anserd's UDP listeners for LAN flows, [0] v4 and [1] v6: the LAN
 * program hands datagrams to them, and anser_lan_lookup the datagrams the
 * kernel put together from fragments (reassembly forgets the socket). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lan_socks SEC(".maps");

/* A forwarded packet as the gateway reads it. */
struct lan_pkt {
	struct anser_lan_key k;
	__u8 have_mac; /* an L2 device: there is a source MAC (lan_decide reads it) */
	__u8 syn;      /* TCP SYN without ACK: a new connection */
	/* fragments: 1 the first (it has the ports), 2 a later one (only
	 * k.family, k.proto, the addresses and frag_id are set) */
	__u8 frag;
	__u8 dscp; /* the DSCP value (the top 6 bits of TOS / traffic class) */
	__u8 pad[2];
	__u32 frag_id;
};

#define FRAG_FIRST 1
#define FRAG_LATER 2

/* 0 with pk filled, or -1 for what the gateway leaves alone: not TCP or
 * UDP, builtin-direct destinations, truncated headers, IPv6 extension
 * headers other than one fragment header. Later fragments carry no ports:
 * they follow the first (pk->frag). */
static __always_inline int lan_parse(struct __sk_buff *skb, struct lan_pkt *pk)
{
	__u32 off = ETH_HDR_LEN, l4, ifindex = skb->ifindex;
	__u32 *flags = ifindex < ANSER_LAN_IF_SMALL ? bpf_map_lookup_elem(&lan_if_small, &ifindex)
						    : bpf_map_lookup_elem(&lan_ifaces, &ifindex);

	if (flags && (*flags & ANSER_LAN_F_L3))
		off = 0; /* no link-layer header: tun, WireGuard, PPP */
	pk->have_mac = off != 0;
	if (skb->protocol == bpf_htons(ETH_P_IPV4)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
			return -1;
		if (is_v4_builtin_direct(ip.daddr))
			return -1;
		pk->k.family = AF_INET;
		pk->k.proto = ip.protocol;
		pk->dscp = ip.tos >> 2;
		set_v4(pk->k.daddr, ip.daddr);
		set_v4(pk->k.saddr, ip.saddr);
		if (ip.frag_off & bpf_htons(0x3fff)) { /* MF or an offset */
			pk->frag = ip.frag_off & bpf_htons(0x1fff) ? FRAG_LATER : FRAG_FIRST;
			pk->frag_id = ip.id;
			if (pk->frag == FRAG_LATER)
				return 0;
		}
		l4 = off + (__u32)ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6_)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return -1;
		__u8 next = ip6.nexthdr;
		l4 = off + sizeof(ip6);
		/* traffic class: 4 bits in priority, 4 in the flow label's first byte */
		pk->dscp = (__u8)(((ip6.priority << 4) | (ip6.flow_lbl[0] >> 4)) >> 2);
		if (next == IPPROTO_FRAGMENT_) {
			/* next header, reserved, offset << 3 | M, id */
			struct {
				__u8 next, res;
				__be16 off;
				__be32 id;
			} fh;
			if (bpf_skb_load_bytes(skb, l4, &fh, sizeof(fh)) < 0)
				return -1;
			next = fh.next;
			l4 += sizeof(fh);
			pk->frag = fh.off & bpf_htons(0xfff8) ? FRAG_LATER : FRAG_FIRST;
			pk->frag_id = fh.id;
		}
		/* (other extension headers before the ports: not read) */
		if (next != IPPROTO_TCP && next != IPPROTO_UDP)
			return -1;
		__builtin_memcpy(pk->k.daddr, &ip6.daddr, 16);
		if (is_v6_builtin_direct(pk->k.daddr))
			return -1;
		__builtin_memcpy(pk->k.saddr, &ip6.saddr, 16);
		pk->k.family = AF_INET6;
		pk->k.proto = next;
		if (pk->frag == FRAG_LATER)
			return 0;
	} else {
		return -1;
	}
	/* the ports and, for TCP, the flags (byte 13) */
	__u8 h[14];
	__u32 need = pk->k.proto == IPPROTO_TCP ? 14 : 4;
	if (need == 14 ? bpf_skb_load_bytes(skb, l4, h, 14) < 0
		       : bpf_skb_load_bytes(skb, l4, h, 4) < 0)
		return -1;
	__builtin_memcpy(&pk->k.sport, h, 2);
	__builtin_memcpy(&pk->k.dport, h + 2, 2);
	pk->syn = need == 14 && (h[13] & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	return 0;
}

/* Whether the kernel would deliver pk to this host rather than forward it
 * (the gateway's own addresses): such flows are never proxied. */
__attribute__((noinline)) int lan_to_self(struct __sk_buff *skb, const struct lan_pkt *pk)
{
	struct bpf_fib_lookup f = {};

	if (!pk)
		return 0;
	f.ifindex = skb->ifindex;
	f.l4_protocol = pk->k.proto;
	f.sport = pk->k.sport;
	f.dport = pk->k.dport;
	if (pk->k.family == AF_INET) {
		f.family = AF_INET;
		__builtin_memcpy(&f.ipv4_src, pk->k.saddr + 12, 4);
		__builtin_memcpy(&f.ipv4_dst, pk->k.daddr + 12, 4);
	} else {
		f.family = AF_INET6;
		__builtin_memcpy(f.ipv6_src, pk->k.saddr, 16);
		__builtin_memcpy(f.ipv6_dst, pk->k.daddr, 16);
	}
	return bpf_fib_lookup(skb, &f, sizeof(f), 0) == BPF_FIB_LKUP_RET_NOT_FWDED;
}

/* The rules' verdict on a new flow pk, into fl (a proxied one may still
 * be for this host: lan_to_self); -1 (fl untouched) without rules. The
 * gateway's helpers are global functions: the verifier walks each once,
 * not once for every path of the program that reaches a call. */
__attribute__((noinline)) int lan_decide(struct __sk_buff *skb, const struct lan_pkt *pk,
					 struct anser_lan_flow *fl)
{
	struct anser_rules proc;
	struct anser_lpm_key skey = {}, mkey = {};
	struct decide d = {};
	struct anser_gen_info *gi;
	struct anser_ctl *c = get_ctl();
	__u32 slot;

	if (!pk || !fl || !c)
		return -1;
	gi = active_rules(c, &slot);
	if (!gi)
		return -1;
	d.family = pk->k.family;
	d.proto = pk->k.proto;
	d.dport = pk->k.dport;
	__builtin_memcpy(d.lkey.data, pk->k.daddr, 16);
	__builtin_memcpy(skey.data, pk->k.saddr, 16);
	int have_mac = pk->have_mac && (gi->lookups & ANSER_LOOKUP_MAC) &&
		       bpf_skb_load_bytes(skb, 6, mkey.data, 6) == 0;
	/* no process: what rules the unnamed, cgroup-less leave possible, and
	 * those the source leaves (sip(), mac()) */
	const struct anser_rules *src =
		gi->lookups & ANSER_LOOKUP_SIP
			? lpm_rules(&skey, slot, ANSER_LPM_SIP, &gi->sip_default)
			: &gi->sip_default;
	const struct anser_rules *mac =
		have_mac ? lpm_rules(&mkey, slot, ANSER_LPM_MAC, &gi->mac_default)
			 : &gi->mac_default;
	for (__u32 w = 0; w < ANSER_RULE_WORDS; w++)
		proc.w[w] = gi->pname_default.w[w] & gi->cg_default.w[w] & src->w[w] & mac->w[w];
	/* sport() and dscp(): sets of their own, when some rule has them */
	const struct anser_rules *more[2] = { NULL, NULL };
	if (gi->lookups & ANSER_LOOKUP_SPORT)
		more[0] = port_table(&sport_class, &sport_rules, slot, pk->k.sport);
	if (gi->lookups & ANSER_LOOKUP_DSCP) {
		__u32 key = slot * ANSER_DSCP_VALUES + (pk->dscp & (ANSER_DSCP_VALUES - 1));
		more[1] = bpf_map_lookup_elem(&dscp_rules, &key);
	}
	for (__u32 i = 0; i < 2; i++) {
		const struct anser_rules *m = more[i];
		if (!m)
			continue;
		for (__u32 w = 0; w < ANSER_RULE_WORDS; w++)
			proc.w[w] &= m->w[w];
	}
	evaluate_as(&d, slot, gi, &proc, 1);
	fl->outbound = d.out;
	fl->rule = d.rule;
	fl->gen = (__u8)slot;
	fl->version = gi->version;
	fl->seen = bpf_ktime_get_ns();
	return 0;
}

/* Whether a connection of anserd's for the TCP flow pk is there (a flow
 * seen first in the middle, after its cache entry was evicted). */
__attribute__((noinline)) int lan_tcp_known(struct __sk_buff *skb, const struct lan_pkt *pk)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 len;

	if (!pk)
		return 0;
	if (pk->k.family == AF_INET) {
		__builtin_memcpy(&t.ipv4.saddr, pk->k.saddr + 12, 4);
		__builtin_memcpy(&t.ipv4.daddr, pk->k.daddr + 12, 4);
		t.ipv4.sport = pk->k.sport;
		t.ipv4.dport = pk->k.dport;
		len = sizeof(t.ipv4);
	} else {
		__builtin_memcpy(t.ipv6.saddr, pk->k.saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, pk->k.daddr, 16);
		t.ipv6.sport = pk->k.sport;
		t.ipv6.dport = pk->k.dport;
		len = sizeof(t.ipv6);
	}
	sk = bpf_skc_lookup_tcp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	int known = sk->state != BPF_TCP_LISTEN;
	bpf_sk_release(sk);
	return known;
}

/* Give skb anserd's listener: for UDP the socket of lan_socks (there
 * while anserd has it: closing removes it), for TCP the one on
 * loopback:port that carries ANSER_LISTENER_PRIORITY. 0, or -1 when there
 * is none. */
__attribute__((noinline)) int lan_assign(struct __sk_buff *skb, __u32 v6, __u32 port, __u32 udp)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 len;

	if (udp) {
		sk = bpf_map_lookup_elem(&lan_socks, &v6);
		if (!sk)
			return -1;
		long r = bpf_sk_assign(skb, sk, 0);
		bpf_sk_release(sk);
		return r == 0 ? 0 : -1;
	}
	if (!port)
		return -1;
	len = loopback_tuple(&t, v6, port);
	sk = bpf_sk_lookup_tcp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -1;
	long r = -1;
	if (sk->priority == ANSER_LISTENER_PRIORITY && sk->state == BPF_TCP_LISTEN)
		r = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return r == 0 ? 0 : -1;
}

/* What the packet of a flow decided `fl` gets. */
static __always_inline int lan_act(struct __sk_buff *skb, const struct anser_ctl *c,
				   const struct lan_pkt *pk, const struct anser_lan_flow *fl)
{
	if (fl->outbound == ANSER_OUT_DIRECT)
		return TCX_NEXT_ACT;
	if (fl->outbound == ANSER_OUT_BLOCK)
		return TCX_DROP_ACT;
	int v6 = pk->k.family == AF_INET6;
	if (pk->k.proto == IPPROTO_TCP && !pk->syn) {
		/* the kernel finds anserd's connection by its addresses */
		skb->mark = ANSER_LAN_MARK;
		return TCX_NEXT_ACT;
	}
	int udp = pk->k.proto == IPPROTO_UDP;
	if (lan_assign(skb, v6, v6 ? c->tcp6_port : c->tcp4_port, udp) < 0)
		return c->fail_closed ? TCX_DROP_ACT : TCX_NEXT_ACT; /* anserd is gone */
	skb->mark = ANSER_LAN_MARK;
	return TCX_NEXT_ACT;
}

static __always_inline void frag_key(const struct lan_pkt *pk, struct anser_frag_key *fk)
{
	fk->family = pk->k.family;
	fk->proto = pk->k.proto;
	fk->pad = 0;
	fk->id = pk->frag_id;
	__builtin_memcpy(fk->saddr, pk->k.saddr, 16);
	__builtin_memcpy(fk->daddr, pk->k.daddr, 16);
}

/* A first fragment: the later ones follow its flow's outbound. */
static __always_inline void lan_note_frag(const struct lan_pkt *pk, __u32 outbound)
{
	struct anser_frag_key fk;

	if (pk->frag != FRAG_FIRST || outbound == ANSER_OUT_DIRECT)
		return;
	frag_key(pk, &fk);
	bpf_map_update_elem(&lan_frags, &fk, &outbound, BPF_ANY);
}

/* A later fragment: dropped with a blocked first one, delivered to this
 * host (for anserd, with the first) with a proxied one, else forwarded.
 * One that comes before its first is forwarded. */
__attribute__((noinline)) int lan_later_frag(struct __sk_buff *skb, const struct lan_pkt *pk,
					     __u32 enabled)
{
	struct anser_frag_key fk;

	if (!pk)
		return TCX_NEXT_ACT;
	frag_key(pk, &fk);
	__u32 *out = bpf_map_lookup_elem(&lan_frags, &fk);
	if (!out)
		return TCX_NEXT_ACT;
	if (*out == ANSER_OUT_BLOCK)
		return enabled ? TCX_DROP_ACT : TCX_NEXT_ACT; /* suspended: nothing blocked */
	skb->mark = ANSER_LAN_MARK;
	return TCX_NEXT_ACT;
}

/* A decision to proxy, made again (lan_decide, in a separate call: the
 * verifier counts the stack of nested ones): never for this host's own
 * addresses, and a TCP packet that is not a SYN -- a connection that
 * began before it could be decided, was forgotten, or was blocked
 * until now -- goes on forwarded unless anserd has its connection. */
static __always_inline void lan_settle(struct __sk_buff *skb, const struct lan_pkt *pk,
				       struct anser_lan_flow *nf)
{
	if (nf->outbound < ANSER_OUT_FIRST_GROUP)
		return;
	if (lan_to_self(skb, pk) ||
	    (pk->k.proto == IPPROTO_TCP && !pk->syn && !lan_tcp_known(skb, pk)))
		nf->outbound = ANSER_OUT_DIRECT;
}

SEC("tc")
int anser_lan_ingress(struct __sk_buff *skb)
{
	struct lan_pkt pk = {};
	struct anser_lan_flow nf = {}, *fl;
	struct anser_gen_info *gi;
	struct anser_ctl *c;
	__u32 slot;

	c = get_ctl();
	if (!c)
		return TCX_NEXT_ACT;
	if (lan_parse(skb, &pk) < 0)
		return TCX_NEXT_ACT;
	if (pk.frag == FRAG_LATER)
		return lan_later_frag(skb, &pk, c->enabled);
	gi = active_rules(c, &slot);
	fl = bpf_map_lookup_elem(&lan_flows, &pk.k);
	if (fl && !pk.syn) {
		__u64 now = 0;
		if (pk.k.proto == IPPROTO_UDP) {
			now = bpf_ktime_get_ns();
			if (now - fl->seen > ANSER_LAN_UDP_IDLE_NS)
				goto fresh; /* idle: a new flow */
			if (now - fl->seen > 1000000000ull)
				fl->seen = now; /* to the second: one write a second */
		}
		/* suspended: flows keep their path, none is blocked */
		if (!c->enabled)
			return fl->outbound == ANSER_OUT_BLOCK ? TCX_NEXT_ACT
							       : lan_act(skb, c, &pk, fl);
		if (gi && fl->version != gi->version) {
			/* new rules: the flow keeps its path unless it is
			 * blocked now, or was blocked before */
			lan_decide(skb, &pk, &nf);
			if (nf.outbound == ANSER_OUT_BLOCK || fl->outbound == ANSER_OUT_BLOCK) {
				lan_settle(skb, &pk, &nf);
				*fl = nf;
			} else {
				fl->version = gi->version;
			}
		}
		lan_note_frag(&pk, fl->outbound);
		return lan_act(skb, c, &pk, fl);
	}
fresh:
	if (!c->enabled || !gi)
		return TCX_NEXT_ACT; /* suspended: forwarded, and not remembered */
	lan_decide(skb, &pk, &nf);
	lan_settle(skb, &pk, &nf);
	/* a new connection on a cached flow's addresses (or an idle UDP
	 * flow) rewrites its entry in place: no trip through the LRU lists */
	if (fl)
		*fl = nf;
	else
		bpf_map_update_elem(&lan_flows, &pk.k, &nf, BPF_ANY);
	lan_note_frag(&pk, nf.outbound);
	return lan_act(skb, c, &pk, &nf);
}

/*
 * Datagrams the kernel put together from fragments of a proxied LAN flow:
 * reassembly drops the socket the LAN program gave the first fragment, so
 * the kernel looks one up, and this hands it anserd's listener instead
 * (an sk_lookup program of anserd's network namespace; its link goes with
 * anserd).
 */
SEC("sk_lookup")
int anser_lan_lookup(struct bpf_sk_lookup *ctx)
{
	struct anser_lan_key k = {};
	__u32 v6 = ctx->family == AF_INET6;

	/* (no check of the interface: one hash lookup either way, and only a
	 * LAN flow's addresses have a proxied entry) */
	if (ctx->protocol != IPPROTO_UDP)
		return SK_PASS;
	k.proto = IPPROTO_UDP;
	if (!v6) {
		k.family = AF_INET;
		set_v4(k.saddr, ctx->remote_ip4);
		set_v4(k.daddr, ctx->local_ip4);
	} else {
		__u32 a[4];
		k.family = AF_INET6;
		a[0] = ctx->remote_ip6[0];
		a[1] = ctx->remote_ip6[1];
		a[2] = ctx->remote_ip6[2];
		a[3] = ctx->remote_ip6[3];
		__builtin_memcpy(k.saddr, a, 16);
		a[0] = ctx->local_ip6[0];
		a[1] = ctx->local_ip6[1];
		a[2] = ctx->local_ip6[2];
		a[3] = ctx->local_ip6[3];
		__builtin_memcpy(k.daddr, a, 16);
	}
	k.sport = ctx->remote_port;
	k.dport = bpf_htons((__u16)ctx->local_port);
	struct anser_lan_flow *fl = bpf_map_lookup_elem(&lan_flows, &k);
	if (!fl || fl->outbound < ANSER_OUT_FIRST_GROUP)
		return SK_PASS;
	struct bpf_sock *sk = bpf_map_lookup_elem(&lan_socks, &v6);
	if (!sk)
		return SK_PASS;
	bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return SK_PASS;
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
	struct anser_rules proc;
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
	struct anser_pname_key key;
	__builtin_memcpy(key.name, e.pname, ANSER_PNAME_LEN);
	name_rules(&key, slot, gi, &proc);
	if (gi->lookups & ANSER_LOOKUP_CGROUP) {
		struct anser_cg_key key = { .set = slot, .id = e.cgroup_id };
		and_cg_rules(e.cgroup_id ? bpf_map_lookup_elem(&cg_set, &key) : NULL, gi, &proc);
	}
	evaluate(&d, slot, gi, &proc);
	return ((__u32)d.rule << 16) | d.out;
}
