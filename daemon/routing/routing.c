// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Generations and the rule compiler. A rule "a && !b -> out" becomes the
 * matcher run [a][!b, end, out]; sets (names, CIDRs, ports) become map
 * entries keyed by a set id that is unique within one slot, so the two
 * slots never share an entry and a reload can fill one while the kernel
 * reads the other.
 */
#include "routing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct anser_gen *anser_gen_new(struct anser_config *cfg, uint64_t number, unsigned slot)
{
	struct anser_gen *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	atomic_init(&g->refs, 1);
	g->number = number;
	g->slot = slot & 1;
	g->cfg = cfg;
	return g;
}

struct anser_gen *anser_gen_ref(struct anser_gen *g)
{
	if (g)
		atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	return g;
}

void anser_gen_unref(struct anser_gen *g)
{
	if (!g)
		return;
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	anser_config_free(g->cfg);
	free(g);
}

void anser_compiled_clear(struct anser_compiled *c)
{
	free(c->matchers);
	free(c->lpm);
	free(c->pnames);
	memset(c, 0, sizeof(*c));
}

void anser_port_range_prefixes(uint16_t lo, uint16_t hi,
			       void (*emit)(uint16_t port, unsigned bits, void *ud), void *ud)
{
	uint32_t cur = lo;
	while (cur <= hi) {
		/* Largest aligned block starting at cur that stays within hi. */
		unsigned size_bits = 0;
		while (size_bits < 16) {
			uint32_t block = 1u << (size_bits + 1);
			if ((cur & (block - 1)) != 0 || cur + block - 1 > hi)
				break;
			size_bits++;
		}
		emit((uint16_t)cur, 16 - size_bits, ud);
		cur += 1u << size_bits;
	}
}

struct compiler {
	struct anser_compiled *out;
	size_t cap_m, cap_l, cap_p;
	uint32_t next_set;
	uint32_t cur_set;
	uint32_t next_proc_bit;
	int err;
};

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *nv = realloc(*v, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static struct anser_matcher *add_matcher(struct compiler *c)
{
	struct anser_compiled *o = c->out;
	if (o->n_matchers >= ANSER_MAX_MATCHERS) {
		c->err = -E2BIG;
		return NULL;
	}
	if (grow((void **)&o->matchers, &c->cap_m, o->n_matchers, sizeof(*o->matchers)) < 0) {
		c->err = -ENOMEM;
		return NULL;
	}
	struct anser_matcher *m = &o->matchers[o->n_matchers++];
	memset(m, 0, sizeof(*m));
	return m;
}

static struct anser_lpm_key *add_lpm(struct compiler *c)
{
	struct anser_compiled *o = c->out;
	if (grow((void **)&o->lpm, &c->cap_l, o->n_lpm, sizeof(*o->lpm)) < 0) {
		c->err = -ENOMEM;
		return NULL;
	}
	struct anser_lpm_key *k = &o->lpm[o->n_lpm++];
	memset(k, 0, sizeof(*k));
	return k;
}

static void emit_port(uint16_t port, unsigned bits, void *ud)
{
	struct compiler *c = ud;
	struct anser_lpm_key *k = add_lpm(c);
	if (!k)
		return;
	k->prefixlen = 32 + bits;
	k->set = c->cur_set;
	k->data[0] = port >> 8;
	k->data[1] = port & 0xff;
}

static void compile_cond(struct compiler *c, const struct anser_cond *cond, struct anser_matcher *m,
			 unsigned slot)
{
	m->negate = cond->negate ? 1 : 0;
	switch (cond->type) {
	case ANSER_COND_PNAME:
		m->type = ANSER_M_PNAME;
		m->set = (slot << 31) | c->next_set++;
		if (c->next_proc_bit >= ANSER_PROC_BITS) {
			c->err = -E2BIG;
			return;
		}
		m->arg = c->next_proc_bit++;
		for (size_t i = 0; i < cond->n_names; i++) {
			struct anser_compiled *o = c->out;
			if (grow((void **)&o->pnames, &c->cap_p, o->n_pnames, sizeof(*o->pnames)) <
			    0) {
				c->err = -ENOMEM;
				return;
			}
			struct anser_pname_key *p = &o->pnames[o->n_pnames++];
			memset(p, 0, sizeof(*p));
			p->set = m->set;
			strncpy(p->name, cond->names[i], sizeof(p->name) - 1);
		}
		break;
	case ANSER_COND_DIP:
		m->type = ANSER_M_DIP;
		m->set = (slot << 31) | c->next_set++;
		for (size_t i = 0; i < cond->n_cidrs; i++) {
			struct anser_lpm_key *k = add_lpm(c);
			if (!k)
				return;
			k->prefixlen = 32 + cond->cidrs[i].prefix;
			k->set = m->set;
			memcpy(k->data, cond->cidrs[i].addr, 16);
		}
		break;
	case ANSER_COND_DPORT:
		m->type = ANSER_M_DPORT;
		m->set = (slot << 31) | c->next_set++;
		c->cur_set = m->set;
		for (size_t i = 0; i < cond->n_ports; i++)
			anser_port_range_prefixes(cond->ports[i].lo, cond->ports[i].hi, emit_port,
						  c);
		break;
	case ANSER_COND_L4PROTO:
		m->type = ANSER_M_L4PROTO;
		m->arg = cond->mask;
		break;
	case ANSER_COND_IPVERSION:
		m->type = ANSER_M_IPVERSION;
		m->arg = cond->mask;
		break;
	default:
		c->err = -EINVAL;
	}
}

int anser_routing_compile(const struct anser_config *cfg, unsigned slot, struct anser_compiled *out)
{
	struct compiler c = { .out = out, .next_set = 1 };

	memset(out, 0, sizeof(*out));
	slot &= 1;
	for (size_t r = 0; r < cfg->n_rules && !c.err; r++) {
		const struct anser_rule *rule = &cfg->rules[r];
		struct anser_matcher *m = NULL;
		if (rule->n_conds == 0) {
			m = add_matcher(&c);
			if (m)
				m->type = ANSER_M_TRUE;
		}
		for (size_t i = 0; i < rule->n_conds && !c.err; i++) {
			m = add_matcher(&c);
			if (m)
				compile_cond(&c, &rule->conds[i], m, slot);
		}
		if (m && !c.err) {
			m->rule_end = 1;
			m->outbound = (uint16_t)rule->outbound;
			m->rule = (uint16_t)r;
		}
	}
	if (!c.err) {
		struct anser_matcher *m = add_matcher(&c);
		if (m) {
			m->type = ANSER_M_TRUE;
			m->rule_end = 1;
			m->outbound = (uint16_t)cfg->fallback;
			m->rule = ANSER_RULE_FALLBACK;
		}
	}
	if (c.err) {
		anser_compiled_clear(out);
		return c.err;
	}
	return 0;
}
