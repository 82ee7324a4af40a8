// SPDX-License-Identifier: GPL-2.0-or-later
/* Fuzz target: arbitrary bytes through the config parser and, when they
 * parse, the rule compiler. Whatever the input, neither may crash, leak or
 * read outside the buffer; the parse result must be consistent, and the
 * compiled tables must pick the same rule as the rules' plain meaning for
 * flows built from the config's own names, addresses and ports. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config/config.h"
#include "daemon/dns/router.h"
#include "daemon/dns/upstream.h"
#include "daemon/routing/routing.h"
#include "tests/rulegen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The k-th condition of the given type in c, or NULL. */
static const struct anser_cond *nth_cond(const struct anser_config *c, enum anser_cond_type type,
					 unsigned k)
{
	for (size_t r = 0; r < c->n_rules; r++)
		for (size_t i = 0; i < c->rules[r].n_conds; i++)
			if (c->rules[r].conds[i].type == type && k-- == 0)
				return &c->rules[r].conds[i];
	return NULL;
}

/* Flows on the edges of the config's own sets: listed names and others,
 * prefix starts and their neighbours, range ends and one past them. */
static void check_compiled(const struct anser_config *c, const uint8_t *data, size_t size)
{
	struct anser_compiled t;
	int r = anser_routing_compile(c, NULL, size & 1, &t);

	if (r == -E2BIG)
		return;
	if (r < 0)
		abort();
	for (unsigned k = 0; k < 64; k++) {
		uint8_t b = size ? data[(k * 131u) % size] : 0;
		const struct anser_cond *pn = nth_cond(c, ANSER_COND_PNAME, b % 4);
		const struct anser_cond *dp = nth_cond(c, ANSER_COND_DIP, (b >> 2) % 4);
		const struct anser_cond *po = nth_cond(c, ANSER_COND_DPORT, (b >> 4) % 4);
		struct rulegen_flow f = { .name = "zz", .port = (uint16_t)(k * 997 + 1) };

		if (pn && pn->n_names)
			f.name = pn->names[k % pn->n_names];
		if (dp && dp->n_cidrs) {
			memcpy(f.addr, dp->cidrs[k % dp->n_cidrs].addr, 16);
			f.addr[15] ^= (uint8_t)((k >> 3) & 3); /* the start or a neighbour */
		} else {
			f.addr[10] = f.addr[11] = 0xff;
			f.addr[15] = (uint8_t)k;
		}
		f.v6 = memcmp(f.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0;
		if (po && po->n_ports) {
			const struct anser_port_range *pr = &po->ports[k % po->n_ports];
			f.port = (k & 2) ? pr->lo : pr->hi;
			if ((k & 4) && f.port < 65535)
				f.port++;
		}
		f.udp = (b >> 6) & 1;
		if (rulegen_compiled_match(c, &t, &f) != rulegen_plain_match(c, &f))
			abort();
	}
	anser_compiled_clear(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;
	int r = anser_config_parse_string("fuzz.dae", (const char *)data, size, &c, &d);

	if ((r == 0) != (c != NULL) || (r == 0) != (anser_diags_errors(&d) == 0))
		abort();
	if (c) {
		/* the resolved ids must all name something */
		for (size_t i = 0; i < c->n_rules; i++)
			if (!anser_config_outbound_name(c, c->rules[i].outbound))
				abort();
		if (!anser_config_outbound_name(c, c->fallback))
			abort();
		for (size_t g = 0; g < c->n_groups; g++) {
			if (c->groups[g].n_nodes == 0)
				abort();
			for (size_t n = 0; n < c->groups[g].n_nodes; n++)
				if (c->groups[g].nodes[n] >= c->n_nodes)
					abort();
		}
	}
	if (c) {
		check_compiled(c, data, size);
		for (size_t i = 0; i < c->n_rules; i++) {
			char *t = anser_rule_format(c, i);
			if (!t || !strstr(t, " -> "))
				abort();
			free(t);
		}
	}
	if (c) {
		/* what the DNS service makes of the dns section: every upstream
		 * URL the parser let through, and the request rules */
		for (size_t i = 0; i < c->dns.n_upstreams; i++) {
			struct anser_dns_endpoint ep;
			const char *why = NULL;
			if (anser_dns_endpoint_parse(c->dns.upstreams[i].url, &ep, &why) < 0 &&
			    !why)
				abort();
		}
		struct anser_dns_router *rt = NULL;
		char *why = NULL;
		if (anser_dns_router_new(&c->dns, &rt, &why) == 0) {
			int rule;
			int up = anser_dns_router_request(rt, "www.example.com", 1, &rule);
			if (up >= (int)c->dns.n_upstreams || up < ANSER_DNS_REJECT)
				abort();
		}
		anser_dns_router_free(rt);
		g_free(why);
	}
	free(anser_diags_format(&d));
	free(anser_diags_format_excerpts(&d));
	anser_diags_clear(&d);
	anser_config_free(c);
	return 0;
}
