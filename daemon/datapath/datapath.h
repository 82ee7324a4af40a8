/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * datapath: loads the BPF programs, owns their maps, attaches them to one
 * cgroup with links that die with the process (fail-open), writes
 * generations into the maps and flips between them atomically, and answers
 * the proxy's "where was this flow going?" lookups.
 */
#ifndef ANSER_DATAPATH_H
#define ANSER_DATAPATH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../../bpf/anser_abi.h"
#include "../config/config.h"
#include "../util/conninfo.h"

struct anser_datapath;
struct anser_compiled;

enum {
	/* Also load the rule engine's test entry (anser_datapath_eval_fd). */
	ANSER_DATAPATH_EVAL = 1 << 0,
	/* Also load the gateway's programs (lan_interface set at start): ~26k
	 * instructions for the verifier, and their maps (the flow cache:
	 * ~10 MB), which other starts are spared. */
	ANSER_DATAPATH_GATEWAY = 1 << 1,
};

/* cgroup_path NULL: the cgroup2 root found in /proc/self/mounts. */
int anser_datapath_new(const char *cgroup_path, unsigned flags, struct anser_datapath **out);
void anser_datapath_free(struct anser_datapath *dp);

/* The cgroup2 mount point (e.g. /sys/fs/cgroup/unified), or -ENOENT. */
int anser_cgroup2_mount(char *buf, size_t len);

int anser_datapath_set_ports(struct anser_datapath *dp, uint16_t tcp4, uint16_t tcp6, uint16_t udp4,
			     uint16_t udp6);
/* Write the rules of cfg into map slot `slot` (not yet active). */
int anser_datapath_load_rules(struct anser_datapath *dp, const struct anser_config *cfg,
			      unsigned slot);
/* The same with rules compiled already (for any slot); takes *compiled,
 * which is left empty. */
int anser_datapath_load_compiled(struct anser_datapath *dp, struct anser_compiled *compiled,
				 unsigned slot);
/* File the app()/cgroup() rules of the cgroup `id` at `path` (from the
 * cgroup2 root) in `slot`, as for a cgroup the kernel reports: only when
 * its set differs from its parent's, unless `always` (tests use made-up
 * ids, which the kernel looks up without walking up). 1 when filed. */
int anser_datapath_file_cgroup(struct anser_datapath *dp, unsigned slot, uint64_t id,
			       const char *path, bool always);
/* false: every new flow goes direct (suspended); the programs stay. */
void anser_datapath_set_enabled(struct anser_datapath *dp, bool enabled);
bool anser_datapath_enabled(const struct anser_datapath *dp);
/* Make `slot` the one the kernel evaluates; then clears the other slot's
 * stale entries lazily on the next load. */
int anser_datapath_activate(struct anser_datapath *dp, unsigned slot);
/* Attach the programs; pins a crashed anserd left in the pin directory
 * are removed once these steer. */
int anser_datapath_attach(struct anser_datapath *dp);
/* Detach every program (new flows go direct) and unpin them; maps stay
 * usable. */
void anser_datapath_detach(struct anser_datapath *dp);
/* fail_mode: where the steering links are pinned (a directory on a bpf
 * filesystem, made if missing; before attach). */
void anser_datapath_set_pin_dir(struct anser_datapath *dp, const char *dir);
/* fail_mode: closed pins the steering links, so that they outlive a crash
 * and refuse what they would steer to a listener that is gone; open
 * unpins them. Before attach it is remembered for it. 0, or -errno
 * (logged: fail open stays). */
int anser_datapath_set_fail_closed(struct anser_datapath *dp, bool closed);
/* Gateway mode: the rules decide the forwarded traffic that arrives on
 * exactly these interfaces (tcx ingress links, gone with anserd), the
 * others are let go. 0, or the last -errno (logged; the rest attached). */
int anser_datapath_set_lan(struct anser_datapath *dp, const int *ifindex, size_t n);

/* Gateway mode: the proxy's UDP listeners for LAN flows (-1: none;
 * proxied LAN UDP then goes direct, or is dropped when fail_mode: closed),
 * and the sk_lookup program that hands them datagrams put together from
 * fragments (attached to this network namespace, gone with anserd).
 * 0, or -errno (logged). */
int anser_datapath_set_lan_socks(struct anser_datapath *dp, int udp4, int udp6);
/* Gateway mode: the flow of a LAN client's connection or datagram that
 * the kernel handed to the proxy (proto IPPROTO_TCP/UDP; src: the client,
 * dst: where it was going, the accepted socket's local address or the
 * datagram's original destination). pname is the client's address.
 * -ENOENT unknown, -EACCES blocked since. */
int anser_datapath_lan_lookup(struct anser_datapath *dp, int proto, const struct sockaddr *src,
			      const struct sockaddr *dst, struct anser_flow *out);

/* peer: the accepted socket's peer address (the app's endpoint). */
int anser_datapath_tcp_lookup(struct anser_datapath *dp, const struct sockaddr *peer,
			      struct anser_flow *out);
/* The same for a connection accepted on another loopback listener of
 * anserd's, on `port` (the DNS service's takeover listeners). */
int anser_datapath_tcp_lookup_at(struct anser_datapath *dp, const struct sockaddr *peer,
				 uint16_t port, struct anser_flow *out);
/* The rule slot the hooks decide with now. */
unsigned anser_datapath_active_slot(const struct anser_datapath *dp);
/* A socket of anserd's own that goes to the proxy's listener instead of
 * f's destination (DNS upstreams routed to a group): files f where the
 * proxy looks, by the socket's cookie (TCP) or by a flow id set as its
 * SO_MARK (UDP; kept, and f filed again, when called again). Before
 * connect() (TCP) or each send (UDP). Thread-safe. */
int anser_datapath_file_own(struct anser_datapath *dp, int fd, const struct anser_flow *f);
/* id: the SO_MARK delivered with the datagram. */
int anser_datapath_udp_lookup(struct anser_datapath *dp, uint32_t id, struct anser_flow *out);
/* reply_local: anserd's reply socket on loopback; remote: what the app
 * must see as the source of datagrams from it. */
int anser_datapath_udp_rev_add(struct anser_datapath *dp, const struct sockaddr *reply_local,
			       const struct sockaddr *remote);
int anser_datapath_udp_rev_del(struct anser_datapath *dp, const struct sockaddr *reply_local);

/* The apps' DNS (UDP and TCP port 53, unless a rule with (must) decides
 * the flow; to the virtual addresses virt -- v4 mapped, at most 2 --
 * always) goes to these ports on 127.0.0.1 / ::1 (the DNS service's);
 * 0, 0: it goes where the apps send it. */
void anser_datapath_set_dns(struct anser_datapath *dp, uint16_t v4, uint16_t v6,
			    const uint8_t (*virt)[16], size_t n_virt);

/* A name from a DNS answer: addr (v4 mapped) is an address of name (as
 * "www.example.com") for `seconds` (at least 30). domain() rules then hold
 * for flows to addr as they do for name or any other name it was given
 * with (the last 8), in the kernel before this returns, until the last
 * such answer has aged out. Thread-safe: the DNS service's thread calls
 * it. 0, or -ENOSPC when 65536 addresses are filed already. */
int anser_datapath_learn(struct anser_datapath *dp, const uint8_t addr[16], const char *name,
			 uint32_t seconds);
/* Did a DNS answer still in force tie addr (16 bytes, IPv4 mapped) to
 * `name` (any name, when NULL)? For dial_mode domain's check of a
 * sniffed name. Thread-safe. */
bool anser_datapath_named(struct anser_datapath *dp, const uint8_t addr[16], const char *name);

/* Live sockets of anserd's network namespace that the hooks decided on
 * (direct and proxied): sock_diag joined with the reported decisions.
 * Proxied entries are left for the proxy to fill (bytes, node).
 *
 * A stream: begin() starts the kernel's dump on a thread of its own and
 * entries are appended to out as it goes; wait() blocks until out has
 * more than `seen` complete entries and returns how many, or returns
 * `seen` when the dump is over; end() joins it (always call it) and
 * returns the dump's result. out->v does not move in between. From
 * begin() to end() nothing else may use the datapath. */
struct anser_list_stream;
int anser_datapath_list_begin(struct anser_datapath *dp, struct anser_conn_list *out,
			      struct anser_list_stream **stream);
size_t anser_list_stream_wait(struct anser_list_stream *st, size_t seen);
int anser_datapath_list_end(struct anser_list_stream *st);

/* The kernel reports every decision through a per-CPU log that is read
 * lazily: call anser_datapath_drain() when this fd is readable (process
 * names, or the kernel saw the log fill up unread) and again after the
 * number of milliseconds it returns (0: not needed until the fd says so),
 * which keeps pace with the rate of new flows. Listing reads it too. */
int anser_datapath_events_fd(struct anser_datapath *dp);
unsigned anser_datapath_drain(struct anser_datapath *dp);

/* Returned by anser_datapath_explain() for addresses the hooks never
 * steer: loopback, unspecified, multicast, broadcast. */
#define ANSER_RULE_BUILTIN 0xfffeu

/* anser_datapath_explain for a flow of process pid (its cgroup is read
 * when rules need it) whose domain is `name` (sniffed, dial_mode
 * domain++); thread-safe, for the proxy's workers. */
unsigned anser_datapath_route_name(struct anser_datapath *dp, unsigned slot, uint32_t pid,
				   const char *pname, const uint8_t daddr[16], uint16_t port,
				   bool udp, const char *name);

/* Which rule of the rules in `slot` decides a flow of a process named
 * `pname` in the cgroup at `cgroup` (from the cgroup2 root; NULL: none) to daddr (16 bytes, IPv4 as ::ffff:a.b.c.d) and port (host
 * order), worked out from the tables the kernel reads: a 0-based rule
 * index, ANSER_RULE_FALLBACK or ANSER_RULE_BUILTIN. */
unsigned anser_datapath_explain(struct anser_datapath *dp, unsigned slot, const char *pname,
				const char *cgroup, const uint8_t daddr[16], uint16_t port,
				bool udp);

/* The most instructions the kernel's verifier walked for one of our
 * programs when they were loaded (its limit is 1,000,000). */
uint32_t anser_datapath_verified_max(struct anser_datapath *dp);

/* File descriptor of the eval test program, or -1 when the datapath was
 * made without ANSER_DATAPATH_EVAL. */
int anser_datapath_eval_fd(struct anser_datapath *dp);
/* The gateway program (anser_lan_ingress), for tests that run it with
 * BPF_PROG_TEST_RUN; -1 when made without ANSER_DATAPATH_GATEWAY. */
int anser_datapath_lan_fd(struct anser_datapath *dp);
/* Its sk_lookup program (anser_lan_lookup), the same way. */
int anser_datapath_lan_lookup_fd(struct anser_datapath *dp);

/* Helpers for anser_flow fields (flow.c). */
void anser_flow_dst(const struct anser_flow *f, struct sockaddr_storage *ss);
/* "rule 3" (1-based) or "fallback". */
const char *anser_flow_rule_label(const struct anser_flow *f, char *buf, size_t len);

#endif
