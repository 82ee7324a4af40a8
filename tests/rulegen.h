/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Random routing rules and flows for the rule engine's tests (unit tests
 * of the compiler, and the kernel's engine via BPF_PROG_TEST_RUN). */
#ifndef ANSER_TESTS_RULEGEN_H
#define ANSER_TESTS_RULEGEN_H

#include <glib.h>
#include <stdint.h>

#include "daemon/config/config.h"

struct rulegen_flow {
	const char *name;
	const char *cgroup; /* one of rulegen_cgroups */
	uint64_t cgroup_id; /* its index + 1, for tests that file fake ids */
	uint8_t addr[16];   /* v4 mapped for IPv4 */
	uint16_t port;	    /* host order */
	int udp, v6;
};

/* Parse a config that must be valid (the test fails otherwise). */
struct anser_config *rulegen_parse(const char *text);
/* Over a small space (10.0.x.y, fd00::/120, low ports, names a..e) so
 * random flows hit the conditions often. Free with g_free(). */
char *rulegen_config(GRand *rnd, int max_rules);
void rulegen_flow(GRand *rnd, struct rulegen_flow *f);
/* The cgroup paths flows come from (NULL-terminated). */
extern const char *const rulegen_cgroups[];
/* The first rule whose conditions all hold, read straight from the config
 * (0-based, or ANSER_RULE_FALLBACK). */
unsigned rulegen_plain_match(const struct anser_config *cfg, const struct rulegen_flow *f);
struct anser_compiled;
/* The rule the compiled tables decide, with the merged run refined to the
 * rule that holds -- what explain reports. */
unsigned rulegen_compiled_match(const struct anser_config *cfg, const struct anser_compiled *c,
				const struct rulegen_flow *f);
/* The same for a rule the kernel reported. */
unsigned rulegen_refine(const struct anser_config *cfg, unsigned rule,
			const struct rulegen_flow *f);

#endif
