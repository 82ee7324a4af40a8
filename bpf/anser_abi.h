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
#define ANSER_GENS	2
#define ANSER_PNAME_LEN 64

/*
 * The rule engine works on sets of rules, one bit per rule (bit r is the
 * config's rule r; the bit after the last rule is `fallback:`). For each
 * thing a flow is looked at by -- its process name, destination address,
 * destination port, and protocol/IP version -- anserd works out ahead of
 * time which rules that value leaves possible (every condition of that
 * kind in the rule holds). The kernel ANDs the four sets and the lowest
 * bit left is the first matching rule. The process's set is worked out
 * once per thread and rule generation; the address's set comes from one
 * LPM lookup and the port's from two array loads, however many rules and
 * CIDRs there are.
 */
#define ANSER_MAX_RULES	       1024 /* including fallback */
#define ANSER_RULE_WORDS       (ANSER_MAX_RULES / 64)
#define ANSER_MAX_PORT_CLASSES 256 /* distinct port sets (one byte per port) */

struct anser_rules {
	__u64 w[ANSER_RULE_WORDS];
};

/* Entries of match_lpm (both slots: a generation may use half, so a
 * reload always has room for the next one). */
#define ANSER_LPM_MAX_ENTRIES 262144

/* `set` of a match_lpm key: the slot in the top bit, and the kind:
 * dip() prefixes, and sip() ones (gateway mode: forwarded traffic's
 * source). */
#define ANSER_LPM_DIP 1u
#define ANSER_LPM_SIP 3u
/* mac(): the source MAC in data[0..6), the rest zero, prefixlen 32 + 48 */
#define ANSER_LPM_MAC 4u

/*
 * domain() conditions hold for names, which a flow does not carry: what
 * anserd's DNS service answers tells which names an address has. For an
 * address some name with domain() rules resolved to, `dom_ip` (hash; key:
 * struct anser_lpm_key with prefixlen 32 + 128, set (slot << 31) |
 * ANSER_SET_DOMAIN and the address, v4 mapped) holds the rules whose
 * domain() conditions all hold for one of its names (the union over its
 * names); other addresses get gen_info.dom_default, the rules that need
 * no name. anserd writes an entry before it releases the answer, and
 * removes it when the answer's records have aged out.
 */
#define ANSER_SET_DOMAIN      2u
#define ANSER_DOM_MAX_ENTRIES 65536

/* Rule id reported for flows decided by `fallback:`. */
#define ANSER_RULE_FALLBACK 0xffff

#define ANSER_L4_TCP	    1u
#define ANSER_L4_UDP	    2u
#define ANSER_IPV_4	    1u
#define ANSER_IPV_6	    2u

/* LPM key of `match_lpm` (value: struct anser_rules, the rules whose dip()
 * conditions all hold for addresses whose longest match is this prefix):
 * prefixlen = 32 + address bits (v4 mapped: 32 + 96 + v4 prefix). */
struct anser_lpm_key {
	__u32 prefixlen;
	__u32 set; /* (slot << 31) | ANSER_LPM_DIP; compared bitwise */
	__u8 data[16];
};

/* Key of `pname_set` (value: struct anser_rules, the rules whose pname()
 * conditions all hold for a process of this name). */
struct anser_pname_key {
	__u32 set;		    /* the slot */
	char name[ANSER_PNAME_LEN]; /* zero padded basename of argv[0] */
};

/*
 * `port_class` (array, ANSER_GENS * 8192 __u64): byte (port & 7) of entry
 * slot * 8192 + port / 8 is the port's class (port in host order);
 * `port_rules` (array, ANSER_GENS * ANSER_MAX_PORT_CLASSES): entry
 * slot * ANSER_MAX_PORT_CLASSES + class is the class's rule set.
 */
#define ANSER_PORT_CLASS_WORDS 8192
/* sport() (gateway mode): `sport_class` and `sport_rules`, laid out the
 * same. dscp(): `dscp_rules` (array, ANSER_GENS * 64): entry slot * 64 +
 * the DSCP value is its rule set. */
#define ANSER_DSCP_VALUES 64

/* Index into gen_info.l4: (proto == UDP) << 1 | (family == AF_INET6). */
#define ANSER_L4_INDEX(udp, v6) ((((udp) ? 1u : 0u) << 1) | ((v6) ? 1u : 0u))

struct anser_gen_info {
	__u32 n_rules; /* including fallback, whose bit is n_rules - 1 */
	__u32 version; /* unique per load: invalidates cached process sets */
	__u32 lookups; /* ANSER_LOOKUP_*: which per-flow lookups the rules need */
	__u32 pad;
	struct anser_rules l4[4];	  /* by ANSER_L4_INDEX */
	struct anser_rules dst_free;	  /* rules with no dip() and no dport() */
	struct anser_rules pname_default; /* for names in no pname() */
	struct anser_rules dip_default;	  /* for addresses in no dip() */
	struct anser_rules port_default;  /* when no rule has dport() */
	struct anser_rules cg_default;	  /* for cgroups with no cg_set entry up to the root */
	struct anser_rules dom_default;	  /* for addresses with no dom_ip entry */
	struct anser_rules must;	  /* rules with (must): their DNS is not taken over */
	/* gateway mode: l4 without the mask that makes sip() and mac() never
	 * hold (they hold for forwarded traffic); their sets for sources in
	 * none of them */
	struct anser_rules lan_l4[4];
	struct anser_rules sip_default;
	struct anser_rules mac_default;	 /* for sources in no mac(), and L3 devices */
	__u16 outbound[ANSER_MAX_RULES]; /* by rule bit */
	/* by rule bit: the config's rule (0-based) it stands for -- the first
	 * of the consecutive rules merged into it -- or ANSER_RULE_FALLBACK */
	__u16 rule_of[ANSER_MAX_RULES];
	__u32 mark[ANSER_MAX_RULES]; /* direct(mark: N): SO_MARK of the socket, 0: none */
};

#define ANSER_LOOKUP_DIP    1u
#define ANSER_LOOKUP_DPORT  2u
#define ANSER_LOOKUP_MARK   4u	 /* some direct rule sets a mark */
#define ANSER_LOOKUP_CGROUP 8u	 /* some rule has app() or cgroup() */
#define ANSER_LOOKUP_DOMAIN 16u	 /* some rule has domain() */
#define ANSER_LOOKUP_SIP    32u	 /* some rule has sip() (gateway mode reads it) */
#define ANSER_LOOKUP_MAC    64u	 /* some rule has mac() (gateway mode reads it) */
#define ANSER_LOOKUP_SPORT  128u /* some rule has sport() (gateway mode reads it) */
#define ANSER_LOOKUP_DSCP   256u /* some rule has dscp() (gateway mode reads it) */

/*
 * app() and cgroup() depend on a cgroup's path, which the hooks do not
 * see: anserd works out each cgroup's rule set from its path (when rules
 * are loaded, and when the kernel reports a new cgroup) and files it in
 * `cg_set` (hash; value: struct anser_rules) under the cgroup's id, for
 * cgroups whose set differs from their parent's and for the cgroup the
 * hooks are attached to. The hooks take the set of the nearest cgroup up
 * from the caller's that has an entry, at most ANSER_CG_MAX_UP levels up,
 * else gen_info.cg_default. anserd bumps ctl.cg_version after adding
 * entries, which makes threads look again.
 */
#define ANSER_CG_MAX_UP 16

struct anser_cg_key {
	__u32 set; /* the slot */
	__u32 pad;
	__u64 id; /* cgroup id: the inode number of its directory */
};

/* `flow_events` record for a cgroup made or removed anywhere in the
 * cgroup2 hierarchy (tp_btf cgroup_mkdir/cgroup_rmdir). */
#define ANSER_CG_PATH_LEN 464

struct anser_cgroup_event {
	__u8 type; /* ANSER_EV_CGROUP */
	__u8 removed;
	__u16 pad;
	__u32 pad2;
	__u64 id;
	char path[ANSER_CG_PATH_LEN]; /* from the hierarchy's root; cut if longer */
};

/* Single-entry array map `ctl`, written by anserd before attaching. */
struct anser_ctl {
	__u32 active_gen;  /* 0 or 1 */
	__u32 enabled;	   /* 0: every flow direct (suspended) */
	__u16 tcp4_port;   /* host order; listener on 127.0.0.1 */
	__u16 tcp6_port;   /* host order; listener on ::1 */
	__u16 udp4_port;   /* host order; listener on 127.0.0.1 */
	__u16 udp6_port;   /* host order; listener on ::1 */
	__u32 next_udp_id; /* atomically incremented by BPF */
	__u32 cg_version;  /* bumped by anserd when cg_set gains entries */
	/* host order: the DNS service's UDP and TCP listeners on 127.0.0.1
	 * and ::1 that take over the apps' DNS (port 53); 0: not taken over */
	__u16 dns4_port;
	__u16 dns6_port;
	/* dns.virtual_address: DNS to these (v4 mapped; n_vdns of them) is
	 * taken over even under a (must) rule */
	__u32 n_vdns;
	__u8 vdns[2][16];
	/* fail_mode: closed. The programs are pinned and outlive anserd; a
	 * flow is steered only to a listener that is anserd's (carries
	 * ANSER_LISTENER_PRIORITY), else refused. 0: not checked. */
	__u32 fail_closed;
};

/* SO_PRIORITY of anserd's listeners: a value above 6 needs CAP_NET_ADMIN,
 * so no other process's socket on a port anserd let go can carry it. On
 * loopback (noqueue) a priority changes nothing else. */
#define ANSER_LISTENER_PRIORITY 0x616e7372u

#define ANSER_FLOW_F_CONNECTED	1u /* UDP: decided at connect(), not sendmsg */
#define ANSER_FLOW_F_PROXIED	2u /* steered to anserd's listener */
#define ANSER_FLOW_F_LAN	4u /* gateway mode: a LAN client's forwarded flow */

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

/* Key of `tcp_src`: a steered TCP connection's source as anserd's
 * listener sees it (the app socket's local address, IPv4 mapped, and its
 * port in host order). The sockops program files the flow under it when
 * the kernel has chosen the port, so that anserd finds it after accept()
 * with one map lookup instead of a sock_diag query for the cookie. */
struct anser_tcp_src {
	__u8 addr[16];
	__u16 port;
	__u16 pad;
};

/*
 * Every decision (direct ones included) is reported for the connection list
 * through the flow log: per CPU, a ring of ANSER_LOG_SLOTS records in the
 * mmapable array `flow_log` (entry cpu * ANSER_LOG_SLOTS + i) and the
 * CPU's count of records ever written in the mmapable array `log_heads`
 * (entry cpu). A writer takes an index with an atomic add on its CPU's
 * head, fills record index % ANSER_LOG_SLOTS, then sets its seq to index + 1
 * (an atomic exchange, so the fields are visible first). anserd reads each
 * CPU's ring in order, waits at a record whose seq is not set yet, and
 * drops a record whose slot the writers may have reached again while it
 * was being copied, and after each read stores how far it read in the
 * CPU's `tail`. No lock, syscall or wakeup per flow: anserd reads on a
 * timer paced by the rate it sees, and a CPU wakes it through the
 * `flow_events` ring buffer only when it lags (ANSER_LOG_WAKE_FILL records
 * unread; then every ANSER_LOG_WAKE_EVERY records until it has read).
 * A wakeup costs the connect() that sends it about 15 us on a VM (its
 * interrupts exit to the hypervisor), which is why it must stay rare.
 *
 * The `flow_events` ring buffer carries what is rare: a process's name,
 * once when a thread of it first decides a flow (or after exec), and the
 * log's wakeups; its records are told apart by their first byte.
 */
#define ANSER_LOG_SLOTS	     2048
#define ANSER_LOG_WAKE_FILL  (ANSER_LOG_SLOTS * 3 / 4)
#define ANSER_LOG_WAKE_EVERY 256

enum anser_event_type {
	ANSER_EV_FLOW = 1,
	ANSER_EV_PROC = 2,
	ANSER_EV_WAKE = 3,   /* a CPU's flow log is filling up unread */
	ANSER_EV_CGROUP = 4, /* struct anser_cgroup_event */
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

/* One cache line per record and per head. */
struct anser_log_rec {
	__u64 seq; /* index + 1 once the record is complete */
	struct anser_flow_event ev;
	__u64 pad[2];
};

struct anser_log_head {
	__u64 head; /* records ever written by this CPU */
	__u64 tail; /* records anserd has read (only anserd writes it) */
	__u64 pad[6];
};

struct anser_wake_event {
	__u8 type; /* ANSER_EV_WAKE */
	__u8 pad[7];
};

struct anser_proc_event {
	__u8 type; /* ANSER_EV_PROC */
	__u8 pad[3];
	__u32 pid; /* tgid */
	char pname[ANSER_PNAME_LEN];
};

/* Gateway mode: the interfaces whose forwarded traffic the rules decide
 * (`lan_ifaces`, by ifindex). */
#define ANSER_MAX_LAN_IFACES 64
#define ANSER_LAN_F_L3	     1u /* no link-layer header (tun, WireGuard, PPP) */
/* The same flags for interfaces with a small ifindex, in an array
 * (`lan_if_small`, by ifindex): the program's lookup per packet is an
 * index, not a hash. */
#define ANSER_LAN_IF_SMALL 4096

/*
 * Gateway mode's flows. A forwarded flow is decided once, at its first
 * packet (a TCP SYN without ACK always starts a new one; a UDP flow idle
 * for ANSER_LAN_UDP_IDLE_NS counts as new), and the decision is kept in
 * `lan_flows` (LRU hash) for its later packets. A reload re-decides a
 * cached flow only to block it: a flow keeps its path for its life.
 * Proxied flows are handed to anserd's loopback listeners with
 * bpf_sk_assign() and marked ANSER_LAN_MARK, which a policy rule anserd
 * adds (fwmark ANSER_LAN_MARK lookup ANSER_LAN_TABLE, a table with one
 * route: local default dev lo) turns into local delivery instead of
 * forwarding. UDP ids never carry the mark's top bit.
 */
#define ANSER_LAN_MARK	      0x80616e73u
#define ANSER_LAN_TABLE	      0x616e
#define ANSER_LAN_RULE_PREF   100
#define ANSER_LAN_FLOWS	      65536
#define ANSER_LAN_UDP_IDLE_NS (120ull * 1000000000ull)
#define ANSER_UDP_ID_MASK     0x7fffffffu

struct anser_lan_key {
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 pad;
	__u16 sport;	/* BE */
	__u16 dport;	/* BE */
	__u8 saddr[16]; /* v4 mapped */
	__u8 daddr[16];
};

/* `lan_frags`: a first fragment's flow, for the later fragments. */
#define ANSER_LAN_FRAGS 4096

struct anser_frag_key {
	__u8 family;
	__u8 proto;
	__u16 pad;
	__u32 id; /* the IP ID (v4: 16 bits), as in the header */
	__u8 saddr[16];
	__u8 daddr[16];
};

struct anser_lan_flow {
	__u64 seen;	/* bpf_ktime_get_ns() of a recent packet (UDP; to the second) */
	__u32 version;	/* gen_info.version the decision was made (or kept) under */
	__u16 outbound; /* ANSER_OUT_* or group id */
	__u16 rule;	/* the config's rule, or ANSER_RULE_FALLBACK */
	__u8 gen;	/* the slot decided in */
	__u8 pad[7];
};

/* Value of the socket-local storage `sk_store`, created only for steered
 * sockets: the flow a connect()ed socket was steered for (used by the
 * getpeername and recvmsg hooks) and the UDP id its datagrams carry. */
struct anser_sk {
	struct anser_flow flow; /* flow.cookie != 0 once decided */
	__u32 udp_id;		/* id stamped on egress datagrams, 0: none */
	__u8 redirected;	/* connect() was rewritten to a listener */
	/* its DNS goes to the DNS service's listener: replies from there
	 * are shown as from flow's destination (the server it asked) */
	__u8 dns;
	__u8 pad[2];
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
	__u32 pad2;
	__u64 cgroup_id; /* its cg_set entry is used (no walk up); 0: cg_default */
};

#endif /* ANSER_ABI_H */
