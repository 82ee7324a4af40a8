// SPDX-License-Identifier: GPL-2.0-or-later
/* DNS request routing: rules compiled into one domain set and qtype lists. */
#include "router.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "../routing/domain.h"

struct cond {
	enum anser_cond_type type;
	bool negate;
	unsigned bit;	 /* QNAME: its id in the domain set */
	uint16_t *types; /* QTYPE */
	size_t n_types;
};

struct rule {
	struct cond *conds;
	size_t n_conds;
	int action;
};

struct anser_dns_router {
	struct rule *rules;
	size_t n_rules;
	int fallback;
	struct anser_domain_set *names;
	size_t words; /* of the match bitset */
};

static int action_of(const struct anser_dns *dns, const char *a)
{
	if (!a || strcmp(a, "asis") == 0)
		return ANSER_DNS_ASIS;
	if (strcmp(a, "reject") == 0)
		return ANSER_DNS_REJECT;
	for (size_t i = 0; i < dns->n_upstreams; i++)
		if (strcmp(dns->upstreams[i].name, a) == 0)
			return (int)i;
	return -EINVAL - 100; /* unknown: the parser reports these */
}

void anser_dns_router_free(struct anser_dns_router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_rules; i++) {
		for (size_t k = 0; k < r->rules[i].n_conds; k++)
			g_free(r->rules[i].conds[k].types);
		g_free(r->rules[i].conds);
	}
	g_free(r->rules);
	anser_domain_set_free(r->names);
	g_free(r);
}

int anser_dns_router_new(const struct anser_dns *dns, struct anser_dns_router **out, char **why)
{
	struct anser_dns_router *r = g_new0(struct anser_dns_router, 1);
	struct anser_domain_builder *b = anser_domain_builder_new();
	unsigned bits = 0;

	*out = NULL;
	r->rules = g_new0(struct rule, dns->n_request + 1);
	r->fallback = action_of(dns, dns->request_fallback);
	for (size_t i = 0; i < dns->n_request; i++) {
		const struct anser_dns_rule *dr = &dns->request[i];
		struct rule *ru = &r->rules[r->n_rules++];
		ru->action = action_of(dns, dr->action);
		ru->conds = g_new0(struct cond, dr->n_conds + 1);
		for (size_t k = 0; k < dr->n_conds; k++) {
			const struct anser_cond *c = &dr->conds[k];
			struct cond *co = &ru->conds[ru->n_conds++];
			co->type = c->type;
			co->negate = c->negate;
			if (c->type == ANSER_COND_QNAME) {
				co->bit = bits++;
				for (size_t d = 0; d < c->n_domains; d++) {
					const char *w = NULL;
					const struct anser_domain_pat *pt = &c->domains[d];
					if (anser_domain_builder_add(
						    b, (enum anser_domain_kind)pt->kind, pt->value,
						    strlen(pt->value), co->bit, &w) < 0) {
						*why = g_strdup_printf("%u:%u: qname(%s): %s",
								       c->line, c->col, pt->value,
								       w);
						goto fail;
					}
				}
			} else if (c->type == ANSER_COND_QTYPE) {
				co->types = g_new(uint16_t, c->n_ports + 1);
				for (size_t t = 0; t < c->n_ports; t++)
					co->types[co->n_types++] = (uint16_t)c->ports[t].lo;
			} else {
				*why = g_strdup_printf("%u:%u: not a request condition", c->line,
						       c->col);
				goto fail;
			}
		}
		if (ru->action < ANSER_DNS_REJECT || r->fallback < ANSER_DNS_REJECT) {
			*why = g_strdup_printf("%u:%u: unknown upstream", dr->aline, dr->acol);
			goto fail;
		}
	}
	r->names = anser_domain_builder_finish(b);
	b = NULL;
	if (!r->names) {
		*why = g_strdup("out of memory");
		goto fail;
	}
	r->words = (bits + 63) / 64;
	*out = r;
	return 0;
fail:
	anser_domain_builder_free(b);
	anser_dns_router_free(r);
	return -EINVAL;
}

int anser_dns_router_request(const struct anser_dns_router *r, const char *name, uint16_t qtype,
			     int *rule)
{
	uint64_t bits[64] = { 0 };
	size_t words = r->words < 64 ? r->words : 64;

	if (words)
		anser_domain_set_match(r->names, name, strlen(name), bits, words);
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct rule *ru = &r->rules[i];
		bool all = true;
		for (size_t k = 0; all && k < ru->n_conds; k++) {
			const struct cond *c = &ru->conds[k];
			bool hit = false;
			if (c->type == ANSER_COND_QNAME)
				hit = c->bit < words * 64 &&
				      (bits[c->bit / 64] >> (c->bit % 64) & 1);
			else
				for (size_t t = 0; !hit && t < c->n_types; t++)
					hit = c->types[t] == qtype;
			all = hit != c->negate;
		}
		if (all) {
			*rule = (int)i;
			return ru->action;
		}
	}
	*rule = -1;
	return r->fallback;
}
