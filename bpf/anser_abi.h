/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one place where layouts shared by the BPF programs and anserd live.
 * Every struct here is read or written by both sides: keep them packed to
 * natural alignment, fixed-width, and never reorder fields.
 *
 * Addresses are always 16 bytes: IPv4 is stored IPv4-mapped (::ffff:a.b.c.d)
 * so one LPM trie serves both families. Ports are in network byte order
 * unless a field says otherwise.
 */
#ifndef ANSER_ABI_H
#define ANSER_ABI_H

#ifdef __bpf__
/* vmlinux.h provides __u8 .. __u64 */
#else
#include <linux/types.h>
#endif

/* Outbound ids. Ids >= ANSER_OUT_FIRST_GROUP index the generation's
 * group table (id - ANSER_OUT_FIRST_GROUP). */
#define ANSER_OUT_DIRECT      0
#define ANSER_OUT_BLOCK	      1
#define ANSER_OUT_FIRST_GROUP 2
#define ANSER_OUT_MAX	      256

/* Two generations live in the maps at once; `ctl.active_gen` picks one. */
#define ANSER_GENS	   2
#define ANSER_MAX_MATCHERS 4096
#define ANSER_PNAME_LEN	   64
/*
 * Set conditions are answered as bits, each matcher of a kind owning one
 * bit (its `arg`): pname() bits are worked out once per thread and rule
 * generation; dip() and dport() bits come from one LPM lookup each per
 * flow, whatever the number of rules and CIDRs (every trie entry carries
 * the bits of all the prefixes that contain it).
 */
#define ANSER_PROC_BITS 128
#define ANSER_DIP_BITS	128
#define ANSER_PORT_BITS 128

struct anser_bits {
	__u64 w[2];
};

/* `set` of a match_lpm key: the slot in the top bit, and the kind. */
#define ANSER_LPM_DIP	1u
#define ANSER_LPM_DPORT 2u

/* Rule id reported for flows decided by `fallback:`. */
#define ANSER_RULE_FALLBACK 0xffff

enum anser_match_type {
	ANSER_M_TRUE = 0,      /* always matches (used for fallback) */
	ANSER_M_PNAME = 1,     /* set: pname_set; arg: the process bit it is cached in */
	ANSER_M_DIP = 2,       /* arg: its bit in the destination's dip bits */
	ANSER_M_DPORT = 3,     /* arg: its bit in the destination port's bits */
	ANSER_M_L4PROTO = 4,   /* arg: ANSER_L4_* mask */
	ANSER_M_IPVERSION = 5, /* arg: ANSER_IPV_* mask */
};

#define ANSER_L4_TCP 1u
#define ANSER_L4_UDP 2u
#define ANSER_IPV_4  1u
#define ANSER_IPV_6  2u

/*
 * Rules are flattened into a matcher array: a rule is a run of matchers
 * (all must hold, each possibly negated); the last one of a run has
 * `rule_end` set and carries the outbound. First matching rule wins.
 * Index in the `matchers` map: gen * ANSER_MAX_MATCHERS + i.
 */
struct anser_matcher {
	__u8 type;     /* enum anser_match_type */
	__u8 negate;   /* 1: invert this matcher's result */
	__u8 rule_end; /* 1: last matcher of its rule */
	__u8 pad;
	__u16 outbound; /* valid when rule_end */
	__u16 rule;	/* config rule index, for reporting */
	__u32 set;	/* set id for PNAME (pname_set) */
	__u32 arg;	/* bit for PNAME / DIP / DPORT, mask for L4PROTO / IPVERSION */
};

/* LPM key (value: struct anser_bits) for DIP (prefixlen = 32 + address
 * bits, v4 mapped: 32 + 96 + v4 prefix) and DPORT (prefixlen = 32 + port
 * prefix bits, data[0..1] = port BE). */
struct anser_lpm_key {
	__u32 prefixlen;
	__u32 set; /* (slot << 31) | ANSER_LPM_*; compared bitwise */
	__u8 data[16];
};

struct anser_pname_key {
	__u32 set;
	char name[ANSER_PNAME_LEN]; /* zero padded basename of argv[0] */
};

struct anser_gen_info {
	__u32 n_matchers;
	__u32 version; /* unique per load: invalidates cached process bits */
	__u32 lookups; /* ANSER_LOOKUP_*: which per-flow lookups the rules need */
	__u32 pad;
};

#define ANSER_LOOKUP_DIP   1u
#define ANSER_LOOKUP_DPORT 2u

/* Single-entry array map `ctl`, written by anserd before attaching. */
struct anser_ctl {
	__u32 active_gen;  /* 0 or 1 */
	__u32 enabled;	   /* 0: every flow direct (suspended) */
	__u16 tcp4_port;   /* host order; listener on 127.0.0.1 */
	__u16 tcp6_port;   /* host order; listener on ::1 */
	__u16 udp4_port;   /* host order; listener on 127.0.0.1 */
	__u16 udp6_port;   /* host order; listener on ::1 */
	__u32 next_udp_id; /* atomically incremented by BPF */
	__u32 pad;
};

#define ANSER_FLOW_F_CONNECTED 1u /* UDP: decided at connect(), not sendmsg */
#define ANSER_FLOW_F_PROXIED   2u /* steered to anserd's listener */

/* A decided flow: in `sk_store` (per socket), `tcp_redir` and `udp_flows`
 * (LRU hash, key: the UDP id carried in skb->mark). */
struct anser_flow {
	__u64 cookie;
	__u32 pid;	/* tgid of the process that decided the flow */
	__u8 family;	/* AF_INET / AF_INET6 of the original destination */
	__u8 proto;	/* IPPROTO_TCP / IPPROTO_UDP */
	__u16 outbound; /* ANSER_OUT_* or group id */
	__u16 rule;	/* matching rule index or ANSER_RULE_* */
	__u8 gen;	/* generation the decision was made in */
	__u8 flags;	/* ANSER_FLOW_F_* */
	__u16 dport;	/* original destination port, BE */
	__u16 pad;
	__u8 daddr[16]; /* original destination, v4 mapped */
	char pname[ANSER_PNAME_LEN];
};

/*
 * Records of the `flow_events` ring buffer, told apart by their first
 * byte. Every decision is reported (for the connection list) as a small
 * flow record; a process's name is reported once, when a thread of it
 * first decides a flow (or after exec), so the per-connect record stays
 * within one cache line.
 */
enum anser_event_type {
	ANSER_EV_FLOW = 1,
	ANSER_EV_PROC = 2,
};

struct anser_flow_event {
	__u8 type; /* ANSER_EV_FLOW */
	__u8 family;
	__u8 proto;
	__u8 flags;
	__u32 pid;
	__u64 cookie;
	__u16 outbound;
	__u16 rule;
	__u16 dport; /* BE */
	__u8 gen;
	__u8 pad;
	__u8 daddr[16];
};

struct anser_proc_event {
	__u8 type; /* ANSER_EV_PROC */
	__u8 pad[3];
	__u32 pid; /* tgid */
	char pname[ANSER_PNAME_LEN];
};

/* Value of the socket-local storage `sk_store`, created only for steered
 * sockets: the flow a connect()ed socket was steered for (used by the
 * getpeername and recvmsg hooks) and the UDP id its datagrams carry. */
struct anser_sk {
	struct anser_flow flow; /* flow.cookie != 0 once decided */
	__u32 udp_id;		/* id stamped on egress datagrams, 0: none */
	__u8 redirected;	/* connect() was rewritten to a listener */
	__u8 pad[3];
};

/* Key of `udp_ids`: one id per (app socket, original destination). */
struct anser_udp_key {
	__u64 cookie;
	__u16 dport; /* BE */
	__u16 pad[3];
	__u8 daddr[16];
};

/* `udp_rev` (hash): anserd's per-remote reply socket on loopback -> the
 * remote it stands for. recvmsg hooks rewrite the source address. */
struct anser_rev_key {
	__u8 family;
	__u8 pad;
	__u16 port; /* BE, the reply socket's loopback port */
};

struct anser_rev_val {
	__u8 family; /* family of the remote address reported to the app */
	__u8 pad;
	__u16 port; /* BE */
	__u8 addr[16];
};

/* The syscall program `anser_eval` runs the same rule engine as the
 * hooks; tests drive it with bpf_prog_test_run_opts and this context. */
struct anser_eval_ctx {
	__u8 family;
	__u8 proto;
	__u16 dport; /* BE */
	__u8 daddr[16];
	char pname[ANSER_PNAME_LEN];
	__u16 out_outbound; /* written by the program */
	__u16 out_rule;
	__u32 pad;
};

#endif /* ANSER_ABI_H */
