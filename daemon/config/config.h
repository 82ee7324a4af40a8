/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config: the dae configuration language -> validated `struct anser_config`.
 *
 * Promise: parsing never crashes and never reads outside its input; every
 * problem is reported as a diagnostic with file, 1-based line and column,
 * the offending text quoted, and a hint. A config with any error-level
 * diagnostic is rejected as a whole (no partial configs).
 */
#ifndef ANSER_CONFIG_H
#define ANSER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct anser_diag {
	char *file;
	unsigned line; /* 1-based */
	unsigned col;  /* 1-based, in bytes */
	bool warning;  /* false: error */
	char *message; /* "unknown outbound 'proxyy' (did you mean 'proxy'?)" */
	char *source;  /* the text of that line, or NULL */
};

struct anser_diags {
	struct anser_diag *v;
	size_t n;
};

void anser_diags_clear(struct anser_diags *d);
/* "file:line:col: error: message" lines, caller frees. */
char *anser_diags_format(const struct anser_diags *d);
/* The same, each followed by its source line and a caret under the column:
 *
 *   my.dae:3:17: error: unknown outbound 'proxyy' (did you mean 'proxy'?)
 *       pname(x) -> proxyy
 *                   ^
 */
char *anser_diags_format_excerpts(const struct anser_diags *d);
/* The same, each followed by its source line (read again from the file
 * the diagnostic names) and a caret under the column:
 *
 *   my.dae:3:12: error: unknown outbound 'proxyy' (did you mean 'proxy'?)
 *       pname(x) -> proxyy
 *                   ^
 * Diagnostics without a line, or whose file cannot be read, get none. */
char *anser_diags_format_excerpts(const struct anser_diags *d);
size_t anser_diags_errors(const struct anser_diags *d);

enum anser_node_proto {
	ANSER_NODE_SOCKS5 = 1,
	ANSER_NODE_HTTP, /* HTTP CONNECT; https:// sets tls */
	ANSER_NODE_SS,
	ANSER_NODE_VMESS,
	ANSER_NODE_VLESS,
	ANSER_NODE_TROJAN, /* trojan:// and trojan-go:// */
};

/* Shadowsocks methods, and VMess body security (AUTO, AES_128_GCM,
 * CHACHA20_POLY1305 or NONE). */
enum anser_cipher {
	ANSER_CIPHER_NONE = 0,
	ANSER_CIPHER_AES_128_GCM,
	ANSER_CIPHER_AES_256_GCM,
	ANSER_CIPHER_CHACHA20_POLY1305,
	ANSER_CIPHER_2022_AES_128_GCM,
	ANSER_CIPHER_2022_AES_256_GCM,
	ANSER_CIPHER_AUTO,
};

enum anser_net {
	ANSER_NET_TCP = 0,
	ANSER_NET_WS,
};

struct anser_node {
	char *name;
	char *link; /* as written; never exported over D-Bus (secrets) */
	enum anser_node_proto proto;
	char *host; /* literal IP or hostname, brackets stripped */
	uint16_t port;
	char *user;	/* socks5/http: NULL when no auth */
	char *pass;	/* socks5/http auth, shadowsocks and trojan password */
	uint8_t cipher; /* enum anser_cipher */
	uint8_t net;	/* enum anser_net */
	bool tls;
	bool allow_insecure; /* no certificate verification */
	uint8_t uuid[16];    /* vmess, vless */
	char *sni;	     /* NULL: the host, when it is a name */
	char *alpn;	     /* comma-separated protocols, NULL: none */
	char *ws_path;	     /* NULL: "/" */
	char *ws_host;	     /* NULL: sni, else host */
	char *subtag;	     /* the subscription it came from (its tag), or NULL */
	unsigned file;	     /* index into anser_config.files */
	unsigned line, col;
};

/* One share link (socks5, http, https, ss, vmess, vless, trojan,
 * trojan-go) -> n (cleared first; n->link is a copy of link, n->name from
 * the link or "host:port"). -EINVAL with diagnostics (file "link",
 * line 1) in diags. */
int anser_node_from_link(const char *link, struct anser_node *n, struct anser_diags *diags);
void anser_node_clear(struct anser_node *n);
/* "socks5", "http", "https", "shadowsocks", "vmess", "vless", "trojan" */
const char *anser_node_proto_name(const struct anser_node *n);
const char *anser_cipher_name(enum anser_cipher c);

/* A subscription body (SIP008 JSON, base64 of a link list, or a plain
 * link list) -> nodes (caller clears each and frees the array). Bad
 * entries are skipped, counted in *n_bad and described in diags (file
 * "subscription", line = the entry's line or SIP008 index), never quoting
 * secrets. -EINVAL: not a subscription body; -ENOENT: no usable node;
 * -EFBIG: over 8 MiB. */
int anser_subscription_parse(const char *body, size_t len, struct anser_node **nodes,
			     size_t *n_nodes, size_t *n_bad, struct anser_diags *diags);

enum anser_policy {
	ANSER_POLICY_FIXED = 1,
	ANSER_POLICY_RANDOM = 2,
	/* latency-based (dae's): read, but picked like random until health
	 * checks exist */
	ANSER_POLICY_MIN,
	ANSER_POLICY_MIN_AVG10,
	ANSER_POLICY_MIN_MOVING_AVG,
	ANSER_POLICY_MIN_LAST_LATENCY,
};

struct anser_group {
	char *name;
	enum anser_policy policy;
	unsigned fixed_index; /* for fixed(n) */
	size_t *nodes;	      /* indices into anser_config.nodes */
	int64_t *add_latency; /* per node (parallel to nodes): [add_latency: ...] in ns */
	size_t n_nodes;
	bool dead_direct; /* when_dead: direct (our extension): no live node -> direct */
	unsigned file, line, col;
};

enum anser_cond_type {
	ANSER_COND_PNAME = 1,
	ANSER_COND_DIP,
	ANSER_COND_DPORT,
	ANSER_COND_L4PROTO,
	ANSER_COND_IPVERSION,
	ANSER_COND_APP,	   /* names: desktop application ids */
	ANSER_COND_CGROUP, /* names: cgroup paths from the cgroup2 root, no trailing '/' */
	ANSER_COND_DOMAIN, /* domains */
	/* what only forwarded traffic has (gateway mode) */
	ANSER_COND_SIP,	  /* cidrs (and sets, as DIP) */
	ANSER_COND_SPORT, /* ports */
	ANSER_COND_MAC,	  /* macs */
	ANSER_COND_DSCP,  /* dscp: a bit per value 0..63 */
	/* the network the machine is on (our extension), decided in userspace */
	ANSER_COND_NETWORK, /* nets */
	/* the dns section's routing */
	ANSER_COND_QNAME,    /* domains (and sets), as DOMAIN */
	ANSER_COND_QTYPE,    /* ports: lo == hi == the type's number */
	ANSER_COND_IP,	     /* cidrs (and sets), answers' addresses */
	ANSER_COND_UPSTREAM, /* names: upstreams that answered */
};

/* network(key: value): what NetworkManager's primary connection must show */
enum anser_net_key {
	ANSER_NET_ID,	 /* the profile's name */
	ANSER_NET_UUID,	 /* the profile's uuid */
	ANSER_NET_TYPE,	 /* ethernet, wifi, vpn, gsm, ... */
	ANSER_NET_SSID,	 /* Wi-Fi */
	ANSER_NET_IFACE, /* its IP interface */
	ANSER_NET_METERED,
	ANSER_NET_N
};

struct anser_net_match {
	enum anser_net_key key;
	char *value; /* a shell glob; for METERED "yes" or "no" */
};
/* "id", "uuid", ... as network() takes them */
const char *anser_net_key_name(enum anser_net_key k);

struct anser_domain_pat {
	uint8_t kind; /* enum anser_domain_kind (daemon/geodata/geodata.h) */
	char *value;
};

struct anser_cidr {
	uint8_t addr[16]; /* IPv4 stored as ::ffff:a.b.c.d, host bits zeroed */
	uint8_t prefix;	  /* 0..128 in IPv6 terms (v4 /24 -> 120) */
};

struct anser_port_range {
	uint16_t lo, hi; /* host order, lo <= hi */
};

struct anser_cond {
	enum anser_cond_type type;
	bool negate;
	char **names; /* PNAME, APP, CGROUP */
	size_t n_names;
	struct anser_cidr *cidrs; /* DIP */
	size_t n_cidrs;
	struct anser_port_range *ports; /* DPORT */
	size_t n_ports;
	struct anser_domain_pat *domains; /* DOMAIN */
	size_t n_domains;
	uint8_t (*macs)[6]; /* MAC */
	size_t n_macs;
	uint64_t dscp;		      /* DSCP */
	struct anser_net_match *nets; /* NETWORK: any of them holds */
	size_t n_nets;
	/* DOMAIN and DIP: data sets as written ("geosite:cn", "geoip:private",
	 * "ext:my.dat:tag"), whose entries follow those written out:
	 * domains[0..n_written) or cidrs[0..n_written) */
	char **sets;
	size_t n_sets;
	size_t n_written;
	unsigned mask; /* L4PROTO: ANSER_L4_* ; IPVERSION: ANSER_IPV_* (anser_abi.h) */
	unsigned line, col;
};

/* Outbound ids follow anser_abi.h: 0 direct, 1 block, 2 + group index. */
struct anser_rule {
	struct anser_cond *conds; /* all must hold */
	size_t n_conds;
	char *outbound_name;
	unsigned outbound; /* resolved id */
	bool must;	   /* NAME(must) or must_NAME: DNS is not taken over (dae) */
	uint32_t mark;	   /* direct(mark: N): the socket's SO_MARK; 0: none */
	unsigned file;	   /* index into anser_config.files */
	unsigned line, col;
};

struct anser_kv {
	char *key;
	char *value; /* as written, quotes removed */
	unsigned file, line, col;
};

/* The dns section (dae's): read and checked; DNS is not taken over yet. */
struct anser_dns_upstream {
	char *name;
	char *url; /* as written */
	unsigned file, line, col;
};

/* A dns routing rule: conditions -> action (an upstream's name, or asis
 * and reject for requests, accept and reject for responses). */
struct anser_dns_rule {
	struct anser_cond *conds;
	size_t n_conds;
	char *action;
	unsigned file, line, col;    /* of the rule */
	unsigned afile, aline, acol; /* of the action */
};

struct anser_dns {
	bool present;
	struct anser_kv *options; /* ipversion_prefer, bind, ... as written */
	size_t n_options;
	struct anser_kv *fixed_ttl; /* domain -> seconds */
	size_t n_fixed_ttl;
	struct anser_dns_upstream *upstreams;
	size_t n_upstreams;
	struct anser_dns_rule *request, *response;
	size_t n_request, n_response;
	char *request_fallback;					      /* default asis */
	char *response_fallback;				      /* default accept */
	unsigned fallback_file[2], fallback_line[2], fallback_col[2]; /* [response] */
	/* virtual_address, parsed: v4 mapped, at most one per family */
	uint8_t virtual_addr[2][16];
	size_t n_virtual;
};

/* subscription { [TAG:] URL ... } */
struct anser_subscription {
	char *tag; /* NULL when none */
	char *url;
	unsigned file, line, col;
};

/* Where health checks go: a host (Host header / DNS name) and the
 * addresses to use for it, per family. */
struct anser_check_target {
	char *host;
	char *path; /* tcp: the URL's path, "/" at least */
	uint16_t port;
	bool v4, v6;
	uint8_t addr4[4], addr6[16];
};

/* The global health-check options, decoded (dae's defaults when absent). */
struct anser_check {
	struct anser_check_target tcp; /* tcp_check_url */
	struct anser_check_target udp; /* udp_check_dns */
	char *method;		       /* tcp_check_http_method */
	int64_t interval_ns;	       /* check_interval */
	int64_t tolerance_ns;	       /* check_tolerance */
};

void anser_check_clear(struct anser_check *c);

/* dial_mode, with dae's meaning: what a node is asked to connect to, and
 * whether a name sniffed from the flow's first bytes (TLS SNI, HTTP Host,
 * QUIC) may change its route. */
enum anser_dial_mode {
	ANSER_DIAL_IP = 0,	     /* the destination address, always */
	ANSER_DIAL_DOMAIN,	     /* the sniffed name when DNS tied it to the address */
	ANSER_DIAL_DOMAIN_PLUS,	     /* the sniffed name, unchecked */
	ANSER_DIAL_DOMAIN_PLUS_PLUS, /* the same, and the flow is routed again by it */
};

struct anser_config {
	unsigned refs; /* anser_config_ref(); anser_config_free() drops one */
	/* A config made by anser_config_with_routes() borrows everything but
	 * its rules and files arrays from `base` (which it references); its
	 * first n_routes rules are the app routes. */
	struct anser_config *base;
	size_t n_routes;
	char *source; /* entry file path or "<builtin>" */
	/* files[0] is `source`; then the files `include` brought, in the
	 * order they were read (their rules follow the including file's) */
	char **files;
	size_t n_files;
	struct anser_kv *globals;
	size_t n_globals;
	/* decoded globals used in this version */
	char *log_level; /* "info" default */
	/* wan_interface: names, globs or "auto" (NULL-terminated; NULL when
	 * not given, which means auto) */
	char **wan_interfaces;
	/* lan_interface: names or globs of the interfaces whose forwarded
	 * traffic the rules decide (gateway mode; NULL: none) */
	char **lan_interfaces;
	/* auto_config_kernel_parameter: set (and put back at exit) the
	 * sysctls a gateway needs, when lan_interface is given */
	bool auto_config_kernel_parameter;
	/* fail_mode: closed (anser's own): if anserd dies, the flows it would
	 * steer are refused instead of going direct */
	bool fail_closed;
	struct anser_check check;
	enum anser_dial_mode dial_mode; /* domain by default */
	int64_t sniffing_timeout_ns;	/* 100 ms by default; 0: no sniffing */
	struct anser_node *nodes;
	size_t n_nodes;
	struct anser_group *groups;
	size_t n_groups;
	struct anser_rule *rules;
	size_t n_rules;
	unsigned fallback; /* outbound id */
	char *fallback_name;
	bool fallback_must;
	uint32_t fallback_mark;
	unsigned fallback_file, fallback_line, fallback_col; /* of its outbound */
	struct anser_dns dns;
	struct anser_subscription *subscriptions;
	size_t n_subscriptions;
};

/* The built-in default: everything direct. */
extern const char anser_config_builtin[];

/* Parse `len` bytes of `text`; `name` is used in diagnostics. Returns 0 and
 * sets *out, or -EINVAL with diagnostics in *diags (which may also hold
 * warnings on success). */
int anser_config_parse_string(const char *name, const char *text, size_t len,
			      struct anser_config **out, struct anser_diags *diags);
/* Reads the file (refusing > 16 MiB, and files others may write or read)
 * and the files its `include` sections name, and parses them. -errno on
 * I/O errors with a diagnostic naming the file. */
int anser_config_parse_file(const char *path, struct anser_config **out, struct anser_diags *diags);

/* Subscriptions are fetched by the caller: the parser asks for each
 * subscription's body and adds its nodes (tagged with the subscription's
 * tag, for subtag() filters) before groups are resolved. A failed fetch
 * is a warning: the config loads without those nodes. */
struct anser_fetcher {
	/* 0 with *body (malloc'd) and *len, or -errno with *why (malloc'd). */
	int (*fetch)(void *ud, const struct anser_subscription *s, const char *config_dir,
		     char **body, size_t *len, char **why);
	void *ud;
};
/* anser_config_parse_file(), fetching subscriptions with f (NULL: they are
 * read and checked only, with a warning). */
int anser_config_parse_file_fetch(const char *path, const struct anser_fetcher *f,
				  struct anser_config **out, struct anser_diags *diags);
/* Drops a reference; the last one frees. */
void anser_config_free(struct anser_config *c);
struct anser_config *anser_config_ref(struct anser_config *c);

/*
 * App routes (the D-Bus SetAppRoute): a selector in the config language
 * -- app(ID), pname(NAME) or cgroup(PATH), one value, not negated -- and
 * an outbound, tried before the config's own rules.
 */
struct anser_app_route {
	char *selector; /* canonical, as anser_selector_canonical() writes it */
	char *outbound;
};

/* The canonical form of a selector ("app('google-chrome')"), or NULL and
 * *why (caller frees) saying what is wrong. */
char *anser_selector_canonical(const char *text, char **why);
/* A config that is `base` with the routes first (`routes_file` names
 * them in diagnostics and explain). Routes whose outbound base lacks are
 * left out and counted in *skipped. base is referenced, not copied. */
int anser_config_with_routes(struct anser_config *base, const struct anser_app_route *routes,
			     size_t n, const char *routes_file, struct anser_config **out,
			     size_t *skipped);

/* SelectNode: a group made to use one of its nodes (policy fixed). */
struct anser_node_pick {
	char *group;
	char *node;
};

/* Applies picks to a config made by anser_config_with_routes() (its groups
 * array becomes its own). Picks naming no group or no node of the group
 * are left out and counted in *skipped. */
void anser_config_apply_picks(struct anser_config *c, const struct anser_node_pick *picks, size_t n,
			      size_t *skipped);

/* Rule i as config text ("pname(curl) && dport(443) -> proxy"), which the
 * parser reads back to the same rule. Caller frees; NULL if no such rule. */
char *anser_rule_format(const struct anser_config *c, size_t i);
/* "fallback: direct(mark: 0x1)". Caller frees. */
char *anser_fallback_format(const struct anser_config *c);

/* Name of an outbound id in this config ("direct", "block", group name). */
const char *anser_config_outbound_name(const struct anser_config *c, unsigned id);

#endif
