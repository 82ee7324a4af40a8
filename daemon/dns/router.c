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
	struct anser_cidr *cidrs; /* IP */
	size_t n_cidrs;
	int *ups; /* UPSTREAM: upstream indexes */
	size_t n_ups;
};

struct rule {
	struct cond *conds;
	size_t n_conds;
	int action;
};

struct anser_dns_router {
	struct rule *rules; /* request rules, then response rules */
	size_t n_rules, n_request;
	int fallback, response_fallback;
	struct anser_domain_set *names;
	size_t words; /* of the match bitset */
};

static int upstream_index(const struct anser_dns *dns, const char *a)
{
	for (size_t i = 0; i < dns->n_upstreams; i++)
		if (strcmp(dns->upstreams[i].name, a) == 0)
			return (int)i;
	return -1;
}

static int action_of(const struct anser_dns *dns, const char *a)
{
	if (!a || strcmp(a, "asis") == 0)
		return ANSER_DNS_ASIS;
	if (strcmp(a, "reject") == 0)
		return ANSER_DNS_REJECT;
	if (strcmp(a, "accept") == 0)
		return ANSER_DNS_ACCEPT;
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
		for (size_t k = 0; k < r->rules[i].n_conds; k++) {
			g_free(r->rules[i].conds[k].types);
			g_free(r->rules[i].conds[k].cidrs);
			g_free(r->rules[i].conds[k].ups);
		}
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
	r->rules = g_new0(struct rule, dns->n_request + dns->n_response + 1);
	r->fallback = action_of(dns, dns->request_fallback);
	r->response_fallback =
		dns->response_fallback ? action_of(dns, dns->response_fallback) : ANSER_DNS_ACCEPT;
	r->n_request = dns->n_request;
	for (size_t i = 0; i < dns->n_request + dns->n_response; i++) {
		const struct anser_dns_rule *dr =
			i < dns->n_request ? &dns->request[i] : &dns->response[i - dns->n_request];
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
			} else if (c->type == ANSER_COND_IP) {
				co->cidrs = g_new(struct anser_cidr, c->n_cidrs + 1);
				if (c->n_cidrs)
					memcpy(co->cidrs, c->cidrs, c->n_cidrs * sizeof(*c->cidrs));
				co->n_cidrs = c->n_cidrs;
			} else if (c->type == ANSER_COND_UPSTREAM) {
				co->ups = g_new(int, c->n_names + 1);
				for (size_t n = 0; n < c->n_names; n++)
					co->ups[co->n_ups++] = upstream_index(dns, c->names[n]);
			} else {
				*why = g_strdup_printf("%u:%u: not a dns routing condition",
						       c->line, c->col);
				goto fail;
			}
		}
		if (ru->action < ANSER_DNS_ACCEPT || r->fallback < ANSER_DNS_ACCEPT ||
		    r->response_fallback < ANSER_DNS_ACCEPT) {
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

static bool in_cidr(const uint8_t a[16], const struct anser_cidr *c)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(a, c->addr, full) != 0)
		return false;
	return !rest || ((a[full] ^ c->addr[full]) & (uint8_t)(0xFF << (8 - rest))) == 0;
}

/* The first of rules[from, to) whose conditions all hold. */
static int first_rule(const struct anser_dns_router *r, size_t from, size_t to, const char *name,
		      uint16_t qtype, const uint8_t (*addrs)[16], size_t n_addrs, int upstream)
{
	uint64_t bits[64] = { 0 };
	size_t words = r->words < 64 ? r->words : 64;

	if (words)
		anser_domain_set_match(r->names, name, strlen(name), bits, words);
	for (size_t i = from; i < to; i++) {
		const struct rule *ru = &r->rules[i];
		bool all = true;
		for (size_t k = 0; all && k < ru->n_conds; k++) {
			const struct cond *c = &ru->conds[k];
			bool hit = false;
			switch (c->type) {
			case ANSER_COND_QNAME:
				hit = c->bit < words * 64 &&
				      (bits[c->bit / 64] >> (c->bit % 64) & 1);
				break;
			case ANSER_COND_QTYPE:
				for (size_t t = 0; !hit && t < c->n_types; t++)
					hit = c->types[t] == qtype;
				break;
			case ANSER_COND_IP:
				for (size_t a = 0; !hit && a < n_addrs; a++)
					for (size_t x = 0; !hit && x < c->n_cidrs; x++)
						hit = in_cidr(addrs[a], &c->cidrs[x]);
				break;
			case ANSER_COND_UPSTREAM:
				for (size_t u = 0; !hit && u < c->n_ups; u++)
					hit = c->ups[u] == upstream;
				break;
			default:
				break;
			}
			all = hit != c->negate;
		}
		if (all)
			return (int)i;
	}
	return -1;
}

int anser_dns_router_request(const struct anser_dns_router *r, const char *name, uint16_t qtype,
			     int *rule)
{
	int i = first_rule(r, 0, r->n_request, name, qtype, NULL, 0, -1);
	*rule = i;
	return i < 0 ? r->fallback : r->rules[i].action;
}

int anser_dns_router_response(const struct anser_dns_router *r, const char *name, uint16_t qtype,
			      const uint8_t (*addrs)[16], size_t n_addrs, int upstream, int *rule)
{
	int i = first_rule(r, r->n_request, r->n_rules, name, qtype, addrs, n_addrs, upstream);
	*rule = i < 0 ? -1 : i - (int)r->n_request;
	return i < 0 ? r->response_fallback : r->rules[i].action;
}
