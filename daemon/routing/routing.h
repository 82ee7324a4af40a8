/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * routing: a validated config -> an immutable, refcounted generation, and
 * the compiler from a config's rules to the kernel's rule-set tables
 * (bpf/anser_abi.h). Workers hold a reference to the generation a flow was
 * decided in, so a reload never pulls a group out from under a relay.
 */
#ifndef ANSER_ROUTING_H
#define ANSER_ROUTING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../bpf/anser_abi.h"
#include "../config/config.h"
#include "../netmon/netmon.h"
#include "domain.h"

struct anser_gen {
	atomic_uint refs;
	uint64_t number;	  /* 1, 2, ... ; exported as Generation */
	unsigned slot;		  /* 0/1: map slot in the kernel */
	struct anser_config *cfg; /* owned */
};

/* Takes ownership of cfg. */
struct anser_gen *anser_gen_new(struct anser_config *cfg, uint64_t number, unsigned slot);
struct anser_gen *anser_gen_ref(struct anser_gen *g);
void anser_gen_unref(struct anser_gen *g);

struct anser_lpm_entry {
	struct anser_lpm_key key;
	struct anser_rules rules;
};

struct anser_pname_entry {
	struct anser_pname_key key;
	struct anser_rules rules;
};

/*
 * app() and cgroup() conditions: what a cgroup leaves possible depends on
 * its path, which the kernel does not see. anserd works a cgroup's set out
 * from its path when rules are loaded and when the cgroup is made, and
 * files it by cgroup id (bpf/anser_abi.h, cg_set).
 */
struct anser_cg_rules;

/* NULL when cfg has no app() or cgroup() condition (or on OOM, which
 * anser_routing_compile reports). */
struct anser_cg_rules *anser_cg_rules_new(const struct anser_config *cfg);
void anser_cg_rules_free(struct anser_cg_rules *m);
/* The rules a cgroup at `path` leaves possible (path from the cgroup2
 * root, "/" for the root; NULL: a cgroup with no application that no
 * cgroup() names). */
void anser_cg_rules_eval(const struct anser_cg_rules *m, const char *path, struct anser_rules *out);

/* The desktop application id a cgroup path gives its processes: that of
 * its deepest part named by systemd's convention for applications,
 * app[-<launcher>]-<id>-<random>.scope, app[-<launcher>]-<id>[@<random>].service
 * or app[-<launcher>]-<id>.slice, with the unit name escapes (\x2d)
 * undone. Writes it to buf and returns its length, or 0 when the path
 * names no application (or the id does not fit). */
size_t anser_cgroup_app_id(const char *path, char *buf, size_t len);
/* Is the cgroup at `path` the one at `prefix` or below it ("/" holds all)? */
bool anser_cgroup_path_under(const char *path, const char *prefix);

/*
 * domain() conditions: the kernel sees addresses, not names, so for it a
 * flow's domain is unknown (domain() does not hold, !domain() does) until
 * DNS answers tie addresses to names. Names from DNS and sniffing are
 * matched in userspace against every domain() pattern at once.
 */
struct anser_domain_rules;
void anser_domain_rules_free(struct anser_domain_rules *d);
/* The rules a flow to `name` leaves possible by their domain()
 * conditions (all others left possible). */
void anser_domain_rules_eval(const struct anser_domain_rules *d, const char *name,
			     struct anser_rules *out);
/* The patterns behind it (for measurements). */
const struct anser_domain_set *anser_domain_rules_set(const struct anser_domain_rules *d);

/* A config's rules as the kernel's maps hold them (bpf/anser_abi.h). */
struct anser_compiled {
	struct anser_gen_info info; /* all but `version` */
	/* match_lpm: every dip() prefix, with the rules left possible for
	 * addresses whose longest match it is */
	struct anser_lpm_entry *lpm;
	size_t n_lpm;
	struct anser_pname_entry *pnames;
	size_t n_pnames;
	/* with ANSER_LOOKUP_DPORT: each port's class, and each class's rules */
	uint8_t *port_class; /* 65536 entries, by port in host order */
	struct anser_rules *port_rules;
	size_t n_port_classes;
	/* with ANSER_LOOKUP_SPORT: the same for sport() (gateway mode) */
	uint8_t *sport_class;
	struct anser_rules *sport_rules;
	size_t n_sport_classes;
	/* with ANSER_LOOKUP_DSCP: the rules each DSCP value (0-63) leaves
	 * possible (gateway mode) */
	struct anser_rules *dscp_rules;
	/* with ANSER_LOOKUP_CGROUP: for the cg_set entries */
	struct anser_cg_rules *cg;
	/* with domain() rules: their patterns, for names from DNS and sniffing */
	struct anser_domain_rules *dom;
	/* some rule has network(): compiled for one network, again when the
	 * network changes */
	bool network;
	const char *limit; /* on -E2BIG: which limit, as a phrase for users */
	/* on -E2BIG for the number of rules: the first config rule that did
	 * not fit; else SIZE_MAX */
	size_t limit_rule;
};

/* Set ids and LPM keys carry the slot in their top bit so two generations
 * never share map entries. network() conditions hold or not by `net`, the
 * primary connection now (NULL: none). Returns -E2BIG (and sets
 * out->limit) when the rules do not fit the kernel's tables. */
int anser_routing_compile(const struct anser_config *cfg, const struct anser_network *net,
			  unsigned slot, struct anser_compiled *out);
/* Re-key compiled tables for another slot (a config is compiled once, when
 * it is checked, and installed into whichever slot is free). */
void anser_compiled_set_slot(struct anser_compiled *c, unsigned slot);
void anser_compiled_clear(struct anser_compiled *c);

/* dae's optimizer: consecutive rules with one condition each, of the same
 * kind, not negated, with the same outbound (and must, mark), are merged
 * into one rule of the kernel's. */
bool anser_rules_mergeable(const struct anser_rule *a, const struct anser_rule *b);
/* The kernel reports the first config rule of a merged run; this finds
 * the one of the run whose condition holds for the flow (or `rule`). */
unsigned anser_rule_refine(const struct anser_config *cfg, unsigned rule, const char *pname,
			   const char *cgroup, const uint8_t daddr[16], uint16_t port, int udp,
			   int v6);

/* The rule a flow matches, worked out from the compiled tables the way the
 * kernel does (0-based index of the config's rule -- the first of a merged
 * run: see anser_rule_refine -- or ANSER_RULE_FALLBACK); for tests and
 * for explaining decisions. `cgroup` is the process's cgroup path (NULL:
 * none), `daddr` 16 bytes (v4 mapped), port in host order, `udp` and `v6`
 * as in ANSER_L4_INDEX. */
unsigned anser_compiled_match(const struct anser_compiled *c, const char *pname, const char *cgroup,
			      const uint8_t daddr[16], uint16_t port, int udp, int v6);
/* The same for a flow whose domain is `name` (sniffed: dial_mode
 * domain++), which its domain() conditions are matched against. */
unsigned anser_compiled_match_name(const struct anser_compiled *c, const char *pname,
				   const char *cgroup, const uint8_t daddr[16], uint16_t port,
				   int udp, int v6, const char *name);

#endif
